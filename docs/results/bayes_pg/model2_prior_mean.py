"""Exploratory (not part of the study): BPG Model 2 with an empirical prior mean.

    python docs/results/bayes_pg/model2_prior_mean.py [REPETITIONS]

Model 2 puts a zero-mean GP on the return R although R is about -50 on this LQR. Since
`int grad Pr = 0`, a constant prior mean `m` does not change the integral (`rho_0 = m int u Pr =
0`), so the BQ posterior with prior mean `m` = the batch mean return is `U^T C (R - m)` (an
empirical-Bayes choice, like a (non-leave-one-out) baseline). Per M: the mean angle to the exact
gradient and coverage of this variant, Model 2 as in the study and MC + leave-one-out baseline
on the same episodes (G per step from the batch, GP scale and noise fitted by evidence;
repetition keys `split(PRNGKey(1000 + M), REPETITIONS)`).
"""

import sys

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.bayes_pg import bpg, gradient_study, policies
from jaxrl.envs.lqr import LQR, LQRParams, lqr_exact_gradient


def one(key: jax.Array, m: int, theta: jax.Array, params: LQRParams) -> dict:
    ep = policies.collect_episodes(LQR(), params, policies.gaussian_linear_policy(), theta, key,
                                   m, params.max_steps_in_episode)
    r, u = ep.returns, ep.trajectory_scores
    g = bpg.fisher_from_steps(ep.scores)
    out = {"mc_baseline": (bpg.mc_gradient(r, u, baseline=True), None)}
    for name, y in (("bpg2", r), ("bpg2_prior_mean", r - jnp.mean(r))):
        f = bpg.evidence_fit(2, y, u, g)
        post = bpg.bpg_model2(y, u, g, f.noise, signal_scale=f.scale)
        out[name] = (post.mean, post.cov)
    return out


def main(reps: int) -> None:
    params, theta = LQRParams(), jnp.array([-0.2, 1.0])
    truth = np.asarray(lqr_exact_gradient(theta, params), np.float64)
    print("| M | MC + baseline angle | Model 2 angle / coverage_95 | Model 2, prior mean = batch "
          "mean: angle / coverage_95 / angle coverage |")
    print("|---|---|---|---|")
    for m in (5, 10, 20, 40):
        keys = jax.random.split(jax.random.PRNGKey(1000 + m), reps)
        res = jax.jit(jax.vmap(lambda k, m=m: one(k, m, theta, params)))(keys)
        cells = []
        for name in ("mc_baseline", "bpg2", "bpg2_prior_mean"):
            mean = np.asarray(res[name][0], np.float64)
            a = np.asarray(bpg.angle_deg(jnp.asarray(mean), jnp.asarray(truth)))
            cell = f"{a.mean():.1f} +- {1.96 * a.std() / np.sqrt(reps):.1f}"
            if res[name][1] is not None:
                c = gradient_study.coverage(mean, np.asarray(res[name][1]), truth,
                                            np.random.default_rng(m))
                cell += f" / {c['inside'].mean():.3f}"
                if name == "bpg2_prior_mean":
                    cell += f" / {c['angle_inside'].mean():.3f}"
            cells.append(cell)
        print(f"| {m} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
