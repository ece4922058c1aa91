"""PROPS study on CartPole-v1 (issue 20 item 9): n/m ratios, fixed target, small grid.

  python -m experiments.props_study --config=experiments/configs/props_study.py --workdir=DIR

Every program runs through `jaxrl.experiment.run` (resumable: re-running the same command
continues where it stopped) in DIR/<program>/; the programs are listed in
experiments/configs/props_study.py. Every PROPS program logs, at every target update, the
sampling error `KL(pi_D || pi_theta)` of its buffer (`sampling_error`) and of the on-policy data
re-simulated from its own last `b` targets (`ref_sampling_error`, the paper's reference,
`jaxrl.props.reference_rollouts`), both by the same converged estimator.

Per run (seed x grid point), averaged over the updates with a full buffer: `se`, `ref_se`;
per label: IQM [95% CI] of both, the ratio of the IQMs, and P(se < ref_se) with a 95% CI
(`stats.probability_of_improvement_ci` on the negated errors: the probability that a PROPS
run's error is below an independent on-policy reference run's); returns (mean over training,
final = last 10% of updates) and P(PROPS > PPO-Buffer) with CIs for the learning programs.
Writes DIR/summary.json, DIR/per_seed.csv (one row per run) and prints a Markdown table.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import time
from typing import Any

import ml_collections
import numpy as np
from absl import app, flags
from ml_collections import config_flags

from experiments import common
from jaxrl import experiment, props, stats

_CONFIG = config_flags.DEFINE_config_file(
    "config", "experiments/configs/props_study.py", "PROPS study config file.",
    lock_config=False, allow_override=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Results directory (resumed if it exists).",
                               allow_override=True)

GRID_FIELDS = ("props_lr", "props_target_kl", "props_kl_coef")
CSV_FIELDS = ("program", "label", "n_over_m", "lr", *GRID_FIELDS, "seed", "se", "ref_se",
              "mean_return", "final_return")


@dataclasses.dataclass(frozen=True)
class StudyProgram:
    """One compiled program: DIR/<name>/; `grid` is swept (`{}`: a single setting)."""

    name: str
    cfg: props.PROPSConfig
    grid: dict[str, tuple[float, ...]]
    n_over_m: int
    learning: bool  # the target learns (returns are compared with PPO-Buffer)


def programs(config: ml_collections.ConfigDict) -> list[StudyProgram]:
    """The study's programs in run order (see the config's docstring)."""
    base = props.as_config(config.algo.to_dict())
    n = base.num_steps

    def at(ratio: int, **kw: Any) -> props.PROPSConfig:
        return dataclasses.replace(base, props_num_steps=n // ratio, **kw)

    out = [StudyProgram("ppo_buffer", at(1, behavior="none"), {}, 0, True),
           StudyProgram("fixed_target", at(int(config.fixed_target_ratio), lr=0.0), {},
                        int(config.fixed_target_ratio), False)]
    out += [StudyProgram(f"ratio_{k}", at(k), {}, k, True) for k in config.ratios]
    grid = {k: tuple(float(v) for v in config.grid[k]) for k in GRID_FIELDS if k in config.grid}
    out.append(StudyProgram("grid", at(int(config.grid_ratio)), grid, int(config.grid_ratio),
                            True))
    fgrid = {k: tuple(float(v) for v in config.fixed_grid[k]) for k in GRID_FIELDS
             if k in config.fixed_grid}
    if fgrid:
        out.append(StudyProgram("fixed_grid", at(int(config.fixed_target_ratio), lr=0.0), fgrid,
                                int(config.fixed_target_ratio), False))
    return out


def validate(config: ml_collections.ConfigDict) -> tuple[list[int], list[StudyProgram]]:
    """All checks before anything compiles; one-line ValueErrors naming the field."""
    seeds = common.seeds_from_config(config)
    common.validate_runtime(config)
    for g in ("grid", "fixed_grid"):
        unknown = sorted(set(config[g]) - set(GRID_FIELDS))
        if unknown:
            raise ValueError(f"config.{g} has unknown field(s) {unknown}; valid: {GRID_FIELDS}")
    n = int(config.algo.num_steps)
    for field in ("ratios", "fixed_target_ratio", "grid_ratio"):
        vals = config[field] if field == "ratios" else (config[field],)
        if not vals or any(int(k) != k or int(k) < 1 or n % int(k) for k in vals):
            raise ValueError(f"config.{field} must be positive integers dividing "
                             f"config.algo.num_steps={n}, got {config[field]!r}")
    progs = programs(config)
    for p in progs:
        try:
            c = props.validate_config(p.cfg, p.grid, prefix="config.algo",
                                      sweep_prefix=f"config.{'fixed_grid' if p.name == 'fixed_grid' else 'grid'}")
        except ValueError as e:
            raise ValueError(f"{e} ({p.name} program)") from None
        if c.se_steps < 1 or not c.se_reference:
            raise ValueError("config.algo.se_steps must be >= 1 and config.algo.se_reference "
                             "True (the sampling errors are the measured quantities)")
        if c.total_timesteps // (c.num_envs * c.num_steps) <= c.buffer_batches:
            raise ValueError("config.algo.total_timesteps must give more target updates than "
                             f"buffer_batches={c.buffer_batches}")
    return seeds, progs


def per_run(p: StudyProgram, result: experiment.Result) -> list[dict[str, Any]]:
    """One row per run: the errors averaged over the updates with a full buffer, returns."""
    b = p.cfg.buffer_batches
    m = result.metrics
    T = m["return"].shape[1]
    last = slice(T - max(1, T // 10), None)
    rows = []
    for i, r in enumerate(result.runs):
        hp = {k: float(r.get(k, getattr(p.cfg, k))) for k in GRID_FIELDS}
        rows.append({"program": p.name, "label": label(p, hp), "n_over_m": p.n_over_m,
                     "lr": float(p.cfg.lr), **hp, "seed": int(r["seed"]),
                     "se": float(np.nanmean(m["sampling_error"][i, b - 1:])),
                     "ref_se": float(np.nanmean(m["ref_sampling_error"][i, b - 1:])),
                     "mean_return": float(np.nanmean(m["return"][i])),
                     "final_return": float(np.nanmean(m["return"][i, last]))})
    return rows


def label(p: StudyProgram, hp: dict[str, float]) -> str:
    """`program` alone, or with the values of the three behavior fields for a grid program."""
    if not p.grid:
        return p.name
    return f"{p.name} " + " ".join(f"{k}={hp[k]:g}" for k in GRID_FIELDS)


def _iqm_ci(x: np.ndarray) -> list[float]:
    lo, hi = stats.bootstrap_ci(x, "iqm")
    return [float(stats.iqm(x)), float(lo), float(hi)]


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per label: IQM [CI] of se, ref_se and returns, the IQM ratio, P(se < ref) [CI] and,
    for learning programs, P(PROPS > PPO-Buffer) [CI] on mean and final return."""
    labels = list(dict.fromkeys(r["label"] for r in rows))
    col = {lab: {k: np.asarray([r[k] for r in rows if r["label"] == lab], float)
                 for k in ("se", "ref_se", "mean_return", "final_return")} for lab in labels}
    out: dict[str, Any] = {}
    buf = col.get("ppo_buffer")
    for lab in labels:
        c = col[lab]
        s = {k: _iqm_ci(c[k]) for k in c}
        s["se_ratio_iqm"] = float(stats.iqm(c["se"]) / stats.iqm(c["ref_se"]))
        s["p_se_below_ref"] = list(stats.probability_of_improvement_ci(-c["se"], -c["ref_se"]))
        s["frac_seeds_se_below_own_ref"] = float(np.mean(c["se"] < c["ref_se"]))
        lr = next(r["lr"] for r in rows if r["label"] == lab)
        if buf is not None and lab != "ppo_buffer" and lr > 0:
            for k in ("mean_return", "final_return"):
                s[f"p_{k}_above_ppo_buffer"] = list(
                    stats.probability_of_improvement_ci(c[k], buf[k]))
        out[lab] = s
    return out


