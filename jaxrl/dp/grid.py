"""Categorical distributional DP with the stock on a grid (paper sec. 4; C51 representation).

State `(s, c_j)` with the stock on a uniform grid `stocks [NC]`; return distributions are
categorical on a uniform support `support [K]` and are stored as CDFs `F[s, j, a, k]`. One sweep
of distributional VI (the stock-augmented distributional Bellman operator, sec. 4):

    a*(s', j)       = argmax_a E_{Z ~ eta(s', j, a)} f(gamma^t (c_j + Z))      (greedy on the grid)
    c'              = clip((c_i + R[s,a,s']) / gamma) between grid points lo, lo+1 (weights 1-w, w)
    eta'(s, i, a)   = sum_s' P[s,a,s'] Proj(R[s,a,s'] + gamma Z),
                      Z ~ (1-w) eta(s',lo,a*) + w eta(s',lo+1,a*)

`Proj` is the Cramér (C51) projection with clipping. Because R is fixed, the projection is a
fixed stencil of T taps (T = 3 for gamma = 0.9) whose weights depend on R only
(`projection_stencil`): exact, no K x K matrices. The sweep works on probabilities (better
float32 round-off than CDFs) in two row-gather stages per state s, both contiguous on this CPU:
the projection gathers whole stock vectors, the stock interpolation (and the sum over s', with
P folded into the stencil weights) whole atom vectors; one transpose in between.
`make_grid_operator` precomputes the stencil and the stock interpolation; `grid_sweep` (CDFs) and
`grid_sweep_probs` (probabilities) are one jitted sweep.

Speed on XLA:CPU (jax 0.10.2): the flags `--xla_cpu_use_fusion_emitters=false
--xla_cpu_experimental_ynn_fusion_type=` make the sweep about 2x faster; set them in `XLA_FLAGS`
before jax is imported (experiments/benchmarks/distdp.py does, see RESULTS_distdp.md).

Finite horizon: H backward sweeps from eta_H = Proj(delta_0) (`delta0_cdf`) with a
time-indexed greedy (f evaluated on gamma^t (c + Z)).
Discounted (horizon 0): sweeps until the greedy values change by < tol (`converged`,
`residual` in the result) with a stationary greedy (the first maximizer, as the NumPy
references; `tie_eps > 0`: sticky on near-ties, see `grid_value_iteration`), only for
objectives whose f is positively homogeneous (`check_stationary` refuses the others). A run
that cannot converge stops early: when the value change has made no new minimum for
`stall_sweeps` sweeps (the greedy keeps cycling between actions, so the change no longer
contracts; `stalled` in the result), or at the cap; either way with a one-line warning.
The start stock c_0 is read off the grid by the same interpolation; CVaR searches b over the grid
(b = -c_j; approximate, the exact search is `jaxrl.dp.tabular.solve_exact`).

Public API: GridOperator, make_grid_operator, utility_weights, grid_sweep, grid_sweep_probs,
GridSolution, grid_value_iteration, grid_policy_iteration, grid_policy_evaluation,
batched_value_iteration (B MDPs in one vmapped program, compacted between rounds), cdf_to_probs,
projection_stencil.
"""

from __future__ import annotations

import warnings
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.dp.memory import check_memory, grid_memory_bytes
from jaxrl.dp.objectives import Objective, check_stationary, objective_value
from jaxrl.dp.tabular import MDP


class GridOperator(NamedTuple):
    """Precomputed pieces of the sweep (all depend on P, R, gamma and the grids only).

    Attributes:
      lo: `[S, A, S', NC]` int32 lower stock neighbour of `(c_i + R) / gamma`.
      w: `[S, A, S', NC]` interpolation weight of `lo + 1`.
      kidx: `[S, A, S', K, T]` int32 taps of the projection stencil: indices into the row
        `Q = [p_0..p_{K-1}, F_0..F_{K-1}, G_0..G_{K-1}, 0]` (probabilities, CDF, upper tail
        masses G_k = sum_{k' >= k} p_k'), see `projection_stencil`.
      wp: `[S, A, S', K, T]` stencil weights times `P[s, a, s']`.
      stocks: `[NC]` stock grid. support: `[K]` atoms.
    """

    lo: jax.Array
    w: jax.Array
    kidx: jax.Array
    wp: jax.Array
    stocks: jax.Array
    support: jax.Array


def _check_grid(x: np.ndarray, name: str) -> None:
    if x.ndim != 1 or x.size < 2 or not np.allclose(np.diff(x), x[1] - x[0]) or x[1] <= x[0]:
        raise ValueError(f"{name} must be a uniform increasing 1-D grid with >= 2 points")


def stock_interpolation(R: np.ndarray, stocks: np.ndarray, gamma: float):
    """lo, w `R.shape + [NC]`: clip((c + R)/gamma) lies between stocks[lo], stocks[lo + 1]."""
    nc = stocks.size
    cn = np.clip((stocks + R[..., None]) / gamma, stocks[0], stocks[-1])
    pos = (cn - stocks[0]) / (stocks[1] - stocks[0])
    lo = np.minimum(np.floor(pos).astype(np.int64), nc - 2)
    return lo, pos - lo


