"""PPO over many seeds (and a hyperparameter grid) as one compiled program.

  python -m experiments.ppo --config=experiments/configs/ppo.py --workdir=DIR \
      --config.num_seeds=64 --config.env_name=CartPole-v1

Writes DIR/config.json, metrics.csv (one row per run and update), summary.json, plots/*.png and
checkpoints/; re-running the same command resumes from the newest complete checkpoint.
"""

from __future__ import annotations

import os
import sys

from absl import app, flags
from ml_collections import config_flags

from experiments import common
from jaxrl import experiment, ppo
from jaxrl.metrics import write_json

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


def validate(config) -> tuple[list[int], dict]:
    """All config checks, before anything compiles: one-line ValueErrors naming the field."""
    seeds = common.seeds_from_config(config)
    grid = common.grid_from_config(config)
    ppo.validate_config(config)
    for name, values in grid.items():
        if name in ("lr", "clip_eps", "max_grad_norm") and min(values) <= 0:
            raise ValueError(f"config.sweep.{name} must be > 0, got {values!r}")
    if int(config.chunk_size) < 0:
        raise ValueError(f"config.chunk_size must be >= 0, got {config.chunk_size!r}")
    if int(config.checkpoint_every) < 1:
        raise ValueError(f"config.checkpoint_every must be >= 1, got {config.checkpoint_every!r}")
    return seeds, grid


def run(config, workdir: str, stop_after_chunks: int | None = None) -> dict:
    """Validate, run (or resume) the sweep, write summary and plots; returns the summary."""
    seeds, grid = validate(config)
    algo = ppo.make_ppo(config)
    data = experiment.run_sweep(
        algo,
        config,
        workdir,
        seeds=seeds,
        grid=grid,
        chunk_size=int(config.chunk_size) or None,
        checkpoint_every=config.checkpoint_every,
        keep_checkpoints=config.keep_checkpoints,
        progress=config.progress,
        halt_on_nan=config.halt_on_nan,
        force_resume=config.force_resume,
        progress_metric="return",
        stop_after_chunks=stop_after_chunks,
    )
    if "interrupted_at" in data:
        return data
    summary = experiment.summarize(data, "return")
    summary["env_name"] = config.env_name
    summary["env_steps_per_run"] = int(data["env_steps"][-1])
    import jax

    if jax.process_index() == 0:
        write_json(os.path.join(workdir, "summary.json"), summary)
        common.plot_learning_curves(
            data,
            "return",
            os.path.join(workdir, "plots", "return.png"),
            f"PPO on {config.env_name} ({len(seeds)} seeds)",
        )
    return summary


def main(argv):
    del argv
    try:
        validate(_CONFIG.value)
    except ValueError as e:
        sys.exit(f"error: {e}")
    summary = run(_CONFIG.value, _WORKDIR.value)
    for a in summary["aggregate"]:
        print({k: v for k, v in a.items()})


def reproduce(root: str) -> str:
    """Quick CartPole sweep for the main job's report; returns its Markdown section."""
    from experiments.configs import ppo as ppo_configs

    config = ppo_configs.get_config("quick")
    config.progress = False
    workdir = os.path.join(root, "ppo")
    summary = run(config, workdir)
    a = summary["aggregate"][0]
    return "\n".join(
        [
            "## PPO (reference workload of the sweep engine)",
            "",
            f"CartPole-v1, {a['num_runs']} seeds x {summary['env_steps_per_run']:,} env steps, "
            "4 envs x 128 steps per update, one compiled program.",
            "",
            "| final return (last 10% of updates) | value |",
            "|---|---|",
            f"| IQM [95% CI] | {a['iqm']:.1f} [{a['iqm_ci95'][0]:.1f}, {a['iqm_ci95'][1]:.1f}] |",
            f"| mean | {a['mean']:.1f} |",
            f"| min / max over seeds | {a['min']:.1f} / {a['max']:.1f} |",
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
    flags.mark_flags_as_required(["workdir"])
    app.run(main)
