"""Sampler benchmark: samples per second, NFE needed for a target quality, teleport speed-up.

  python -m experiments.benchmarks.samplers [--quick]

Measured as ratios against a baseline in the same run (Euler for throughput, the no-teleport
Heun solve for teleportation; those two are timed interleaved, A B A B ..., so load changes on a
shared machine hit both alike). Writes experiments/benchmarks/RESULTS_samplers.md (naming the
command, hence whether --quick was used).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

from experiments import samplers as exp
from jaxrl.diffusion import metrics, samplers, scores, sde, teleport


def _time(fn, *args, reps: int = 5) -> float:
    jax.block_until_ready(fn(*args))  # compile + warm up
    best = []
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best.append(time.perf_counter() - t0)
    return float(np.median(best))


def _time_pair(fa, fb, *args, reps: int = 15) -> tuple[float, float]:
    """Median wall times of `fa(*args)` and `fb(*args)` timed alternately (after compiling)."""
    jax.block_until_ready(fa(*args))
    jax.block_until_ready(fb(*args))
    ta, tb = [], []
    for _ in range(reps):
        for fn, acc in ((fa, ta), (fb, tb)):
            t0 = time.perf_counter()
            jax.block_until_ready(fn(*args))
            acc.append(time.perf_counter() - t0)
    return float(np.median(ta)), float(np.median(tb))


def throughput(gmm, nfe: int, batch: int) -> dict:
    dim = gmm.means.shape[1]
    den = scores.gmm_denoiser(gmm)
    out = {}
    for name in samplers.SAMPLERS:
        sig = jnp.asarray(sde.edm_sigmas(samplers.steps_for_nfe(name, nfe)))
        fn = jax.jit(lambda k, name=name, sig=sig: samplers.sample_from_noise(
            k, batch, dim, sig, name=name, denoiser=den)[0])
        out[name] = batch / _time(fn, jax.random.PRNGKey(0))
    return out


def nfe_to_quality(gmm, nfes, num: int, seeds: int, slack: float = 1.2) -> dict:
    """Smallest NFE in `nfes` whose mean sliced W2 is within `slack` x the exact-sample floor."""
    dim = gmm.means.shape[1]
    den = scores.gmm_denoiser(gmm)
    keys = jnp.stack([jax.random.PRNGKey(s) for s in range(seeds)])

    def floor(key):
        k1, k2, k3 = jax.random.split(key, 3)
        return metrics.sliced_wasserstein(k3, scores.sample_gmm(k1, gmm, num),
                                          scores.sample_gmm(k2, gmm, num))

    target = slack * float(jnp.mean(jax.vmap(floor)(keys)))
    res = {}
    for name in samplers.SAMPLERS:
        res[name] = None
        for nfe in nfes:
            sig = jnp.asarray(sde.edm_sigmas(samplers.steps_for_nfe(name, nfe)))

            def q(key, name=name, sig=sig):
                k1, k2, k3 = jax.random.split(key, 3)
                x, used = samplers.sample_from_noise(k1, num, dim, sig, name=name, denoiser=den)
                return metrics.sliced_wasserstein(k3, x, scores.sample_gmm(k2, gmm, num)), used[0]

            sw, used = jax.jit(jax.vmap(q))(keys)
            if float(jnp.mean(sw)) <= target:
                res[name] = int(used[0])
                break
    return {"target_sw": target, "nfe": res}


def teleport_speedup(gmm, steps: int, fraction: float, batch: int) -> dict:
    """Wall time of the sampler alone (no reference sampling or metric inside the timed call),
    no-skip vs teleported Heun, timed interleaved; sliced W2 of each against exact samples."""
    dim = gmm.means.shape[1]
    den = scores.gmm_denoiser(gmm)
    mean, cov = scores.gaussian_moments_of_gmm(gmm)
    sig = jnp.asarray(sde.edm_sigmas(steps))
    skip = teleport.skip_steps_for_fraction(steps, fraction)

    def sample(key, skip):
        k1, k2 = jax.random.split(key)
        x = sig[0] * jax.random.normal(k1, (batch, dim))
        return teleport.teleport_then_sample(k2, x, sig, skip, mean, cov, name="heun",
                                             denoiser=den)

    full = jax.jit(lambda k: sample(k, 0))
    tp = jax.jit(lambda k: sample(k, skip))
    t_full, t_tp = _time_pair(full, tp, jax.random.PRNGKey(0))

    @jax.jit
    def quality(key, y):
        k3, k4 = jax.random.split(jax.random.fold_in(key, 1))
        return metrics.sliced_wasserstein(k4, y, scores.sample_gmm(k3, gmm, batch))

    sws_full, sws_tp = [], []
    for s in range(8):
        key = jax.random.PRNGKey(s)
        sws_full.append(float(quality(key, full(key)[0])))
        sws_tp.append(float(quality(key, tp(key)[0])))
    return dict(steps=steps, skip=skip, nfe_full=int(full(jax.random.PRNGKey(0))[1][0]),
                nfe_tp=int(tp(jax.random.PRNGKey(0))[1][0]), t_full=t_full, t_tp=t_tp,
                sw_full=float(np.mean(sws_full)), sw_tp=float(np.mean(sws_tp)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--shared", action="store_true", help="note that other jobs shared the CPU")
    ap.add_argument("--no_write", action="store_true", help="print only, do not write RESULTS")
    args = ap.parse_args()
    batch = 256 if args.quick else 2048
    g2, g16 = exp.gmm_2d(), exp.gmm_16d(6)
    lines = ["# Sampler benchmark", "",
             f"Machine: {os.cpu_count()}-core CPU ({platform.processor() or platform.machine()}), "
             f"jax {jax.__version__}, backend {jax.default_backend()}."
             + (" Measured while other jobs shared the CPU (load average well above the core "
                "count), so absolute times are inflated and noisy; ratios within one run are the "
                "meaningful figures." if args.shared else ""), "",
             "Command: `python -m experiments.benchmarks.samplers"
             + (" --quick" if args.quick else "") + (" --shared" if args.shared else "") + "`",
             ""]
    for label, gmm in (("2-D GMM", g2), ("16-D GMM", g16)):
        tp = throughput(gmm, 32, batch)
        base = tp["euler"]
        lines += [f"## Throughput, {label}, NFE budget 32, batch {batch} (exact mixture score)",
                  "", "| sampler | samples/s | ratio to Euler |", "|---|---|---|"]
        lines += [f"| {k} | {v:,.0f} | {v / base:.2f} |" for k, v in tp.items()]
        lines.append("")
    nq = nfe_to_quality(g2, (4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256),
                        num=500 if args.quick else 2000, seeds=4 if args.quick else 8)
    lines += ["## NFE to quality, 2-D GMM", "",
              f"Smallest NFE (grid 4..256) with mean sliced W2 over seeds <= 1.2 x the "
              f"exact-sample floor ({nq['target_sw']:.4f}).", "", "| sampler | NFE |", "|---|---|"]
    lines += [f"| {k} | {v if v is not None else '> 256'} |" for k, v in nq["nfe"].items()]
    lines.append("")
    lines += [f"## Teleportation speed-up at equal quality (Heun, EDM schedule, batch {batch}; "
              "wall time of the sampler alone, timed interleaved)", "",
              "| data | steps | skipped | NFE | wall time (s) | speed-up | sliced W2 full -> "
              "teleport |", "|---|---|---|---|---|---|---|"]
    for label, gmm in (("2-D GMM", g2), ("16-D GMM", g16)):
        for steps in (12, 18):
            r = teleport_speedup(gmm, steps, 0.25, batch)
            lines.append(f"| {label} | {steps} | {r['skip']} | {r['nfe_full']} -> {r['nfe_tp']}"
                         f" | {r['t_full']:.4f} -> {r['t_tp']:.4f} | "
                         f"{r['t_full'] / r['t_tp']:.2f}x | {r['sw_full']:.4f} -> "
                         f"{r['sw_tp']:.4f} |")
    lines += ["", "Wall times at small batch on a shared CPU are noisy; the NFE reduction at "
              "unchanged sliced W2 is the reliable figure (when the score network dominates the "
              "cost, wall time scales with NFE)."]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS_samplers.md")
        with open(path, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