def projection_stencil(R: np.ndarray, support: np.ndarray, gamma: float):
    """C51 projection of `R + gamma Z` as a gather stencil over `Q` rows, for every reward in `R`.

    For probabilities p over `support [K]`, let Q = [p_0..p_{K-1}, F_0..F_{K-1}, G_0..G_{K-1}, 0]
    (F: CDF, G_k = sum_{k' >= k} p_k'). Returns (kidx `R.shape + [K, T]` int32, W `R.shape +
    [K, T]`) with Proj(R + gamma Z)[m] = sum_t W[..., m, t] Q[kidx[..., m, t]], exactly the
    clipped C51 split (l = min(floor(b), K - 2), mass 1 - f to l and f to l + 1; weights
    <= 1e-12 dropped): an interior source atom gives two taps; the atoms clipped to the lower
    (upper) end are summed by ONE tap on F (G), so T stays small (3 for gamma = 0.9: about
    2 / gamma + 1) whatever R is.
    """
    K = support.size
    z0, zK = support[0], support[-1]
    dz = support[1] - support[0]
    Rf = np.asarray(R, np.float64).reshape(-1)
    n = Rf.size
    x = Rf[:, None] + gamma * support[None, :]                       # [n, K] unclipped targets
    b = (np.clip(x, z0, zK) - z0) / dz
    lk = np.minimum(np.floor(b).astype(np.int64), K - 2)
    fk = b - lk
    low, high = x <= z0, x >= zK                                     # clipped to an end atom
    inner = ~(low | high)
    k = np.broadcast_to(np.arange(K), (n, K))
    # entries (m, source index into Q, weight); invalid ones get weight 0 and are dropped below
    m_e = [lk, lk + 1]
    s_e = [k, k]
    w_e = [np.where(inner, 1.0 - fk, 0.0), np.where(inner, fk, 0.0)]
    nlow = low.sum(1)                                                 # low = atoms 0 .. nlow-1
    m_e.append(np.zeros((n, 1), np.int64))
    s_e.append((K + np.maximum(nlow - 1, 0))[:, None])
    w_e.append(np.where(nlow > 0, 1.0, 0.0)[:, None])
    khi = K - high.sum(1)                                             # high = atoms khi .. K-1
    bmax = (zK - z0) / dz
    lmax = min(int(np.floor(bmax)), K - 2)
    fmax = bmax - lmax
    for m, wt in ((lmax, 1.0 - fmax), (lmax + 1, fmax)):
        m_e.append(np.full((n, 1), m, np.int64))
        s_e.append((2 * K + np.minimum(khi, K - 1))[:, None])
        w_e.append(np.where(khi < K, wt, 0.0)[:, None])
    m_e, s_e, w_e = (np.concatenate(e, 1) for e in (m_e, s_e, w_e))
    # drop zero taps and the ~1e-14 residues of the clipping when (z_max - z_min) / dz is
    # not an exact integer in floating point (they would cost a whole extra tap)
    keep = np.abs(w_e) > 1e-12
    rows = np.broadcast_to(np.arange(n)[:, None], m_e.shape)[keep]
    key = rows * K + m_e[keep]
    order = np.argsort(key, kind="stable")
    key, src, wts = key[order], s_e[keep][order], w_e[keep][order]
    pos = np.arange(key.size)
    start = np.r_[True, key[1:] != key[:-1]] if key.size else np.zeros(0, bool)
    rank = pos - np.maximum.accumulate(np.where(start, pos, 0))
    T = int(rank.max()) + 1 if key.size else 1
    kidx = np.full((n * K, T), 3 * K, np.int64)                       # the 0 entry of Q
    W = np.zeros((n * K, T))
    kidx[key, rank] = src
    W[key, rank] = wts
    return (kidx.reshape(R.shape + (K, T)).astype(np.int32), W.reshape(R.shape + (K, T)))


def make_grid_operator(mdp: MDP, stocks, support, dtype=jnp.float32) -> GridOperator:
    """Precomputes the sweep for an MDP on `stocks [NC]` x `support [K]` (uniform grids)."""
    stocks = np.asarray(stocks, np.float64)
    support = np.asarray(support, np.float64)
    _check_grid(stocks, "stocks")
    _check_grid(support, "support")
    lo, w = stock_interpolation(mdp.R, stocks, mdp.gamma)
    kidx, W = projection_stencil(mdp.R, support, mdp.gamma)
    wp = W * mdp.P[..., None, None]
    return GridOperator(jnp.asarray(lo, jnp.int32), jnp.asarray(w, dtype), jnp.asarray(kidx),
                        jnp.asarray(wp, dtype), jnp.asarray(stocks, dtype),
                        jnp.asarray(support, dtype))


def utility_weights(f, stocks, support, scale=1.0) -> jax.Array:
    """dU `[NC, K]` with E_{eta}[f(scale (c_j + Z))] = sum_k F[k] dU[j, k] for a CDF F."""
    u = f(scale * (stocks[:, None] + support[None, :]))
    return u - jnp.concatenate([u[:, 1:], jnp.zeros_like(u[:, :1])], axis=1)


