"""The main job: run the quick variant of every experiment and write REPORT.md with plots.

  python -m experiments.reproduce --workdir=runs/reproduce

Each experiment module exposes `reproduce(root) -> str` (its Markdown section; plots under
`root/<name>/plots/`). The whole job takes a few minutes on a 2-core CPU. A section that fails is
reported with its error and the job exits non-zero after writing the rest.
"""

from __future__ import annotations

import importlib
import os
import platform
import sys
import time
import traceback

import jax
from absl import app, flags

# (module, title), in report order. Each runs its quick variant.
SECTIONS = [
    ("experiments.ppo", "PPO"),
    ("experiments.props", "PROPS"),
    ("experiments.dp", "Distributional DP with stock augmentation"),
    ("experiments.dp_deep", "Stock-augmented deep distributional agent"),
    ("experiments.samplers", "Score-based samplers"),
    ("experiments.stac", "Stochastic Actor-Critic"),
    ("experiments.bayes_pg", "Bayesian policy gradient and actor-critic"),
    ("experiments.martingale", "Martingale policy evaluation"),
]

_WORKDIR = flags.DEFINE_string(
    "workdir", "runs/reproduce", "Where REPORT.md and plots go.", allow_override=True
)
_ONLY = flags.DEFINE_list(
    "only", [], "Run only these modules (e.g. experiments.ppo).", allow_override=True
)


def main(argv):
    del argv
    root = _WORKDIR.value
    os.makedirs(root, exist_ok=True)
    known = [m for m, _ in SECTIONS]
    bad = [m for m in _ONLY.value if m not in known]
    if bad:
        sys.exit(f"error: --only: unknown module(s) {bad}; valid: {known}")
    sections, timings, failures = [], [], []
    t_all = time.time()
    for module, title in SECTIONS:
        if _ONLY.value and module not in _ONLY.value:
            continue
        print(f"[reproduce] {title} ...", flush=True)
        t0 = time.time()
        try:
            sections.append(importlib.import_module(module).reproduce(root))
        except Exception as e:  # noqa: BLE001 - report and go on with the other sections
            failures.append(module)
            sections.append(
                f"## {title}\n\n**FAILED**: `{type(e).__name__}: {e}`\n\n```\n"
                f"{traceback.format_exc()[-3000:]}\n```\n"
            )
        timings.append((title, time.time() - t0))
        print(f"[reproduce] {title} done in {timings[-1][1]:.0f} s", flush=True)
    header = [
        "# jaxrl: reproduction report (quick variants)",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, jax {jax.__version__} on "
        f"{jax.default_backend()} ({jax.device_count()} device(s)); total "
        f"{time.time() - t_all:.0f} s.",
        "",
        "| section | wall time (s) |",
        "|---|---|",
        *[f"| {t} | {s:.0f} |" for t, s in timings],
        "",
    ]
    path = os.path.join(root, "REPORT.md")
    with open(path, "w") as f:
        f.write("\n".join(header + sections))
    print(f"[reproduce] wrote {path}")
    if failures:
        sys.exit(f"error: section(s) failed: {failures}")


if __name__ == "__main__":
    app.run(main)
