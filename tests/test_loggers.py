"""Logging backends: TensorBoard event files hold the per-grid-point IQM (checked against a NumPy
IQM of metrics.csv) and CI band; a resumed run's events equal an uninterrupted run's; W&B in
offline mode writes its run files without network."""

import os

import numpy as np
import pytest
from conftest import tiny_ppo_config

from jaxrl import experiment, metrics, ppo


def _iqm_np(x):
    x = np.sort(x)
    n = len(x)
    lo, hi = n // 4, n - n // 4  # n divisible by 4 here: the middle half exactly
    return x[lo:hi].mean()


def _read_events(logdir):
    from tensorboardX.proto import event_pb2

    out = {}
    for f in sorted(os.listdir(logdir)):
        data = open(os.path.join(logdir, f), "rb").read()
        pos = 0
        while pos + 12 <= len(data):
            (length,) = np.frombuffer(data[pos:pos + 8], "<u8")
            rec = data[pos + 12:pos + 12 + int(length)]
            pos += 12 + int(length) + 4
            ev = event_pb2.Event()
            ev.ParseFromString(rec)
            for v in ev.summary.value:
                out.setdefault(v.tag, {})[ev.step] = v.simple_value
    return out


def test_tensorboard_iqm_and_resume(tmp_path):
    pytest.importorskip("tensorboardX")
    algo = ppo.make_ppo(tiny_ppo_config(total_timesteps=2 * 16 * 6))
    kw = dict(progress=False, chunk_size=2, grid={"lr": (1e-3, 3e-4)}, tensorboard=True)
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    experiment.run(algo, range(4), workdir=a, **kw)
    experiment.run(algo, range(4), workdir=b, stop_after_chunks=2, **kw)
    experiment.run(algo, range(4), workdir=b, **kw)
    ev_a = _read_events(os.path.join(a, "tensorboard"))
    ev_b = _read_events(os.path.join(b, "tensorboard"))
    d = metrics.read_metrics(os.path.join(a, "metrics.csv"))
    rows = [i for i, r in enumerate(d["runs"]) if r["lr"] == 1e-3]
    tag = "return/iqm/lr_0.001"  # tensorboardX writes "=" as "_"
    for j, step in enumerate(d["steps"]):
        np.testing.assert_allclose(ev_a[tag][step], _iqm_np(d["return"][rows, j]), rtol=1e-6)
    lo, hi = ev_a["return/ci_lo/lr_0.001"][6], ev_a["return/ci_hi/lr_0.001"][6]
    assert lo <= ev_a[tag][6] <= hi
    assert ev_a.keys() == ev_b.keys()
    for t in ev_a:
        assert ev_a[t] == ev_b[t], t  # purged on resume: no duplicated or stale steps


def test_wandb_offline_writes_run_files(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_MODE", "offline")
    algo = ppo.make_ppo(tiny_ppo_config(total_timesteps=2 * 16 * 4))
    wd = str(tmp_path / "w")
    experiment.run(algo, range(2), workdir=wd, progress=False, chunk_size=2, wandb="offline")
    runs = [n for n in os.listdir(os.path.join(wd, "wandb")) if n.startswith("offline-run")]
    assert runs and any(f.endswith(".wandb") for f in os.listdir(os.path.join(wd, "wandb",
                                                                              runs[0])))