TIE_EPS = 64  # greedy ties: actions within TIE_EPS * eps(dtype) * (1 + |max|) of the max


def tie_argmax(q: jax.Array, tie_eps: float | jax.Array = TIE_EPS) -> jax.Array:
    """Deterministic greedy with a tie tolerance: the LOWEST action whose score is within
    `tie_eps * eps(dtype) * (1 + |max|)` of the best (`q [..., A]` -> int32 `[...]`; tie_eps 0:
    the first maximizer, `jnp.argmax`). Round-off then cannot flip the chosen action between
    near-tied actions."""
    m = q.max(-1, keepdims=True)
    tol = tie_eps * jnp.finfo(q.dtype).eps * (1.0 + jnp.abs(m))
    return jnp.argmax(q >= m - tol, axis=-1).astype(jnp.int32)


def greedy(F: jax.Array, dU: jax.Array) -> jax.Array:
    """a*[s, j] = argmax_a sum_k F[s, j, a, k] dU[j, k] (first maximizer, as the one sweep
    `grid_sweep` and the NumPy references). F: `[S, NC, A, K]` CDFs."""
    return jnp.argmax(jnp.einsum("sjak,jk->sja", F, dU), axis=-1)


def _q_rows(Vp: jax.Array) -> jax.Array:
    """Q^T `[S' * (3K + 1), NC]`: per next state, the rows p_k, F_k, G_k (k < K) and a zero row,
    each a vector over the stock grid (so the projection gathers contiguous rows)."""
    S, NC, K = Vp.shape
    F = jnp.cumsum(Vp, -1)
    G = jnp.flip(jnp.cumsum(jnp.flip(Vp, -1), -1), -1)
    Q = jnp.concatenate([Vp, F, G, jnp.zeros((S, NC, 1), Vp.dtype)], -1)  # [S', NC, 3K+1]
    return jnp.swapaxes(Q, 1, 2).reshape(S * (3 * K + 1), NC)


BLOCK_BYTES = 2 << 20
"""Size target of the per-block intermediate `[A, bs, K, NC]` of `_apply_probs` (about an L2
cache): the sum over next states is taken in blocks of `bs` next states so the intermediate is
reused from cache instead of streamed from memory (anchor instance, float64: 1.65x faster than
one block of all S')."""


def block_size(num_states: int, num_actions: int, num_atoms: int, num_stocks: int,
               itemsize: int) -> int:
    """Next states per block in `_apply_probs`: the largest divisor of `num_states` whose
    intermediate `[A, bs, K, NC]` (`itemsize` bytes each) fits `BLOCK_BYTES` (at least 1)."""
    per_state = num_actions * num_atoms * num_stocks * itemsize
    fits = [b for b in range(1, num_states + 1)
            if num_states % b == 0 and b * per_state <= BLOCK_BYTES]
    return max(fits, default=1)


def _apply_probs(Vp: jax.Array, op: GridOperator) -> jax.Array:
    """new probabilities `[S, NC, A, K]` from the chosen next distributions Vp `[S', NC, K]`.

    Per state s (a `lax.map`) and per block of `bs` next states (`block_size`; a `lax.scan`
    accumulating the sum over s'): (1) projection, Y[a, s', m, :] = sum_t wp[s,a,s',m,t] *
    Q^T[s', kidx[s,a,s',m,t], :] (row gathers over stock vectors); (2) stock interpolation and
    the sum over s', new[s, i, a, :] = sum_s' (1 - w) Y^T[a, s', lo] + w Y^T[a, s', lo + 1]
    (row gathers over atom vectors). Both interpolations are linear, so their order is free.
    """
    S, NC, K = Vp.shape
    A = op.lo.shape[1]
    T = op.kidx.shape[-1]
    bs = block_size(S, A, K, NC, Vp.dtype.itemsize)
    nb = S // bs
    QT = _q_rows(Vp)
    base_q = (jnp.arange(S, dtype=jnp.int32) * (3 * K + 1)).reshape(nb, 1, bs, 1, 1)
    base_y = (jnp.arange(A * bs, dtype=jnp.int32) * NC).reshape(A, bs, 1)

    def project(y):  # one action: Y [bs, K, NC]
        idx, wa = y  # [bs, K, T]
        # one row gather per tap (a single fused gather of all taps is much slower on XLA:CPU)
        Y = wa[..., 0, None] * QT[idx[..., 0]]
        for t in range(1, idx.shape[-1]):
            Y = Y + wa[..., t, None] * QT[idx[..., t]]
        return Y

    def block(acc, x):
        lo, w, kidx, wp, bq = x  # [A,bs,NC] [A,bs,NC] [A,bs,K,T] [A,bs,K,T] [1,bs,1,1]
        # the inner loop materialises Y, so the transpose below is a plain (fast) transpose;
        # fused into the projection's gathers it made the sweep ~3x slower on XLA:CPU
        Y = jax.lax.map(project, (kidx + bq, wp))  # [A, bs, K, NC]
        YT = jnp.swapaxes(Y, 2, 3).reshape(A * bs * NC, K)
        rows = lo + base_y  # [A, bs, NC]
        Z = YT[rows] + w[..., None] * (YT[rows + 1] - YT[rows])  # [A, bs, NC, K]
        return acc + Z.sum(1), None

    def per_state(x):
        lo, w, kidx, wp = x  # [A,S',NC] [A,S',NC] [A,S',K,T] [A,S',K,T]
        blocks = (lo.reshape(A, nb, bs, NC).swapaxes(0, 1),
                  w.reshape(A, nb, bs, NC).swapaxes(0, 1),
                  kidx.reshape(A, nb, bs, K, T).swapaxes(0, 1),
                  wp.reshape(A, nb, bs, K, T).swapaxes(0, 1), base_q)
        acc, _ = jax.lax.scan(block, jnp.zeros((A, NC, K), Vp.dtype), blocks)
        return jnp.swapaxes(acc, 0, 1)  # [NC, A, K]

    return jax.lax.map(per_state, (op.lo, op.w, op.kidx, op.wp))


