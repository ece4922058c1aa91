"""Sweep engine: vmapped == single, sharded == unsharded, no recompilation, grids, NaN isolation."""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import ROOT, tiny_ppo_config

from jaxrl import ppo, sweep


def _tree_close(a, b, tol=1e-6):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=tol, atol=tol)


def test_vmapped_seed_equals_single_run():
    algo = ppo.make_ppo(tiny_ppo_config())
    res = sweep.run(algo, seeds=range(4), chunk_size=3, progress=False)
    state3, metrics3 = jax.jit(sweep.make_train(algo))(jax.random.PRNGKey(3))
    for k, v in metrics3.items():
        np.testing.assert_allclose(res.metrics[k][3], np.asarray(v), rtol=1e-6, atol=1e-6)
    _tree_close(jax.tree.map(lambda x: x[3], res.state.algo.params), state3.params)


def test_grid_point_equals_run_with_those_hparams():
    algo = ppo.make_ppo(tiny_ppo_config())
    res = sweep.run(algo, seeds=[0, 1], grid={"lr": [1e-3, 3e-3], "ent_coef": [0.0]},
                    chunk_size=6, progress=False)
    assert [r["lr"] for r in res.runs] == [1e-3, 1e-3, 3e-3, 3e-3]
    _, m = jax.jit(sweep.make_train(algo))(jax.random.PRNGKey(1), {"lr": 3e-3, "ent_coef": 0.0})
    np.testing.assert_allclose(res.metrics["value_loss"][3], m["value_loss"], rtol=1e-6,
                               atol=1e-6)
    # Different learning rates really give different runs.
    assert not np.allclose(res.metrics["value_loss"][1], res.metrics["value_loss"][3])


def test_no_recompilation_across_chunks():
    from jaxrl import experiment

    algo = ppo.make_ppo(tiny_ppo_config())
    eng = experiment.Engine(algo, sweep.expand_runs(range(10), None), lane_width=4)
    groups = eng.init()
    assert len(groups) == 3  # 10 runs in lanes of 4: 3 groups, the last one padded
    for _ in range(3):
        groups, ms = eng.chunk(groups, 2)
    assert eng.num_traces == 1
    assert ms["return"].shape == (10, 2)


def test_unknown_hparam_and_bad_seeds_fail_clearly():
    algo = ppo.make_ppo(tiny_ppo_config())
    with pytest.raises(ValueError, match="unknown hyperparameter.*'bogus'"):
        sweep.run(algo, seeds=[0], grid={"bogus": [1.0]}, progress=False)
    with pytest.raises(ValueError, match=r"seeds must be >= 0, got \[-1\]"):
        sweep.run(algo, seeds=[-1], progress=False)


def _toy_algo(nan_seed_at=None):
    """A random walk per run; the run with seed `s` hits NaN at update `nan_seed_at[s]`."""
    bad = {float(jax.random.uniform(jax.random.split(jax.random.PRNGKey(s))[1])): at
           for s, at in (nan_seed_at or {}).items()}

    def init(key, hp):
        key, sub = jax.random.split(key)
        return {"x": jnp.zeros(()), "id": jax.random.uniform(sub), "t": jnp.zeros((), jnp.int32),
                "key": key}

    def update(state, hp):
        key, sub = jax.random.split(state["key"])
        x = state["x"] + hp["lr"] * jax.random.normal(sub)
        for ident, at in bad.items():
            x = jnp.where((state["id"] == ident) & (state["t"] == at), jnp.nan, x)
        return {**state, "x": x, "t": state["t"] + 1, "key": key}, {"x": x}

    return sweep.Algorithm(init, update, num_updates=12, hparams={"lr": 0.1}, name="toy")


@pytest.mark.parametrize("freeze", ["chunk", "update"])
def test_nan_in_one_run_is_isolated_and_frozen(freeze):
    clean = sweep.run(_toy_algo(), seeds=range(4), chunk_size=4, progress=False, freeze=freeze)
    dirty = sweep.run(_toy_algo({2: 5}), seeds=range(4), chunk_size=4, progress=False,
                      freeze=freeze)
    assert dirty.failed_at.tolist() == [-1, -1, 5, -1]
    assert dirty.num_failed == 1
    for i in (0, 1, 3):
        np.testing.assert_array_equal(dirty.metrics["x"][i], clean.metrics["x"][i])
        np.testing.assert_array_equal(np.asarray(dirty.state.algo["x"][i]),
                                      np.asarray(clean.state.algo["x"][i]))
    # Failed run: finite before, NaN metrics after, state frozen at the last checked finite value:
    # the start of the chunk holding update 5 (after update 3), or after update 4 per update.
    assert np.all(np.isfinite(dirty.metrics["x"][2, :5]))
    assert np.all(np.isnan(dirty.metrics["x"][2, 5:]))
    assert dirty.metrics["failed"][2].tolist() == [0] * 5 + [1] * 7
    frozen_at = 3 if freeze == "chunk" else 4
    np.testing.assert_array_equal(np.asarray(dirty.state.algo["x"][2]),
                                  dirty.metrics["x"][2, frozen_at])


