"""Calibration diagnostic (issue 19 item 1): is it the error or the dependence of the estimated G?

    python docs/results/bayes_pg/calibration_fisher_source.py [REPETITIONS] [OUT_CSV]

For the two best-calibrated variants of `calibration_causes.py` (`bpg2_mean_het_t`,
`bpg1_het_t`; GP scale and noise fitted by evidence) at M = 10 and 20, the same posterior on the
same M episodes with four Fisher matrices in the kernel: `exact` (the LQR's closed form),
`steps` (per step from the same M episodes, the study's primary), `indep` (per step from M other,
independent episodes: same error, no dependence on the batch) and `pooled` (per step from the
2M episodes: the batch plus the independent ones, half the error variance). Keys
`split(PRNGKey(7 + M), REPETITIONS)` (other keys than the study). Writes one row per (variant,
M, Fisher source, repetition) with the 0/1 coverage of each component's 95% interval to
OUT_CSV (default docs/results/bayes_pg/calibration_fisher_source.csv) and prints the table.
"""

import csv
import sys

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.bayes_pg import bpg, policies
from jaxrl.bayes_pg import gradient_study as gs
from jaxrl.envs.lqr import LQR, LQRParams, lqr_exact_gradient, lqr_trajectory_fisher

SOURCES = ("exact", "steps", "indep", "pooled")
VARIANTS = ("bpg2_mean_het_t", "bpg1_het_t")
COUNTS = (10, 20)


def posterior(key, theta, params, m, source, name):
    """The variant's posterior on M episodes with the Fisher matrix from `source`."""
    ep = policies.collect_episodes(LQR(), params, policies.gaussian_linear_policy(), theta, key,
                                   2 * m, params.max_steps_in_episode)
    batch = jax.tree.map(lambda x: x[:m], ep)
    other = jax.tree.map(lambda x: x[m:], ep)
    g = {"exact": lambda: lqr_trajectory_fisher(theta, params),
         "steps": lambda: bpg.fisher_from_steps(batch.scores),
         "indep": lambda: bpg.fisher_from_steps(other.scores),
         "pooled": lambda: bpg.fisher_from_steps(ep.scores)}[source]()
    post, dof, _ = gs.variant_posterior(name, batch.returns, batch.trajectory_scores, g)
    return post.mean, post.cov, dof


def main(reps: int, out_csv: str) -> None:
    params, theta = LQRParams(), jnp.array([-0.2, 1.0])
    truth = np.asarray(lqr_exact_gradient(theta, params), np.float64)
    rows, table = [], {}
    for name in VARIANTS:
        for m in COUNTS:
            keys = jax.random.split(jax.random.PRNGKey(7 + m), reps)
            for source in SOURCES:
                mu, cov, dof = jax.jit(jax.vmap(
                    lambda k, m=m, s=source, n=name: posterior(k, theta, params, m, s, n)))(keys)
                c = gs.coverage(np.asarray(mu, np.float64), np.asarray(cov, np.float64), truth,
                                np.random.default_rng(m), 2000, np.asarray(dof, np.float64))
                table[name, m, source] = c["inside"].mean()
                rows += [{"variant": name, "M": m, "fisher": source, "repetition": i,
                          "in95_lambda": int(c["inside"][i, 0]),
                          "in95_sigma": int(c["inside"][i, 1])} for i in range(reps)]
    with open(out_csv, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    print("| variant | M | " + " | ".join(SOURCES) + " |")
    print("|---|---|" + "---|" * len(SOURCES))
    for name in VARIANTS:
        for m in COUNTS:
            print(f"| {name} | {m} | " + " | ".join(f"{table[name, m, s]:.3f}" for s in SOURCES)
                  + " |")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000,
         sys.argv[2] if len(sys.argv) > 2
         else "docs/results/bayes_pg/calibration_fisher_source.csv")
