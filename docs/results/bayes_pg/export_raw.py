"""Export the per-repetition / per-seed raw data of a bayes_pg study workdir into this folder.

    python docs/results/bayes_pg/export_raw.py WORKDIR [OUTDIR]

Writes `gradient_<mode>.csv` (one row per (M, repetition): every estimator's estimate and,
for the posteriors, the posterior standard deviations, the 0/1 coverage of the lambda / sigma /
angle 95% intervals and the fitted GP scale and noise; angles and errors follow from the
estimates and the exact gradient (-180.0747, -100.0638)) and `learning_<env>.csv` (one row per
(estimator, run, update): the grid point's step size, seed and the exact expected return).
"""

from __future__ import annotations

import csv
import json
import os
import sys

KEEP = ("grad_lam", "grad_sigma", "sd_lam", "sd_sigma", "in95_lam", "in95_sigma",
        "angle_in95", "gp_scale", "gp_noise")


def _fmt(v: str) -> str:
    try:
        return format(float(v), ".6g")
    except ValueError:
        return v


def export(workdir: str, out: str) -> None:
    with open(os.path.join(workdir, "summary.json")) as f:
        summary = json.load(f)
    for key, g in summary.items():
        if not key.startswith("gradient"):
            continue
        src = os.path.join(workdir, key, "metrics.csv")
        with open(src, newline="") as f:
            rows = list(csv.DictReader(f))
        cols = [c for c in rows[0] if c.endswith(KEEP) or c == "bac_dict_size"]
        with open(os.path.join(out, f"gradient_{g['fisher_mode']}.csv"), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["M", "repetition", *cols])
            for r in rows:
                w.writerow([r["step"], r["run"], *(_fmt(r[c]) for c in cols)])
    learn_dir = os.path.join(workdir, "learning")
    for env in sorted(os.listdir(learn_dir)) if os.path.isdir(learn_dir) else []:
        with open(os.path.join(out, f"learning_{env}.csv"), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["estimator", "run", "seed", "lr", "update", "return"])
            for est in sorted(os.listdir(os.path.join(learn_dir, env))):
                with open(os.path.join(learn_dir, env, est, "metrics.csv"), newline="") as g:
                    for r in csv.DictReader(g):
                        w.writerow([est, r["run"], r["seed"], r.get("lr", ""), r["step"],
                                    _fmt(r["return"])])


if __name__ == "__main__":
    export(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else os.path.dirname(__file__))
