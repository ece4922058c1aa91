"""Recompute the tables of docs/results/stac.md from a run's raw per-seed rows.

  python docs/results/stac/tables.py docs/results/stac/cpu16_rows.csv "Run 1: cpu16"

`rows.csv` is what `experiments.stac` writes at the top of its workdir (one row per env, method
label, seed and evaluation point, every metric). Prints the Markdown section of
`experiments.stac.report` (the same summary, probabilities of improvement and paired danger
differences the script computes at the end of a run), image links relative to `stac/<name>`.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))))

from experiments import stac  # noqa: E402


def tables(path: str, title: str) -> str:
    rows = stac.load_rows(path)
    summary = stac.summarize(rows)
    envs = sorted({r["env"] for r in rows})
    labels = sorted({r["label"] for r in rows})
    others = [lab for lab in labels if lab != "stac"]
    summary["_pairs"] = {env: stac.pairs(rows, env, "stac", others)
                         + stac.pairs(rows, env, "beta=0.5", ["beta=0"]) for env in envs}
    summary["_danger_vs_beta0"] = {env: stac.paired_differences(rows, env, "beta=0")
                                   for env in envs if env.startswith("RiskyPointMass")}
    name = os.path.basename(path).removesuffix("_rows.csv")
    return stac.report(summary, f"stac/{name}", title)


if __name__ == "__main__":
    print(tables(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "STAC"))
