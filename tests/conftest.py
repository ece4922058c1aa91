"""Shared fixtures: tiny configs that compile and run in seconds on a 2-core CPU."""

import os
import sys
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# One persistent XLA compilation cache per test session, shared by the xdist workers and every
# script the tests start as a subprocess (they inherit the environment). The suite compiles the
# same tiny programs many times (each `make_*` closure is a new jit), and most of its time is
# compilation on CPU. A cached executable is the same program, so results do not change; the
# bit-identity and resume tests then also cover cached against freshly compiled executables.
# Set before anything imports jax (jax reads these at import). An explicit setting wins.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _run = os.environ.get("PYTEST_XDIST_TESTRUNUID") or str(os.getpid())
    os.environ["JAX_COMPILATION_CACHE_DIR"] = os.path.join(tempfile.gettempdir(),
                                                           f"jaxrl-xla-cache-{_run}")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
    if "jax" in sys.modules:  # a plugin imported jax first: set the same options directly
        _jax = sys.modules["jax"]
        _jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
        _jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        _jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def tiny_ppo_config(**overrides):
    from jaxrl import ppo

    c = ppo.get_config()
    c.num_envs = 2
    c.num_steps = 16
    c.num_minibatches = 2
    c.update_epochs = 2
    c.total_timesteps = 2 * 16 * 6  # 6 updates
    c.hidden = (16, 16)
    for k, v in overrides.items():
        c[k] = v
    return c


@pytest.fixture
def tiny_ppo():
    return tiny_ppo_config
