"""Updates to reach a target return per (estimator, step size) from learning_<env>.csv.

    python docs/results/bayes_pg/learning_table.py [CSV] [TARGET]

Median over seeds of the number of fixed-step updates before the exact expected return first
reaches TARGET (inf = never within the run), 95% percentile-bootstrap CI of the median (2000
resamples of the seeds, NumPy seed 0), fraction of seeds reaching it, and the mean exact return
after 5 and 10 updates.
"""

import csv
import os
import sys
from collections import defaultdict

import numpy as np


def main(path: str, target: float) -> None:
    runs = defaultdict(dict)
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            runs[(r["estimator"], float(r["lr"]), int(r["run"]))][int(r["update"])] = float(
                r["return"])
    table = defaultdict(list)
    for (est, lr, _), d in runs.items():
        ret = np.array([d[k] for k in sorted(d)])
        table[(est, lr)].append(ret)
    rng = np.random.default_rng(0)
    print(f"| estimator | step size | seeds | median updates to {target} [95% CI] | reached | "
          "mean return after 5 / 10 updates |")
    print("|---|---|---|---|---|---|")
    for (est, lr) in sorted(table):
        rets = np.stack(table[(est, lr)])
        hit = np.nan_to_num(rets, nan=-np.inf) >= target
        its = np.where(hit.any(1), np.argmax(hit, 1).astype(float), np.inf)
        boots = np.median(its[rng.integers(0, len(its), (2000, len(its)))], axis=1)
        lo, hi = np.percentile(boots, [2.5, 97.5])
        fmt = lambda x: "never" if not np.isfinite(x) else f"{x:.0f}"  # noqa: E731
        print(f"| {est} | {lr:g} | {len(its)} | {fmt(np.median(its))} [{fmt(lo)}, {fmt(hi)}] | "
              f"{np.mean(np.isfinite(its)):.2f} | {np.nanmean(rets[:, 5]):.2f} / "
              f"{np.nanmean(rets[:, 10]):.2f} |")


if __name__ == "__main__":
    here = os.path.dirname(__file__)
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "learning_LQR-v0.csv"),
         float(sys.argv[2]) if len(sys.argv) > 2 else -1.0)
