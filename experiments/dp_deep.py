"""DηN, the stock-augmented distributional DQN, against the exact DP optimum.

  python -m experiments.dp_deep --config=experiments/configs/dp_deep.py[:quick] --workdir=DIR

Three finite-horizon tasks (`Gamble-v0`, `Homeostasis-v0`, `StockNecessity-v0` from `jaxrl.envs.make`: plain gymnax
envs that the agent wraps in the stock augmentation `jaxrl.envs.stock.StockAugmentation`), each a
finite MDP whose exact optimum is computed by `jaxrl.dp.tabular.solve_exact`:

* Gamble (H = 3; safe +1 or risky +4/-2 w.p. 0.6/0.4): a risk-neutral agent (`mean`) and a CVaR
  agent (`cvar`, alpha = config.alpha) train as one program over seeds. The CVaR agent
  picks its threshold `b` by maximizing its own Rockafellar-Uryasev estimate at the initial
  state (outer max of the paper, sec. 5), then acts greedily for `min(c + Z, 0)` from `c_0 = -b`.
  Reported: the CVaR_alpha of its evaluation returns, next to the exact optimum.
* Stock necessity (H = 3; `StockNecessity-v0`): P(G >= 1) is 0.75 with the stock and at most
  0.5 for any policy of (state, time). The same threshold agent (c_0 = -threshold) trains with the
  stock and with it frozen at c_0 (`carry_stock` 1 / 0, one program); reported: the success rate
  of each next to the exact optimum and the best stock-free value (brute force over Markov
  policies, `jaxrl.dp.scalar.best_markov_value`).
* Homeostasis (H = 6; push -1/0/+1 against a downward-drifting disturbance): a `mean` and a
  `homeostatic` agent (`-|c + Z|`, `c_0 = -set_point`); reported: E|G - set point| (= the mean
  distance of the final stock from the set point) next to the exact optimum, and the stock path.

Evaluation is the runtime's: `jaxrl.dp.deep.make_greedy_evaluate` runs every
`num_updates // num_evals` updates (and at the end) with keys from (seed, evaluation index), so
both agents of a seed are evaluated on the same episodes' randomness.

Writes, per task, DIR/<task>/deep_dn/ with the runtime's files (config.json, metrics.csv: training
metrics per update, eval.csv: evaluation metrics per evaluation point, checkpoints/, summary.json);
re-running the same command resumes. At the top: DIR/config.json, DIR/summary.json and
DIR/plots/*.png.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags
from ml_collections import config_flags

from experiments import common
from jaxrl import experiment, plotting, stats
from jaxrl.distributions import FiniteSupport, cvar
from jaxrl.dp import deep
from jaxrl.envs import gamble as gamble_envs
from jaxrl.metrics import write_json

_CONFIG = config_flags.DEFINE_config_file(
    "config",
    "experiments/configs/dp_deep.py",
    "DηN config file.",
    lock_config=True,
    allow_override=True,
)
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Results directory (resumed if it exists).", allow_override=True
)

class Task(NamedTuple):
    """One task of the study: its config field, MDP builder, the agents' objective names, the
    grid that makes the two agents of a seed (one program), their labels (in grid order), the
    evaluation metric of the comparison and whether higher is better."""

    field: str
    build: Callable[..., dict]
    objective: tuple[str, ...]
    grid: dict[str, tuple[float, ...]]
    labels: tuple[str, str]
    metric: str
    higher_is_better: bool


TASKS = {
    # the mean agent (objective_index 0) against the risk-aware one (1)
    "gamble": Task("gamble", gamble_envs.gamble_mdp, ("mean", "cvar"),
                   {"objective_index": (0.0, 1.0)}, ("mean", "cvar"), "cvar", True),
    "homeostasis": Task("homeostasis", gamble_envs.homeostasis_mdp, ("mean", "homeostatic"),
                        {"objective_index": (0.0, 1.0)}, ("mean", "homeostatic"), "abs_dev",
                        False),
    # the same threshold agent with the stock (carry_stock 1) and with it frozen at c_0 (0)
    "necessity": Task("necessity", gamble_envs.stock_necessity_mdp, ("threshold",),
                      {"carry_stock": (1.0, 0.0)}, ("with_stock", "without_stock"), "success",
                      True),
}
METHOD = "deep_dn"  # the sub-workdir of each task's program


def validate(config) -> tuple[list[int], dict[str, deep.DeepDNConfig]]:
    """One-line `ValueError` naming the bad field, before anything compiles or is written.
    Returns the seeds and each task's agent config."""
    seeds = common.seeds_from_config(config)
    common.validate_runtime(config)
    if int(config.num_evals) < 1:
        raise ValueError(f"config.num_evals must be >= 1, got {config.num_evals}")
    if int(config.eval_episodes) < 10:
        raise ValueError(f"config.eval_episodes must be >= 10, got {config.eval_episodes}")
    if not 0.0 < float(config.alpha) <= 1.0:
        raise ValueError(f"config.alpha must be in (0, 1], got {config.alpha}")
    if not np.isfinite(float(config.threshold)):
        raise ValueError(f"config.threshold must be a finite number, got {config.threshold}")
    if not float(config.b_step) > 0:
        raise ValueError(f"config.b_step must be > 0, got {config.b_step}")
    if not float(config.b_max) >= float(config.b_min):
        raise ValueError(f"config.b_max must be >= config.b_min, got {config.b_max}")
    tasks = tuple(config.tasks)
    if not tasks or len(set(tasks)) != len(tasks) or any(t not in TASKS for t in tasks):
        raise ValueError(f"config.tasks must be distinct names of {tuple(TASKS)}, got {tasks!r}")
    agents = {}
    for task in tasks:
        spec = TASKS[task]
        field = spec.field
        names = deep.objective_names(config[field].objective)
        if names != spec.objective:
            raise ValueError(
                f"config.{field}.objective must be {spec.objective} for {task}, got {names}"
            )
        agent = deep.validate_config(config[field], spec.grid, prefix=f"config.{field}",
                                     sweep_prefix=f"{task} grid")
        if agent.num_updates < int(config.num_evals):
            raise ValueError(
                f"config.{field}.num_updates must be >= config.num_evals, got {agent.num_updates}"
            )
        agents[task] = agent
    return seeds, agents


