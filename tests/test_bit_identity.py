"""The runtime's guarantee: run (seed, grid point) gives the same BITS alone, among 8 or 37 runs,
in any position, and on 1 or 4 CPU devices, for the whole run (np.array_equal, no tolerance)."""

import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
from conftest import ROOT, tiny_ppo_config

from jaxrl import experiment, ppo


def _leaves(res, i):
    return [np.asarray(x)[i] for x in jax.tree.leaves(res.state.algo)]


def _ppo():
    return ppo.make_ppo(tiny_ppo_config(total_timesteps=2 * 16 * 12))


def test_ppo_seed_alone_equals_seed_among_8_and_37_runs():
    algo = _ppo()
    alone = experiment.run(algo, [5], chunk_size=5, progress=False)
    among8 = experiment.run(algo, range(8), chunk_size=5, progress=False)
    among37 = experiment.run(algo, list(range(30, 37)) + list(range(30)), chunk_size=5,
                             progress=False)  # seed 5 at position 12, second group
    assert among37.runs[12]["seed"] == 5
    for other, i in ((among8, 5), (among37, 12)):
        for k in alone.metrics:
            assert np.array_equal(alone.metrics[k][0], other.metrics[k][i], equal_nan=True), k
        for x, y in zip(_leaves(alone, 0), _leaves(other, i), strict=True):
            assert np.array_equal(x, y)
    # Runs really differ (the comparison is not vacuous).
    assert not np.array_equal(among8.metrics["value_loss"][5], among8.metrics["value_loss"][4])


def test_plain_vmap_differs_from_lanes_somewhere_or_is_documented():
    """lane_width=0 (plain vmap) is allowed and runs; it makes no bit promise."""
    algo = _ppo()
    res = experiment.run(algo, range(3), chunk_size=6, progress=False, lane_width=0)
    assert res.metrics["return"].shape == (3, 12)


_ON_4 = textwrap.dedent("""
    import sys
    import jax, numpy as np
    sys.path.insert(0, {root!r}); sys.path.insert(0, {tests!r})
    from conftest import tiny_ppo_config
    from jaxrl import experiment, ppo
    algo = ppo.make_ppo(tiny_ppo_config(total_timesteps=2 * 16 * 12))
    res = experiment.run(algo, range(12), chunk_size=5, progress=False)
    assert jax.device_count() == 4
    np.savez({out!r}, ret=res.metrics["value_loss"][5],
             *[np.asarray(x)[5] for x in jax.tree.leaves(res.state.algo)])
""")


def test_ppo_seed_on_4_cpu_devices_equals_1_device(tmp_path):
    out = str(tmp_path / "on4.npz")
    code = _ON_4.format(root=ROOT, tests=os.path.join(ROOT, "tests"), out=out)
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4",
               JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    alone = experiment.run(_ppo(), [5], chunk_size=5, progress=False)
    with np.load(out) as z:
        assert np.array_equal(z["ret"], alone.metrics["value_loss"][0])
        leaves = _leaves(alone, 0)
        for i, x in enumerate(leaves):
            assert np.array_equal(z[f"arr_{i}"], x)