def _utility_probs(dU: jax.Array) -> jax.Array:
    """u `[NC, K]` with sum_k p_k u[j, k] = sum_k F_k dU[j, k] (u_k = sum_{k' >= k} dU_k')."""
    return jnp.flip(jnp.cumsum(jnp.flip(dU, -1), -1), -1)


def _sweep_probs(P: jax.Array, op: GridOperator, u: jax.Array) -> tuple[jax.Array, jax.Array]:
    """One sweep on probabilities `P [S, NC, A, K]` with greedy utilities u `[NC, K]`."""
    a_star = jnp.argmax(jnp.einsum("sjak,jk->sja", P, u), axis=-1)
    V = jnp.take_along_axis(P, a_star[:, :, None, None], axis=2)[:, :, 0, :]
    return _apply_probs(V, op), a_star


@jax.jit
def grid_sweep(F: jax.Array, op: GridOperator, dU: jax.Array) -> tuple[jax.Array, jax.Array]:
    """One sweep of distributional VI on CDFs. F: `[S, NC, A, K]`; dU: `[NC, K]` greedy weights.

    Returns (new F `[S, NC, A, K]`, greedy actions of the input `[S, NC]`). The work is done on
    probabilities (`cdf_to_probs` in, cumsum out), which keeps float32 round-off small.
    """
    P_new, a_star = _sweep_probs(cdf_to_probs(F), op, _utility_probs(dU))
    return jnp.cumsum(P_new, -1), a_star


@jax.jit
def grid_sweep_probs(eta: jax.Array, op: GridOperator, dU: jax.Array
                     ) -> tuple[jax.Array, jax.Array]:
    """`grid_sweep` on probabilities: eta `[S, NC, A, K]` -> (new eta, greedy actions `[S, NC]`)."""
    return _sweep_probs(eta, op, _utility_probs(dU))


@jax.jit
def _evaluate_sweep(F, op, policy):
    P = cdf_to_probs(F)
    V = jnp.take_along_axis(P, policy[:, :, None, None], axis=2)[:, :, 0, :]
    return jnp.cumsum(_apply_probs(V, op), -1)


def cdf_to_probs(F: jax.Array) -> jax.Array:
    """Probabilities `[..., K]` from CDFs `[..., K]`."""
    return jnp.diff(F, axis=-1, prepend=jnp.zeros_like(F[..., :1]))


class GridSolution(NamedTuple):
    """Result of the grid solvers.

    Attributes:
      objective_value: value of the objective for the law of G from mu0 (approximate: grids).
      c0: stock start used; b: CVaR threshold (cvar only, else None).
      policy: `[S, NC]` (discounted) or `[H, S, NC]` (finite horizon) int32 greedy actions.
      F: `[S, NC, A, K]` return-distribution CDFs at t = 0.
      stocks `[NC]`, support `[K]`, return_probs `[K]` law of G from mu0; sweeps: sweeps used.
      converged: the stopping rule was met (finite horizon: always; VI: the greedy values
        changed by < tol in the last sweep; PI: the policy was stable); False = stopped at the
        cap or stalled (a one-line warning is issued). residual: the last value change (VI) or
        evaluation change (PI) in the sup norm; 0 for a finite horizon.
      stalled: VI only: stopped before the cap because the value change made no new minimum
        for `stall_sweeps` sweeps (the greedy cycles; not converged).
    """

    objective_value: float
    c0: float
    b: float | None
    policy: np.ndarray
    F: np.ndarray
    stocks: np.ndarray
    support: np.ndarray
    return_probs: np.ndarray
    sweeps: int
    converged: bool = True
    residual: float = 0.0
    stalled: bool = False


def delta0_cdf(support) -> np.ndarray:
    """CDF `[K]` of the C51 projection of delta_0 onto `support` (uniform): mass split between
    the two atoms around 0 in proportion to closeness (mean 0 kept), or all on the end atom
    when 0 lies outside the support. The start eta_H of finite-horizon grid DP."""
    z = np.asarray(support, np.float64)
    K = z.size
    b = (np.clip(0.0, z[0], z[-1]) - z[0]) / (z[1] - z[0])
    lo = min(int(np.floor(b)), K - 2)
    p = np.zeros(K)
    p[lo], p[lo + 1] = 1.0 - (b - lo), b - lo
    return np.cumsum(p)


