"""Updates to reach a target return per (estimator, step size) from learning_<env>.csv.

    python docs/results/bayes_pg/learning_table.py [CSV] [TARGET] [WINDOW]

(CSV may be gzip-compressed, `.csv.gz`.)
Median over seeds of the number of fixed-step updates before the return first reaches TARGET
(`jaxrl.stats.iterations_to_target`; with WINDOW > 1 the trailing mean of WINDOW updates, for
a noisy batch-mean return; inf = never within the run), 95% percentile-bootstrap CI of the
median (2000 resamples of the seeds, NumPy seed 0), fraction of seeds reaching it, and the mean
return after 5 and 10 updates.
"""

import csv
import gzip
import os
import sys
from collections import defaultdict

import numpy as np

from jaxrl import stats


def main(path: str, target: float, window: int = 1) -> None:
    runs = defaultdict(dict)
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", newline="") as f:
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
        its = stats.iterations_to_target(rets, target, window)
        boots = np.median(its[rng.integers(0, len(its), (2000, len(its)))], axis=1)
        lo, hi = np.percentile(boots, [2.5, 97.5])
        fmt = lambda x: "never" if not np.isfinite(x) else f"{x:.0f}"  # noqa: E731
        print(f"| {est} | {lr:g} | {len(its)} | {fmt(np.median(its))} [{fmt(lo)}, {fmt(hi)}] | "
              f"{np.mean(np.isfinite(its)):.2f} | {np.nanmean(rets[:, 5]):.2f} / "
              f"{np.nanmean(rets[:, 10]):.2f} |")


if __name__ == "__main__":
    here = os.path.dirname(__file__)
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "learning_LQR-v0.csv"),
         float(sys.argv[2]) if len(sys.argv) > 2 else -1.0,
         int(sys.argv[3]) if len(sys.argv) > 3 else 1)
