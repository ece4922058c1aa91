"""STAC vs SAC-family baselines: return, overestimation bias, beta ablation, risk avoidance.

  python -m experiments.stac --config=experiments/configs/stac.py[:quick] --workdir=DIR

Every (environment, method) is ONE compiled program (`jaxrl.stac.STACConfig`) run by
`jaxrl.experiment.run` over all its seeds and grid points (the beta ablation is a grid over
`beta` inside the STAC program), in `DIR/<env>/<method>/` with the runtime's files:
`config.json`, `metrics.csv` (training metrics per run, one row per `log_every` env steps:
their means), `eval.csv` (evaluation every `eval_every` env steps and at the end: return,
danger fraction, overestimation bias by `jaxrl.stac.bias`, critic mean, soft return),
`checkpoints/` and `summary.json`. Evaluation is
the algorithm's `evaluate` on the platform: its key depends only on (seed, evaluation index), so
every beta of a seed is evaluated from the same start states and with the same bias-rollout noise
(common random numbers; comparisons between betas are paired). On RiskyPointMass the final
policies' trajectories are drawn once at the end from the final states, again from the same start
states for every beta of a seed. At the top of DIR: `summary.json` (IQM over seeds with 95% CIs,
probabilities of improvement, paired danger differences), `plots/*.png`, `trajectories.npz` and
`config.json`. Killing the script and re-running the same command resumes every program from
its newest checkpoint (finished programs are read back); the CSV files end byte-identical to an
uninterrupted run. Set JAXRL_CPU_DEVICES=auto on a CPU host to spread the lanes over its cores.
Paper: Özalp 2026, arXiv 2601.00737, Sec. 5.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
from typing import Any

import jax
import ml_collections
import numpy as np
from absl import app, flags
from ml_collections import config_flags

from experiments import common
from jaxrl import experiment, stats
from jaxrl.metrics import write_json
from jaxrl.stac import stac as stac_lib

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "experiments/configs/stac.py[:quick|:tiny|...]", allow_override=True
)
_WORKDIR = flags.DEFINE_string("workdir", None, "output directory (resumed if it exists)",
                               allow_override=True)

KNOWN = ("stac", "sac", "sac_single", "estac", "stac_nodrop", "dsac")
BASELINES = ("sac", "sac_single", "estac", "dsac")  # in program order
EVAL_METRICS = ("return", "danger_frac", "bias_paper", "bias_rollout", "q_mean", "soft_return")
TRAIN_AT_EVAL = ("train_return", "alpha", "sigma_mean", "failed")  # training metrics at eval
TRAJ_STREAM = 0x7472616A  # "traj": fold_in tag of the trajectory keys (one per seed)


@dataclasses.dataclass(frozen=True)
class Program:
    """One compiled program: `WORKDIR/<env>/<variant>/`.

    `labels` maps each method label it holds ("stac", "beta=0.5", "sac", ...) to its grid point
    (`{}`: all runs of the program)."""

    env: str
    variant: str
    cfg: stac_lib.STACConfig
    grid: dict[str, tuple[float, ...]]
    labels: dict[str, dict[str, float]]

    def env_steps_per_update(self) -> int:
        return int(self.cfg.num_envs) * int(self.cfg.log_every)

    def workdir(self, root: str) -> str:
        return os.path.join(root, self.env, self.variant)

    def stored_config(self) -> dict[str, Any]:
        """What config.json holds (and a resume compares): everything that sets the numbers."""
        return {"experiment": "stac", "env": self.env, "variant": self.variant,
                "algo": dataclasses.asdict(self.cfg), "labels": self.labels}


def programs(c: ml_collections.ConfigDict, env: str) -> list[Program]:
    """The programs of one env, in run order: STAC (its main beta and the beta ablation as one
    grid over `beta`), STAC without dropout, then the baselines in `config.variants`."""
    base = dict(
        env_name=env,
        total_env_steps=int(c.steps[env]),
        warmup_steps=int(c.warmup_steps),
        buffer_size=int(c.buffer_size),
        batch_size=int(c.batch_size),
        actor_hidden=(int(c.hidden),) * 2,
        critic_hidden=(int(c.hidden),) * 2,
        alpha_update=c.alpha_update,
        actor_lr=float(c.lr),
        critic_lr=float(c.lr),
        alpha_lr=float(c.lr),
        alpha_init=float(c.alpha_init[env]),
        beta=float(c.beta),
        eval_episodes=int(c.eval_episodes),
        bias_states=int(c.bias_states),
        bias_rollouts=int(c.bias_rollouts),
        bias_horizon=int(c.bias_horizon),
        log_every=int(c.log_every),
    )
    d = float(c.dropout)
    labels: dict[str, dict[str, float]] = {}
    if env in c.variant_envs and "stac" in c.variants:
        labels["stac"] = {"beta": float(c.beta)}
    if env in c.ablation_envs:
        for b in c.betas:
            labels[f"beta={float(b):g}"] = {"beta": float(b)}
    out = []
    if labels:
        betas = tuple(sorted({pt["beta"] for pt in labels.values()}))
        cfg = stac_lib.STACConfig(variant="stac", actor_dropout=d, critic_dropout=d, **base)
        out.append(Program(env, "stac", cfg, {"beta": betas}, labels))
    if env in c.variant_envs:
        if "stac_nodrop" in c.variants:  # STAC's networks without the dropout op
            cfg = stac_lib.STACConfig(variant="stac", use_dropout=False, actor_dropout=0.0,
                                      critic_dropout=0.0, **base)
            out.append(Program(env, "stac_nodrop", cfg, {}, {"stac_nodrop": {}}))
        for v in BASELINES:
            if v in c.variants:
                cfg = stac_lib.STACConfig(variant=v, use_dropout=False, actor_dropout=0.0,
                                          critic_dropout=0.0, **base)
                out.append(Program(env, v, cfg, {}, {v: {}}))
    return out


def _user_field(name: str, env: str, sweep: bool) -> str:
    """The config field a user sets for STACConfig field `name` (for error messages)."""
    if sweep:
        return {"beta": "config.betas"}.get(name, f"config.{name}")
    return {
        "actor_dropout": "config.dropout", "critic_dropout": "config.dropout",
        "actor_lr": "config.lr", "critic_lr": "config.lr", "alpha_lr": "config.lr",
        "actor_hidden": "config.hidden", "critic_hidden": "config.hidden",
        "alpha_init": f"config.alpha_init[{env!r}]", "total_env_steps": f"config.steps[{env!r}]",
    }.get(name, f"config.{name}")


def _check_program(p: Program) -> None:
    """`STACConfig.validate` (i.e. `jaxrl.config.validate` on the field marks) of the program's
    config and grid; the message names the experiment config's field."""
    try:
        p.cfg.validate(p.grid, prefix="@algo", sweep_prefix="@sweep")
    except ValueError as e:
        msg = re.sub(r"@(algo|sweep)\.(\w+)",
                     lambda m: _user_field(m.group(2), p.env, m.group(1) == "sweep"), str(e))
        raise ValueError(f"{msg} ({p.env}/{p.variant} program)") from None


