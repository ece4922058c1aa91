"""Resumable sweeps that write a workdir: the host loop of every experiment script.

`run_sweep(algo, config, workdir)` runs the sweep chunk by chunk (see `jaxrl.sweep`), streams
`metrics.csv` after every chunk, checkpoints the whole swept state every `checkpoint_every` chunks
and at the end, and on a re-run with the same workdir resumes from the newest complete checkpoint.
The resumed run is identical to an uninterrupted one: the state (keys included) is restored
exactly and chunks are deterministic; metric rows written after that checkpoint are dropped
before resuming, so none is duplicated or lost.

Multi-process (pods, or 2 processes on localhost):
`jaxrl.distributed.maybe_initialize_distributed()` runs first (the `experiments` package calls
it on import);
the run axis is sharded over all devices of all processes, every process takes part in
checkpointing (orbax writes each process's shards) and restores; only process 0 writes
`config.json`, `metrics.csv`, `summary.json` and plots.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import ml_collections
import numpy as np

from jaxrl import sweep
from jaxrl.checkpoint import Checkpointer
from jaxrl.distributed import maybe_initialize_distributed  # noqa: F401 (re-export)
from jaxrl.metrics import MetricWriter, read_metrics, write_json

# Config fields that may change between a run and its resumption without changing the numbers.
RESUME_INSENSITIVE = frozenset({"progress", "checkpoint_every", "keep_checkpoints", "force_resume",
                                "halt_on_nan", "plot"})


class ConfigMismatchError(ValueError):
    """The workdir holds a run with a different config."""


def config_to_dict(config: ml_collections.ConfigDict | Mapping[str, Any]) -> dict[str, Any]:
    """A JSON-normalized plain dict (tuples become lists)."""
    d = config.to_dict() if isinstance(config, ml_collections.ConfigDict) else dict(config)
    return json.loads(json.dumps(d, default=lambda x: np.asarray(x).tolist()))


def diff_configs(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Dotted names of fields that differ (resume-insensitive fields ignored)."""
    out = []
    for k in sorted(set(old) | set(new)):
        if not prefix and k in RESUME_INSENSITIVE:
            continue
        a, b = old.get(k, "<missing>"), new.get(k, "<missing>")
        if isinstance(a, dict) and isinstance(b, dict):
            out += diff_configs(a, b, prefix + k + ".")
        elif a != b:
            out.append(f"{prefix}{k}: {a!r} -> {b!r}")
    return out


