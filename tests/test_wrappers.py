"""Shared observation normalization and reward scaling against NumPy references."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl import envs
from jaxrl.envs import wrappers


def test_vec_observation_statistics_are_shared_by_all_copies():
    env, params = envs.make("Pendulum-v1")
    raw = envs.VecEnv(envs.LogWrapper(env), 3)
    norm = wrappers.NormalizeVecObservation(raw)
    key = jax.random.PRNGKey(0)
    obs_n, state = norm.reset(key, params)
    obs_r, raw_state = raw.reset(key, params)
    step_n, step_r = jax.jit(norm.step), jax.jit(raw.step)
    seen = [np.asarray(obs_r)]
    outs = [np.asarray(obs_n)]
    for t in range(12):
        k = jax.random.PRNGKey(t + 1)
        a = jnp.linspace(-1.0, 1.0, 3)[:, None] * (t % 3)
        obs_n, state, *_ = step_n(k, state, a, params)
        obs_r, raw_state, *_ = step_r(k, raw_state, a, params)
        seen.append(np.asarray(obs_r))
        outs.append(np.asarray(obs_n))
    pooled = np.concatenate(seen).astype(np.float64)  # all 3 copies x 13 time steps
    # Prior (mean 0, var 1) of weight 1e-4, then every observation of every copy.
    w = 1e-4
    n = len(pooled)
    mean = pooled.sum(0) / (n + w)
    var = (w * (1.0 + mean ** 2) + ((pooled - mean) ** 2).sum(0)) / (n + w)
    m = state.moments
    np.testing.assert_allclose(m.mean, mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(m.var, var, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(float(m.count), n + w, rtol=1e-6)
    # The last observations are normalized with the moments that include them.
    np.testing.assert_allclose(outs[-1], (seen[-1] - mean) / np.sqrt(var + 1e-8), rtol=1e-4,
                               atol=1e-4)
    # Per-copy statistics would differ: the copies' own means are far from the pooled one.
    assert np.abs(np.stack(seen)[:, 0].mean(0) - mean).max() > 0.05


def test_vec_reward_scaling_by_the_discounted_return_std():
    env, params = envs.make("CartPole-v1")
    gamma = 0.9
    raw = envs.VecEnv(envs.LogWrapper(env), 2)
    norm = wrappers.NormalizeVecReward(raw, gamma)
    key = jax.random.PRNGKey(3)
    _, state = norm.reset(key, params)
    _, raw_state = raw.reset(key, params)
    step_n, step_r = jax.jit(norm.step), jax.jit(raw.step)
    g = np.zeros(2)
    rets, ends = [], 0
    for t in range(60):
        k = jax.random.PRNGKey(100 + t)
        a = jax.random.bernoulli(jax.random.PRNGKey(t), 0.5, (2,)).astype(jnp.int32)
        _, state, r_n, term, trunc, _ = step_n(k, state, a, params)
        _, raw_state, r, *_ = step_r(k, raw_state, a, params)
        r = np.asarray(r, np.float64)
        g = gamma * g + r
        rets.append(g.copy())
        allr = np.concatenate(rets)
        w = 1e-4
        mean = allr.sum() / (len(allr) + w)
        var = (w * (1.0 + mean ** 2) + ((allr - mean) ** 2).sum()) / (len(allr) + w)
        np.testing.assert_allclose(np.asarray(r_n), r / np.sqrt(var + 1e-8), rtol=1e-4)
        done = np.asarray(term) | np.asarray(trunc)
        ends += int(done.sum())
        g[done] = 0.0
    assert ends >= 2  # random CartPole episodes end within 60 steps: the reset is exercised


def test_vec_env_get_obs_of_stored_states_equals_each_copy():
    """`VecEnv.get_obs` of a batch of Pendulum states is the per-state observation
    `[cos th, sin th, th_dot]`, computed here by hand for each copy (the STAC bias rollouts
    restart episodes from stored states this way)."""
    env, params = envs.make("Pendulum-v1")
    vec = wrappers.VecEnv(env, 3)
    _, states = vec.reset(jax.random.PRNGKey(0), params)
    obs = np.asarray(vec.get_obs(states, params))
    th, thdot = np.asarray(states.theta), np.asarray(states.theta_dot)
    np.testing.assert_allclose(obs, np.stack([np.cos(th), np.sin(th), thdot], 1), rtol=1e-6)
    assert len(set(th.round(6))) == 3  # three different states, each its own row