def validate(c: ml_collections.ConfigDict) -> tuple[list[int], list[Program]]:
    """Every check before anything compiles or is written: one-line `ValueError`s naming the
    field. Returns the seeds and the programs in run order."""
    seeds = common.seeds_from_config(c)
    common.validate_runtime(c)
    for v in c.variants:
        if v not in KNOWN:
            raise ValueError(f"config.variants must hold names from {KNOWN}, got {v!r}")
    for e in tuple(c.variant_envs) + tuple(c.ablation_envs):
        if e not in c.envs:
            raise ValueError(f"config.envs must include {e!r} (in variant_envs/ablation_envs)")
    for e in c.envs:
        for field in ("steps", "alpha_init"):
            if e not in c[field]:
                raise ValueError(f"config.{field} must have an entry for {e!r}")
        try:
            stac_lib.make_env(e)
        except ValueError as err:
            raise ValueError(f"config.envs: {err}") from None
    if int(c.log_every) < 1:
        raise ValueError(f"config.log_every must be >= 1, got {c.log_every!r}")
    if int(c.eval_every) < 1 or int(c.eval_every) % int(c.log_every):
        raise ValueError(f"config.eval_every must be a positive multiple of log_every="
                         f"{c.log_every}, got {c.eval_every!r}")
    for e in c.envs:
        n = int(c.steps[e]) - int(c.warmup_steps)
        if n <= 0 or n % int(c.eval_every):
            raise ValueError(
                f"config.steps[{e!r}] - warmup_steps must be a positive multiple of "
                f"eval_every={c.eval_every}, got {c.steps[e]}"
            )
    if int(c.bias_states) < 1:
        raise ValueError(f"config.bias_states must be >= 1 (the bias is measured), got "
                         f"{c.bias_states!r}")
    if int(c.trajectory_episodes) < 1:
        raise ValueError(f"config.trajectory_episodes must be >= 1, got "
                         f"{c.trajectory_episodes!r}")
    progs = [p for e in c.envs for p in programs(c, e)]
    if not progs:
        raise ValueError("nothing to run: config.variants/variant_envs/ablation_envs select no "
                         "program")
    for p in progs:
        _check_program(p)
    return seeds, progs


