"""Brax behind the gymnax protocol (optional extra): the adapter reproduces Brax's own states,
truncation is not termination, and STAC trains on a Brax environment vmapped over seeds (CPU)."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

brax_envs = pytest.importorskip("brax.envs")

from jaxrl import envs, sweep  # noqa: E402
from jaxrl.stac import STACConfig, make_stac  # noqa: E402


def test_adapter_matches_brax_physics_step_for_step():
    """Positional-pipeline inverted pendulum: the wrapped env's observations and rewards equal
    Brax's own reset/step for the same key and actions."""
    env, params = envs.make("brax/inverted_pendulum", backend="positional", max_steps=50)
    raw = brax_envs.get_environment("inverted_pendulum", backend="positional")
    key = jax.random.PRNGKey(3)
    actions = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (6, 1)), jnp.float32)

    def ours(key):
        obs, s = env.reset(key, params)

        def f(s, a):
            obs, s, r, term, trunc, info = env.step(jax.random.PRNGKey(0), s, a, params)
            return s, (obs, r, term, trunc)

        return obs, jax.lax.scan(f, s, actions)[1]

    def theirs(key):
        s = raw.reset(key)

        def f(s, a):
            s = raw.step(s, a)
            return s, (s.obs, s.reward, s.done)

        return s.obs, jax.lax.scan(f, s, actions)[1]

    both = jax.jit(lambda k: (ours(k), theirs(k)))  # one compilation
    (obs0, (obs, r, term, trunc)), (obs0_b, (obs_b, r_b, done_b)) = both(key)
    np.testing.assert_allclose(obs0, obs0_b, atol=1e-6)
    np.testing.assert_allclose(obs, obs_b, atol=1e-5)
    np.testing.assert_allclose(r, r_b, atol=1e-6)
    assert not np.any(np.asarray(done_b)) and not np.any(np.asarray(term | trunc))
    assert env.observation_space(params).shape == (raw.observation_size,)
    assert env.action_space(params).shape == (raw.action_size,)


def test_time_limit_truncates_and_auto_resets():
    env, params = envs.make("brax/fast", max_steps=3)
    obs, s = env.reset(jax.random.PRNGKey(0), params)
    flags = []
    for t in range(4):
        obs, s, r, term, trunc, info = env.step(jax.random.PRNGKey(t), s, jnp.ones(1), params)
        flags.append((bool(term), bool(trunc), int(s.time)))
    # steps 1, 2 run; step 3 hits the limit: truncated (not terminated) and reset to time 0.
    assert flags[:3] == [(False, False, 1), (False, False, 2), (False, True, 0)]
    assert flags[3] == (False, False, 1)
    with pytest.raises(ValueError, match="unknown Brax environment 'nope'"):
        envs.make("brax/nope")
    with pytest.raises(ValueError, match="max_steps must be >= 1, got 0"):
        envs.make("brax/fast", max_steps=0)
    with pytest.raises(ValueError, match="unknown Brax environment 'nope'"):  # not swallowed
        make_stac(STACConfig(env_name="brax/nope"))


def test_stac_trains_on_brax_vmapped_over_seeds():
    """A few STAC updates on Brax's `fast` env, 2 seeds in one program, evaluated by the runtime
    (return and the reference bias estimator, which needs no rollouts: Brax states cannot restart
    bias rollouts): finite metrics, the buffer holds
    every Brax transition (vmapped seed == single run is test_stac_train's)."""
    cfg = STACConfig(env_name="brax/fast", total_env_steps=40, warmup_steps=20,
                     buffer_size=64, batch_size=8, actor_hidden=(8,), critic_hidden=(8,),
                     eval_episodes=2, bias_states=0)
    algo = make_stac(cfg)
    res = sweep.run(algo, seeds=(0, 1), chunk_size=10, eval_every=10, progress=False)
    assert res.metrics["critic_loss"].shape == (2, 20)
    assert np.all(np.isfinite(res.metrics["critic_loss"]))
    assert np.all(np.asarray(res.state.algo.buffer.size) == 40)
    assert np.all(np.asarray(res.state.algo.env_steps) == 40)
    assert sorted(res.evals) == ["bias_reference", "danger_frac", "return"]
    assert res.evals["return"].shape == (2, 2)
    assert np.all(np.isfinite(res.evals["bias_reference"]))
    assert list(res.eval_steps) == [10, 20]
    assert np.all(np.isfinite(res.evals["return"])) and np.all(res.evals["danger_frac"] == 0)
    # `fast` rewards the position, which starts at 0 and only grows (velocity never decreases)
    assert np.all(res.evals["return"] >= 0)
    with pytest.raises(ValueError, match="brax/fast does not support .*set bias_states=0"):
        biased = make_stac(dataclasses.replace(cfg, bias_states=2))
        jax.eval_shape(biased.evaluate, res.state.algo, jax.random.PRNGKey(0), biased.hparams)