def _delta0(S, NC, A, support, dtype):
    F = jnp.asarray(delta0_cdf(np.asarray(support, np.float64)), dtype)
    return jnp.broadcast_to(F, (S, NC, A, support.shape[0]))


def _start_law(F0, policy0, mu0, stocks, c0):
    V0 = jnp.take_along_axis(F0, policy0[:, :, None, None], axis=2)[:, :, 0, :]  # [S, NC, K]
    s = np.asarray(stocks, np.float64)
    pos = np.clip((c0 - s[0]) / (s[1] - s[0]), 0, s.size - 1)
    lo = min(int(np.floor(pos)), s.size - 2)
    w = pos - lo
    cdf = jnp.asarray(mu0, F0.dtype) @ ((1 - w) * V0[:, lo] + w * V0[:, lo + 1])
    return np.asarray(cdf_to_probs(cdf), np.float64)


def _finish(mdp, objective, op, F0, policy0, policy, sweeps, converged=True, residual=0.0,
            stalled=False) -> GridSolution:
    stocks = np.asarray(op.stocks, np.float64)
    support = np.asarray(op.support, np.float64)
    if objective.name == "cvar":
        V0 = np.asarray(jnp.take_along_axis(F0, policy0[:, :, None, None], 2)[:, :, 0, :])
        probs = np.diff(np.einsum("s,sjk->jk", mdp.mu0, V0), axis=-1, prepend=0.0)  # [NC, K]
        b = -stocks
        vals = b + (probs * np.minimum(support[None, :] - b[:, None], 0.0)).sum(-1) / (
            objective.alpha)
        j = int(np.argmax(vals))
        c0, bstar, law = float(stocks[j]), float(b[j]), probs[j]
    else:
        c0, bstar = objective.c0, None
        law = _start_law(F0, policy0, mdp.mu0, stocks, c0)
    value = float(objective_value(objective, jnp.asarray(support), jnp.asarray(law)))
    return GridSolution(value, c0, bstar, np.asarray(policy), np.asarray(F0), stocks, support,
                        law, sweeps, bool(converged), float(residual), bool(stalled))


def _setup(mdp, objective, stocks, support, dtype):
    if objective.score is not None:
        raise ValueError("grid solvers support expected-utility objectives only (no custom score)")
    S, A, _ = mdp.P.shape
    nc, k = np.asarray(stocks).size, np.asarray(support).size
    check_memory("the grid solver", grid_memory_bytes(S, A, nc, k, jnp.dtype(dtype).itemsize),
                 f"S={S}, A={A}, {nc} stocks x {k} atoms, {jnp.dtype(dtype).name}")
    op = make_grid_operator(mdp, stocks, support, dtype)
    F = _delta0(S, op.stocks.shape[0], A, op.support, dtype)
    return op, F


STALL_SWEEPS = 50
"""Default `stall_sweeps` of the discounted VI solvers. On 256 random CVaR MDPs (S=8, A=2, 32
stocks x 51 atoms, gamma 0.9; experiments/benchmarks/RESULTS_distdp.md) the value change of
every MDP that converged made a new minimum at least every 15 sweeps; the 19 that cycle made
their last one at sweeps 74-178 (so stopped at 124-228 instead of the cap of 400)."""