# ---------------------------------------------------------------------------------------------
# Running one program; its results as rows.
# ---------------------------------------------------------------------------------------------


def run_program(p: Program, c: ml_collections.ConfigDict, seeds: list[int], root: str,
                stop_after_chunks: int | None = None) -> tuple[experiment.Result, dict]:
    """Run (or resume, or read back when finished) one program in its sub-workdir, evaluating
    every `eval_every` env steps; write its summary.json."""
    sub = p.workdir(root)
    t0 = time.time()
    result = experiment.run(
        stac_lib.make_stac(p.cfg), seeds, p.grid or None, workdir=sub,
        config=p.stored_config(), eval_every=int(c.eval_every) // p.env_steps_per_update(),
        progress_metric="train_return", stop_after_chunks=stop_after_chunks,
        **common.runtime_kwargs(c))
    if result.interrupted_at is not None:
        return result, {}
    summary = {
        "env": p.env,
        "variant": p.variant,
        "labels": p.labels,
        "seconds_this_invocation": round(time.time() - t0, 1),
        "env_steps_per_run": int(p.cfg.total_env_steps),
        "num_failed": result.num_failed,
        # per run: the last evaluation; per grid point: IQM [95% CI] over seeds.
        "eval": {m: experiment.summarize(result, m, source="eval")
                 for m in ("return", "danger_frac", "bias_paper", "bias_rollout")},
    }
    experiment.finish(sub, result, summary)
    return result, summary


def _labels_of(p: Program, run: dict) -> list[str]:
    return [lab for lab, pt in p.labels.items() if all(run.get(k) == v for k, v in pt.items())]


def result_rows(p: Program, result: experiment.Result) -> list[dict]:
    """One row per (label, seed, evaluation point): the evaluation metrics and the training
    metrics logged at the update evaluated (means over its `log_every` env steps); `step`
    counts env steps including warm-up."""
    pos = {int(s): k for k, s in enumerate(result.steps)}
    rows = []
    for i, run in enumerate(result.runs):
        labels = _labels_of(p, run)
        for j, u in enumerate(result.eval_steps):
            row = {"env": p.env, "variant": p.variant, "seed": int(run["seed"]),
                   "step": int(p.cfg.warmup_steps) + int(u) * p.env_steps_per_update()}
            row |= {m: float(result.evals[m][i, j]) for m in EVAL_METRICS}
            row |= {m: float(result.metrics[m][i, pos[int(u)]]) for m in TRAIN_AT_EVAL
                    if m in result.metrics}
            rows += [{**row, "label": lab} for lab in labels]
    return rows


