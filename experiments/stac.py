"""STAC vs SAC-family baselines: return, overestimation bias, beta ablation, risk avoidance.

  python -m experiments.stac --config=experiments/configs/stac.py[:quick] --workdir=DIR

Writes `config.json`, `metrics.csv` (one row per env, method, seed and evaluation point),
`summary.json` and `plots/*.png` into the workdir. Each (env, network shape) is ONE compiled
program over all its seeds and hyperparameter points (the beta ablation, dropout on/off); runs
return to the host every `eval_every` env steps for evaluation and bias measurement
(jaxrl.stac.bias). Evaluation uses common random numbers: every hyperparameter point of the same
seed starts its evaluation episodes (and bias rollouts) from the same states, so comparisons
between points (the beta ablation's danger fraction) are paired. Set JAXRL_CPU_DEVICES=auto on a
CPU host to shard the runs over its cores. Paper: Özalp 2026, arXiv 2601.00737, Sec. 5.
"""

from __future__ import annotations

import csv
import json
import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import app, flags
from ml_collections import config_flags

from jaxrl import stats, sweep
from jaxrl.stac import bias as bias_lib
from jaxrl.stac import stac as stac_lib

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "experiments/configs/stac.py[:quick]", allow_override=True
)
_WORKDIR = flags.DEFINE_string("workdir", None, "output directory", allow_override=True)

KNOWN = ("stac", "sac", "sac_single", "estac", "stac_nodrop", "dsac")


def validate(c: ml_collections.ConfigDict) -> None:
    """One-line `ValueError` naming the first bad field."""
    if int(c.num_seeds) < 1:
        raise ValueError(f"config.num_seeds must be >= 1, got {c.num_seeds}")
    for v in c.variants:
        if v not in KNOWN:
            raise ValueError(f"config.variants must hold names from {KNOWN}, got {v!r}")
    for e in tuple(c.variant_envs) + tuple(c.ablation_envs):
        if e not in c.envs or e not in c.steps:
            raise ValueError(f"config.envs/steps must include {e!r}")
    for b in c.betas:
        if not b >= 0:
            raise ValueError(f"config.betas must be >= 0, got {b}")
    if not 0 <= c.dropout < 1:
        raise ValueError(f"config.dropout must be in [0, 1), got {c.dropout}")
    if int(c.eval_every) < 1:
        raise ValueError(f"config.eval_every must be >= 1, got {c.eval_every}")
    for e in c.envs:
        n = int(c.steps[e]) - int(c.warmup_steps)
        if n <= 0 or n % int(c.eval_every):
            raise ValueError(
                f"config.steps[{e!r}] - warmup_steps must be a positive multiple of "
                f"eval_every={c.eval_every}, got {c.steps[e]}"
            )


def programs(c: ml_collections.ConfigDict, env: str):
    """`[(variant, STACConfig, [(label, hparam overrides)])]` for one env."""
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
    )
    d = float(c.dropout)
    stac_points = []
    if env in c.variant_envs:
        if "stac" in c.variants:
            stac_points.append(("stac", {"beta": c.beta, "actor_dropout": d, "critic_dropout": d}))
        if "stac_nodrop" in c.variants:
            stac_points.append(
                ("stac_nodrop", {"beta": c.beta, "actor_dropout": 0.0, "critic_dropout": 0.0})
            )
    if env in c.ablation_envs:
        for b in c.betas:
            stac_points.append(
                (f"beta={b:g}", {"beta": float(b), "actor_dropout": d, "critic_dropout": d})
            )
    out = []
    if stac_points:
        out.append(("stac", stac_lib.STACConfig(variant="stac", **base), stac_points))
    if env in c.variant_envs:
        for v in ("sac", "sac_single", "estac", "dsac"):
            if v in c.variants:
                cfg = stac_lib.STACConfig(
                    variant=v, use_dropout=False, actor_dropout=0.0, critic_dropout=0.0, **base
                )
                out.append((v, cfg, [(v, {})]))
    return out


