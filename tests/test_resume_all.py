"""Every experiment script's `:tiny` run (PPO's: tests/test_experiment.py): SIGKILL after its
first checkpoint, then the same command again, ends with byte-identical metrics.csv / eval.csv
files (every program's) to an uninterrupted run, and the re-run says where it resumed."""

import filecmp
import glob
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT

# experiments.ppo's kill-and-resume is tests/test_experiment.py's (SIGKILL at random moments and
# while a checkpoint is written, SIGTERM, torn rows, a flipped bit): not repeated here.
SCRIPTS = ["stac", "props", "dp_deep", "bayes_pg", "martingale", "samplers"]


def _cmd(name, wd):
    return [sys.executable, "-m", f"experiments.{name}",
            f"--config=experiments/configs/{name}.py:tiny", "--config.progress=False",
            f"--workdir={wd}"]


def _csvs(wd):
    return sorted(os.path.relpath(p, wd) for p in glob.glob(os.path.join(wd, "**", "*.csv"),
                                                            recursive=True))


def _has_checkpoint(wd):
    return bool(glob.glob(os.path.join(wd, "**", "checkpoints", "[0-9]*", "meta.json"),
                          recursive=True))


@pytest.mark.parametrize("name", SCRIPTS)
def test_sigkill_after_first_checkpoint_then_resume_is_byte_identical(name, tmp_path):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    out = subprocess.run(_cmd(name, a), cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    proc = subprocess.Popen(_cmd(name, b), cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 900
    while time.time() < deadline and proc.poll() is None and not _has_checkpoint(b):
        time.sleep(0.02)
    finished_first = proc.poll() is not None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not finished_first, f"{name}:tiny ended before its first checkpoint was seen"
    out = subprocess.run(_cmd(name, b), cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "resuming from update" in out.stdout
    files = _csvs(a)
    assert files and files == _csvs(b)
    for f in files:
        assert filecmp.cmp(os.path.join(a, f), os.path.join(b, f), shallow=False), f