def trajectories(p: Program, result: experiment.Result, seed: int,
                 num_episodes: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """`{label: (obs [T, E, obs_dim], alive [T, E])}`: `num_episodes` evaluation episodes of the
    final policy of each grid point's run with seed `seed`, all from the same start states (one
    key, `fold_in(PRNGKey(seed), TRAJ_STREAM)`, for every grid point: common random numbers)."""
    L = stac_lib.make_learner(p.cfg)
    idx = np.asarray([i for i, r in enumerate(result.runs) if r["seed"] == seed], int)
    state = jax.tree.map(lambda x: np.asarray(x)[idx], result.state.algo)
    key = jax.random.fold_in(jax.random.PRNGKey(seed), TRAJ_STREAM)
    fn = jax.jit(jax.vmap(lambda s: stac_lib.evaluate(L, s, key, num_episodes,
                                                      trajectories=True)))
    out = jax.tree.map(np.asarray, fn(state))
    trajs = {}
    for n, i in enumerate(idx):
        for lab in _labels_of(p, result.runs[i]):
            trajs[lab] = (out["obs"][n], out["alive"][n])
    return trajs


# ---------------------------------------------------------------------------------------------
# Aggregation over seeds (rows of all programs) and plots.
# ---------------------------------------------------------------------------------------------


_METRICS = (  # (summary name, row column, per-seed aggregate over evaluation points)
    ("return", "return", "final"),
    ("danger_frac", "danger_frac", "final"),
    ("bias_paper", "bias_paper", "avg"),
    ("bias_rollout", "bias_rollout", "avg"),
    ("bias_paper_final", "bias_paper", "final"),
    ("bias_rollout_final", "bias_rollout", "final"),
    ("sigma_mean", "sigma_mean", "final"),
    ("alpha", "alpha", "final"),
)


def per_seed(rows, env: str, label: str, column: str, agg: str) -> np.ndarray:
    """`[seeds]` values of one column for (env, label): the last evaluation point (`final`) or
    the mean over the points after the first (`avg`)."""
    rs = [r for r in rows if r["env"] == env and r["label"] == label]
    last = max(r["step"] for r in rs)
    first = min(r["step"] for r in rs)
    out = []
    for s in sorted({r["seed"] for r in rs}):
        sr = [r for r in rs if r["seed"] == s]
        if agg == "final":
            out.append(np.mean([r[column] for r in sr if r["step"] == last]))
        else:
            out.append(np.mean([r[column] for r in sr if r["step"] > first]
                               or [r[column] for r in sr]))
    return np.asarray(out, float)


def summarize(rows):
    """`{env: {label: {metric: {iqm, lo, hi, n}}}}` over seeds (see `_METRICS`): final return,
    danger fraction, sigma and alpha; bias averaged over each seed's evaluation points after the
    first (`bias_*`) and at the last point (`bias_*_final`)."""
    out = {}
    for env, label in sorted({(r["env"], r["label"]) for r in rows}):
        res = {}
        for name, column, agg in _METRICS:
            vals = per_seed(rows, env, label, column, agg)
            lo, hi = (stats.bootstrap_ci(vals, "iqm", reps=1000) if len(vals) > 1
                      else (float(vals[0]), float(vals[0])))
            res[name] = {"iqm": float(stats.iqm(vals)), "lo": float(lo), "hi": float(hi),
                         "n": len(vals)}
        out.setdefault(env, {})[label] = res
    return out


# (column, aggregate, True if lower is better) for the pairwise probabilities of improvement.
_PAIR_METRICS = (("return", "final", False), ("bias_rollout", "avg", True),
                 ("bias_rollout", "final", True), ("danger_frac", "final", True))


def pairs(rows, env: str, first: str, others) -> list[dict]:
    """P(`first` better than each of `others`) over all seed pairs (Mann-Whitney, Agarwal et al.
    2021) with 95% bootstrap CIs, for return (higher) and bias / danger (lower)."""
    labels = {r["label"] for r in rows if r["env"] == env}
    out = []
    for other in others:
        if other == first or other not in labels or first not in labels:
            continue
        row = {"pair": f"{first} vs {other}"}
        for column, agg, lower in _PAIR_METRICS:
            x = per_seed(rows, env, first, column, agg)
            y = per_seed(rows, env, other, column, agg)
            if lower:
                x, y = -x, -y
            row[f"{column}_{agg}"] = stats.probability_of_improvement_ci(x, y, reps=1000)
        out.append(row)
    return out


def paired_differences(rows, env: str, base: str, column: str = "danger_frac") -> dict:
    """`{label: (mean, lo, hi)}`: per-seed final `column` of each `beta=` point minus `base`'s,
    same seeds and (common random numbers) same evaluation start states; mean over seeds with a
    95% bootstrap CI."""
    labels = {r["label"] for r in rows if r["env"] == env and r["label"].startswith("beta=")}
    out = {}
    if base not in labels:
        return out
    ref = per_seed(rows, env, base, column, "final")
    for label in sorted(labels - {base}):
        d = per_seed(rows, env, label, column, "final") - ref
        lo, hi = stats.bootstrap_ci(d, "mean", reps=1000)
        out[label] = (float(np.mean(d)), float(lo), float(hi))
    return out


def make_plots(rows, trajs, summary, plot_dir):
    import matplotlib

    from jaxrl import plotting

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(plot_dir, exist_ok=True)
    paths = []
    for env in sorted({r["env"] for r in rows}):
        for metric, name in (
            ("return", "return"),
            ("bias_paper", "bias_paper"),
            ("bias_rollout", "bias_rollout"),
        ):
            curves = {}
            for label in sorted({r["label"] for r in rows if r["env"] == env}):
                rs = [r for r in rows if r["env"] == env and r["label"] == label]
                steps = sorted({r["step"] for r in rs})
                seeds = sorted({r["seed"] for r in rs})
                y = np.full((len(seeds), len(steps)), np.nan)
                for r in rs:
                    y[seeds.index(r["seed"]), steps.index(r["step"])] = r[metric]
                curves[label] = (np.asarray(steps), y)
            p = os.path.join(plot_dir, f"{env}_{name}.png")
            plotting.plot_curves(p, curves, ylabel=name, title=f"{env}: {name} (IQM, 95% CI)")
            plt.close("all")
            paths.append(p)
        betas = sorted(k for k in summary[env] if k.startswith("beta="))
        if betas:
            fig, axes = plt.subplots(1, 3, figsize=(12, 3.5))
            xs = [float(b.split("=")[1]) for b in betas]
            for ax, m in zip(axes, ("return", "bias_rollout", "danger_frac"), strict=True):
                c = [summary[env][b][m]["iqm"] for b in betas]
                lo = [summary[env][b][m]["lo"] for b in betas]
                hi = [summary[env][b][m]["hi"] for b in betas]
                ax.errorbar(
                    xs, c, yerr=[np.subtract(c, lo), np.subtract(hi, c)], marker="o", capsize=3
                )
                ax.set_xlabel("beta")
                ax.set_title(m)
            fig.suptitle(f"{env}: STAC beta ablation (IQM, 95% CI)")
            fig.tight_layout()
            p = os.path.join(plot_dir, f"{env}_beta_ablation.png")
            fig.savefig(p, dpi=100)
            plt.close(fig)
            paths.append(p)
    labels = sorted((k for k in trajs if k.startswith("beta=")), key=lambda k: float(k[5:]))
    if labels:
        fig, axes = plt.subplots(1, len(labels), figsize=(3.2 * len(labels), 3.9), squeeze=False)
        cmap = plt.get_cmap("tab10")
        for ax, label in zip(axes[0], labels, strict=True):
            ax.add_patch(plt.Circle((0.5, 0.5), 0.3, color="red", alpha=0.2))
            ax.add_patch(plt.Circle((0.0, 0.0), 0.05, color="green", alpha=0.6))
            obs, alive = trajs[label]
            for e in range(obs.shape[1]):
                n = int(alive[:, e].sum())
                ax.plot(obs[:n, e, 0], obs[:n, e, 1], color=cmap(e % 10), lw=1.2)
                ax.plot(obs[0, e, 0], obs[0, e, 1], "o", color=cmap(e % 10), ms=3)
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1)
            ax.set_aspect("equal")
            ax.set_title(label)
        fig.suptitle("RiskyPointMass: final evaluation episodes of seed 0\nfrom the same start "
                     "states (dots); red: danger disc, green: goal", fontsize=10)
        fig.tight_layout(rect=(0, 0, 1, 0.9))
        p = os.path.join(plot_dir, "RiskyPointMass_trajectories.png")
        fig.savefig(p, dpi=100)
        plt.close(fig)
        paths.append(p)
    return paths


