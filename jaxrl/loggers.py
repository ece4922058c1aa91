"""Optional logging backends of the runtime, written on the host between chunks (off by default).

* `TensorBoardLogger`: event files under `<workdir>/tensorboard/` (tensorboardX). Per grid point
  and metric: the IQM over its seeds at every update (`<metric>/iqm/<grid point>`), and the 95%
  stratified-bootstrap CI band at the last update of each chunk (`.../ci_lo`, `.../ci_hi`); with
  `per_run`, every run's value too (`<metric>/run/<run index>`). On resume the writer purges
  events after the restored update, so the event files match an uninterrupted run's.
* `WandbLogger`: Weights & Biases (`mode="offline"` works without network; `wandb sync` uploads
  later), the same scalars keyed `<grid point>/<metric>/iqm`, one W&B run per workdir with an id
  derived from the workdir path (resumed, not duplicated, on a re-run).

Both have `start(step)`, `write(kind, steps, runs, metrics)` with `kind` "train" or "eval" and
`metrics[name]` `[runs, len(steps)]`, and `close()`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from jaxrl import stats


def _groups(runs: Sequence[Mapping[str, Any]]) -> dict[str, list[int]]:
    from jaxrl.experiment import grid_label

    out: dict[str, list[int]] = {}
    for i, r in enumerate(runs):
        out.setdefault(grid_label(r), []).append(i)
    return out


def _iqm(x: np.ndarray) -> float | None:
    x = x[np.isfinite(x)]
    return float(stats.iqm(x)) if x.size else None


def _ci(x: np.ndarray) -> tuple[float, float] | None:
    x = x[np.isfinite(x)]
    if x.size < 2:
        return None
    lo, hi = stats.bootstrap_ci(x, statistic="iqm", reps=500, seed=0)
    return float(lo), float(hi)


class TensorBoardLogger:
    """TensorBoard event files (needs `tensorboardX`: `pip install -e ".[logging]"`).

    Args:
      logdir: directory of the event files.
      per_run: also write every run's scalars.
    """

    def __init__(self, logdir: str, per_run: bool = False):
        try:
            import tensorboardX  # noqa: F401
        except ImportError:
            raise ValueError("config.tensorboard needs tensorboardX: pip install tensorboardX "
                             "(or the [logging] extra)") from None
        self.logdir, self.per_run, self.writer = logdir, per_run, None

    def start(self, step: int) -> None:
        from tensorboardX import SummaryWriter

        # The file name carries the start step: tensorboardX names files by the second and the
        # host only, so a resume within the same second would otherwise reopen (and truncate)
        # the first invocation's file.
        self.writer = SummaryWriter(self.logdir, purge_step=step + 1 if step else None,
                                    filename_suffix=f".from{step:012d}")

    def write(self, kind: str, steps: Sequence[int], runs: Sequence[Mapping[str, Any]],
              metrics: Mapping[str, np.ndarray]) -> None:
        prefix = "eval/" if kind == "eval" else ""
        for label, idx in _groups(runs).items():
            for name, v in metrics.items():
                v = np.asarray(v, np.float64)[idx]
                for j, step in enumerate(steps):
                    m = _iqm(v[:, j])
                    if m is not None:
                        self.writer.add_scalar(f"{prefix}{name}/iqm/{label}", m, step)
                ci = _ci(v[:, -1])
                if ci is not None:
                    self.writer.add_scalar(f"{prefix}{name}/ci_lo/{label}", ci[0], steps[-1])
                    self.writer.add_scalar(f"{prefix}{name}/ci_hi/{label}", ci[1], steps[-1])
                if self.per_run:
                    for r, i in enumerate(idx):
                        for j, step in enumerate(steps):
                            if np.isfinite(v[r, j]):
                                self.writer.add_scalar(f"{prefix}{name}/run/{i}", v[r, j], step)
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class WandbLogger:
    """Weights & Biases (needs `wandb`); `mode` is "offline" (no network) or "online".

    Args:
      workdir: the run's workdir (W&B files go to `<workdir>/wandb`).
      mode: "offline" or "online".
      config: the experiment config (stored with the W&B run).
      project: W&B project name.
    """

    def __init__(self, workdir: str, mode: str, config: Mapping[str, Any] | None = None,
                 project: str = "jaxrl"):
        if mode not in ("offline", "online"):
            raise ValueError(f"config.wandb must be '', 'offline' or 'online', got {mode!r}")
        try:
            import wandb  # noqa: F401
        except ImportError:
            raise ValueError("config.wandb needs wandb: pip install wandb") from None
        self.workdir, self.mode, self.config, self.project = workdir, mode, config, project
        self.run = None

    def start(self, step: int) -> None:
        import wandb

        ident = hashlib.sha1(os.path.abspath(self.workdir).encode()).hexdigest()[:12]
        self.run = wandb.init(project=self.project, dir=self.workdir, mode=self.mode, id=ident,
                              resume="allow", config=dict(self.config or {}),
                              name=os.path.basename(os.path.abspath(self.workdir)),
                              settings=wandb.Settings(silent=True))

    def write(self, kind: str, steps: Sequence[int], runs: Sequence[Mapping[str, Any]],
              metrics: Mapping[str, np.ndarray]) -> None:
        prefix = "eval/" if kind == "eval" else ""
        groups = _groups(runs)
        for j, step in enumerate(steps):
            row = {}
            for label, idx in groups.items():
                for name, v in metrics.items():
                    m = _iqm(np.asarray(v, np.float64)[idx, j])
                    if m is not None:
                        row[f"{prefix}{label}/{name}/iqm"] = m
            if row:
                self.run.log(row, step=int(step))

    def close(self) -> None:
        if self.run is not None:
            self.run.finish()
