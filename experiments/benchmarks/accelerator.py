"""Accelerator benchmark: PPO and STAC through the runtime at 1, 64, 1024 and 4096 runs
(performance issue, item 5).

For every (algorithm, run count) it runs one sweep of 4 chunks through `experiment.run` (lanes
of the backend's default width, no workdir) and reads the runtime's per-chunk timings: the first
chunk compiles, the others give the throughput (env steps per second summed over runs). It
records the compile time, the seconds per chunk, the throughput, the device's peak memory (`memory_stats()`, absent on
CPU) and the final return's mean, then writes `results.json` and `results.md` to `--out`.

  python -m experiments.benchmarks.accelerator --out=$OUT             # on a lent accelerator
  python -m experiments.benchmarks.accelerator --tiny --out=/tmp/acc  # CPU smoke test (seconds)

Sizes (full): PPO CartPole-v1, 4 envs x 128 steps, 4 epochs x 4 minibatches, 64x64, 16 updates
per run; STAC Pendulum-v1, 2x256 networks with dropout and layer norm, batch 256, 1,200 env steps
with 1,000 warm-up (200 gradient updates). The whole job is sized for under 8 minutes on one
H200-class GPU; each case prints as soon as it is measured, so a cut-off job keeps what it did.
"""

from __future__ import annotations

import json
import os
import platform
import time

import jax
import numpy as np
from absl import flags

from experiments import common
from jaxrl import experiment, ppo, sweep
from jaxrl.stac import STACConfig, make_stac

_OUT = flags.DEFINE_string("out", None, "Folder for results.json and results.md.")
_RUNS = flags.DEFINE_list("runs", ["1", "64", "1024", "4096"], "Run counts.")
_ALGOS = flags.DEFINE_list("algos", ["ppo", "stac"], "Algorithms to measure.")
_TINY = flags.DEFINE_bool("tiny", False, "Tiny sizes and run counts 1, 2 (CPU smoke test).")


def make(name: str, tiny: bool) -> sweep.Algorithm:
    """The algorithm of benchmark case `name` at full or tiny size."""
    if name == "ppo":
        c = ppo.get_config()
        if tiny:
            c.num_envs, c.num_steps, c.num_minibatches, c.update_epochs = 2, 8, 1, 1
            c.hidden = (8,)
        c.total_timesteps = c.num_envs * c.num_steps * (4 if tiny else 16)
        return ppo.make_ppo(c)
    if name == "stac":
        if tiny:
            cfg = STACConfig(total_env_steps=24, warmup_steps=20, buffer_size=32, batch_size=4,
                             actor_hidden=(8,), critic_hidden=(8,))
        else:
            cfg = STACConfig(total_env_steps=1_200, warmup_steps=1_000, buffer_size=1_200)
        return make_stac(cfg)
    raise ValueError(f"unknown algorithm {name!r}; valid: ppo, stac")


def _peak_bytes() -> int | None:
    stats = jax.devices()[0].memory_stats()
    return None if not stats else int(stats.get("peak_bytes_in_use", 0))


def case(name: str, num_runs: int, tiny: bool) -> dict:
    """Measure one (algorithm, run count) in one `experiment.run` of 4 chunks: the first chunk
    compiles (compile s = its time minus the median of the others), the other three give the
    throughput (env steps/s summed over runs); peak device bytes; the final metric's mean."""
    algo = make(name, tiny)
    chunk = max(algo.num_updates // 4, 1)
    res = experiment.run(algo, range(num_runs), chunk_size=chunk, progress=False,
                         handle_signals=False)
    per = res.timings["compute"] + res.timings["host"]
    steady = float(np.median(per[1:])) if len(per) > 1 else float(per[0])
    done = chunk * (len(per) - 1) if len(per) > 1 else algo.num_updates
    metric = "return" if "return" in res.metrics else next(iter(res.metrics))
    with np.errstate(all="ignore"):
        final = float(np.nanmean(res.final(metric)))
    return dict(algo=name, runs=num_runs, lane_width=experiment.default_lane_width(),
                compile_s=round(max(float(per[0]) - steady, 0.0), 3),
                chunk_s=round(steady, 4),
                env_steps_per_s=round(num_runs * done * algo.env_steps_per_update
                                      / float(np.sum(per[1:]) if len(per) > 1 else per[0]), 1),
                peak_device_bytes=_peak_bytes(), final_metric=metric,
                final_mean=final if np.isfinite(final) else None)


def main(argv):
    del argv
    common.guarded_main(_main)


def _main() -> None:
    try:
        runs = [int(r) for r in (["1", "2"] if _TINY.value else _RUNS.value)]
        if any(r < 1 for r in runs):
            raise ValueError
    except ValueError:
        raise ValueError(f"--runs must be positive integers, got {_RUNS.value}") from None
    bad = [a for a in _ALGOS.value if a not in ("ppo", "stac")]
    if bad:
        raise ValueError(f"--algos: unknown {bad}; valid: ppo, stac")
    os.makedirs(_OUT.value, exist_ok=True)
    dev = jax.devices()[0]
    header = dict(device=f"{dev.platform}: {dev.device_kind}", device_count=jax.device_count(),
                  jax=jax.__version__, host=platform.node(), tiny=_TINY.value,
                  date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    rows = []
    lines = [f"# Accelerator benchmark ({header['device']}, {header['device_count']} device(s), "
             f"jax {header['jax']}, {header['date']})", "",
             "| algo | runs | lane width | compile s | s per chunk | env steps/s | peak device MB | "
             "final mean |", "|---|---|---|---|---|---|---|---|"]
    for name in _ALGOS.value:
        for n in runs:
            r = case(name, n, _TINY.value)
            rows.append(r)
            mb = "n/a" if r["peak_device_bytes"] is None else f"{r['peak_device_bytes'] / 2**20:.0f}"
            fm = "n/a" if r["final_mean"] is None else f"{r['final_mean']:.1f}"
            lines.append(f"| {name} | {n} | {r['lane_width']} | {r['compile_s']:.1f} | "
                         f"{r['chunk_s']:.3f} | {r['env_steps_per_s']:,.0f} | {mb} | {fm} |")
            print(lines[-1], flush=True)
            with open(os.path.join(_OUT.value, "results.json"), "w") as f:
                json.dump(dict(header, cases=rows), f, indent=1)
            with open(os.path.join(_OUT.value, "results.md"), "w") as f:
                f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    common.run_app(main, required=("out",))
