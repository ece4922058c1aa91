"""Workdirs that survive: SIGKILL anywhere (also inside a checkpoint write), SIGTERM, torn rows, a
flipped bit in a checkpoint, two writers, shape-changing configs, resume on another device count,
a real full disk, all-failed grid points, one-line config errors, 2 processes == 1 process.
Resumed runs are compared with uninterrupted ones byte for byte (metrics.csv) and bit for bit
(the final checkpoint)."""

import ast
import filecmp
import json
import os
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
from jaxrl import checkpoint, experiment, metrics, ppo, sweep

TINY_FLAGS = ["--config=experiments/configs/ppo.py:tiny", "--config.progress=False"]
NUM_UPDATES = 10  # of the :tiny variant


def tiny_config():
    c = ppo_configs.get_config("tiny")
    c.progress = False
    return c


def _final_state(wd):
    ck = checkpoint.Checkpointer(os.path.join(wd, "checkpoints"))
    step = ck.steps()[-1]
    with np.load(os.path.join(wd, "checkpoints", str(step), "state.npz")) as z:
        return step, [z[k] for k in sorted(z.files)]


def _assert_same_run(wd_a, wd_b):
    assert filecmp.cmp(os.path.join(wd_a, "metrics.csv"), os.path.join(wd_b, "metrics.csv"),
                       shallow=False)
    sa, la = _final_state(wd_a)
    sb, lb = _final_state(wd_b)
    assert sa == sb == NUM_UPDATES
    for x, y in zip(la, lb, strict=True):
        assert np.array_equal(x, y)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    wd = str(tmp_path_factory.mktemp("uninterrupted"))
    ppo_exp.run(tiny_config(), wd)
    return wd


def _cli(wd, *extra, env=None):
    return [sys.executable, "-m", "experiments.ppo", *TINY_FLAGS, *extra, f"--workdir={wd}"]


_KILL_IN_SAVE = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {root!r})
    from jaxrl import checkpoint
    _rename = os.rename
    def rename(src, dst):
        if os.path.basename(str(dst)) == {step!r}:
            os.kill(os.getpid(), signal.SIGKILL)  # dies with the checkpoint written, not renamed
        return _rename(src, dst)
    checkpoint.os.rename = rename
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
    assert any(n.startswith(".tmp-6") for n in os.listdir(os.path.join(wd, "checkpoints")))
    ppo_exp.run(tiny_config(), wd)
    _assert_same_run(uninterrupted, wd)