def test_nan_in_state_only_is_caught_at_chunk_end():
    def init(key, hp):
        return {"w": jnp.zeros(()), "t": jnp.zeros((), jnp.int32), "seed": key[1]}

    def update(state, hp):
        poisoned = (state["seed"] == 1) & (state["t"] == 2)  # PRNGKey(1)[1] == 1
        w = jnp.where(poisoned, jnp.inf, state["w"] + 1.0)
        return {**state, "w": w, "t": state["t"] + 1}, {"loss": jnp.zeros(())}

    algo = sweep.Algorithm(init, update, num_updates=8, hparams={}, name="state_nan")
    res = sweep.run(algo, seeds=[0, 1], chunk_size=4, progress=False)
    assert res.failed_at.tolist() == [-1, 3]
    assert float(res.state.algo["w"][1]) == 0.0  # reset to the start of its first chunk
    assert float(res.state.algo["w"][0]) == 8.0


def test_halt_on_nan_raises():
    with pytest.raises(sweep.NonFiniteError, match=r"run\(s\) \[1\].*update\(s\) \[3\]"):
        sweep.run(_toy_algo({1: 3}), seeds=range(2), chunk_size=4, progress=False,
                  halt_on_nan=True)


def test_cpu_devices_from_env_flag_and_refusals(monkeypatch):
    """JAXRL_CPU_DEVICES makes the scripts see that many CPU devices (subprocess, fresh
    backend); bad values and a late call fail naming the value."""
    from jaxrl.distributed import configure_cpu_devices

    code = ("import experiments, jax, os; "
            "print(jax.device_count(), os.environ['XLA_FLAGS'])")
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env.update(JAXRL_CPU_DEVICES="3", JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split()[0] == "3"
    for bad in ("two", "0", "-1", 1.5, True):
        with pytest.raises(ValueError, match=repr(bad).replace(".", r"\.")):
            configure_cpu_devices(bad)
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    have = len(jax.devices("cpu"))  # the backend is up in this process
    with pytest.raises(RuntimeError, match="after JAX started"):
        configure_cpu_devices(have + 1)
    assert configure_cpu_devices(have) == 0
    monkeypatch.delenv("JAXRL_CPU_DEVICES", raising=False)
    assert configure_cpu_devices() == 0


def test_scripts_default_to_one_cpu_device_per_core():
    """Launched as `python -m experiments.x` (sys.argv[0] == "-m" while the package imports),
    the scripts expose one CPU device per core and the runtime says so once; JAXRL_CPU_DEVICES=1
    keeps one device; imported (tests, notebooks) nothing changes."""
    from jaxrl.distributed import host_cores

    def devices(argv0, then="", **extra):
        code = (f"import sys; sys.argv[:1] = [{argv0!r}]; import experiments, jax; "
                f"from jaxrl import distributed; {then}"
                "print(jax.device_count(), distributed.default_note())")
        env = {k: v for k, v in os.environ.items()
               if k not in ("XLA_FLAGS", "JAXRL_CPU_DEVICES")}
        env.update(JAX_PLATFORMS="cpu", **extra)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, timeout=300, cwd=ROOT)
        assert out.returncode == 0, out.stderr[-3000:]
        return out.stdout.strip()

    n = host_cores()
    line = devices("-m")
    assert line.split()[0] == str(n)
    assert ("CPU devices (one per core" in line) == (n > 1)
    assert devices("-m", JAXRL_CPU_DEVICES="1") == "1 None"
    assert devices("notebook") == "1 None"
    # an explicit count after the import (a benchmark's --cpu_devices=1) replaces the default
    assert devices("-m", then="distributed.configure_cpu_devices(1); ") == "1 None"
    assert devices("-m", then="distributed.configure_cpu_devices(3); ").split()[0] == "3"


def test_scripts_cache_compiled_programs_by_default_and_results_are_unchanged(tmp_path):
    """`python -m experiments.x` keeps compiled programs in JAXRL_COMPILATION_CACHE (default
    ~/.cache/jaxrl/xla) under a host tag; a second run of the same config finds every program
    there (adds no entry) and writes byte-identical metrics to a run with the cache off, which
    writes no cache at all."""
    from jaxrl.distributed import host_tag

    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("JAX_COMPILATION_CACHE", "JAX_PERSISTENT_CACHE", "JAXRL_"))}
    env.update(JAX_PLATFORMS="cpu", JAXRL_CPU_DEVICES="1", HOME=str(tmp_path / "home"),
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")  # :tiny compiles in < 1 s

    def run(wd, **extra):
        cmd = [sys.executable, "-m", "experiments.ppo", "--config=experiments/configs/ppo.py:tiny",
               "--config.progress=False", f"--workdir={tmp_path / wd}"]
        out = subprocess.run(cmd, env={**env, **extra}, capture_output=True, text=True,
                             timeout=600, cwd=ROOT)
        assert out.returncode == 0, out.stderr[-3000:]
        return out.stdout, (tmp_path / wd / "metrics.csv").read_bytes()

    cache = tmp_path / "home" / ".cache" / "jaxrl" / "xla" / host_tag()
    out1, m1 = run("a")
    assert f"compiled programs cached in {cache}" in out1
    entries = sorted(p.name for p in cache.iterdir())
    assert entries
    out2, m2 = run("b")
    assert sorted(p.name for p in cache.iterdir()) == entries  # all found, none compiled anew
    other = tmp_path / "elsewhere"
    _, m3 = run("c", JAXRL_COMPILATION_CACHE="0", HOME=str(tmp_path / "home0"))
    assert not (tmp_path / "home0" / ".cache" / "jaxrl").exists()
    _, m4 = run("d", JAXRL_COMPILATION_CACHE=str(other))
    assert m1 == m2 == m3 == m4
    # (JAX's keys depend on the cache's own settings, so compare counts across directories)
    assert len(list((other / host_tag()).iterdir())) == len(entries)
