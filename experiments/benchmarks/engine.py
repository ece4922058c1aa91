"""The engine at scale: host overhead per chunk for 64, 1024 and 4096 runs (performance issue,
item 4).

A small algorithm (PPO CartPole, 2 envs x 16 steps, 2 epochs x 2 minibatches, 16x16 networks)
runs through `experiment.run` with a workdir (metrics.csv written every chunk, progress off,
checkpoints every `--checkpoint_every` chunks). The runtime's per-chunk `Result.timings` split
each chunk into `compute` (dispatch of every lane, the device's work, the metrics' transfer) and
`host` (CSV block, progress, loggers, failure check); checkpoints are reported apart. The first
chunk (compilation) is dropped. Peak host memory is sampled after every chunk, to show that it
does not grow with the number of chunks.

  python -m experiments.benchmarks.engine --runs=64,1024,4096 --chunks=12 --chunk_size=5
  python -m experiments.benchmarks.engine --runs=4096 --lane_width=0   # plain vmap

Prints one Markdown row per case.
"""

from __future__ import annotations

import os
import resource
import tempfile
import time

import numpy as np
from absl import app, flags

from jaxrl import experiment, ppo

_RUNS = flags.DEFINE_list("runs", ["64", "1024", "4096"], "Run counts to measure.")
_CHUNKS = flags.DEFINE_integer("chunks", 12, "Chunks per case (the first is compilation).")
_CHUNK_SIZE = flags.DEFINE_integer("chunk_size", 5, "Updates per chunk.")
_LANES = flags.DEFINE_integer("lane_width", -1, "-1: the backend's default; 0: plain vmap.")
_CKPT = flags.DEFINE_integer("checkpoint_every", 1000, "Checkpoint every this many chunks.")


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def case(num_runs: int, chunks: int, chunk_size: int, lane_width: int | str,
         checkpoint_every: int) -> dict:
    """One sweep of `num_runs` PPO runs; per-chunk medians (chunk 0, the compile, dropped)."""
    c = ppo.get_config()
    c.num_envs, c.num_steps, c.num_minibatches, c.update_epochs = 2, 16, 2, 2
    c.hidden = (16, 16)
    c.total_timesteps = 2 * 16 * chunks * chunk_size
    algo = ppo.make_ppo(c)
    rss: list[float] = []
    with tempfile.TemporaryDirectory() as wd:
        t0 = time.perf_counter()
        res = experiment.run(algo, range(num_runs), workdir=os.path.join(wd, "w"),
                             chunk_size=chunk_size, progress=False, lane_width=lane_width,
                             checkpoint_every=checkpoint_every, handle_signals=False,
                             callback=lambda step, ms: rss.append(_rss_mb()))
        wall = time.perf_counter() - t0
    t = {k: v[1:] for k, v in res.timings.items()}
    compute, host = float(np.median(t["compute"])), float(np.median(t["host"]))
    return dict(runs=num_runs, lanes=lane_width, wall=wall, compute=compute, host=host,
                frac=host / (compute + host), ckpt=float(np.max(t["checkpoint"], initial=0)),
                rss_first=rss[1], rss_last=rss[-1],
                steps_per_s=num_runs * 2 * 16 * chunk_size / (compute + host))


def main(argv):
    del argv
    lw = "auto" if _LANES.value < 0 else _LANES.value
    print("| runs | lane_width | wall s | compute s/chunk | host s/chunk | host share | "
          "max ckpt s | RSS MB (chunk 1 -> last) | env steps/s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n in map(int, _RUNS.value):
        r = case(n, _CHUNKS.value, _CHUNK_SIZE.value, lw, _CKPT.value)
        print(f"| {r['runs']} | {r['lanes']} | {r['wall']:.1f} | {r['compute']:.3f} | "
              f"{r['host']:.4f} | {100 * r['frac']:.1f}% | {r['ckpt']:.2f} | "
              f"{r['rss_first']:.0f} -> {r['rss_last']:.0f} | {r['steps_per_s']:,.0f} |",
              flush=True)


if __name__ == "__main__":
    app.run(main)