def run_sweep(
    algo: sweep.Algorithm,
    config: ml_collections.ConfigDict | Mapping[str, Any],
    workdir: str,
    *,
    seeds: Sequence[int],
    grid: Mapping[str, Sequence[float]] | None = None,
    chunk_size: int | None = None,
    checkpoint_every: int = 5,
    keep_checkpoints: int = 3,
    progress: bool = True,
    halt_on_nan: bool = False,
    force_resume: bool = False,
    progress_metric: str | None = None,
    stop_after_chunks: int | None = None,
) -> dict[str, Any]:
    """Run (or resume) a sweep writing `workdir`; returns `read_metrics` of the full run.

    Args:
      algo, seeds, grid, chunk_size, progress_metric: as in `sweep.run`.
      config: stored as `config.json` and compared on resume.
      workdir: results directory.
      checkpoint_every: checkpoint every this many chunks (and always at the end).
      keep_checkpoints: keep the last N complete checkpoints.
      halt_on_nan: raise `sweep.NonFiniteError` (after checkpointing) when a run fails.
      force_resume: resume even if the stored config differs (the differences are printed).
      stop_after_chunks: stop (as if interrupted) after this many chunks of this process; tests.

    Raises:
      ConfigMismatchError: the workdir's config differs (names the fields) and not force_resume.
    """
    if checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be >= 1, got {checkpoint_every}")
    is_main = jax.process_index() == 0
    os.makedirs(workdir, exist_ok=True)
    cfg = config_to_dict(config)
    cfg_path = os.path.join(workdir, "config.json")
    ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), keep_checkpoints)

    runs = sweep.expand_runs(seeds, grid)
    if chunk_size is None:
        chunk_size = max(1, algo.num_updates // 20)
    runner = sweep.SweepRunner(algo, runs, chunk_size)

    restored = ckpt.restore_latest(runner.abstract_state()) if ckpt.steps() else None
    if restored is not None:
        step, ss, meta = restored
        diffs = diff_configs(meta["config"], cfg)
        if diffs and not force_resume:
            raise ConfigMismatchError(
                f"workdir {workdir} holds a run with a different config ({'; '.join(diffs)}); "
                "use a new --workdir, or force_resume to continue anyway"
            )
        if diffs and is_main:
            print(f"[jaxrl] force_resume despite config differences: {'; '.join(diffs)}")
    else:
        step, ss = 0, runner.init()
    if is_main:
        write_json(cfg_path, cfg)

    # Metric names: trace once abstractly (no compile) to know the columns.
    _, ms_shape = jax.eval_shape(runner.chunk_fn, runner.abstract_state())
    writer = MetricWriter(os.path.join(workdir, "metrics.csv"), runs, sorted(ms_shape),
                          algo.env_steps_per_update)
    if is_main:
        writer.truncate_after(step)

    chunks = 0
    with sweep.ProgressBar(algo, runner.num_runs, progress, progress_metric, step) as bar:
        while step < algo.num_updates:
            ss, ms = runner.chunk(ss)
            take = min(runner.chunk_size, algo.num_updates - step)
            ms = {k: v[:, :take] for k, v in ms.items()}
            intact = (f"the last complete checkpoint in {ckpt.directory} is intact"
                      if ckpt.steps() else "")
            if is_main:
                writer.append(step, ms, intact)
            step += take
            chunks += 1
            bar.update(take, ms)
            done = step >= algo.num_updates
            failed = np.any(np.asarray(sweep.to_host(ss.failed_at)) >= 0)
            if done or chunks % checkpoint_every == 0 or (halt_on_nan and failed):
                ckpt.save(step, ss, cfg)
            if halt_on_nan:
                sweep.check_halt(ss)
            if stop_after_chunks is not None and chunks >= stop_after_chunks and not done:
                return {"interrupted_at": step}
    return read_metrics(writer.path)


def summarize(data: Mapping[str, Any], metric: str = "return", last_frac: float = 0.1
              ) -> dict[str, Any]:
    """Final figures per run and aggregated per grid point (mean, IQM, 95% bootstrap CI).

    The final value of a run is the mean of `metric` over the last `last_frac` of its updates
    (at least one); failed runs (NaN) are counted and left out of the aggregates.
    """
    from jaxrl import stats

    y = np.asarray(data[metric])
    k = max(1, int(round(last_frac * y.shape[1])))
    with np.errstate(all="ignore"):
        final = np.nanmean(y[:, -k:], axis=1) if y.size else np.zeros(0)
    failed = np.asarray(data.get("failed", np.zeros_like(y)))
    run_failed = np.nanmax(np.nan_to_num(failed, nan=1.0), axis=1) > 0 if y.size else []
    runs = data["runs"]
    groups: dict[tuple, list[int]] = {}
    for i, r in enumerate(runs):
        key = tuple((h, v) for h, v in sorted(r.items()) if h != "seed")
        groups.setdefault(key, []).append(i)
    agg = []
    for key, idx in groups.items():
        vals = np.asarray([final[i] for i in idx if not run_failed[i]])
        entry = {**dict(key), "num_runs": len(idx), "num_failed": int(sum(run_failed[i]
                                                                           for i in idx))}
        if vals.size:
            lo, hi = stats.bootstrap_ci(vals, statistic="iqm", seed=0)
            entry |= {"mean": float(vals.mean()), "iqm": float(stats.iqm(vals)),
                      "iqm_ci95": [float(lo), float(hi)], "min": float(vals.min()),
                      "max": float(vals.max())}
        agg.append(entry)
    return {
        "metric": metric,
        "final_window_updates": k,
        "per_run": [{**r, f"final_{metric}": float(final[i]), "failed": bool(run_failed[i])}
                    for i, r in enumerate(runs)],
        "aggregate": agg,
        "num_failed": int(np.sum(run_failed)),
    }