def table(summary: dict[str, Any]) -> str:
    """Markdown table of a summary."""

    def f(v: list[float], p: int = 3) -> str:
        return f"{v[0]:.{p}g} [{v[1]:.{p}g}, {v[2]:.{p}g}]"

    lines = ["| run | SE (PROPS buffer) | SE (on-policy reference) | ratio | P(SE < ref) | "
             "mean return | P(return > PPO-Buffer), mean / final |",
             "|---|---|---|---|---|---|---|"]
    for lab, s in summary.items():
        pr = "-"
        if "p_mean_return_above_ppo_buffer" in s:
            pr = (f"{f(s['p_mean_return_above_ppo_buffer'], 2)} / "
                  f"{f(s['p_final_return_above_ppo_buffer'], 2)}")
        lines.append(f"| {lab} | {f(s['se'])} | {f(s['ref_se'])} | {s['se_ratio_iqm']:.2f} | "
                     f"{f(s['p_se_below_ref'], 2)} | {f(s['mean_return'])} | {pr} |")
    return "\n".join(lines)


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Validate, run (or resume) every program, write summary.json and per_seed.csv."""
    seeds, progs = validate(config)
    os.makedirs(workdir, exist_ok=True)
    rows: list[dict[str, Any]] = []
    timings: dict[str, float] = {}
    for p in progs:
        t0 = time.time()
        stored = {"experiment": "props_study", "program": p.name,
                  "algo": dataclasses.asdict(p.cfg), "grid": p.grid}
        result = experiment.run(props.make_props(p.cfg), seeds, p.grid or None,
                                workdir=os.path.join(workdir, p.name), config=stored,
                                progress_metric="return", **common.runtime_kwargs(config))
        timings[p.name] = round(time.time() - t0, 1)
        rows += per_run(p, result)
        with open(os.path.join(workdir, "per_seed.csv"), "w", newline="") as fh:
            w = csv.DictWriter(fh, CSV_FIELDS)
            w.writeheader()
            w.writerows(rows)
        print(f"[props_study] {p.name}: {timings[p.name]} s", flush=True)
    summary = {"num_seeds": len(seeds), "seconds_this_invocation": timings,
               "env_steps_per_run": int(result.env_steps[-1]), "labels": summarize(rows),
               "config": config.to_dict()}
    experiment.finish(workdir, None, summary)
    return summary


def main(argv: list[str]) -> None:
    del argv
    summary = common.guarded_main(lambda: run(_CONFIG.value, _WORKDIR.value))
    print(table(summary["labels"]))
    print(json.dumps(summary["seconds_this_invocation"]))


if __name__ == "__main__":
    flags.mark_flags_as_required(["workdir"])
    app.run(main)