def grid_value_iteration(mdp: MDP, objective: Objective, stocks, support, *, tol: float = 1e-6,
                         max_sweeps: int = 1000, stall_sweeps: int = STALL_SWEEPS,
                         tie_eps: float = 0.0, dtype=jnp.float32) -> GridSolution:
    """Distributional VI on the stock grid (finite horizon: time-indexed; else stationary).

    Args:
      mdp: finite MDP; objective: from `make_objective`; stocks `[NC]`, support `[K]` uniform.
      tol: stop when the greedy values `v(s, c) = max_a E f(c + Z)` change by < tol in the sup
        norm (discounted only; a value criterion: near-tied actions may swap distributions
        without changing the values); max_sweeps: cap. stall_sweeps: stop (not converged,
        `stalled=True`) once the value change has made no new minimum for this many sweeps
        (while the greedy policy is fixed the sweep contracts and the change keeps falling; a
        stall means the greedy cycles); 0 turns it off. Not converged: `converged=False`, the
        final `residual`, and a one-line `RuntimeWarning`.
      tie_eps: 0 (default): the greedy is the first maximizer of each sweep, the rule of the
        NumPy references. > 0: sticky on near-ties: the previous sweep's action is kept while
        within `tie_eps * eps(dtype) * (1 + |max|)` of the best (else `tie_argmax`). That stops
        round-off flips between near-tied actions, but it moves the fixed point: a kept action
        is near-tied only at its own grid stock, and its law, mixed into a predecessor's at an
        interpolated stock, is not. On 256 random CVaR MDPs in float32, tie_eps = 64 changed the
        converged greedy values by a median 2.7e-3 (max 1.3e-2) from the first-maximizer rule,
        whose float32 values agree with a float64 loop to < 1e-5 (RESULTS_distdp.md).
    """
    _check_stall(stall_sweeps, tie_eps)
    f = objective.utility
    if mdp.horizon > 0:
        op, F = _setup(mdp, objective, stocks, support, dtype)
        policies = []
        for t in reversed(range(mdp.horizon)):
            dU_next = utility_weights(f, op.stocks, op.support, mdp.gamma ** (t + 1))
            F, _ = grid_sweep(F, op, dU_next)
            policies.append(greedy(F, utility_weights(f, op.stocks, op.support, mdp.gamma**t)))
        policy = jnp.stack(policies[::-1])
        return _finish(mdp, objective, op, F, policy[0], policy, mdp.horizon)
    check_stationary(objective, mdp.gamma)
    op, F = _setup(mdp, objective, stocks, support, dtype)
    dU = utility_weights(f, op.stocks, op.support)
    F, policy, n, res = _iterate(F, op, dU, tol, max_sweeps, stall_sweeps, tie_eps)
    converged = bool(res < tol)
    stalled = not converged and int(n) < max_sweeps
    if stalled:
        warnings.warn(f"grid_value_iteration did not converge: value change {float(res):.3g} >= "
                      f"tol {tol:g}, no new minimum in stall_sweeps={stall_sweeps} sweeps (the "
                      f"greedy cycles), stopped after {int(n)} sweeps", RuntimeWarning,
                      stacklevel=2)
    elif not converged:
        warnings.warn(f"grid_value_iteration did not converge: value change {float(res):.3g} >= "
                      f"tol {tol:g} after max_sweeps={max_sweeps}", RuntimeWarning, stacklevel=2)
    return _finish(mdp, objective, op, F, policy, policy, int(n), converged, float(res), stalled)


def _check_stall(stall_sweeps, tie_eps) -> None:
    if isinstance(stall_sweeps, bool) or not isinstance(stall_sweeps, (int, np.integer)) or (
            stall_sweeps < 0):
        raise ValueError(f"stall_sweeps must be an int >= 0 (0: off), got {stall_sweeps!r}")
    if not (isinstance(tie_eps, (int, float, np.integer, np.floating)) and np.isfinite(tie_eps)
            and tie_eps >= 0) or isinstance(tie_eps, bool):
        raise ValueError(f"tie_eps must be a finite number >= 0, got {tie_eps!r}")


class _VICarry(NamedTuple):
    """State of the value-iteration loop: probabilities P `[S, NC, A, K]`, sticky greedy a
    `[S, NC]`, greedy values v `[S, NC]`, last value change err, sweeps n, the smallest value
    change so far `best` and the sweeps since it was made `since`."""

    P: jax.Array
    a: jax.Array
    v: jax.Array
    err: jax.Array
    n: jax.Array
    best: jax.Array
    since: jax.Array


def _vi_running(c: _VICarry, tol, max_sweeps, stall) -> jax.Array:
    """The stopping rule, negated: not converged, under the cap and not stalled (stall 0: off)."""
    return (c.err >= tol) & (c.n < max_sweeps) & ((stall <= 0) | (c.since < stall))


def _greedy_sticky(P, a_prev, u, tie_eps):
    """(a, v): greedy actions `[S, NC]` and the greedy values max_a sum_k P u. tie_eps 0: the
    first maximizer; > 0: a_prev kept while within the `tie_argmax` tolerance of the best."""
    q = jnp.einsum("sjak,jk->sja", P, u)
    m = q.max(-1)
    tol_q = tie_eps * jnp.finfo(q.dtype).eps * (1.0 + jnp.abs(m))
    keep = (tie_eps > 0) & (jnp.take_along_axis(q, a_prev[..., None], -1)[..., 0] >= m - tol_q)
    return jnp.where(keep, a_prev, tie_argmax(q, tie_eps)), m


def _vi_start(F, dU, tie_eps) -> _VICarry:
    P0 = cdf_to_probs(F)
    a0, v0 = _greedy_sticky(P0, jnp.zeros(P0.shape[:2], jnp.int32), _utility_probs(dU), tie_eps)
    inf, zero = jnp.asarray(jnp.inf, F.dtype), jnp.asarray(0, jnp.int32)
    return _VICarry(P0, a0, v0, inf, zero, inf, zero)


def _vi_run(c: _VICarry, op, dU, tol, max_sweeps, stall, tie_eps) -> _VICarry:
    """Sweeps until the greedy values change by < tol (sup norm), n reaches max_sweeps or the
    change has made no new minimum for `stall` sweeps."""
    u = _utility_probs(dU)
    return jax.lax.while_loop(lambda c: _vi_running(c, tol, max_sweeps, stall),
                              lambda c: _vi_step(c, op, u, tie_eps), c)


