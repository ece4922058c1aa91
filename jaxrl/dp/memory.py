"""Memory estimates of the DP solvers, in bytes, and the guard every solver calls first.

The limit is `MEMORY_FRACTION` of the RAM available now (`/proc/meminfo` MemAvailable). A
problem past it is refused with a one-line ValueError that names the solver, the estimate, the
sizes behind it and the limit, before anything large is allocated.

Public API: MEMORY_FRACTION, available_memory_bytes, memory_limit_bytes, check_memory,
exact_memory_bytes, scalar_memory_bytes, grid_memory_bytes.
"""

from __future__ import annotations

import os

MEMORY_FRACTION = 0.5
_MIN_ATOMS = 128  # jaxrl.dp.tabular pads the stock axis to a power of two >= 128


def available_memory_bytes() -> int:
    """RAM available now: MemAvailable, else the free physical pages, else 8 GiB."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


def memory_limit_bytes() -> int:
    """`MEMORY_FRACTION` of `available_memory_bytes()`."""
    return int(MEMORY_FRACTION * available_memory_bytes())


def check_memory(solver: str, need: int, sizes: str, limit: int | None = None) -> None:
    """Raises ValueError `"{solver} needs ~X GiB (sizes); the limit is Y GiB"` if need > limit."""
    limit = memory_limit_bytes() if limit is None else int(limit)
    if need > limit:
        raise ValueError(f"{solver} needs ~{need / 2**30:.3g} GiB ({need} bytes; {sizes}); the "
                         f"limit is {limit / 2**30:.3g} GiB ({limit} bytes)")


def exact_memory_bytes(num_states: int, num_actions: int, horizon: int, num_atoms: int) -> int:
    """Peak bytes of `jaxrl.dp.tabular.solve_exact` (and policy iteration / evaluation).

    Nm = max(128, next power of two of `num_atoms`, the largest stock set). Terms: the successor
    index table [H, S, A, S, Nm] int32 on host, device and as the enumeration's lists
    (12 H S^2 A Nm); one backward step's float64 gather [S, A, S, Nm, Nm], Q [S, Nm, A, Nm] and
    the value carry [S, Nm, Nm] twice (8 Nm^2 S (S A + A + 2)); policies, stocks and reachability
    of two solutions with their JSON lists (64 H S Nm).
    """
    S, A, H = int(num_states), int(num_actions), int(horizon)
    nm = max(_MIN_ATOMS, 1 << max(int(num_atoms) - 1, 0).bit_length())
    return 12 * H * S * S * A * nm + 8 * nm * nm * S * (S * A + A + 2) + 64 * H * S * nm


def scalar_memory_bytes(num_states: int, num_actions: int, horizon: int, num_atoms: int,
                        num_problems: int = 1) -> int:
    """Peak bytes of `jaxrl.dp.scalar` (linear in the stock values N): the index tables
    [H, S, A, S, N] int64 (8 H S^2 A N), one step's float64 gather [B, S, A, S, N] and Q
    [B, S, A, N] for B problems at once (8 B S A N (S + 2)), the policies (4 B H S N)."""
    S, A, H, N, B = (int(v) for v in (num_states, num_actions, horizon, num_atoms, num_problems))
    return 8 * H * S * S * A * N + 8 * B * S * A * N * (S + 2) + 4 * B * H * S * N


def grid_memory_bytes(num_states: int, num_actions: int, num_stocks: int, num_atoms: int,
                      itemsize: int, taps: int = 4) -> int:
    """Peak bytes of one grid sweep (`jaxrl.dp.grid`): the stencil [S, A, S, K, T] (index +
    weight), the stock interpolation [S, A, S, NC] x 2, F / probabilities [S, NC, A, K] ~4 copies,
    the per-state intermediates [A, S, NC, K] ~3 copies and the Q rows [S (3K + 1), NC]."""
    S, A, NC, K, T = (int(v) for v in (num_states, num_actions, num_stocks, num_atoms, taps))
    it = int(itemsize)
    return (S * A * S * K * T * (4 + it) + S * A * S * NC * (4 + it) + 4 * S * NC * A * K * it
            + 3 * A * S * NC * K * it + S * (3 * K + 1) * NC * it)