def exact_values(task: str, config, agent: deep.DeepDNConfig) -> dict[str, float]:
    """Exact optimum of the risk-aware objective and the risk-neutral policy's score on it (on
    the necessity task: the optimum with the stock and the best stock-free (Markov) value)."""
    from jaxrl.dp import objectives, tabular

    m = TASKS[task].build(**dict(agent.env_kwargs))
    mdp = tabular.validate_mdp(m["P"], m["R"], m["mu0"], m["gamma"], m["horizon"])
    if task == "necessity":
        from jaxrl.dp.scalar import best_markov_value

        obj = objectives.make_objective("threshold", threshold=float(config.threshold))
        return {"optimum": tabular.solve_exact(mdp, obj).objective_value,
                "best_markov": best_markov_value(mdp, obj)[0]}
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


def make_evaluate(task: str, config, agent: deep.DeepDNConfig):
    """The task's `evaluate(state, key, hp) -> {name: scalar}` (see `deep.make_greedy_evaluate`):
    CVaR with the outer max over b on the gamble, E|G - set point| and the stock path on the
    homeostasis task, P(G >= threshold) on the necessity task. On the gamble and at state 3 of
    the necessity task action 0 is the safe one (`action_0_fraction`)."""
    n = int(config.eval_episodes)
    if task == "gamble":
        b_grid = np.arange(config.b_min, config.b_max + 0.5 * config.b_step, config.b_step)
        return deep.make_greedy_evaluate(agent, n, cvar_alpha=float(config.alpha), b_grid=b_grid)
    if task == "necessity":
        return deep.make_greedy_evaluate(agent, n, threshold=float(config.threshold))
    return deep.make_greedy_evaluate(agent, n, set_point=float(config.set_point))


