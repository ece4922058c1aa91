"""DηN, the stock-augmented distributional DQN, against the exact DP optimum.

  python -m experiments.dp_deep --config=experiments/configs/dp_deep.py[:quick] --workdir=DIR

Two finite-horizon tasks (`Gamble-v0`, `Homeostasis-v0` from `jaxrl.envs.make`: plain gymnax
envs that the agent wraps in the stock augmentation `jaxrl.envs.stock.StockAugmentation`), each a
finite MDP whose exact optimum is computed by `jaxrl.dp.tabular.solve_exact`:

* Gamble (H = 3; safe +1 or risky +4/-2 w.p. 0.6/0.4): a risk-neutral agent (`mean`) and a CVaR
  agent (`cvar`, alpha = config.alpha) train as one vmapped program over seeds. The CVaR agent
  picks its threshold `b` by maximizing its own Rockafellar-Uryasev estimate at the initial
  state (outer max of the paper, sec. 5), then acts greedily for `min(c + Z, 0)` from `c_0 = -b`.
  Reported: the CVaR_alpha of its evaluation returns, next to the exact optimum.
* Homeostasis (H = 6; push -1/0/+1 against a downward-drifting disturbance): a `mean` and a
  `homeostatic` agent (`-|c + Z|`, `c_0 = -set_point`); reported: E|G - set point| (= the mean
  distance of the final stock from the set point) next to the exact optimum, and the stock path.

Writes DIR/config.json, metrics.csv (one row per task, agent, seed and evaluation point),
summary.json and plots/*.png.
"""

from __future__ import annotations

import csv
import json
import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags
from ml_collections import config_flags

from jaxrl import plotting, stats, sweep
from jaxrl.distributions import FiniteSupport, cvar
from jaxrl.dp import deep
from jaxrl.envs import gamble as gamble_envs

