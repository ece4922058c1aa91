"""PPO CartPole sweep throughput: seeds vmapped in one program vs a Python loop over seeds.

Configuration of the reference (PureJaxRL): 4 envs x 128 steps per seed and update, 4 epochs x 4
minibatches, 5e5 env steps per seed.

  python -m experiments.benchmarks.ppo --seeds=1,8,32          # vmapped sweeps, in-process
  python -m experiments.benchmarks.ppo --seeds=64 --lane_width=0  # plain vmap (no bit promise)
  python -m experiments.benchmarks.ppo --mode=loop --seeds=8   # baseline: loop over seeds
  python -m experiments.benchmarks.ppo --mode=once --seeds=8   # one whole run (for A/B timing
                                                               # of whole processes)

For each case it prints compile time, run time, env steps/s summed over seeds, final return and
the process's peak RSS. Whole-process A/B against the PureJaxRL anchor is done by timing
`--mode=once` against the anchor's `run_once.py` (see RESULTS.md).
"""

from __future__ import annotations

import resource
import time

import jax
import numpy as np
from absl import app, flags

from jaxrl import ppo, sweep

_SEEDS = flags.DEFINE_list("seeds", ["1", "8", "32"], "Seed counts to measure.")
_MODE = flags.DEFINE_enum("mode", "vmap", ["vmap", "loop", "once"], "What to measure.")
_STEPS = flags.DEFINE_integer("total_timesteps", 500_000, "Env steps per seed.")
_CHUNKS = flags.DEFINE_integer("chunks", 1, "Jitted chunks per run (1 = whole run in one call).")
_LANES = flags.DEFINE_integer("lane_width", -1, "Runtime lanes: -1 backend default, 0 plain vmap.")
_UNROLL = flags.DEFINE_integer("unroll", None, "Override config.unroll (rollout/GAE scan unroll).")


def _config():
    c = ppo.get_config()
    c.total_timesteps = _STEPS.value
    if _UNROLL.value is not None:
        c.unroll = _UNROLL.value
    return c


def _peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def bench_vmap(n: int) -> dict:
    """The runtime (`experiment.run`, no workdir) with `--lane_width` (-1 = the backend's
    default, 0 = plain vmap over all runs). The sweep runs twice in one process: run_s is the
    second (its programs are cached), compile_s the first minus the second."""
    from jaxrl import experiment

    algo = ppo.make_ppo(_config())
    lw = "auto" if _LANES.value < 0 else _LANES.value
    kw = dict(chunk_size=algo.num_updates // _CHUNKS.value, progress=False, lane_width=lw)
    t0 = time.perf_counter()
    experiment.run(algo, range(n), **kw)
    t_first = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = experiment.run(algo, range(n), **kw)
    t_run = time.perf_counter() - t0
    steps = n * algo.num_updates * algo.env_steps_per_update
    final = res.metrics["return"][:, -1]
    return {"seeds": n, "compile_s": max(t_first - t_run, 0.0), "run_s": t_run,
            "steps_per_s": steps / t_run, "final_return_mean": float(final.mean()),
            "peak_rss_gb": _peak_rss_gb()}


def bench_loop(n: int) -> dict:
    algo = ppo.make_ppo(_config())
    train = jax.jit(sweep.make_train(algo))
    t0 = time.perf_counter()
    train.lower(jax.random.PRNGKey(0)).compile()
    t_compile = time.perf_counter() - t0
    t0 = time.perf_counter()
    finals = []
    for s in range(n):
        _, m = train(jax.random.PRNGKey(s))
        finals.append(float(m["return"][-1]))
    t_run = time.perf_counter() - t0
    steps = n * algo.num_updates * algo.env_steps_per_update
    return {"seeds": n, "compile_s": t_compile, "run_s": t_run, "steps_per_s": steps / t_run,
            "final_return_mean": float(np.mean(finals)), "peak_rss_gb": _peak_rss_gb()}


def main(argv):
    del argv
    for n in [int(s) for s in _SEEDS.value]:
        if _MODE.value == "once":
            algo = ppo.make_ppo(_config())
            out = jax.jit(jax.vmap(sweep.make_train(algo)))(
                jax.vmap(jax.random.PRNGKey)(np.arange(n)))
            print(f"final_mean_return {float(np.asarray(out[1]['return'])[:, -1].mean()):.1f}")
            continue
        r = bench_vmap(n) if _MODE.value == "vmap" else bench_loop(n)
        print(f"{_MODE.value} seeds={r['seeds']} compile={r['compile_s']:.1f}s "
              f"run={r['run_s']:.2f}s env_steps/s={r['steps_per_s']:,.0f} "
              f"final_return={r['final_return_mean']:.1f} peak_rss={r['peak_rss_gb']:.2f}GB",
              flush=True)


if __name__ == "__main__":
    app.run(main)
