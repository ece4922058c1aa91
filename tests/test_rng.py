"""`jaxrl.rng`: one threefry call per update, transforms bit-identical to `jax.random`'s."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from jaxrl import rng
from jaxrl.envs import make as make_env
from jaxrl.envs import wrappers
from jaxrl.replay import replay_add, replay_gather, replay_init


@pytest.mark.parametrize("shape", [(7,), (3, 5), (256, 1)])
def test_normal_and_uniform_from_bits_equal_jax_random_from_the_same_bits(shape):
    key = jax.random.PRNGKey(11)
    bits = jax.random.bits(key, shape, jnp.uint32)
    normal = jax.jit(rng.normal_from_bits)(bits)
    np.testing.assert_array_equal(normal, jax.random.normal(key, shape))
    np.testing.assert_array_equal(jax.jit(rng.uniform_from_bits)(bits),
                                  jax.random.uniform(key, shape))
    scaled = jax.jit(lambda b: rng.uniform_from_bits(b, -2.0, 3.0))(bits)
    np.testing.assert_array_equal(scaled, jax.random.uniform(key, shape, minval=-2.0, maxval=3.0))


def test_normal_from_bits_is_standard_normal():
    bits = jax.random.bits(jax.random.PRNGKey(0), (200_000,), jnp.uint32)
    z = np.asarray(rng.normal_from_bits(bits), np.float64)
    assert np.isfinite(z).all()
    assert scipy.stats.kstest(z, "norm").pvalue > 1e-3
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1.0) < 0.01
    extreme = rng.normal_from_bits(jnp.array([0, 2**32 - 1], jnp.uint32))  # the ends of (-1, 1)
    assert np.isfinite(np.asarray(extreme)).all()


def test_index_from_bits_is_the_remainder_and_stays_in_range():
    words = np.array([0, 1, 9_999, 10_000, 123_456_789, 2**31, 2**32 - 1], np.uint64)
    for n in (1, 3, 10_000, 65_537):
        got = jax.jit(rng.index_from_bits)(jnp.asarray(words, jnp.uint32), jnp.int32(n))
        np.testing.assert_array_equal(got, [int(w) % n for w in words])
        assert got.dtype == jnp.int32
    assert int(rng.index_from_bits(jnp.uint32(7), 0)) == 0
    bits = jax.random.bits(jax.random.PRNGKey(1), (60_000,), jnp.uint32)
    counts = np.bincount(np.asarray(rng.index_from_bits(bits, 6)), minlength=6)
    assert scipy.stats.chisquare(counts).pvalue > 1e-3


def test_draw_is_one_bits_call_laid_out_key_first_then_in_spec_order():
    key = jax.random.PRNGKey(5)
    spec = {"idx": (4,), "k": rng.KEY, "eps": (2, 3), "keys": (2, 2)}
    nxt, d = rng.draw(key, spec)
    stream = np.asarray(jax.random.bits(key, (2 + 4 + 2 + 6 + 4,), jnp.uint32))
    np.testing.assert_array_equal(nxt, stream[:2])
    np.testing.assert_array_equal(d["idx"], stream[2:6])
    np.testing.assert_array_equal(d["k"], stream[6:8])
    np.testing.assert_array_equal(d["eps"], stream[8:14].reshape(2, 3))
    np.testing.assert_array_equal(d["keys"], stream[14:18].reshape(2, 2))
    assert list(d) == list(spec)
    # a typed key gives typed keys of the same implementation
    tkey = jax.random.key(5)
    tnext, td = rng.draw(tkey, {"k": rng.KEY, "x": (3,)})
    assert jnp.issubdtype(tnext.dtype, jax.dtypes.prng_key)
    np.testing.assert_array_equal(jax.random.key_data(tnext), stream[:2])
    np.testing.assert_array_equal(jax.random.key_data(td["k"]), stream[2:4])


def test_vec_env_uses_a_batch_of_keys_as_given_and_splits_a_single_key():
    env, params = make_env("Pendulum-v1")
    vec = wrappers.VecEnv(env, 3)
    key = jax.random.PRNGKey(2)
    keys = jax.random.split(jax.random.PRNGKey(9), 3)
    obs_split, _ = vec.reset(key, params)
    obs_batch, state = vec.reset(keys, params)
    ref = jax.vmap(env.reset, in_axes=(0, None))(keys, params)[0]
    np.testing.assert_array_equal(obs_batch, ref)
    np.testing.assert_array_equal(
        obs_split, jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key, 3), params)[0])
    act = jnp.zeros((3, 1))
    out = vec.step(keys, state, act, params)
    ref = jax.vmap(env.step, in_axes=(0, 0, 0, None))(keys, state, act, params)
    for a, b in zip(jax.tree.leaves(out), jax.tree.leaves(ref), strict=True):
        np.testing.assert_array_equal(a, b)


def test_replay_gather_returns_the_items_at_the_slots():
    state = replay_init({"x": jnp.zeros((2,), jnp.float32)}, 5)
    state = replay_add(state, {"x": jnp.arange(8.0).reshape(4, 2)})
    got = replay_gather(state, jnp.array([3, 0, 3], jnp.int32))
    np.testing.assert_array_equal(got["x"], [[6.0, 7.0], [0.0, 1.0], [6.0, 7.0]])