def eval_every(config, agent: deep.DeepDNConfig) -> int:
    return max(1, agent.num_updates // int(config.num_evals))


def train_task(task: str, config, seeds: list[int], agent: deep.DeepDNConfig, root: str,
               stop_after_chunks: int | None = None) -> tuple[experiment.Result, float]:
    """Train the mean and the risk-aware agent of `task` for all seeds (one program, or resume
    it), evaluating along training; returns the Result and this invocation's seconds."""
    algo = deep.make_deep_dn(agent)._replace(evaluate=make_evaluate(task, config, agent))
    every = eval_every(config, agent)
    kw = common.runtime_kwargs(config)
    kw["chunk_size"] = kw["chunk_size"] or every
    stored = {"experiment": "dp_deep", "task": task, "agent": experiment.config_to_dict(agent),
              **{k: config[k] for k in ("num_evals", "eval_episodes", "alpha", "set_point",
                                        "b_min", "b_max", "b_step")}}
    if task == "necessity":  # a new field: older workdirs of the other tasks still resume
        stored["threshold"] = config.threshold
    t0 = time.time()
    result = experiment.run(algo, seeds, TASKS[task].grid, workdir=os.path.join(root, task, METHOD),
                            config=stored, eval_every=every, progress_metric="episode_return",
                            stop_after_chunks=stop_after_chunks, **kw)
    return result, time.time() - t0


def _labels(result: experiment.Result, task: str) -> list[str]:
    """The agent label of each run (by its value of the task's grid key)."""
    spec = TASKS[task]
    (key, values), = spec.grid.items()
    return [spec.labels[values.index(r[key])] for r in result.runs]


def _stock_path(result: experiment.Result, idx: list[int]) -> np.ndarray:
    """`[runs, H + 1]` E|c_t| at the last evaluation."""
    cols = sorted((k for k in result.evals if k.startswith("stock_abs_t")),
                  key=lambda k: int(k[len("stock_abs_t"):]))
    return np.stack([result.evals[k][idx, -1] for k in cols], axis=1)


def summarize_task(task: str, result: experiment.Result, exact: dict, seconds: float) -> dict:
    """Per agent: the final evaluation metrics (IQM, 95% CI, mean, min, max over seeds, by
    `experiment.summarize`), the relative gap to the exact optimum, seeds within 10%."""
    spec = TASKS[task]
    metric = spec.metric
    labels = _labels(result, task)
    (key, values), = spec.grid.items()
    finals = {m: experiment.summarize(result, m, source="eval", last_frac=0.0)
              for m in sorted(result.evals) if not m.startswith("stock_abs_t")}
    rel = np.abs(result.evals[metric][:, -1] - exact["optimum"]) / max(abs(exact["optimum"]),
                                                                       1e-12)
    gap = experiment.summarize({"runs": result.runs, "steps": result.eval_steps[-1:],
                                "gap": rel[:, None]}, "gap")
    out: dict[str, Any] = {"exact": exact, "seconds_this_invocation": round(seconds, 1),
                           "failed_runs": result.num_failed, "agents": {}}
    for point, label in zip(values, spec.labels, strict=True):
        idx = [i for i, lab in enumerate(labels) if lab == label]
        entry = lambda s: next(a for a in s["aggregate"] if a[key] == point)
        agent = {m: entry(s) for m, s in finals.items()}
        agent["relative_gap_to_optimum"] = entry(gap)
        agent["seeds_within_10pct"] = int(np.sum(rel[idx] <= 0.10))
        agent["num_seeds"] = len(idx)
        if task == "gamble":
            agent["safe_fraction"] = agent["action_0_fraction"]
        elif task == "homeostasis":
            agent["stock_abs_by_time_iqm"] = stats.iqm(_stock_path(result, idx), axis=0).tolist()
        out["agents"][label] = agent
    return out


def write_plots(workdir: str, config, results: dict, exact: dict) -> None:
    titles = {
        "gamble": (f"achieved CVaR_{config.alpha:g} of G", "DηN on the gamble (dashed: exact DP)"),
        "homeostasis": (f"E|G - {config.set_point:g}|", "DηN homeostasis (dashed: exact DP)"),
        "necessity": (f"P(G >= {config.threshold:g})",
                      "DηN with and without the stock (dashed: exact DP)"),
    }
    for task, result in results.items():
        metric = TASKS[task].metric
        labels = _labels(result, task)
        x = result.eval_steps * result.env_steps_per_update
        curves = {}
        for label in dict.fromkeys(labels):
            idx = [i for i, lab in enumerate(labels) if lab == label]
            curves[f"{label} agent"] = (x, result.evals[metric][idx])
        ylabel, title = titles[task]
        path = os.path.join(workdir, "plots", f"{task}.png")
        fig = plotting.plot_curves(path, curves, "environment steps per seed", ylabel, title)
        ax = fig.axes[0]
        ax.axhline(exact[task]["optimum"], color="k", ls="--", lw=1, label="exact optimum")
        if task == "necessity":
            ax.axhline(exact[task]["best_markov"], color="gray", ls=":", lw=1,
                       label="best stock-free (Markov) policy")
        else:
            ax.axhline(exact[task]["risk_neutral"], color="gray", ls=":", lw=1,
                       label="exact risk-neutral policy")
        ax.legend(frameon=False)
        fig.savefig(path, dpi=100)
        if task == "homeostasis":
            sc = {}
            for label in dict.fromkeys(labels):
                idx = [i for i, lab in enumerate(labels) if lab == label]
                stock = _stock_path(result, idx)
                sc[f"{label} agent"] = (np.arange(stock.shape[1]), stock)
            plotting.plot_curves(os.path.join(workdir, "plots", "homeostasis_stock.png"), sc,
                                 "time step t", "E|c_t| (distance to set point)",
                                 "stock path after training (c_0 = -set point)")
    import matplotlib.pyplot as plt

    plt.close("all")


def run(config, workdir: str, stop_after_chunks: int | None = None) -> dict:
    """Validate, train (or resume) both tasks with evaluation, write summary and plots."""
    seeds, agents = validate(config)
    if jax.process_index() == 0:
        write_json(os.path.join(workdir, "config.json"), config.to_dict())
    exact = {task: exact_values(task, config, agent) for task, agent in agents.items()}
    results, summary = {}, {"tasks": {}, "num_seeds": len(seeds)}
    for task in agents:
        result, seconds = train_task(task, config, seeds, agents[task], workdir,
                                     stop_after_chunks)
        if result.interrupted_at is not None:
            return {"interrupted_at": result.interrupted_at, "task": task}
        s = summarize_task(task, result, exact[task], seconds)
        experiment.finish(os.path.join(workdir, task, METHOD), result, s)
        results[task], summary["tasks"][task] = result, s
    experiment.finish(workdir, None, summary)
    write_plots(workdir, config, results, exact)
    return summary


def main(argv) -> None:
    del argv
    summary = common.guarded_main(lambda: run(_CONFIG.value, _WORKDIR.value))
    print(json.dumps({t: {a: {"iqm": s[TASKS[t].metric]["iqm"]} for a, s in v["agents"].items()}
                      for t, v in summary["tasks"].items()}, indent=1))


def reproduce(root: str) -> str:
    """Quick variant into `root/dp_deep`; returns the report's Markdown section."""
    from experiments.configs import dp_deep as cfgs

    config = cfgs.get_config("quick")
    config.progress = False
    t0 = time.time()
    s = run(config, os.path.join(root, "dp_deep"))
    seconds = time.time() - t0
    g, h, nc = s["tasks"]["gamble"], s["tasks"]["homeostasis"], s["tasks"]["necessity"]
    gc, gm = g["agents"]["cvar"], g["agents"]["mean"]
    hh, hm = h["agents"]["homeostatic"], h["agents"]["mean"]
    nw, nwo = nc["agents"]["with_stock"], nc["agents"]["without_stock"]

    def ci(a: dict) -> str:
        if a.get("iqm") is None:
            return "n/a (every seed failed)"
        lo, hi = a["iqm_ci95"]
        return f"{a['iqm']:.3f} [{lo:.3f}, {hi:.3f}]"

    n = gc["num_seeds"]
    return "\n".join(
        [
            "## DηN: stock-augmented distributional DQN vs exact distributional DP",
            "",
            f"Quick variant, {n} seeds per agent (IQM [95% stratified-bootstrap CI] over seeds of "
            f"the last evaluation, {config.eval_episodes} greedy episodes per seed), quantile "
            f"critic, {seconds:.0f} s in total (this invocation). Exact values from "
            "`jaxrl.dp.tabular.solve_exact`.",
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
            f"| stock necessity, with the stock | P(G >= 1) | {ci(nw['success'])} | "
            f"{nc['exact']['optimum']:.3f} | best stock-free policy: "
            f"{nc['exact']['best_markov']:.3f} |",
            f"| stock necessity, stock frozen at c_0 | P(G >= 1) | {ci(nwo['success'])} | | |",
            "",
            f"CVaR agent within 10% of the exact optimum on {gc['seeds_within_10pct']}/{n} seeds "
            f"(relative gap IQM {ci(gc['relative_gap_to_optimum'])}); homeostatic agent within"
            f" 10% of its optimum on {hh['seeds_within_10pct']}/{n} seeds; on the "
            "stock-necessity task (threshold objective, c_0 = -0.5; the returns are odd "
            "integers, so G >= 0.5 iff G >= 1) the agent with the stock is within 10% of the "
            f"optimum on {nw['seeds_within_10pct']}/{n} seeds and the same agent with the stock "
            f"frozen at c_0 on {nwo['seeds_within_10pct']}/{n} (no stock-free policy exceeds "
            f"{nc['exact']['best_markov']:.2f}).",
            "",
            "![gamble](dp_deep/plots/gamble.png) ![homeostasis](dp_deep/plots/homeostasis.png)",
            "![stock path](dp_deep/plots/homeostasis_stock.png) "
            "![necessity](dp_deep/plots/necessity.png)",
            "",
        ]
    )


if __name__ == "__main__":
    flags.mark_flags_as_required(["workdir"])
    app.run(main)
