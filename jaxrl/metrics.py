"""Metric files of a workdir: `metrics.csv` (one row per run and update) and `summary.json`.

Writes are appended per chunk as one block and flushed to disk (fsync), so an interrupted sweep
loses at most the chunk in flight; on resume, a torn tail and rows after the restored checkpoint
are dropped first, so nothing is duplicated. Running out of disk raises `DiskFullError` with a
message saying what is intact. JSON is strict: NaN/inf are written as null.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
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


def fsync_dir(path: str) -> None:
    """fsync a directory so a rename inside it is durable (no-op where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def json_safe(obj: Any) -> Any:
    """`obj` with NumPy values made plain and every NaN/inf float replaced by None (JSON null)."""
    if isinstance(obj, Mapping):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if hasattr(obj, "tolist") and not isinstance(obj, str | bytes):
        return json_safe(np.asarray(obj).tolist())
    return obj


def write_json(path: str, obj: Any) -> None:
    """Write strict JSON atomically (temp file + rename); NaN/inf become null."""
    tmp = path + ".tmp"
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with disk_errors(path):
        text = json.dumps(json_safe(obj), indent=2, sort_keys=True, allow_nan=False)
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)


class MetricWriter:
    """Appends rows `run, seed, <swept hparams>, step, env_steps, <metrics>` to a CSV file.

    Each chunk is ONE `write` of complete lines followed by fsync, so an interrupted write can
    only leave a torn tail, which `truncate_after` removes on resume.

    Args:
      path: the CSV path (`metrics.csv`, or `eval.csv` for evaluations).
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
        self._keys = [f"{i},{r['seed']}" + "".join(f",{_fmt(r[h])}" for h in self.hp_names)
                      for i, r in enumerate(self.runs)]

    def truncate_after(self, step: int) -> None:
        """Keep the header and the complete, well-formed rows with `step <= step`; create the file
        if absent. Reading stops at the first torn or malformed row (a partial write)."""
        rows: list[str] = []
        if os.path.exists(self.path):
            with open(self.path, newline="") as f:
                text = f.read()
            lines = text.split("\n")
            complete = lines[:-1]  # the part after the last newline is torn (or empty)
            if complete and complete[0].split(",") != self.columns:
                raise ValueError(
                    f"{self.path} has columns {complete[0].split(',')}, expected "
                    f"{self.columns}; use a fresh workdir"
                )
            si = self.columns.index("step")
            for line in complete[1:]:
                fields = line.split(",")
                if len(fields) != len(self.columns) or not _well_formed(fields):
                    break
                if int(fields[si]) <= step:
                    rows.append(line)
        tmp = self.path + ".tmp"
        with disk_errors(self.path), open(tmp, "w", newline="") as f:
            f.write("\n".join([",".join(self.columns), *rows]) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def append(self, steps: Sequence[int], metrics: Mapping[str, np.ndarray],
               intact: str = "") -> None:
        """Append one block: `metrics[name]` is `[runs, len(steps)]`, column j at update
        `steps[j]` (1-based update counts)."""
        # Cells as `repr(float(x))` (the format `_fmt` gives), formatted per column in C:
        # `tolist` then `map(repr)` instead of one numpy scalar per cell (4096 runs: ~10x faster).
        n = len(self._keys)
        cells = []
        for m in self.metric_names:
            if m in metrics:
                a = np.asarray(metrics[m], dtype=np.float64).reshape(n, len(steps))
                cells.append([list(map(repr, col)) for col in a.T.tolist()])  # [steps][runs]
            else:
                cells.append([[""] * n] * len(steps))
        lines = []
        for j, step in enumerate(steps):
            mid = f",{int(step)},{int(step) * self.env_steps}"
            if not cells:
                lines.extend(key + mid + "\n" for key in self._keys)
                continue
            row_vals = zip(*(c[j] for c in cells), strict=True)
            for key, vals in zip(self._keys, row_vals, strict=True):
                lines.append(key + mid + "," + ",".join(vals) + "\n")
        data = "".join(lines).encode()
        with disk_errors(self.path, intact):
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
            try:
                view = memoryview(data)
                while view:
                    n = os.write(fd, view)
                    view = view[n:]
                os.fsync(fd)
            finally:
                os.close(fd)


class BackgroundWrites:
    """Runs file writes (`MetricWriter.append` blocks) on one background thread, in order, at
    most one in flight, so formatting a chunk's rows overlaps the next chunk's compute.

    `submit` first waits for the previous write, so host memory holds at most one pending
    block and the rows reach the file in submission order. `wait` blocks until the pending write
    is on disk and re-raises its error (e.g. `DiskFullError`) in the caller's thread; the
    runtime calls it before every checkpoint (a checkpoint never runs ahead of its rows), before
    reading the files back and when leaving the loop, whatever the reason."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="jaxrl-writes")
        self._pending: Future | None = None

    def submit(self, fn: Callable[..., None], *args: Any) -> None:
        self.wait()
        self._pending = self._pool.submit(fn, *args)

    def wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self._pool.shutdown(wait=True)


def _well_formed(fields: list[str]) -> bool:
    try:
        int(fields[0])
        for x in fields[1:]:
            if x != "":
                float(x)
    except ValueError:
        return False
    return True


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
