"""Calibration diagnostic (issue 19 item 1): which modelling choice costs BPG's coverage.

    python docs/results/bayes_pg/calibration_causes.py [REPETITIONS] [OUT_CSV]

For G per step, G per step with the action expectation taken analytically (`states`,
`policies.fisher_from_states`) and exact G, M = 5, 10, 20, 40 and every variant of
`gradient_study.CALIBRATION_VARIANTS` (BPG Models 1 and 2 with the GP scale and noise fitted by
evidence; switches: Student-t marginal from integrating the common scale s^2 (Jeffreys prior),
heteroscedastic noise b diag(k(u_i, u_i)), Model 2's constant prior mean integrated out):
coverage_95 of the component intervals and the angle coverage. Keys as in the study
(`split(fold_in(PRNGKey(0), M), REPETITIONS)[r]`, first M of 40 drawn episodes), so the plain
`bpg1` / `bpg2` rows are the study's. Writes one row per (G, M, repetition) to OUT_CSV
(default docs/results/bayes_pg/calibration_causes.csv) and prints the markdown table.
"""

import csv
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.bayes_pg import gradient_study as gs
from jaxrl.envs.lqr import LQRParams, lqr_exact_gradient

COUNTS = (5, 10, 20, 40)


def main(reps: int, out_csv: str) -> None:
    t0 = time.time()
    params, theta = LQRParams(), jnp.array([-0.2, 1.0])
    truth = np.asarray(lqr_exact_gradient(theta, params), np.float64)
    names = tuple(gs.CALIBRATION_VARIANTS)
    rows, table = [], {}
    for mode in ("steps", "states", "exact"):
        for m in COUNTS:
            keys = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(0), m), reps)
            res = jax.jit(jax.vmap(lambda k, m=m, mode=mode: gs.calibration_variants(
                k, theta, params, m, mode, num_drawn=max(COUNTS))))(keys)
            res = {k: np.asarray(v, np.float64) for k, v in res.items()}
            cols = {"fisher": [mode] * reps, "M": [m] * reps, "run": list(range(reps))}
            for n in names:
                c = gs.coverage(res[n], res[f"{n}_cov"], truth, np.random.default_rng(m),
                                2000, res[f"{n}_dof"])
                table[mode, m, n] = (c["inside"].mean(), c["angle_inside"].mean())
                sd = np.sqrt(np.diagonal(res[f"{n}_cov"], axis1=1, axis2=2))
                for j, comp in enumerate(("lambda", "sigma")):
                    cols[f"{n}_{comp}"] = res[n][:, j]
                    cols[f"{n}_sd_{comp}"] = sd[:, j]
                    cols[f"{n}_in_{comp}"] = c["inside"][:, j].astype(int)
                cols[f"{n}_in_angle"] = c["angle_inside"].astype(int)
                cols[f"{n}_dof"] = res[f"{n}_dof"]
                cols[f"{n}_at_bound"] = res[f"{n}_at_bound"].astype(int)
            rows += [dict(zip(cols, vals, strict=True)) for vals in zip(*cols.values(),
                                                                        strict=True)]
            print(f"{mode} M={m} done {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    with open(out_csv, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    print("| G | M | " + " | ".join(names) + " |")
    print("|---|---|" + "---|" * len(names))
    for mode in ("steps", "states", "exact"):
        for m in COUNTS:
            print(f"| {mode} | {m} | " + " | ".join(
                "{:.3f} / {:.3f}".format(*table[mode, m, n]) for n in names) + " |")
    print(f"wall time {time.time() - t0:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000,
         sys.argv[2] if len(sys.argv) > 2 else "docs/results/bayes_pg/calibration_causes.csv")
