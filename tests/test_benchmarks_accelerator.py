"""`experiments/benchmarks/accelerator.py` (performance issue item 5) at tiny sizes on CPU: the
script a lent accelerator runs must finish and write a complete, self-consistent results file."""

import json
import subprocess
import sys


def test_accelerator_script_tiny_writes_every_case(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "experiments.benchmarks.accelerator", "--tiny",
         f"--out={tmp_path}"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads((tmp_path / "results.json").read_text())
    assert {(c["algo"], c["runs"]) for c in res["cases"]} == {
        (a, n) for a in ("ppo", "stac") for n in (1, 2)}
    for c in res["cases"]:
        assert c["chunk_s"] > 0 and c["compile_s"] >= 0 and c["env_steps_per_s"] > 0
        assert c["peak_device_bytes"] is None  # CPU has no memory_stats
    md = (tmp_path / "results.md").read_text().splitlines()
    assert md[0].startswith("# Accelerator benchmark (cpu") and len(md) == 4 + 4


def test_accelerator_script_rejects_bad_runs(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "experiments.benchmarks.accelerator", "--runs=4,-1",
         f"--out={tmp_path / 'x'}"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1].startswith("error: ") and "-1" in out.stderr
    assert not (tmp_path / "x").exists()