def run_program(c, env, variant, cfg, points, log):
    """Train all (point x seed) runs of one program; evaluate every `eval_every` env steps."""
    algo = stac_lib.make_stac(cfg)
    L = stac_lib.make_learner(cfg)
    seeds = list(range(int(c.seed), int(c.seed) + int(c.num_seeds)))
    # Unique hparam points (the main STAC point may coincide with an ablation point).
    uniq, labels_of = [], []
    for label, hp in points:
        key = tuple(sorted((k, float(v)) for k, v in hp.items()))
        if key in [u[0] for u in uniq]:
            labels_of[[u[0] for u in uniq].index(key)].append(label)
        else:
            uniq.append((key, hp))
            labels_of.append([label])
    runs = [{"seed": s, **{k: float(v) for k, v in hp.items()}} for _, hp in uniq for s in seeds]
    chunk = int(c.eval_every) // cfg.num_envs
    runner = sweep.SweepRunner(algo, runs, chunk)
    gamma = float(cfg.gamma)
    traj = env.startswith("RiskyPointMass")

    def eval_one(state, key):
        k1, k2 = jax.random.split(key)
        ev = stac_lib.evaluate(L, state, k1, int(c.eval_episodes), trajectories=traj)
        b = bias_lib.measure_bias(
            L, state, k2, gamma, int(c.bias_states), int(c.bias_rollouts), int(c.bias_horizon)
        )
        return {**ev, **b}

    eval_fn = jax.jit(jax.vmap(eval_one))
    padded = runs + [runs[-1]] * (runner.num_padded - len(runs))
    eval_seeds = jnp.asarray([r["seed"] for r in padded], jnp.int32)
    ss = runner.init()
    rows, done, i = [], 0, 0
    t0 = time.time()
    last_eval = None
    while done < algo.num_updates:
        ss, ms = runner.chunk(ss)
        done += chunk
        i += 1
        # Common random numbers: every point of the same seed is evaluated from the same start
        # states (and bias-rollout noise), so differences between points are paired.
        keys = jax.vmap(lambda s: jax.random.fold_in(jax.random.PRNGKey(10_000 + i), s))(
            eval_seeds
        )
        ev = sweep.to_host(eval_fn(ss.algo, keys))
        last_eval = ev
        step = int(cfg.warmup_steps) + done * cfg.num_envs
        for r_i, run in enumerate(runs):
            base = {"env": env, "variant": variant, "seed": run["seed"], "step": step}
            vals = {
                k: float(ev[k][r_i])
                for k in (
                    "return",
                    "danger_frac",
                    "bias_paper",
                    "bias_rollout",
                    "q_mean",
                    "soft_return",
                )
            }
            vals.update(
                {
                    k: float(ms[k][r_i, -1])
                    for k in ("train_return", "alpha", "sigma_mean", "failed")
                }
            )
            for label in labels_of[r_i // len(seeds)]:
                rows.append({**base, "label": label, **vals})
    log(
        f"  {env} {variant}: {len(runs)} runs x {algo.num_updates} updates in "
        f"{time.time() - t0:.1f} s"
    )
    trajs = {}
    if traj and last_eval is not None:
        n = int(c.trajectory_episodes)  # the same start states for every point (CRN)
        for u, labels in enumerate(labels_of):
            r_i = u * len(seeds)  # first seed of each point
            for label in labels:
                trajs[label] = (
                    np.asarray(last_eval["obs"][r_i])[:, :n],
                    np.asarray(last_eval["alive"][r_i])[:, :n],
                )
    return rows, trajs


_METRICS = (  # (summary name, metrics.csv column, per-seed aggregate over evaluation points)
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


def _write_rows(workdir: str, rows: list[dict]) -> None:
    with open(os.path.join(workdir, "metrics.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def run_experiment(c: ml_collections.ConfigDict, workdir: str, log=print) -> dict:
    """Run everything in `c` into `workdir`; return the summary dict."""
    validate(c)
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "config.json"), "w") as f:
        json.dump(c.to_dict(), f, indent=1)
    t0 = time.time()
    rows, trajs = [], {}
    for env in c.envs:
        for variant, cfg, points in programs(c, env):
            r, t = run_program(c, env, variant, cfg, points, log)
            rows += r
            trajs.update(t)
            _write_rows(workdir, rows)  # after every program: partial results survive a kill
    if trajs:  # the trajectory plot's data, to re-plot without re-running
        np.savez(os.path.join(workdir, "trajectories.npz"),
                 **{f"{k}/{part}": v[i] for k, v in trajs.items()
                    for i, part in enumerate(("obs", "alive"))})
    summary = summarize(rows)
    summary["_pairs"] = {
        env: pairs(rows, env, "stac", list(c.variants) + ["beta=0"])
        + pairs(rows, env, "beta=0.5", ["beta=0"])
        for env in c.envs
    }
    summary["_danger_vs_beta0"] = {env: paired_differences(rows, env, "beta=0") for env in c.envs
                                   if env.startswith("RiskyPointMass")}
    summary["_wall_s"] = time.time() - t0
    with open(os.path.join(workdir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    make_plots(
        rows,
        trajs,
        {k: v for k, v in summary.items() if not k.startswith("_")},
        os.path.join(workdir, "plots"),
    )
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
        "one-episode method, and many rollouts from the same states).",
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
    """Run the quick variant into `root/stac` and return its Markdown section."""
    from experiments.configs import stac as stac_config

    c = stac_config.get_config("quick")
    summary = run_experiment(c, os.path.join(root, "stac"), log=lambda s: None)
    text = report(summary, "stac", "STAC vs SAC-family (quick: 3 seeds, tiny nets, few steps)")
    return text + (
        f"Quick run wall time {summary['_wall_s']:.0f} s. At this scale (2.5k Pendulum steps, 1.5k "
        "RiskyPointMass steps, 2x32 networks) differences between methods are not meaningful; "
        "see `experiments/configs/stac.py` for the full experiment.\n"
    )


def main(argv):
    del argv
    summary = run_experiment(_CONFIG.value, _WORKDIR.value)
    print(report(summary, ".", "STAC vs SAC-family"))


if __name__ == "__main__":
    flags.mark_flags_as_required(["config", "workdir"])
    app.run(main)
