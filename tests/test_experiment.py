"""Workdirs that survive: kill -9 then resume == uninterrupted, corrupted checkpoints, config
mismatch, disk full, one-line config errors, 2 processes == 1 process."""

import errno
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import ROOT

from experiments import ppo as ppo_exp
from experiments.configs import ppo as ppo_configs
from jaxrl import checkpoint, experiment, metrics

TINY_FLAGS = ["--config=experiments/configs/ppo.py", "--config.num_envs=2",
              "--config.num_steps=16", "--config.num_minibatches=2",
              "--config.update_epochs=1", "--config.total_timesteps=320", "--config.hidden=(8,8)",
              "--config.chunk_size=1", "--config.checkpoint_every=2", "--config.num_seeds=3",
              "--config.progress=False"]


def tiny_config():
    c = ppo_configs.get_config()
    c.num_envs, c.num_steps, c.num_minibatches, c.update_epochs = 2, 16, 2, 1
    c.total_timesteps, c.hidden, c.chunk_size, c.checkpoint_every = 320, (8, 8), 1, 2
    c.num_seeds, c.progress = 3, False
    return c


def _csv_table(workdir):
    d = metrics.read_metrics(os.path.join(workdir, "metrics.csv"))
    return d


def _assert_same_run(wd_a, wd_b, check_checkpoint=True):
    a, b = _csv_table(wd_a), _csv_table(wd_b)
    np.testing.assert_array_equal(a["steps"], b["steps"])
    assert a["runs"] == b["runs"]
    for k in ("return", "value_loss", "actor_loss", "entropy"):
        np.testing.assert_allclose(a[k], b[k], rtol=1e-6, atol=1e-6)
    ca = checkpoint.Checkpointer(os.path.join(wd_a, "checkpoints"))
    cb = checkpoint.Checkpointer(os.path.join(wd_b, "checkpoints"))
    assert ca.steps()[-1] == cb.steps()[-1] == 10
    if not check_checkpoint:
        return
    pa = ca.manager.restore(10)["state"]
    pb = cb.manager.restore(10)["state"]
    for x, y in zip(jax.tree.leaves(pa), jax.tree.leaves(pb), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-6, atol=1e-6)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    wd = str(tmp_path_factory.mktemp("uninterrupted"))
    ppo_exp.run(tiny_config(), wd)
    return wd


_KILL_IN_SAVE = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {root!r})
    from orbax.checkpoint._src.path import async_path
    _rename = async_path.rename
    async def rename(src, dst, *a, **k):
        if os.path.basename(str(dst)) == {step!r}:
            os.kill(os.getpid(), signal.SIGKILL)  # dies with the checkpoint half-committed
        return await _rename(src, dst, *a, **k)
    async_path.rename = rename
    from absl import app
    from experiments import ppo
    sys.argv = ["ppo"] + {flags!r}
    app.run(ppo.main)