@pytest.mark.parametrize("injector_seed", [0, 1])
def test_sigkill_at_a_random_moment_then_resume(uninterrupted, tmp_path, injector_seed):
    wd = str(tmp_path / "killed_anywhere")
    proc = subprocess.Popen(_cli(wd), cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    ckpts = os.path.join(wd, "checkpoints")
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if os.path.isdir(ckpts) and any(n.isdigit() for n in os.listdir(ckpts)):
            break
        time.sleep(0.02)
    time.sleep(np.random.default_rng(injector_seed).uniform(0.0, 0.5))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    ppo_exp.run(tiny_config(), wd)
    _assert_same_run(uninterrupted, wd)


def test_sigterm_checkpoints_exits_75_and_resumes(uninterrupted, tmp_path):
    wd = str(tmp_path / "term")
    proc = subprocess.Popen(_cli(wd), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    ckpts = os.path.join(wd, "checkpoints")
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if os.path.isdir(ckpts) and any(n.isdigit() for n in os.listdir(ckpts)):
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    if proc.returncode == 0:
        pytest.skip("the run finished before SIGTERM arrived")
    assert proc.returncode == experiment.PREEMPTED_EXIT, err[-2000:]
    assert "re-run the same command to resume" in err
    step = checkpoint.Checkpointer(ckpts).steps()[-1]
    with open(os.path.join(wd, "metrics.csv")) as f:  # metrics flushed up to the checkpoint
        assert sum(1 for _ in f) == 1 + 3 * step
    out = subprocess.run(_cli(wd), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"resuming from update {step} of {NUM_UPDATES}" in out.stdout
    _assert_same_run(uninterrupted, wd)


@pytest.mark.parametrize("tail", ["0,0", "0,0,3", "garbage\n", "1,2,x,y\n"])
def test_torn_or_garbage_last_row_is_dropped_on_resume(uninterrupted, tmp_path, tail):
    wd = str(tmp_path / "torn")
    r = ppo_exp.run(tiny_config(), wd, stop_after_chunks=2)
    assert r == {"interrupted_at": 4}
    with open(os.path.join(wd, "metrics.csv"), "a") as f:
        f.write(tail)
    ppo_exp.run(tiny_config(), wd)
    _assert_same_run(uninterrupted, wd)


def test_flipped_bit_in_checkpoint_falls_back_and_resaves(uninterrupted, tmp_path):
    wd = str(tmp_path / "flip")
    ppo_exp.run(tiny_config(), wd, stop_after_chunks=3)
    data = os.path.join(wd, "checkpoints", "6", "state.npz")
    raw = bytearray(open(data, "rb").read())
    raw[len(raw) // 2] ^= 0x01
    open(data, "wb").write(bytes(raw))
    logs = []
    ck = checkpoint.Checkpointer(os.path.join(wd, "checkpoints"))
    eng = experiment.Engine(ppo.make_ppo(tiny_config().algo), sweep.expand_runs(range(3), None),
                            8)
    step, _, _ = ck.restore(eng.run_template(), log=logs.append)
    assert step == 4 and "hash mismatch" in logs[0]
    ppo_exp.run(tiny_config(), wd)  # resumes from 4, re-saves 6 (verified) on the way
    _assert_same_run(uninterrupted, wd)


def test_second_writer_fails_at_once_naming_the_holder(tmp_path):
    wd = str(tmp_path / "locked")
    os.makedirs(wd)
    with experiment.workdir_lock(wd):
        out = subprocess.run(_cli(wd), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1].startswith(
        f"error: workdir {wd} is in use by pid {os.getpid()} on host {socket.gethostname()}")
    assert not os.path.exists(os.path.join(wd, "metrics.csv"))


@pytest.mark.parametrize("flag,field", [("--config.algo.num_envs=4", "algo.num_envs: 2 -> 4"),
                                        ("--config.num_seeds=4", "num_seeds: 3 -> 4"),
                                        ("--config.algo.hidden=(8,16)", "algo.hidden")])
def test_shape_changing_config_names_the_fields(uninterrupted, tmp_path, flag, field):
    wd = str(tmp_path / "shape")
    ppo_exp.run(tiny_config(), wd, stop_after_chunks=1)
    out = subprocess.run(_cli(wd, flag), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("error: workdir") and field in last and "unreadable" not in out.stdout
    out = subprocess.run(_cli(wd, flag, "--config.force_resume=True"), cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and "cannot force_resume" in out.stderr


def test_resume_insensitive_change_and_force_resume(uninterrupted, tmp_path):
    wd = str(tmp_path / "lr")
    ppo_exp.run(tiny_config(), wd, stop_after_chunks=1)
    c = tiny_config()
    c.algo.lr = 1e-3
    with pytest.raises(experiment.ConfigMismatchError, match=r"algo.lr: 0.00025 -> 0.001"):
        ppo_exp.run(c, wd)
    c = tiny_config()
    c.checkpoint_every = 3  # resume-insensitive
    ppo_exp.run(c, wd)
    _assert_same_run(uninterrupted, wd)


def test_resume_on_4_devices_equals_1_device(uninterrupted, tmp_path):
    wd = str(tmp_path / "devices")
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4",
               JAX_PLATFORMS="cpu")
    code = (f"import sys; sys.path.insert(0, {ROOT!r}); import jax; assert jax.device_count()==4;"
            "from experiments import ppo; from experiments.configs import ppo as c;"
            f"cfg = c.get_config('tiny'); cfg.progress = False; cfg.lane_width = 1;"
            f"ppo.run(cfg, {wd!r}, stop_after_chunks=2)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    c = tiny_config()
    c.lane_width = 1
    ref = str(tmp_path / "ref1")
    ppo_exp.run(c, ref)
    ppo_exp.run(c, wd)  # 3 runs were on 3 devices; now all on one
    _assert_same_run(ref, wd)


def test_state_has_done_exactly_num_updates():
    """195 updates in chunks of 9 (PPO :quick's shape): the state equals make_train's, with the
    LR annealed to 0 exactly at the end, not past it (extra updates would use a negative LR)."""
    c = tiny_config().algo
    c.total_timesteps = 2 * 16 * 11
    algo = ppo.make_ppo(c)
    res = experiment.run(algo, [0, 1], chunk_size=3, progress=False)
    assert res.state.step.tolist() == [11, 11]
    assert res.metrics["return"].shape == (2, 11)
    ref, _ = jax.jit(jax.vmap(sweep.make_train(algo)))(jnp.stack([jax.random.PRNGKey(0),
                                                                  jax.random.PRNGKey(1)]))
    for x, y in zip(jax.tree.leaves(res.state.algo.params), jax.tree.leaves(ref.params),
                    strict=True):
        np.testing.assert_allclose(x, np.asarray(y), rtol=1e-5, atol=1e-6)
    assert int(res.state.algo.update[0]) == 11
    # Per-chunk timings: chunks of 3, 3, 3, 2 (11 updates), every phase timed, none negative.
    assert sorted(res.timings) == ["checkpoint", "compute", "eval", "host"]
    assert all(v.shape == (4,) and np.all(v >= 0) for v in res.timings.values())


def _nan_for_lr(bad_lr):
    def init(key, hp):
        return {"x": jnp.zeros(()), "key": key}

    def update(s, hp):
        key, sub = jax.random.split(s["key"])
        x = s["x"] + hp["lr"] * jax.random.normal(sub)
        x = jnp.where(hp["lr"] == bad_lr, jnp.nan, x)
        return {"x": x, "key": key}, {"return": x}

    return sweep.Algorithm(init, update, num_updates=6, hparams={"lr": 0.1}, name="toy")


def test_all_failed_grid_point_gives_nulls_and_plot_skips_it(tmp_path):
    wd = str(tmp_path / "failed")
    res = experiment.run(_nan_for_lr(0.5), range(3), {"lr": (0.1, 0.5)}, workdir=wd,
                         chunk_size=2, progress=False)
    s = experiment.summarize(res, "return")
    experiment.finish(wd, res, s)
    text = open(os.path.join(wd, "summary.json")).read()
    assert "NaN" not in text
    loaded = json.loads(text)
    bad = [a for a in loaded["aggregate"] if a["lr"] == 0.5][0]
    assert bad["num_failed"] == 3 and bad["iqm"] is None and bad["iqm_ci95"] is None
    good = [a for a in loaded["aggregate"] if a["lr"] == 0.1][0]
    assert good["num_failed"] == 0 and good["iqm"] is not None
    skipped = experiment.plot_curves(res, "return", os.path.join(wd, "plots", "r.png"), "t")
    assert skipped == ["lr=0.5"] and os.path.exists(os.path.join(wd, "plots", "r.png"))


@pytest.mark.parametrize("flag,message", [
    ("--config.seed=-1", "error: config.seed must be >= 0, got -1"),
    ("--config.algo.num_envs=0", "error: config.algo.num_envs must be >= 1, got 0"),
    ("--config.algo.env_name=Nope-v0", "error: config.algo.env_name must be one of"),
    ("--config.algo.lr=0", "error: config.algo.lr must be finite and in (0, inf), got 0"),
    ("--config.sweep.lr=(0.1,2e9,-1.0)", "error: config.sweep.lr must be finite and in (0, inf)"
                                         ", got -1.0"),
    ("--config.sweep.gamma=(0.9,2.0)", "error: config.sweep.gamma must be finite and in (0, 1]"),
    ("--config.num_seeds=0", "error: config.num_seeds must be >= 1, got 0"),
    ("--config.keep_checkpoints=0", "error: config.keep_checkpoints must be >= 1, got 0"),
    ("--config.algo.hidden=(0,)", "error: config.algo.hidden must be a non-empty tuple"),
    ("--config.algo.activation=nope", "error: config.algo.activation must be one of"),
    ("--config.algo.unroll=0", "error: config.algo.unroll must be >= 1, got 0"),
])
def test_bad_flags_fail_with_one_line(flag, message, tmp_path):
    """`run` (what the command calls with the parsed config) refuses the value with the message
    the command prints, before writing anything; one flag of each kind (an int, a tuple a sweep
    parses, a name) also goes through the real command line: exit 2, one stderr line."""
    path, value = flag[len("--config."):].split("=", 1)
    try:
        value = ast.literal_eval(value)
    except (ValueError, SyntaxError):  # a bare name, as absl passes it
        pass
    c = tiny_config()
    *parents, leaf = path.split(".")
    node = c
    for p in parents:
        node = node[p]
    node[leaf] = value
    with pytest.raises(ValueError) as err:
        ppo_exp.run(c, str(tmp_path))
    assert ("error: " + str(err.value)).startswith(message), str(err.value)
    assert not os.listdir(tmp_path)  # nothing written
    if flag.split("=")[0] in ("--config.seed", "--config.sweep.lr", "--config.algo.activation"):
        out = subprocess.run(_cli(str(tmp_path), flag), cwd=ROOT, capture_output=True, text=True,
                             timeout=300)
        assert out.returncode == 2, out.stderr[-2000:]
        lines = [ln for ln in out.stderr.strip().splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith(message), out.stderr[-1000:]
        assert not os.listdir(tmp_path)


def test_hparams_are_derived_from_the_marks():
    from jaxrl import config as jconfig

    marked = {f.name for f in __import__("dataclasses").fields(ppo.PPOConfig)
              if f.metadata.get("jaxrl_kind") == "sweepable"}
    algo = ppo.make_ppo(tiny_config().algo)
    assert set(algo.hparams) == marked == set(ppo.FLOAT_HPARAMS)
    assert "num_envs" not in algo.hparams and "lr" in algo.hparams
    assert set(tiny_config().sweep) == marked
    with pytest.raises(ValueError, match=r"config.sweep.num_envs is not a sweepable field"):
        jconfig.validate(ppo.PPOConfig(), {"num_envs": (2.0,)})


def test_disk_full_on_a_real_tmpfs(tmp_path, uninterrupted):
    """A real ENOSPC: the sweep on a small tmpfs; what was written stays, the re-run resumes."""
    mnt = str(tmp_path / "mnt")
    os.makedirs(mnt)
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=100k", "tmpfs",
                                            mnt], capture_output=True).returncode != 0:
        pytest.skip("needs root and tmpfs mounts (CI runs as root)")
    try:
        wd = os.path.join(mnt, "wd")
        with pytest.raises(metrics.DiskFullError, match="out of disk space while writing"):
            ppo_exp.run(tiny_config(), wd)
        steps = checkpoint.Checkpointer(os.path.join(wd, "checkpoints")).steps()
        saved = open(os.path.join(wd, "metrics.csv")).read()
        dest = str(tmp_path / "moved")
        subprocess.run(["cp", "-r", wd, dest], check=True)
    finally:
        subprocess.run(["umount", mnt])
    # Every metrics row before the failure is intact (a prefix of the uninterrupted file).
    full = open(os.path.join(uninterrupted, "metrics.csv")).read()
    complete = saved[: saved.rfind("\n") + 1]
    assert full.startswith(complete)
    ppo_exp.run(tiny_config(), dest)  # resumes (from the last checkpoint, if any) and completes
    assert steps == [] or steps[-1] < NUM_UPDATES
    _assert_same_run(uninterrupted, dest)


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
        procs.append(subprocess.Popen(_cli(wd), cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    _assert_same_run(uninterrupted, wd)


def test_auto_chunk_size_gives_equal_chunks_when_a_divisor_is_near_the_target():
    """Brute force over run lengths and evaluation periods: when some length d within a factor
    2 of num_updates // 20 divides both, every chunk of the plan has one length (one compile)
    and d is the nearest such length; otherwise the target is used."""
    from jaxrl.experiment import _plan, auto_chunk_size

    for n in range(1, 400):
        for e in (None, 5, 12, 50):
            if e is not None and e > n:
                continue
            d = auto_chunk_size(n, e)
            t = max(1, n // 20)
            ok = [c for c in range(1, n + 1) if n % c == 0 and (e is None or e % c == 0)
                  and t / 2 <= c <= 2 * t]
            if ok:
                best = min(abs(c - t) for c in ok)
                assert abs(d - t) == best and d in ok, (n, e, d)
                ends = _plan(n, d, e)
                assert {b - a for a, b in zip([0, *ends[:-1]], ends, strict=True)} == {d}
            else:
                assert d == t, (n, e, d)
    assert auto_chunk_size(976) == 61  # PPO CartPole: 16 chunks of 61, not 20 x 48 + 16


def test_background_writes_keep_order_bound_memory_and_reraise():
    """`BackgroundWrites`: blocks land in submission order, a submit waits for the previous
    block (never two in flight), and a failed write re-raises in the caller at the next wait."""
    import threading
    import time

    from jaxrl.metrics import BackgroundWrites

    out, in_flight, peak = [], [0], [0]
    lock = threading.Lock()

    def write(i, delay):
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        time.sleep(delay)
        out.append(i)
        with lock:
            in_flight[0] -= 1

    w = BackgroundWrites()
    for i in range(6):
        w.submit(write, i, 0.02 * (6 - i))  # later blocks faster: order must still hold
        assert len(out) == i  # the previous blocks are all on "disk": one pending at most
    w.wait()
    assert out == list(range(6)) and peak[0] == 1

    def boom():
        raise OSError(28, "No space left on device")

    w.submit(boom)
    with pytest.raises(OSError, match="No space"):
        w.wait()
    w.submit(write, 7, 0.0)
    w.close()
    assert out[-1] == 7