def run(c: ml_collections.ConfigDict, workdir: str, stop_after_chunks: int | None = None) -> dict:
    """Validate, run (or resume) every program into `workdir/<env>/<variant>/`, then write the
    top-level summary.json, plots, trajectories.npz and config.json; returns the summary (or
    `{"interrupted_at", "program"}` when `stop_after_chunks` stopped a program)."""
    seeds, progs = validate(c)
    t0 = time.time()
    rows, trajs, seconds = [], {}, {}
    for p in progs:
        result, s = run_program(p, c, seeds, workdir, stop_after_chunks)
        if result.interrupted_at is not None:
            return {"interrupted_at": result.interrupted_at, "program": p.workdir(workdir)}
        seconds[f"{p.env}/{p.variant}"] = s["seconds_this_invocation"]
        rows += result_rows(p, result)
        if p.env.startswith("RiskyPointMass"):
            trajs.update(trajectories(p, result, seeds[0], int(c.trajectory_episodes)))
    summary = summarize(rows)
    summary["_pairs"] = {
        env: pairs(rows, env, "stac", list(c.variants) + ["beta=0"])
        + pairs(rows, env, "beta=0.5", ["beta=0"])
        for env in c.envs
    }
    summary["_danger_vs_beta0"] = {env: paired_differences(rows, env, "beta=0") for env in c.envs
                                   if env.startswith("RiskyPointMass")}
    summary["_wall_s"] = time.time() - t0  # this invocation (finished programs are read back)
    summary["_seconds_per_program"] = seconds
    if jax.process_index() == 0:
        if trajs:  # the trajectory plot's data, to re-plot without re-running
            np.savez(os.path.join(workdir, "trajectories.npz"),
                     **{f"{k}/{part}": v[i] for k, v in trajs.items()
                        for i, part in enumerate(("obs", "alive"))})
        make_plots(rows, trajs, {k: v for k, v in summary.items() if not k.startswith("_")},
                   os.path.join(workdir, "plots"))
        write_json(os.path.join(workdir, "config.json"), c.to_dict())
        experiment.finish(workdir, None, summary)
    return summary