def _vi_step(c: _VICarry, op, u, tie_eps) -> _VICarry:
    """One sweep of VI; `err` = sup-norm change of the greedy values, `best`/`since` track its
    smallest value so far."""
    V = jnp.take_along_axis(c.P, c.a[:, :, None, None], axis=2)[:, :, 0, :]
    P_new = _apply_probs(V, op)
    a_new, v_new = _greedy_sticky(P_new, c.a, u, tie_eps)
    err = jnp.max(jnp.abs(v_new - c.v))
    better = err < c.best
    return _VICarry(P_new, a_new, v_new, err, c.n + 1, jnp.minimum(err, c.best),
                    jnp.where(better, 0, c.since + 1))


@partial(jax.jit, static_argnames=("max_sweeps",))
def _iterate(F, op, dU, tol, max_sweeps, stall, tie_eps):
    """Sweeps from CDFs F until the greedy values max_a E f change by < tol in the sup norm,
    n reaches max_sweeps or the change stalls for `stall` sweeps (carried as probabilities
    inside; greedy ties by `tie_eps`, see `grid_value_iteration`). Returns (F, the greedy of
    the final F `[S, NC]`, sweeps, last value change)."""
    c = _vi_run(_vi_start(F, dU, tie_eps), op, dU, tol, max_sweeps, stall, tie_eps)
    return jnp.cumsum(c.P, -1), c.a, c.n, c.err


_OP_AXES = GridOperator(0, 0, 0, 0, None, None)


