"""PROPS vs PPO-Buffer vs PPO: return and sampling error over training, and a fixed target.

  python -m experiments.props --config=experiments/configs/props.py[:quick] --workdir=DIR

Per environment one compiled program per method runs all seeds (lanes of vmapped runs, through
`jaxrl.experiment.run`): PROPS (`behavior="props"`, b batches), PPO-Buffer (`behavior="none"`,
b batches; identical to PROPS with behavior lr 0, tested) and PPO (`behavior="none"`, b = 1). On
the fixed-target environment a fourth program runs target lr 0 with the grid
`props_lr in {0, props_lr}` (on-policy sampling vs PROPS for the same fixed policy,
`fixed_target_timesteps` steps). With `share_program` (compile-bound tiny runs) PPO-Buffer and
the fixed-target pair are instead grid points of the PROPS program (`props_lr = 0`, `lr = 0`).
Sampling error `KL(pi_D || pi_theta)` of the buffer each target update uses is measured at every
update (converged MLE of the policy head on theta's features, `jaxrl.props.policy_sampling_error`),
and so is the paper's on-policy reference (`ref_sampling_error`: on-policy data re-simulated
from the program's own last b targets); claim 1 is reported against both PPO-Buffer and it.

Writes, per program, DIR/<env>/<method>/ with the runtime's files (config.json, metrics.csv,
checkpoints/, summary.json); re-running the same command resumes every program where it stopped.
At the top: DIR/config.json, DIR/summary.json (per environment and method: final return, mean
return over training, sampling error; the claims; per-program wall times of this invocation) and
DIR/plots/{return,sampling_error}_<env>.png, DIR/plots/fixed_target_<env>.png.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Any

import jax
import matplotlib.pyplot as plt
import ml_collections
import numpy as np
from absl import app, flags
from ml_collections import config_flags

from experiments import common
from jaxrl import envs, experiment, plotting, props, stats
from jaxrl.metrics import write_json

_CONFIG = config_flags.DEFINE_config_file(
    "config",
    "experiments/configs/props.py",
    "PROPS config file.",
    lock_config=False,
    allow_override=True,
)
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Results directory (resumed if it exists).", allow_override=True
)

ALGOS = ("PPO", "PPO-Buffer", "PROPS")
FIXED = ("on-policy (fixed target)", "PROPS (fixed target)")


@dataclasses.dataclass(frozen=True)
class Program:
    """One compiled program: `WORKDIR/<env_name>/<method>/`.

    `labels` maps each curve it holds to its grid point (`{}`: all runs of the program)."""

    env_name: str
    method: str
    cfg: props.PROPSConfig
    grid: dict[str, tuple[float, ...]]
    labels: dict[str, dict[str, float]]

    def workdir(self, root: str) -> str:
        return os.path.join(root, self.env_name, self.method)

    def stored_config(self) -> dict[str, Any]:
        """What config.json holds (and a resume compares): everything that sets the numbers."""
        return {"experiment": "props", "env_name": self.env_name, "method": self.method,
                "algo": dataclasses.asdict(self.cfg), "labels": self.labels}


def env_config(config: ml_collections.ConfigDict, env_name: str) -> props.PROPSConfig:
    """The algorithm config for one environment: `config.algo` + its override section
    (`config.<lower-case name before the first '-'>`)."""
    d = config.algo.to_dict()
    section = env_name.split("-")[0].lower()
    overrides = (config.get(section) or ml_collections.ConfigDict()).to_dict()
    unknown = sorted(set(overrides) - set(d))
    if unknown:
        raise ValueError(f"config.{section} has unknown field(s) {unknown}; valid: the fields "
                         "of config.algo")
    return props.as_config({**d, **overrides, "env_name": env_name})


def programs(config: ml_collections.ConfigDict) -> list[Program]:
    """Every compiled program of the experiment, in run order (environment by environment)."""
    out = []
    for env_name in config.envs:
        c = env_config(config, env_name)
        p_lr, lr = float(c.props_lr), float(c.lr)
        fixed_here = env_name == config.fixed_target_env
        beh = dataclasses.replace(c, behavior="props")
        if config.share_program:
            grid = {"props_lr": (0.0, p_lr)}
            labels = {"PROPS": {"props_lr": p_lr}, "PPO-Buffer": {"props_lr": 0.0}}
            if fixed_here:
                grid["lr"] = (lr, 0.0)
                labels = {"PROPS": {"props_lr": p_lr, "lr": lr},
                          "PPO-Buffer": {"props_lr": 0.0, "lr": lr},
                          FIXED[0]: {"props_lr": 0.0, "lr": 0.0},
                          FIXED[1]: {"props_lr": p_lr, "lr": 0.0}}
            out.append(Program(env_name, "shared", beh, grid, labels))
        else:
            out.append(Program(env_name, "props", beh, {}, {"PROPS": {}}))
            out.append(Program(env_name, "ppo_buffer",
                               dataclasses.replace(c, behavior="none"), {}, {"PPO-Buffer": {}}))
        if config.get("run_ppo", True):
            out.append(Program(env_name, "ppo", dataclasses.replace(c, behavior="none",
                                                                    buffer_batches=1),
                               {}, {"PPO": {}}))
        if fixed_here and not config.share_program:
            fc = dataclasses.replace(beh, total_timesteps=int(config.fixed_target_timesteps))
            out.append(Program(env_name, "fixed_target", fc,
                               {"props_lr": (0.0, p_lr), "lr": (0.0,)},
                               {FIXED[0]: {"props_lr": 0.0}, FIXED[1]: {"props_lr": p_lr}}))
    return out


def validate(config: ml_collections.ConfigDict) -> tuple[list[int], list[Program]]:
    """All checks before anything compiles or is written; one-line ValueErrors naming the field.
    Returns the seeds and the programs."""
    seeds = common.seeds_from_config(config)
    common.validate_runtime(config)
    if not config.envs:
        raise ValueError(f"config.envs must name at least one environment, got {config.envs!r}")
    for name in config.envs:
        if name not in envs.registered():
            raise ValueError(f"config.envs: unknown environment {name!r}")
    if config.fixed_target_env and config.fixed_target_env not in config.envs:
        raise ValueError(
            f"config.fixed_target_env must be one of config.envs or '', "
            f"got {config.fixed_target_env!r}"
        )
    for name in config.envs:
        try:
            c = props.validate_config(env_config(config, name), prefix="config.algo")
        except ValueError as e:
            raise ValueError(f"{e} ({name})") from None
        if c.se_steps < 1:
            raise ValueError(f"config.algo.se_steps must be >= 1 here (the sampling error is "
                             f"the measured quantity), got {c.se_steps!r} for {name}")
        if c.props_lr <= 0:
            raise ValueError(f"config.algo.props_lr must be > 0, got {c.props_lr!r} for {name}")
        if config.share_program and name == config.fixed_target_env:
            if c.lr <= 0:
                raise ValueError(f"config.algo.lr must be > 0 with share_program (lr = 0 is the "
                                 f"fixed-target grid point), got {c.lr!r} for {name}")
            if int(config.fixed_target_timesteps) != c.total_timesteps:
                raise ValueError(
                    "config.fixed_target_timesteps must equal the environment's "
                    f"total_timesteps with share_program, got {config.fixed_target_timesteps!r}")
    progs = programs(config)
    for p in progs:
        try:
            props.validate_config(p.cfg, p.grid, prefix="config.algo",
                                  sweep_prefix=f"{p.env_name}/{p.method} grid")
        except ValueError as e:
            raise ValueError(f"{e} ({p.env_name}, {p.method} program)") from None
        updates = p.cfg.total_timesteps // (p.cfg.num_envs * p.cfg.num_steps)
        if updates < p.cfg.buffer_batches:
            what = ("config.fixed_target_timesteps" if p.method == "fixed_target"
                    else "config.algo.total_timesteps")
            raise ValueError(f"{what} gives {updates} update(s) on {p.env_name}, fewer than "
                             f"buffer_batches={p.cfg.buffer_batches}: the sampling error is "
                             "measured once the buffer is full")
    return seeds, progs


# ---------------------------------------------------------------------------------------------
# Running and summarizing.
# ---------------------------------------------------------------------------------------------


def _rows(result: experiment.Result, point: dict[str, float]) -> np.ndarray:
    """Indices of the runs at grid point `point` (seed order)."""
    return np.asarray([i for i, r in enumerate(result.runs)
                       if all(r[k] == v for k, v in point.items())], int)


def _after_fill(result: experiment.Result, b: int) -> dict[str, Any]:
    """The training metrics from the update where the buffer is full (update b) on."""
    data = result.data("train")
    return {**{k: (v[:, b - 1:] if k not in ("runs", "steps", "env_steps") else v[b - 1:])
               for k, v in data.items() if k != "runs"}, "runs": data["runs"]}


def _entry(summary: dict, point: dict[str, float]) -> dict[str, Any]:
    """The aggregate entry (IQM, 95% CI, ...) of `experiment.summarize` at grid point `point`."""
    for a in summary["aggregate"]:
        if all(a.get(k) == v for k, v in point.items()):
            return a
    raise KeyError(point)


def run_program(p: Program, config, seeds: list[int], root: str,
                stop_after_chunks: int | None = None) -> tuple[experiment.Result, dict]:
    """Run (or resume) one program in its sub-workdir; write its summary.json."""
    sub = p.workdir(root)
    t0 = time.time()
    result = experiment.run(props.make_props(p.cfg), seeds, p.grid or None, workdir=sub,
                            config=p.stored_config(), progress_metric="return",
                            stop_after_chunks=stop_after_chunks,
                            **common.runtime_kwargs(config))
    if result.interrupted_at is not None:
        return result, {}
    b = p.cfg.buffer_batches
    summary = {
        "env_name": p.env_name,
        "method": p.method,
        "labels": p.labels,
        "seconds_this_invocation": round(time.time() - t0, 1),
        "env_steps_per_run": int(result.env_steps[-1]),
        "num_failed": result.num_failed,
        # final return: mean over the last 10% of updates; mean return over all updates (data
        # efficiency); sampling error averaged over the updates with a full buffer.
        "final_return": experiment.summarize(result, "return"),
        "mean_return": experiment.summarize(result, "return", last_frac=1.0),
        "sampling_error": experiment.summarize(_after_fill(result, b), "sampling_error",
                                               last_frac=1.0),
    }
    experiment.finish(sub, result, summary)
    return result, summary


def _label_summary(s: dict, point: dict[str, float]) -> dict[str, Any]:
    return {k: _entry(s[k], point) for k in ("final_return", "mean_return", "sampling_error")}


def env_results(progs: list[Program], outs: list[tuple[experiment.Result, dict]]) -> dict:
    """Per label: `{"steps", metric: [seeds, T], "summary"}` from the programs of one env."""
    out: dict[str, Any] = {"timings": {}}
    for p, (res, s) in zip(progs, outs, strict=True):
        out["timings"][p.method] = s["seconds_this_invocation"]
        for label, point in p.labels.items():
            idx = _rows(res, point)
            out[label] = {"steps": np.asarray(res.env_steps),
                          **{k: v[idx] for k, v in res.metrics.items()},
                          "summary": _label_summary(s, point), "b": p.cfg.buffer_batches}
    return out


def summarize_env(r: dict) -> dict:
    """Claims and per-method figures of one environment. Claim 1 is checked update by update on
    the IQM curves of the sampling error, claim 2 by probabilities of improvement (per seed)."""
    s: dict = {"timings_s": r["timings"]}
    for lab in ALGOS:
        if lab in r:
            s[lab] = r[lab]["summary"]
    b = r["PROPS"]["b"]
    se_p = r["PROPS"]["sampling_error"][:, b - 1:]
    se_b = r["PPO-Buffer"]["sampling_error"][:, b - 1:]
    c_props = stats.curve_iqm_ci(se_p, reps=500)
    c_buf = stats.curve_iqm_ci(se_b, reps=500)
    s["claim1_fraction_of_updates_props_se_below_buffer"] = float(np.mean(c_props[0] < c_buf[0]))
    s["claim1_fraction_of_updates_cis_disjoint_below"] = float(np.mean(c_props[2] < c_buf[1]))
    s["claim1_se_ratio_props_over_buffer"] = float(
        stats.iqm(np.nanmean(se_p, 1)) / stats.iqm(np.nanmean(se_b, 1)))
    if "ref_sampling_error" in r["PROPS"]:
        # the paper's reference: on-policy data re-simulated from PROPS's own targets
        ref_p = np.nanmean(r["PROPS"]["ref_sampling_error"][:, b - 1:], 1)
        mean_p = np.nanmean(se_p, 1)
        s["claim1_se_ratio_props_over_reference"] = float(stats.iqm(mean_p) / stats.iqm(ref_p))
        s["claim1_p_se_below_reference"] = list(
            stats.probability_of_improvement_ci(-mean_p, -ref_p))
    n = r["PROPS"]["return"].shape[1]
    for other, key in (("PPO-Buffer", "ppo_buffer"), ("PPO", "ppo")):
        if other not in r:  # PPO left out (config.run_ppo = False)
            continue
        for metric in ("mean_return", "final_return"):
            sl = slice(None) if metric == "mean_return" else slice(n - max(1, n // 10), None)
            s[f"claim2_poi_{metric}_props_vs_{key}"] = float(stats.probability_of_improvement(
                np.nanmean(r["PROPS"]["return"][:, sl], 1),
                np.nanmean(r[other]["return"][:, sl], 1)))
    if FIXED[0] in r:
        s["fixed_target"] = {lab: r[lab]["summary"] for lab in FIXED}
        s["fixed_target"]["env_steps"] = int(r[FIXED[0]]["steps"][-1])
        se = [np.nanmean(r[lab]["sampling_error"][:, b - 1:], 1) for lab in FIXED]
        s["fixed_target_se_ratio_props_over_on_policy"] = float(stats.iqm(se[1])
                                                                / stats.iqm(se[0]))
    return s


def write_plots(root: str, env_name: str, r: dict) -> None:
    short = env_name.split("-")[0].lower()
    plots = os.path.join(root, "plots")
    algos = [lab for lab in ALGOS if lab in r]
    plotting.plot_curves(os.path.join(plots, f"return_{short}.png"),
                         {lab: (r[lab]["steps"], r[lab]["return"]) for lab in algos},
                         "environment steps", "return", f"{env_name}: return")
    plotting.plot_curves(os.path.join(plots, f"sampling_error_{short}.png"),
                         {lab: (r[lab]["steps"], r[lab]["sampling_error"]) for lab in algos},
                         "environment steps", "KL(pi_D || pi_theta)",
                         f"{env_name}: sampling error")
    if FIXED[0] in r:
        plotting.plot_curves(os.path.join(plots, f"fixed_target_{short}.png"),
                             {lab: (r[lab]["steps"], r[lab]["sampling_error"]) for lab in FIXED},
                             "environment steps", "KL(pi_D || pi_theta)",
                             f"{env_name}: sampling error, fixed target (lr 0)")
    plt.close("all")


def run(config, workdir: str, stop_after_chunks: int | None = None) -> dict:
    """Validate, run (or resume) every program, write the top-level summary and plots."""
    seeds, progs = validate(config)
    if jax.process_index() == 0:
        write_json(os.path.join(workdir, "config.json"), config.to_dict())
    t0 = time.time()
    summary: dict = {"envs": {}, "num_seeds": len(seeds), "env_steps_per_run": {}}
    for env_name in config.envs:  # the top-level files are rewritten after each environment
        mine = [p for p in progs if p.env_name == env_name]
        outs = []
        for p in mine:
            res, s = run_program(p, config, seeds, workdir, stop_after_chunks)
            if res.interrupted_at is not None:
                return {"interrupted_at": res.interrupted_at, "program": p.workdir(workdir)}
            outs.append((res, s))
        r = env_results(mine, outs)
        summary["envs"][env_name] = summarize_env(r)
        summary["env_steps_per_run"][env_name] = int(r["PROPS"]["steps"][-1])
        summary["wall_seconds_this_invocation"] = round(time.time() - t0, 1)
        write_plots(workdir, env_name, r)
        experiment.finish(workdir, None, summary)
    return summary


def main(argv):
    del argv
    summary = common.guarded_main(lambda: run(_CONFIG.value, _WORKDIR.value))
    print(json.dumps({e: {k: v for k, v in s.items() if k.startswith(("claim", "fixed_target_se"))}
                      for e, s in summary["envs"].items()}, indent=2))


def _fmt(a: dict, p: int = 4) -> str:
    """`IQM [lo, hi]` of an aggregate entry (n/a where every run failed)."""
    if a.get("iqm") is None:
        return "n/a"
    lo, hi = a.get("iqm_ci95") or (None, None)
    f = lambda x: "n/a" if x is None else f"{x:.{p}g}"
    return f"{f(a['iqm'])} [{f(lo)}, {f(hi)}]"


def report(summary: dict, prefix: str) -> str:
    """Markdown section from a summary; images linked under `prefix`."""
    lines = [
        "## PROPS (Corrado & Hanna): sampling error and data efficiency",
        "",
        f"{summary['num_seeds']} seeds per method; IQM [95% stratified-bootstrap CI] over seeds "
        "(`jaxrl.experiment.summarize`). Sampling error = fitted-MLE `KL(pi_D || pi_theta)` of "
        "the buffer used by each target update, averaged over the updates once the buffer is "
        "full. Final return = mean over the last 10% of updates; mean return over all updates "
        "measures data efficiency.",
        "",
    ]
    for env_name, s in summary["envs"].items():
        short = env_name.split("-")[0].lower()
        lines += [
            f"### {env_name} ({summary['env_steps_per_run'][env_name]:,} steps per run)",
            "",
            "| method | final return | mean return over training | sampling error |",
            "|---|---|---|---|",
        ]
        rows = [(lab, s[lab]) for lab in ALGOS if lab in s]
        if "fixed_target" in s:
            rows += [(f"{lab}, {s['fixed_target']['env_steps']:,} steps", s["fixed_target"][lab])
                     for lab in FIXED]
        for lab, a in rows:
            lines.append(
                f"| {lab} | {_fmt(a['final_return'])} | {_fmt(a['mean_return'])} | "
                f"{_fmt(a['sampling_error'], 3)} |"
            )
        f1 = s["claim1_fraction_of_updates_props_se_below_buffer"]
        f1d = s["claim1_fraction_of_updates_cis_disjoint_below"]
        claim2 = ", ".join(
            f"X = {lab} {s[f'claim2_poi_mean_return_props_vs_{key}']:.2f} / "
            f"{s[f'claim2_poi_final_return_props_vs_{key}']:.2f}"
            for lab, key in (("PPO-Buffer", "ppo_buffer"), ("PPO", "ppo"))
            if f"claim2_poi_mean_return_props_vs_{key}" in s)
        lines += [
            "",
            f"- Claim 1 (lower sampling error than PPO-Buffer throughout): PROPS's IQM is below "
            f"PPO-Buffer's at {100 * f1:.0f}% of the updates (CIs disjoint at {100 * f1d:.0f}%); "
            f"PROPS / PPO-Buffer = {s['claim1_se_ratio_props_over_buffer']:.2f}"
            + (f"; PROPS / its on-policy reference (re-simulated from its own targets) = "
               f"{s['claim1_se_ratio_props_over_reference']:.2f}, P(SE < reference) = "
               "{:.2f} [{:.2f}, {:.2f}]".format(*s["claim1_p_se_below_reference"])
               if "claim1_se_ratio_props_over_reference" in s else "") + ".",
            f"- Claim 2 (data efficiency), P(PROPS > X) on mean / final return: {claim2}.",
        ]
        if "fixed_target_se_ratio_props_over_on_policy" in s:
            lines.append(
                f"- Fixed target (lr 0, the initial policy): PROPS / on-policy sampling error = "
                f"{s['fixed_target_se_ratio_props_over_on_policy']:.2f} (paper, fixed "
                "expert, MuJoCo: 0.54 Hopper, 0.63 HalfCheetah)."
            )
        lines += [
            "",
            f"![return]({prefix}/plots/return_{short}.png) "
            f"![sampling error]({prefix}/plots/sampling_error_{short}.png)",
        ]
        if "fixed_target" in s:
            lines.append(f"![fixed target]({prefix}/plots/fixed_target_{short}.png)")
        lines.append("")
    return "\n".join(lines)


def reproduce(root: str) -> str:
    """Quick variant into `root/props`; returns the Markdown section."""
    from experiments.configs import props as props_configs

    config = props_configs.get_config("quick")
    config.progress = False
    summary = run(config, os.path.join(root, "props"))
    text = report(summary, "props")
    notes = []
    for env_name, s in summary["envs"].items():
        a, b = s["PROPS"]["final_return"], s["PPO-Buffer"]["final_return"]
        ci_a, ci_b = a.get("iqm_ci95") or (None, None), b.get("iqm_ci95") or (None, None)
        known = None not in (*ci_a, *ci_b)
        overlap = known and ci_a[0] <= ci_b[1] and ci_b[0] <= ci_a[1]
        verdict = ("overlap, so the data-efficiency claim is not resolved at this size"
                   if overlap or not known else "are disjoint")
        notes.append(f"on {env_name} the 95% CIs of PROPS's and PPO-Buffer's final return "
                     f"({_fmt(a)} vs {_fmt(b)}) {verdict}")
    steps = ", ".join(f"{n:,} steps on {e}" for e, n in summary["env_steps_per_run"].items())
    return text + (
        f"\nQuick run: {summary['num_seeds']} seeds x {steps} per run (the full command is in "
        f"experiments/configs/props.py); {'; '.join(notes)}. The sampling-error ratios above are "
        "the quick run's measurements. Full-run results and verdict: docs/results/props.md.\n"
    )


if __name__ == "__main__":
    flags.mark_flags_as_required(["workdir"])
    app.run(main)
