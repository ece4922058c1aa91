"""Metric files of a workdir: `metrics.csv` (one row per run and update) and `summary.json`.

Writes are appended per chunk and flushed to disk (fsync), so an interrupted sweep loses at most
the chunk in flight; on resume, rows after the restored checkpoint are dropped first, so nothing is
duplicated. Running out of disk raises `DiskFullError` with a message saying what is intact.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np


class DiskFullError(OSError):
    """No space left while writing metrics or checkpoints."""


@contextlib.contextmanager
def disk_errors(what: str, intact: str = "") -> Iterator[None]:
    """Turn ENOSPC/EDQUOT into a `DiskFullError` naming `what` failed and what is intact."""
    try:
        yield
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT) and not isinstance(e, DiskFullError):
            msg = f"out of disk space while writing {what}"
            if intact:
                msg += f"; {intact}"
            msg += ". Free space and re-run the same command to resume."
            raise DiskFullError(e.errno, msg) from e
        raise


def write_json(path: str, obj: Any) -> None:
    """Write JSON atomically (temp file + rename)."""
    tmp = path + ".tmp"
    with disk_errors(path):
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2, sort_keys=True, default=_jsonable)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)


def _jsonable(x: Any) -> Any:
    if isinstance(x, np.ndarray | np.generic):
        return x.tolist()
    if hasattr(x, "tolist"):
        return np.asarray(x).tolist()
    raise TypeError(f"not JSON serializable: {type(x)}")


class MetricWriter:
    """Appends rows `run, seed, <swept hparams>, step, env_steps, <metrics>` to `metrics.csv`.

    Args:
      path: the CSV path.
      runs: run descriptions (`seed` and swept values), as from `sweep.expand_runs`.
      metric_names: metric columns (fixed at creation).
      env_steps_per_update: for the `env_steps` column.
    """

    def __init__(self, path: str, runs: Sequence[Mapping[str, Any]], metric_names: Sequence[str],
                 env_steps_per_update: int = 0):
        self.path = path
        self.runs = list(runs)
        self.hp_names = sorted(k for k in self.runs[0] if k != "seed")
        self.metric_names = list(metric_names)
        self.env_steps = env_steps_per_update
        self.columns = ["run", "seed", *self.hp_names, "step", "env_steps", *self.metric_names]

    def truncate_after(self, step: int) -> None:
        """Keep the header and rows with `step <= step` (used when resuming); create if absent."""
        rows = []
        if os.path.exists(self.path):
            with open(self.path, newline="") as f:
                reader = csv.reader(f)
                header = next(reader, None)
                if header is not None and header != self.columns:
                    raise ValueError(
                        f"{self.path} has columns {header}, expected {self.columns}; "
                        "use a fresh workdir"
                    )
                si = self.columns.index("step")
                rows = [r for r in reader if r and int(r[si]) <= step]
        tmp = self.path + ".tmp"
        with disk_errors(self.path), open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(self.columns)
            w.writerows(rows)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def append(self, first_step: int, metrics: Mapping[str, np.ndarray], intact: str = "") -> None:
        """Append a chunk: `metrics[name]` is `[runs, chunk]`; steps are `first_step + 1 + j`."""
        n_runs, chunk = next(iter(metrics.values())).shape
        lines = []
        for j in range(chunk):
            step = first_step + 1 + j
            for i in range(n_runs):
                r = self.runs[i]
                row = [i, r["seed"], *(r[h] for h in self.hp_names), step, step * self.env_steps]
                row += [_fmt(metrics[m][i, j]) if m in metrics else "" for m in self.metric_names]
                lines.append(row)
        with disk_errors(self.path, intact), open(self.path, "a", newline="") as f:
            csv.writer(f).writerows(lines)
            f.flush()
            os.fsync(f.fileno())


def _fmt(x: Any) -> str:
    return repr(float(x))


def read_metrics(path: str) -> dict[str, Any]:
    """Read `metrics.csv` back into arrays.

    Returns:
      `{"runs": [run dicts], "steps": [T], "env_steps": [T], name: [runs, T]}` with NaN where a
      row is missing (e.g. a run that failed).
    """
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        cols = reader.fieldnames or []
    if not rows:
        return {"runs": [], "steps": np.zeros(0), "env_steps": np.zeros(0)}
    i_step = cols.index("step")
    hp_names = cols[2:i_step]
    metric_names = cols[i_step + 2:]
    run_ids = sorted({int(r["run"]) for r in rows})
    steps = sorted({int(r["step"]) for r in rows})
    pos = {s: k for k, s in enumerate(steps)}
    runs = {}
    out = {m: np.full((len(run_ids), len(steps)), np.nan) for m in metric_names}
    env_steps = np.zeros(len(steps))
    for r in rows:
        i, k = int(r["run"]), pos[int(r["step"])]
        runs[i] = {"seed": int(r["seed"]), **{h: float(r[h]) for h in hp_names}}
        env_steps[k] = float(r["env_steps"])
        for m in metric_names:
            if r[m] != "":
                out[m][run_ids.index(i), k] = float(r[m])
    return {"runs": [runs[i] for i in run_ids], "steps": np.asarray(steps),
            "env_steps": env_steps, **out}