def _fmt(d):
    return f"{d['iqm']:.3g} [{d['lo']:.3g}, {d['hi']:.3g}]"


def report(summary: dict, prefix: str, title: str) -> str:
    """Markdown section for a summary (images relative to the report root via `prefix`)."""
    lines = [
        f"## {title}",
        "",
        "Özalp 2026 (arXiv 2601.00737). IQM over seeds with 95% stratified-bootstrap CIs. "
        "`return`: final evaluation return (dropout off, mean action); `bias`: overestimation "
        "Q_hat - soft return averaged over evaluation points after the first (paper's "
        "one-episode method, and many rollouts from the same states); `sigma`, `alpha`: "
        "training metrics at the last evaluation point. Evaluation keys depend only on the seed "
        "and the evaluation index, so every method and beta of a seed is evaluated from the same "
        "start states (paired comparisons).",
        "",
    ]
    for env, res in summary.items():
        if env.startswith("_"):
            continue
        lines += [
            f"**{env}**",
            "",
            "| method | return | bias (paper) | bias (rollouts) | bias (rollouts, final) | "
            "danger frac | sigma | alpha |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for label, r in res.items():
            lines.append(
                f"| {label} (n={r['return']['n']}) | {_fmt(r['return'])} | "
                f"{_fmt(r['bias_paper'])} | {_fmt(r['bias_rollout'])} | "
                f"{_fmt(r['bias_rollout_final'])} | {_fmt(r['danger_frac'])} | "
                f"{r['sigma_mean']['iqm']:.3g} | {r['alpha']['iqm']:.3g} |"
            )
        prs = summary.get("_pairs", {}).get(env, [])
        if prs:
            lines += [
                "",
                "| pair | P(return higher) | P(bias lower, avg) | P(bias lower, final) | "
                "P(danger lower) |",
                "|---|---|---|---|---|",
            ]
            for pr in prs:
                cells = [f"{p:.2f} [{lo:.2f}, {hi:.2f}]" for p, lo, hi in (
                    pr["return_final"], pr["bias_rollout_avg"], pr["bias_rollout_final"],
                    pr["danger_frac_final"])]
                lines.append(f"| {pr['pair']} | " + " | ".join(cells) + " |")
        diffs = summary.get("_danger_vs_beta0", {}).get(env, {})
        if diffs:
            lines += ["", "Danger fraction minus beta=0's, same seeds and start states (mean over "
                      "seeds, 95% CI): " + "; ".join(
                          f"{k}: {m:+.3f} [{lo:+.3f}, {hi:+.3f}]" for k, (m, lo, hi)
                          in diffs.items())]
        lines += [
            "",
            f"![{env} return]({prefix}/plots/{env}_return.png) "
            f"![{env} bias]({prefix}/plots/{env}_bias_rollout.png)",
            "",
        ]
        if any(k.startswith("beta=") for k in res):
            lines += [f"![{env} beta]({prefix}/plots/{env}_beta_ablation.png)", ""]
    if "RiskyPointMass-v0" in summary:
        lines += [f"![trajectories]({prefix}/plots/RiskyPointMass_trajectories.png)", ""]
    lines += [
        "Paper (MuJoCo, 5 seeds, IQM SAC vs STAC): Hopper 3196 vs 3364, Walker2d 5036 vs 6635, "
        "HalfCheetah 11476 vs 14569, Humanoid 6990 vs 8726, Ant 7407 vs 6907. Those tasks are "
        "not run here.",
        "",
    ]
    return "\n".join(lines)


def reproduce(root: str) -> str:
    """Run (or resume) the quick variant into `root/stac` and return its Markdown section."""
    from experiments.configs import stac as stac_config

    c = stac_config.get_config("quick")
    c.progress = False
    summary = run(c, os.path.join(root, "stac"))
    text = report(summary, "stac", "STAC vs SAC-family (quick: 3 seeds, tiny nets, few steps)")
    return text + (
        f"Wall time of this invocation {summary['_wall_s']:.0f} s (programs already finished in "
        "the workdir are read back, not re-run). At this scale (2.5k Pendulum steps, 1.5k "
        "RiskyPointMass steps, 2x32 networks, 3 seeds) differences between methods are not "
        "meaningful; see `experiments/configs/stac.py` for the full experiment.\n"
    )


def main(argv):
    del argv

    def body():
        summary = run(_CONFIG.value, _WORKDIR.value)
        print(report(summary, ".", "STAC vs SAC-family"))

    common.guarded_main(body)


if __name__ == "__main__":
    flags.mark_flags_as_required(["config", "workdir"])
    app.run(main)
