"""What every experiment script shares: seeds and grids from configs, the runtime's options, the
one-line error convention of `main`.

A script holds configs, orchestration and report text only; the loop, the files, the summaries
and the plots are `jaxrl.experiment`'s.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import ml_collections
import numpy as np

from jaxrl import experiment
from jaxrl.checkpoint import CheckpointError
from jaxrl.metrics import DiskFullError

# Fields every experiment config has (see `add_runtime_fields`).
RUNTIME_FIELDS = ("chunk_size", "checkpoint_every", "keep_checkpoints", "halt_on_nan",
                  "force_resume", "progress", "lane_width", "tensorboard", "wandb", "log_per_run")


def add_runtime_fields(c: ml_collections.ConfigDict, checkpoint_every: int = 5) -> None:
    """The runtime's options, in one place for every config file."""
    c.chunk_size = 0  # updates per jitted chunk; 0 = about 20 chunks per run
    c.checkpoint_every = checkpoint_every  # chunks between checkpoints
    c.keep_checkpoints = 3
    c.halt_on_nan = False
    c.force_resume = False
    c.progress = True
    c.lane_width = -1  # runs per lane group; -1 = the backend's default, 0 = plain vmap
    c.tensorboard = False  # TensorBoard event files in <workdir>/tensorboard (tensorboardX)
    c.wandb = ""  # "offline" / "online": Weights & Biases logging; "" = off
    c.log_per_run = False  # the logging backends also get every run's scalars


def validate_runtime(c: ml_collections.ConfigDict) -> None:
    """One-line ValueErrors naming the runtime field."""
    if int(c.chunk_size) < 0:
        raise ValueError(f"config.chunk_size must be >= 0, got {c.chunk_size!r}")
    if int(c.checkpoint_every) < 1:
        raise ValueError(f"config.checkpoint_every must be >= 1, got {c.checkpoint_every!r}")
    if int(c.keep_checkpoints) < 1:
        raise ValueError(f"config.keep_checkpoints must be >= 1, got {c.keep_checkpoints!r}")
    if str(c.get("wandb", "") or "") not in ("", "offline", "online"):
        raise ValueError(f"config.wandb must be '', 'offline' or 'online', got {c.wandb!r}")
    if int(c.get("lane_width", -1)) < -1:
        raise ValueError(f"config.lane_width must be -1 (auto), 0 or positive, got "
                         f"{c.lane_width!r}")


def runtime_kwargs(c: ml_collections.ConfigDict) -> dict[str, Any]:
    """Keyword arguments of `experiment.run` from the runtime fields of a config."""
    lw = int(c.get("lane_width", -1))
    return dict(chunk_size=int(c.chunk_size) or None, checkpoint_every=int(c.checkpoint_every),
                keep_checkpoints=int(c.keep_checkpoints), halt_on_nan=bool(c.halt_on_nan),
                force_resume=bool(c.force_resume), progress=bool(c.progress),
                lane_width="auto" if lw < 0 else lw, tensorboard=bool(c.get("tensorboard", False)),
                wandb=str(c.get("wandb", "") or ""), log_per_run=bool(c.get("log_per_run", False)))


def seeds_from_config(config: ml_collections.ConfigDict) -> list[int]:
    """`range(seed, seed + num_seeds)`, validated (one-line errors naming the field)."""
    if int(config.seed) < 0:
        raise ValueError(f"config.seed must be >= 0, got {config.seed!r}")
    if int(config.num_seeds) < 1:
        raise ValueError(f"config.num_seeds must be >= 1, got {config.num_seeds!r}")
    return list(range(int(config.seed), int(config.seed) + int(config.num_seeds)))


def grid_from_config(config: ml_collections.ConfigDict) -> dict[str, tuple[float, ...]]:
    """The swept values: every `config.sweep.<name>` that is set (a tuple or a scalar)."""
    grid = {}
    for name, values in (config.get("sweep") or {}).items():
        if values is None:
            continue
        vals = tuple(values) if isinstance(values, tuple | list) else (values,)
        if not vals:
            raise ValueError(f"config.sweep.{name} is empty")
        for v in vals:
            if not isinstance(v, int | float) or not np.isfinite(v):
                raise ValueError(f"config.sweep.{name} must hold finite numbers, got {values!r}")
        grid[name] = tuple(float(v) for v in vals)
    return grid


grid_label = experiment.grid_label


def run_app(main: Callable[[list[str]], Any], required: tuple[str, ...] = ("workdir",)) -> None:
    """`absl.app.run(main)`, with a bad command line (an unknown `--config.x` field, a value of
    the wrong type, a missing required flag) reported as one line `error: ...`, exit 2."""
    from absl import app, flags

    for name in required:
        flags.mark_flag_as_required(name)

    def parse(argv: list[str]) -> list[str]:
        try:
            return flags.FLAGS(argv)
        except flags.Error as e:
            print(f"error: {str(e).splitlines()[0]}", file=sys.stderr)
        except (AttributeError, KeyError, TypeError, ValueError) as e:  # config overrides
            bad = [a for a in argv[1:] if a.startswith("--config.")]
            print(f"error: bad --config override ({type(e).__name__}: {e}); given: "
                  f"{' '.join(bad)}", file=sys.stderr)
        sys.exit(2)

    app.run(main, flags_parser=parse)


def guarded_main(fn: Callable[[], Any]) -> Any:
    """Run a script's body; a user error becomes one line `error: ...` with exit status 2,
    a signal-stopped run (checkpoint written) one line with `experiment.PREEMPTED_EXIT`."""
    try:
        return fn()
    except experiment.Preempted as e:
        print(f"[jaxrl] {e}", file=sys.stderr)
        sys.exit(experiment.PREEMPTED_EXIT)
    except (ValueError, experiment.WorkdirLockedError, CheckpointError, DiskFullError,
            FileNotFoundError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"error: {msg}", file=sys.stderr)
        sys.exit(2)