""")


def test_sigkill_while_writing_checkpoint_then_resume_equals_uninterrupted(uninterrupted,
                                                                           tmp_path):
    wd = str(tmp_path / "killed")
    code = _KILL_IN_SAVE.format(root=ROOT, step="6", flags=TINY_FLAGS + [f"--workdir={wd}"])
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == -signal.SIGKILL, out.stderr[-2000:]
    assert checkpoint.Checkpointer(os.path.join(wd, "checkpoints")).steps() == [2, 4]
    assert any("tmp" in n for n in os.listdir(os.path.join(wd, "checkpoints")))
    # Metric rows of steps 5-6 were written before the kill; resume drops and recomputes them.
    assert _csv_table(wd)["steps"][-1] == 6
    ppo_exp.run(tiny_config(), wd)
    _assert_same_run(uninterrupted, wd)


def test_sigkill_at_a_random_moment_then_resume(uninterrupted, tmp_path):
    wd = str(tmp_path / "killed_anywhere")
    cmd = [sys.executable, "-m", "experiments.ppo", *TINY_FLAGS, f"--workdir={wd}"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpts = os.path.join(wd, "checkpoints")
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if os.path.isdir(ckpts) and any(n.isdigit() for n in os.listdir(ckpts)):
            break
        time.sleep(0.05)
    time.sleep(np.random.default_rng().uniform(0.0, 0.3))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    ppo_exp.run(tiny_config(), wd)
    _assert_same_run(uninterrupted, wd)


def test_corrupted_latest_checkpoint_falls_back(tmp_path):
    ck = checkpoint.Checkpointer(str(tmp_path / "ck"), keep=3)
    abstract = None
    for step in (1, 2, 3):
        state = {"w": jnp.full((4,), float(step)), "k": jax.random.PRNGKey(step)}
        ck.save(step, state, {"lr": 1.0})
        abstract = jax.eval_shape(lambda s=state: s)
    # Corrupt every file of the newest checkpoint's array data.
    for dirpath, _, files in os.walk(tmp_path / "ck" / "3" / "state"):
        for f in files:
            with open(os.path.join(dirpath, f), "wb") as fh:
                fh.write(b"\x00garbage")
    step, state, meta = ck.restore_latest(abstract)
    assert step == 2
    np.testing.assert_array_equal(state["w"], np.full(4, 2.0))
    assert meta["format_version"] == checkpoint.FORMAT_VERSION and meta["config"] == {"lr": 1.0}


def test_keeps_last_n_checkpoints(tmp_path):
    ck = checkpoint.Checkpointer(str(tmp_path / "ck"), keep=2)
    for step in (1, 2, 3, 4):
        ck.save(step, {"w": jnp.zeros(2)}, {})
    assert ck.steps() == [3, 4]


def test_config_mismatch_refuses_naming_the_field(uninterrupted, tmp_path):
    wd = str(tmp_path / "mismatch")
    shutil.copytree(uninterrupted, wd)
    c = tiny_config()
    c.lr = 1e-3
    with pytest.raises(experiment.ConfigMismatchError, match=r"lr: 0.00025 -> 0.001"):
        ppo_exp.run(c, wd)
    c.force_resume = True
    ppo_exp.run(c, wd)  # explicit override: allowed (nothing left to do: already complete)


def test_resume_does_not_duplicate_rows(uninterrupted, tmp_path):
    wd = str(tmp_path / "again")
    shutil.copytree(uninterrupted, wd)
    ppo_exp.run(tiny_config(), wd)  # already complete: resumes at the end, writes nothing new
    d = _csv_table(wd)
    assert d["steps"].tolist() == list(range(1, 11))
    with open(os.path.join(wd, "metrics.csv")) as f:
        assert sum(1 for _ in f) == 1 + 10 * 3


def test_disk_full_gives_clear_error_and_checkpoint_stays_usable(tmp_path, monkeypatch):
    wd = str(tmp_path / "full")
    c = tiny_config()
    real_append = metrics.MetricWriter.append
    calls = {"n": 0}

    def failing_append(self, first_step, ms, intact=""):
        calls["n"] += 1
        if calls["n"] == 5:
            with metrics.disk_errors(self.path, intact):
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_append(self, first_step, ms, intact)

    monkeypatch.setattr(metrics.MetricWriter, "append", failing_append)
    with pytest.raises(metrics.DiskFullError, match="out of disk space while writing .*metrics"
                       r".*checkpoint.*intact"):
        ppo_exp.run(c, wd)
    monkeypatch.setattr(metrics.MetricWriter, "append", real_append)
    assert checkpoint.Checkpointer(os.path.join(wd, "checkpoints")).steps() == [2, 4]
    ppo_exp.run(c, wd)  # resumes from step 4 and completes
    assert _csv_table(wd)["steps"][-1] == 10


@pytest.mark.parametrize("flag,message", [
    ("--config.seed=-1", "error: config.seed must be >= 0, got -1"),
    ("--config.num_envs=0", "error: config.num_envs must be >= 1, got 0"),
    ("--config.env_name=Nope-v0", "error: config.env_name: unknown environment 'Nope-v0'"),
    ("--config.lr=0", "error: config.lr must be > 0, got 0"),
    ("--config.num_seeds=0", "error: config.num_seeds must be >= 1, got 0"),
])
def test_bad_flags_fail_with_one_line(flag, message, tmp_path):
    cmd = [sys.executable, "-m", "experiments.ppo", "--config=experiments/configs/ppo.py", flag,
           f"--workdir={tmp_path}"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode != 0
    lines = [ln for ln in out.stderr.strip().splitlines() if ln.strip()]
    assert lines[-1].startswith(message), out.stderr[-1000:]
    assert "Traceback" not in out.stderr
    assert not os.path.exists(os.path.join(tmp_path, "metrics.csv"))


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_equal_one_process(uninterrupted, tmp_path):
    wd = str(tmp_path / "two")
    port = _free_port()
    procs = []
    for pid in range(2):
        env = dict(os.environ, JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}", JAX_NUM_PROCESSES="2",
                   JAX_PROCESS_ID=str(pid), JAX_PLATFORMS="cpu",
                   XLA_FLAGS="--xla_force_host_platform_device_count=2")
        cmd = [sys.executable, "-m", "experiments.ppo", *TINY_FLAGS, f"--workdir={wd}"]
        procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    # Every metric of every run and update equal; its checkpoint holds 4 padded runs sharded
    # over 2 processes, so it is compared through the metrics alone.
    _assert_same_run(uninterrupted, wd, check_checkpoint=False)
    assert checkpoint.Checkpointer(os.path.join(wd, "checkpoints")).steps()[-1] == 10
