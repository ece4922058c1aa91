"""The runtime's guarantee: run (seed, grid point) gives the same BITS alone, among 8 or 37 runs,
in any position, and on 1 or 4 CPU devices, for the whole run (np.array_equal, no tolerance).
Checked for PPO (on-policy, scan over minibatches) and STAC (replay buffer, dropout critics,
evaluation and bias measures between chunks)."""

import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest
from conftest import ROOT, tiny_ppo_config

from jaxrl import experiment, ppo

CHUNK = 5


def make(name: str):
    """(algorithm, run kwargs) of the tiny case `name`; also imported by the 4-device child."""
    if name == "ppo":
        return ppo.make_ppo(tiny_ppo_config(total_timesteps=2 * 16 * 12)), {}
    from jaxrl.stac import STACConfig, make_stac

    cfg = STACConfig(actor_hidden=(16, 16), critic_hidden=(16, 16), total_env_steps=240,
                     warmup_steps=200, buffer_size=300, batch_size=16, log_every=2,
                     eval_episodes=1, bias_states=2, bias_rollouts=1, bias_horizon=8)
    return make_stac(cfg), {"eval_every": 10}  # 20 updates, evaluations at 10 and 20


def _run(name, seeds, **kw):
    algo, extra = make(name)
    return experiment.run(algo, seeds, chunk_size=CHUNK, progress=False, **extra, **kw)


def _assert_run_equal(a, i, b, j):
    """Run i of Result a == run j of Result b: every metric, evaluation and state leaf."""
    assert a.metrics.keys() == b.metrics.keys() and a.evals.keys() == b.evals.keys()
    for src_a, src_b in ((a.metrics, b.metrics), (a.evals, b.evals)):
        for k in src_a:
            assert np.array_equal(src_a[k][i], src_b[k][j], equal_nan=True), k
    la, lb = jax.tree.leaves(a.state.algo), jax.tree.leaves(b.state.algo)
    assert len(la) == len(lb)
    for x, y in zip(la, lb, strict=True):
        assert np.array_equal(np.asarray(x)[i], np.asarray(y)[j])


@pytest.mark.parametrize("name", ["ppo", "stac"])
def test_seed_alone_equals_seed_among_8_and_37_runs(name):
    alone = _run(name, [5])
    among8 = _run(name, range(8))
    among37 = _run(name, list(range(30, 37)) + list(range(30)))  # seed 5 at 12, second group
    assert among37.runs[12]["seed"] == 5
    _assert_run_equal(alone, 0, among8, 5)
    _assert_run_equal(alone, 0, among37, 12)
    if name == "stac":
        assert list(alone.eval_steps) == [10, 20] and "bias_paper" in alone.evals
    # Runs really differ (the comparison is not vacuous).
    key = next(iter(among8.metrics))
    assert not np.array_equal(among8.metrics[key][5], among8.metrics[key][4])


def test_plain_vmap_runs_without_a_bit_promise():
    """lane_width=0 (plain vmap) is allowed and runs; it makes no bit promise."""
    algo, _ = make("ppo")
    res = experiment.run(algo, range(3), chunk_size=6, progress=False, lane_width=0)
    assert res.metrics["return"].shape == (3, 12)


_ON_4 = textwrap.dedent("""
    import sys
    import jax, numpy as np
    sys.path.insert(0, {root!r}); sys.path.insert(0, {tests!r})
    from test_bit_identity import _run
    res = _run({name!r}, range(12))
    assert jax.device_count() == 4
    np.savez({out!r}, **{{"m_" + k: v[5] for k, v in res.metrics.items()}},
             **{{"e_" + k: v[5] for k, v in res.evals.items()}},
             **{{f"s_{{i}}": np.asarray(x)[5]
                for i, x in enumerate(jax.tree.leaves(res.state.algo))}})
""")


# PPO on 4 devices is checked by tests/test_experiment.py::test_resume_on_4_devices_equals_1_device
# (chunks on 4 devices, resumed on one, bit-equal to a 1-device run); STAC here.
@pytest.mark.parametrize("name", ["stac"])
def test_seed_on_4_cpu_devices_equals_1_device(tmp_path, name):
    out = str(tmp_path / "on4.npz")
    code = _ON_4.format(root=ROOT, tests=os.path.join(ROOT, "tests"), out=out, name=name)
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4",
               JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    alone = _run(name, [5])
    with np.load(out) as z:
        for k, v in alone.metrics.items():
            assert np.array_equal(z["m_" + k], v[0], equal_nan=True), k
        for k, v in alone.evals.items():
            assert np.array_equal(z["e_" + k], v[0], equal_nan=True), k
        leaves = jax.tree.leaves(alone.state.algo)
        assert len([f for f in z.files if f.startswith("s_")]) == len(leaves)
        for i, x in enumerate(leaves):
            assert np.array_equal(z[f"s_{i}"], np.asarray(x)[0])