_CONFIG = config_flags.DEFINE_config_file(
    "config",
    "experiments/configs/dp_deep.py",
    "DηN config file.",
    lock_config=True,
    allow_override=True,
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Results directory.", allow_override=True)

TASKS = {
    # task: (config field, MDP builder, risk-aware objective, eval metric, higher is better)
    "gamble": ("gamble", gamble_envs.gamble_mdp, "cvar", "cvar", True),
    "homeostasis": ("homeostasis", gamble_envs.homeostasis_mdp, "homeostatic", "abs_dev", False),
}


def validate(config) -> None:
    """One-line `ValueError` naming the bad field."""
    if int(config.seed) < 0:
        raise ValueError(f"config.seed must be >= 0, got {config.seed}")
    if int(config.num_seeds) < 1:
        raise ValueError(f"config.num_seeds must be >= 1, got {config.num_seeds}")
    if int(config.num_evals) < 1:
        raise ValueError(f"config.num_evals must be >= 1, got {config.num_evals}")
    if int(config.eval_episodes) < 10:
        raise ValueError(f"config.eval_episodes must be >= 10, got {config.eval_episodes}")
    if not 0.0 < float(config.alpha) <= 1.0:
        raise ValueError(f"config.alpha must be in (0, 1], got {config.alpha}")
    if not float(config.b_step) > 0:
        raise ValueError(f"config.b_step must be > 0, got {config.b_step}")
    if not float(config.b_max) >= float(config.b_min):
        raise ValueError(f"config.b_max must be >= config.b_min, got {config.b_max}")
    for task, (field, _, risk_obj, _, _) in TASKS.items():
        agent = config[field]
        names = deep.objective_names(agent.objective)
        if names != ("mean", risk_obj):
            raise ValueError(
                f"config.{field}.objective must be ('mean', '{risk_obj}') for {task}, got {names}"
            )
        if int(agent.num_updates) < int(config.num_evals):
            raise ValueError(
                f"config.{field}.num_updates must be >= config.num_evals, got {agent.num_updates}"
            )


def exact_values(task: str, config) -> dict[str, float]:
    """Exact optimum of the risk-aware objective and the risk-neutral policy's score on it."""
    from jaxrl.dp import objectives, tabular

    field, build, _, _, _ = TASKS[task]
    m = build(**dict(config[field].env_kwargs))
    mdp = tabular.validate_mdp(m["P"], m["R"], m["mu0"], m["gamma"], m["horizon"])
    neutral = tabular.solve_exact(mdp, objectives.make_objective("mean"))
    law = FiniteSupport(jnp.asarray(neutral.returns), jnp.asarray(neutral.return_probs))
    if task == "gamble":
        best = tabular.solve_exact(mdp, objectives.make_objective("cvar", alpha=config.alpha))
        return {
            "optimum": best.objective_value,
            "optimal_b": best.b,
            "risk_neutral": float(cvar(law, config.alpha)),
            "risk_neutral_mean": neutral.objective_value,
        }
    t = float(config.set_point)
    best = tabular.solve_exact(mdp, objectives.make_objective("target", target=t))
    dev = float(np.sum(neutral.return_probs * np.abs(neutral.returns - t)))
    return {
        "optimum": -best.objective_value,
        "risk_neutral": dev,
        "risk_neutral_mean": neutral.objective_value,
    }


def make_eval(task: str, config):
    """`evaluate(params [runs], hp [runs], keys [runs]) -> {metric: [runs, ...]}`, jitted."""
    field = TASKS[task][0]
    rollout, predicted = deep.make_evaluate(config[field])
    n = int(config.eval_episodes)
    alpha = float(config.alpha)
    b_grid = jnp.arange(config.b_min, config.b_max + 0.5 * config.b_step, config.b_step)

    def one(params, hp, key):
        k_pred, k_roll = jax.random.split(key)
        if task == "gamble":
            vals = jax.vmap(lambda b: predicted(params, k_pred, hp, -b, 8))(b_grid)
            b_star, estimate = deep.select_cvar_b(vals, b_grid, alpha)
            c0 = jnp.where(hp["objective_index"] > 0.5, -b_star, 0.0)
            out = rollout(params, k_roll, hp, c0, n)
            g, acts = out["returns"], out["actions"]
            # b_star / cvar_predicted are meaningful for the CVaR agent only (the mean agent's
            # utility is not min(x, 0)); its rollout starts from c_0 = 0 (stock-blind objective).
            return {
                "cvar": deep.empirical_cvar(g, alpha),
                "mean_return": g.mean(),
                "safe_fraction": jnp.sum(acts == 0) / jnp.maximum(jnp.sum(acts >= 0), 1),
                "b_star": b_star,
                "cvar_predicted": estimate,
            }
        t = float(config.set_point)
        out = rollout(params, k_roll, hp, -t, n)
        g = out["returns"]
        return {
            "abs_dev": jnp.abs(g - t).mean(),
            "mean_return": g.mean(),
            "stock_abs": jnp.abs(out["stocks"]).mean(axis=1),  # [H + 1] |c_t| = |G_{<t} - t|
        }

    return jax.jit(jax.vmap(one))


def train_task(task: str, config, seeds: list[int]) -> dict[str, Any]:
    """Train mean + risk-aware agents for all seeds (one program); evaluate along training."""
    field, _, risk_obj, metric, _ = TASKS[task]
    agent = config[field]
    algo = deep.make_deep_dn(agent)
    evaluate = make_eval(task, config)
    num_updates = int(agent.num_updates)
    chunk = max(1, num_updates // int(config.num_evals))
    runs = sweep.expand_runs(seeds, {"objective_index": (0.0, 1.0)})
    evals: list[dict[str, np.ndarray]] = []
    steps: list[int] = []
    train_ms: list[dict[str, np.ndarray]] = []

    def callback(done: int, ss: sweep.SweepState, ms: dict[str, np.ndarray]) -> None:
        keys = jnp.stack(
            [jax.random.fold_in(jax.random.PRNGKey(r["seed"]), 10_000 + done) for r in runs]
        )
        n = len(runs)
        params = jax.tree.map(lambda x: x[:n], ss.algo.params)
        hp = {k: v[:n] for k, v in ss.hparams.items()}
        evals.append(jax.tree.map(np.asarray, evaluate(params, hp, keys)))
        steps.append(done)
        train_ms.append({k: np.nanmean(v, axis=1) for k, v in ms.items()})

    t0 = time.time()
    res = sweep.run(
        algo,
        seeds,
        {"objective_index": (0.0, 1.0)},
        chunk_size=chunk,
        progress=bool(config.progress),
        callback=callback,
        progress_metric="episode_return",
    )
    seconds = time.time() - t0
    ev = {k: np.stack([e[k] for e in evals], axis=1) for k in evals[0]}  # [runs, T, ...]
    tr = {k: np.stack([m[k] for m in train_ms], axis=1) for k in train_ms[0]}
    labels = ["mean" if r["objective_index"] == 0.0 else risk_obj for r in runs]
    return {
        "runs": res.runs,
        "labels": labels,
        "steps": np.asarray(steps),
        "eval": ev,
        "train": tr,
        "failed": res.failed_at,
        "seconds": seconds,
        "metric": metric,
        "env_steps_per_update": algo.env_steps_per_update,
    }


def _agg(x: np.ndarray) -> dict[str, Any]:
    lo, hi = stats.bootstrap_ci(x, "iqm", seed=0)
    return {
        "iqm": float(stats.iqm(x)),
        "iqm_ci95": [float(lo), float(hi)],
        "mean": float(np.mean(x)),
        "min": float(np.min(x)),
        "max": float(np.max(x)),
    }


def write_outputs(workdir: str, config, results: dict[str, dict], exact: dict) -> dict:
    """metrics.csv, summary.json and plots; returns the summary."""
    os.makedirs(os.path.join(workdir, "plots"), exist_ok=True)
    rows = []
    summary: dict[str, Any] = {"tasks": {}}
    for task, r in results.items():
        scalar = [k for k, v in r["eval"].items() if v.ndim == 2]
        for i, run in enumerate(r["runs"]):
            for j, step in enumerate(r["steps"]):
                row = {
                    "task": task,
                    "agent": r["labels"][i],
                    "seed": run["seed"],
                    "step": int(step),
                    "env_steps": int(step) * r["env_steps_per_update"],
                }
                row.update({f"train_{k}": float(v[i, j]) for k, v in r["train"].items()})
                row.update({k: float(r["eval"][k][i, j]) for k in scalar})
                rows.append(row)
        metric, ex = r["metric"], exact[task]
        task_sum: dict[str, Any] = {
            "exact": ex,
            "seconds": r["seconds"],
            "failed_runs": int(np.sum(r["failed"] >= 0)),
            "agents": {},
        }
        for label in dict.fromkeys(r["labels"]):
            idx = [i for i, lab in enumerate(r["labels"]) if lab == label]
            final = {k: r["eval"][k][idx, -1] for k in scalar}
            agent_sum = {k: _agg(v) for k, v in final.items()}
            rel = np.abs(final[metric] - ex["optimum"]) / max(abs(ex["optimum"]), 1e-12)
            agent_sum["relative_gap_to_optimum"] = _agg(rel)
            agent_sum["seeds_within_10pct"] = int(np.sum(rel <= 0.10))
            agent_sum["num_seeds"] = len(idx)
            if "stock_abs" in r["eval"]:
                agent_sum["stock_abs_by_time_iqm"] = stats.iqm(
                    r["eval"]["stock_abs"][idx, -1], axis=0
                ).tolist()
            task_sum["agents"][label] = agent_sum
        summary["tasks"][task] = task_sum
    with open(os.path.join(workdir, "metrics.csv"), "w", newline="") as f:
        fields = list(dict.fromkeys(k for row in rows for k in row))
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    with open(os.path.join(workdir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    _plots(workdir, config, results, exact)
    return summary


def _plots(workdir: str, config, results: dict, exact: dict) -> None:
    titles = {
        "gamble": (f"achieved CVaR_{config.alpha:g} of G", "DηN on the gamble (dashed: exact DP)"),
        "homeostasis": (f"E|G - {config.set_point:g}|", "DηN homeostasis (dashed: exact DP)"),
    }
    for task, r in results.items():
        x = r["steps"] * r["env_steps_per_update"]
        curves = {}
        for label in dict.fromkeys(r["labels"]):
            idx = [i for i, lab in enumerate(r["labels"]) if lab == label]
            curves[f"{label} agent"] = (x, r["eval"][r["metric"]][idx])
        ylabel, title = titles[task]
        path = os.path.join(workdir, "plots", f"{task}.png")
        fig = plotting.plot_curves(path, curves, "environment steps per seed", ylabel, title)
        ax = fig.axes[0]
        ax.axhline(exact[task]["optimum"], color="k", ls="--", lw=1, label="exact optimum")
        ax.axhline(
            exact[task]["risk_neutral"],
            color="gray",
            ls=":",
            lw=1,
            label="exact risk-neutral policy",
        )
        ax.legend(frameon=False)
        fig.savefig(path, dpi=100)
        if "stock_abs" in r["eval"]:
            stock = r["eval"]["stock_abs"][:, -1]  # [runs, H + 1]
            t = np.arange(stock.shape[1])
            sc = {}
            for label in dict.fromkeys(r["labels"]):
                idx = [i for i, lab in enumerate(r["labels"]) if lab == label]
                sc[f"{label} agent"] = (t, stock[idx])
            plotting.plot_curves(
                os.path.join(workdir, "plots", "homeostasis_stock.png"),
                sc,
                "time step t",
                "E|c_t| (distance to set point)",
                "stock path after training (c_0 = -set point)",
            )


def run(config, workdir: str) -> dict:
    """Validate, train both tasks, evaluate, write the workdir; returns the summary."""
    validate(config)
    for field in ("gamble", "homeostasis"):
        deep.validate_config(config[field])
    seeds = list(range(int(config.seed), int(config.seed) + int(config.num_seeds)))
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "config.json"), "w") as f:
        json.dump(config.to_dict(), f, indent=2, default=str)
    exact = {task: exact_values(task, config) for task in TASKS}
    results = {task: train_task(task, config, seeds) for task in TASKS}
    return write_outputs(workdir, config, results, exact)


def main(argv) -> None:
    del argv
    summary = run(_CONFIG.value, _WORKDIR.value)
    print(
        json.dumps(
            {
                t: {a: {"iqm": s[TASKS[t][3]]["iqm"]} for a, s in v["agents"].items()}
                for t, v in summary["tasks"].items()
            },
            indent=1,
        )
    )


def reproduce(root: str) -> str:
    """Quick variant into `root/dp_deep`; returns the report's Markdown section."""
    from experiments.configs import dp_deep as cfgs

    config = cfgs.get_config("quick")
    config.progress = False
    t0 = time.time()
    s = run(config, os.path.join(root, "dp_deep"))
    seconds = time.time() - t0
    g, h = s["tasks"]["gamble"], s["tasks"]["homeostasis"]
    gc, gm = g["agents"]["cvar"], g["agents"]["mean"]
    hh, hm = h["agents"]["homeostatic"], h["agents"]["mean"]

    def ci(a: dict) -> str:
        return f"{a['iqm']:.3f} [{a['iqm_ci95'][0]:.3f}, {a['iqm_ci95'][1]:.3f}]"

    n = gc["num_seeds"]
    return "\n".join(
        [
            "## DηN: stock-augmented distributional DQN vs exact distributional DP",
            "",
            f"Quick variant, {n} seeds per agent (IQM [95% bootstrap CI] over seeds), quantile critic,"
            f" {seconds:.0f} s in total. Exact values from `jaxrl.dp.tabular.solve_exact`.",
            "",
            "| task / agent | metric | DηN | exact optimum | exact risk-neutral policy |",
            "|---|---|---|---|---|",
            f"| gamble, CVaR agent | CVaR_{config.alpha:g}(G) | {ci(gc['cvar'])} | "
            f"{g['exact']['optimum']:.3f} | {g['exact']['risk_neutral']:.3f} |",
            f"| gamble, mean agent | CVaR_{config.alpha:g}(G) | {ci(gm['cvar'])} | | |",
            f"| gamble, CVaR agent | fraction of safe actions | {ci(gc['safe_fraction'])} | 1 | 0 |",
            f"| gamble, mean agent | fraction of safe actions | {ci(gm['safe_fraction'])} | | |",
            f"| gamble, mean agent | E[G] | {ci(gm['mean_return'])} | "
            f"{g['exact']['risk_neutral_mean']:.3f} (mean-optimal) | |",
            f"| homeostasis, homeostatic agent | E\\|G - {config.set_point:g}\\| | "
            f"{ci(hh['abs_dev'])} | {h['exact']['optimum']:.3f} | {h['exact']['risk_neutral']:.3f} |",
            f"| homeostasis, mean agent | E\\|G - {config.set_point:g}\\| | {ci(hm['abs_dev'])} | | |",
            "",
            f"CVaR agent within 10% of the exact optimum on {gc['seeds_within_10pct']}/{n} seeds "
            f"(relative gap IQM {gc['relative_gap_to_optimum']['iqm']:.3f}); homeostatic agent within"
            f" 10% of its optimum on {hh['seeds_within_10pct']}/{n} seeds.",
            "",
            "![gamble](dp_deep/plots/gamble.png) ![homeostasis](dp_deep/plots/homeostasis.png)",
            "![stock path](dp_deep/plots/homeostasis_stock.png)",
            "",
        ]
    )


if __name__ == "__main__":
    flags.mark_flags_as_required(["workdir"])
    app.run(main)