def batched_value_iteration(F0: jax.Array, ops: GridOperator, dU: jax.Array, *,
                            tol: float = 1e-6, max_sweeps: int = 1000,
                            stall_sweeps: int = STALL_SWEEPS, tie_eps: float = 0.0,
                            compact: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Discounted grid VI of B MDPs at once (`jax.vmap`), each with its own value-based stop.

    A vmapped loop computes every lane while any lane is running, so one loop over the whole
    batch sweeps every MDP as often as the slowest one needs. With `compact` (default) the batch
    is run in rounds: a round sweeps its MDPs together (each frozen once it has stopped) until at
    most half of the round's width is still running; the host then drops the stopped MDPs and
    pads the rest to the next power of two (so at most log2(B) + 1 widths are compiled), and the
    next round runs at that width. Each sweep then computes fewer than twice as many lanes as
    are still running, whatever the spread of the stopping times. `compact=False`: `_vi_run`
    vmapped over the whole batch, one loop to the end (plain vmap; the baseline of
    `experiments.benchmarks.distdp`). Both give each MDP the single-MDP solver's sweeps and, to
    float32 round-off (XLA vectorizes each batch width differently), its CDFs (tested).

    Args:
      F0: `[B, S, NC, A, K]` start CDFs. ops: `GridOperator` with `[B, ...]` leading axes on
        lo, w, kidx, wp (shared stocks, support). dU: `[NC, K]` greedy weights.
      tol, max_sweeps, stall_sweeps, tie_eps: each MDP stops when its greedy values change by
        < tol in the sup norm, after max_sweeps sweeps or when stalled; greedy ties as
        `grid_value_iteration`.

    Returns NumPy (F `[B, S, NC, A, K]`, sweeps `[B]`, last value change `[B]`); each MDP's
    result is that of `grid_value_iteration`'s loop (same carry, same stopping rule): converged
    where the change is < tol, stalled where it is not and sweeps < max_sweeps.
    """
    _check_stall(stall_sweeps, tie_eps)
    B = F0.shape[0]
    c = jax.vmap(lambda F: _vi_start(F, dU, tie_eps))(F0)
    if not compact:
        c = _batched_run_plain(c, ops, dU, tol, max_sweeps, stall_sweeps, tie_eps)
        return np.asarray(jnp.cumsum(c.P, -1)), np.asarray(c.n), np.asarray(c.err)
    out = jax.tree.map(np.array, c)  # writable host copies
    active = np.arange(B)
    take = lambda tree, idx: jax.tree.map(lambda x: x[idx], tree)  # noqa: E731
    while active.size:
        size = 1 << int(np.ceil(np.log2(active.size)))
        idx = np.concatenate([active, np.full(size - active.size, active[-1])])
        ops_i = ops._replace(**{k: getattr(ops, k)[idx] for k in ("lo", "w", "kidx", "wp")})
        live = jnp.asarray(np.arange(size) < active.size)  # padding lanes never run
        ci = _batched_run(jax.tree.map(jnp.asarray, take(out, idx)), ops_i, dU, tol,
                          max_sweeps, stall_sweeps, tie_eps, live, size // 2)
        ci = jax.tree.map(np.asarray, take(ci, np.arange(active.size)))
        if not np.all(ci.n > out.n[active]):  # every running MDP sweeps at least once a round
            raise RuntimeError("batched_value_iteration: a round made no progress")
        for field, x in zip(out._fields, ci, strict=True):
            getattr(out, field)[active] = x
        active = active[np.asarray(_vi_running(take(out, active), tol, max_sweeps,
                                               stall_sweeps))]
    return np.asarray(jnp.cumsum(jnp.asarray(out.P), -1)), out.n, out.err


@jax.jit
def _batched_run_plain(c, op, dU, tol, max_sweeps, stall, tie_eps):
    """`_vi_run` vmapped over B MDPs: runs until the last one stops."""
    return jax.vmap(lambda ci, oi: _vi_run(ci, oi, dU, tol, max_sweeps, stall, tie_eps),
                    in_axes=(0, _OP_AXES))(c, op)


@jax.jit
def _batched_run(c, op, dU, tol, max_sweeps, stall, tie_eps, live, keep):
    """B MDPs swept together (`_vi_step` vmapped; a lane is frozen once it has stopped or when
    `live [B]` is False) until at most `keep` lanes are still running. `max_sweeps`, `stall`,
    `tie_eps` and `keep` are traced: one compile per batch width."""
    u = _utility_probs(dU)
    step = jax.vmap(lambda ci, oi: _vi_step(ci, oi, u, tie_eps), in_axes=(0, _OP_AXES))

    def running(c):
        return live & _vi_running(c, tol, max_sweeps, stall)

    def body(c):
        r = running(c)
        new = step(c, op)
        return jax.tree.map(lambda a, b: jnp.where(r.reshape(r.shape + (1,) * (a.ndim - 1)),
                                                   a, b), new, c)

    return jax.lax.while_loop(lambda c: jnp.sum(running(c)) > keep, body, c)


@partial(jax.jit, static_argnames=("max_sweeps",))
def _evaluate(F, op, policy, tol, max_sweeps):
    def cond(c):
        _, err, n = c
        return (err >= tol) & (n < max_sweeps)

    def body(c):
        F, _, n = c
        F_new = _evaluate_sweep(F, op, policy)
        return F_new, jnp.max(jnp.abs(F_new - F)), n + 1

    F, err, n = jax.lax.while_loop(cond, body, (F, jnp.asarray(jnp.inf, F.dtype), 0))
    return F, n, err


def grid_policy_evaluation(mdp: MDP, objective: Objective, policy, stocks, support, *,
                           tol: float = 1e-6, max_sweeps: int = 1000, dtype=jnp.float32
                           ) -> GridSolution:
    """Distributional evaluation of a stationary stock policy on the grid (discounted).

    `policy [S, NC]` int (action at state s, stock c_j; e.g. another solver's greedy policy) is
    evaluated from Proj(delta_0) until the CDFs change by < tol; the result's
    `objective_value` is the objective of that policy's law from mu0 as in
    `grid_value_iteration` (cvar: the grid search over b = -c_j, each b with its own stock
    start), so policies of different solvers are compared by one evaluator.
    """
    if mdp.horizon > 0:
        raise ValueError("grid_policy_evaluation is for horizon 0 (a stationary policy)")
    op, F = _setup(mdp, objective, stocks, support, dtype)
    policy = jnp.asarray(policy, jnp.int32)
    if policy.shape != F.shape[:2]:
        raise ValueError(f"policy must be [S, NC] = {F.shape[:2]}, got {policy.shape}")
    F, n, res = _evaluate(F, op, policy, tol, max_sweeps)
    converged = bool(res < tol)
    if not converged:
        warnings.warn(f"grid_policy_evaluation did not converge: change {float(res):.3g} >= tol "
                      f"{tol:g} after max_sweeps={max_sweeps}", RuntimeWarning, stacklevel=2)
    return _finish(mdp, objective, op, F, policy, policy, int(n), converged, float(res))


def grid_policy_iteration(mdp: MDP, objective: Objective, stocks, support, *, tol: float = 1e-6,
                          max_sweeps: int = 1000, max_iterations: int = 100,
                          dtype=jnp.float32) -> GridSolution:
    """Distributional policy iteration on the stock grid (discounted, stationary greedy).

    Evaluates the current policy `[S, NC]` (distributional policy evaluation to `tol`), then
    improves it greedily (keeping the old action unless another is better by > 1e-7).
    """
    if mdp.horizon > 0:
        raise ValueError("grid_policy_iteration is for horizon 0; finite horizons use "
                         "grid_value_iteration (backward induction) or policy_iteration_exact")
    check_stationary(objective, mdp.gamma)
    op, F = _setup(mdp, objective, stocks, support, dtype)
    dU = utility_weights(objective.utility, op.stocks, op.support)
    S, A, _ = mdp.P.shape
    policy = jnp.zeros((S, op.stocks.shape[0]), jnp.int32)
    total, stable, res = 0, False, 0.0
    for _ in range(max_iterations):
        F, n, res = _evaluate(F, op, policy, tol, max_sweeps)
        total += int(n)
        q = jnp.einsum("sjak,jk->sja", F, dU)
        old = jnp.take_along_axis(q, policy[..., None], -1)[..., 0]
        new = jnp.where(q.max(-1) > old + 1e-7, tie_argmax(q), policy)
        if bool(jnp.all(new == policy)):
            stable = True
            break
        policy = new
    if not stable:
        warnings.warn(f"grid_policy_iteration did not converge: policy still changing after "
                      f"max_iterations={max_iterations}", RuntimeWarning, stacklevel=2)
    return _finish(mdp, objective, op, F, policy, policy, total, stable, float(res))
