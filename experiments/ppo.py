"""PPO over many seeds (and a hyperparameter grid) as one compiled program.

  python -m experiments.ppo --config=experiments/configs/ppo.py --workdir=DIR \
      --config.num_seeds=64 --config.algo.env_name=CartPole-v1

Writes DIR/config.json, metrics.csv (one row per run and update), summary.json, plots/*.png and
checkpoints/ through `jaxrl.experiment.run`; re-running the same command resumes.
"""

from __future__ import annotations

import os

from absl import flags
from ml_collections import config_flags

from experiments import common
from jaxrl import experiment, ppo

_CONFIG = config_flags.DEFINE_config_file(
    "config",
    "experiments/configs/ppo.py",
    "PPO config file.",
    lock_config=True,
    allow_override=True,
)
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Results directory (resumed if it exists).", allow_override=True
)


def validate(config) -> tuple[list[int], dict, ppo.PPOConfig]:
    """All config checks, before anything compiles or is written: one-line ValueErrors."""
    seeds = common.seeds_from_config(config)
    grid = common.grid_from_config(config)
    common.validate_runtime(config)
    algo_cfg = ppo.validate_config(config.algo, grid, prefix="config.algo")
    return seeds, grid, algo_cfg


def run(config, workdir: str, stop_after_chunks: int | None = None) -> dict:
    """Validate, run (or resume) the sweep, write summary and plots; returns the summary."""
    seeds, grid, algo_cfg = validate(config)
    result = experiment.run(ppo.make_ppo(algo_cfg), seeds, grid, workdir=workdir, config=config,
                            progress_metric="return", stop_after_chunks=stop_after_chunks,
                            **common.runtime_kwargs(config))
    if result.interrupted_at is not None:
        return {"interrupted_at": result.interrupted_at}
    summary = experiment.summarize(result, "return")
    summary["env_name"] = algo_cfg.env_name
    summary["env_steps_per_run"] = int(result.env_steps[-1])
    experiment.finish(workdir, result, summary)
    experiment.plot_curves(result, "return", os.path.join(workdir, "plots", "return.png"),
                           f"PPO on {algo_cfg.env_name} ({len(seeds)} seeds)")
    return summary


def main(argv):
    del argv
    summary = common.guarded_main(lambda: run(_CONFIG.value, _WORKDIR.value))
    for a in summary["aggregate"]:
        print(a)


def _f(x, fmt=".1f") -> str:
    return "n/a" if x is None else format(x, fmt)


def reproduce(root: str) -> str:
    """Quick CartPole sweep for the main job's report; returns its Markdown section."""
    from experiments.configs import ppo as ppo_configs

    config = ppo_configs.get_config("quick")
    config.progress = False
    summary = run(config, os.path.join(root, "ppo"))
    a = summary["aggregate"][0]
    ci = a["iqm_ci95"] or [None, None]
    return "\n".join(
        [
            "## PPO (reference workload of the sweep engine)",
            "",
            f"CartPole-v1, {a['num_runs']} seeds x {summary['env_steps_per_run']:,} env steps, "
            "4 envs x 128 steps per update, one compiled program.",
            "",
            "| final return (last 10% of updates) | value |",
            "|---|---|",
            f"| IQM [95% CI] | {_f(a['iqm'])} [{_f(ci[0])}, {_f(ci[1])}] |",
            f"| mean | {_f(a['mean'])} |",
            f"| min / max over seeds | {_f(a['min'])} / {_f(a['max'])} |",
            f"| failed seeds | {summary['num_failed']} |",
            "",
            "![PPO CartPole](ppo/plots/return.png)",
            "",
            "The quick run is 1e5 steps per seed; the full claim (return >= 400 within 5e5 steps on",
            ">= 7 of 8 seeds) is the default config, see README.",
            "",
        ]
    )


if __name__ == "__main__":
    common.run_app(main)
