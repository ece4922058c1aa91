"""RiskyPointMass dynamics and the bias estimators' soft returns against hand/NumPy references."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.envs.risky_point_mass import EnvState, make_risky_point_mass
from jaxrl.stac.bias import soft_returns_backward


def test_risky_point_mass_reward_move_and_termination():
    env, p = make_risky_point_mass()
    s = EnvState(pos=jnp.array([0.9, 0.2]), time=0)
    obs, s2, r, term, info = env.step_env(jax.random.PRNGKey(0), s, jnp.array([1.0, -0.5]), p)
    np.testing.assert_allclose(float(r), -np.hypot(0.9, 0.2) - 0.1, rtol=1e-6)  # outside disc
    assert float(info["danger"]) == 0.0 and not bool(term)
    assert 1.0 - 0.1 * 0.02 - 1e-6 <= float(obs[0]) <= 1.0  # 0.9 + 0.1 (1 + slip), clipped at 1
    assert abs(float(obs[1]) - 0.15) <= 0.1 * 0.02 + 1e-6
    g = EnvState(pos=jnp.array([0.02, 0.03]), time=5)
    _, _, r, term, _ = env.step_env(jax.random.PRNGKey(1), g, jnp.zeros(2), p)
    assert bool(term)
    np.testing.assert_allclose(float(r), -np.hypot(0.02, 0.03) - 0.1, rtol=1e-6)


def test_risky_point_mass_penalty_probability_and_safe_starts():
    env, p = make_risky_point_mass()
    pos = jnp.array([0.6, 0.55])  # inside the disc
    d2 = 0.1**2 + 0.05**2
    prob = 0.1 * np.exp(-4 * d2 / 0.3**2)
    keys = jax.random.split(jax.random.PRNGKey(0), 40_000)
    s = EnvState(pos=pos, time=0)
    _, _, r, _, info = jax.vmap(lambda k: env.step_env(k, s, jnp.zeros(2), p))(keys)
    hits = np.asarray(info["penalty"])
    assert np.all(np.asarray(info["danger"]) == 1.0)
    se = np.sqrt(prob * (1 - prob) / len(keys))
    assert abs(hits.mean() - prob) < 4 * se
    np.testing.assert_allclose(np.asarray(r)[hits == 1] - np.asarray(r)[hits == 0][0], -10.0,
                               rtol=1e-5)
    starts, _ = jax.vmap(lambda k: env.reset(k, p))(jax.random.split(jax.random.PRNGKey(1), 2000))
    starts = np.asarray(starts)
    assert np.all(np.hypot(starts[:, 0] - 0.5, starts[:, 1] - 0.5) > 0.3)
    assert starts.min() >= 0.3 and starts.max() <= 1.0


def test_soft_returns_backward_matches_numpy_loop():
    rng = np.random.default_rng(0)
    T, gamma, alpha = 12, 0.9, 0.3
    r, lp, boot = rng.normal(size=T), rng.normal(size=T), rng.normal(size=T)
    term = np.zeros(T)
    last = np.zeros(T)
    last[-1] = 1.0
    term[5] = 1.0  # an episode ends after step 5; a new stream starts at 6 (auto-reset)
    y = np.zeros(T)
    g_next = 0.0
    for t in reversed(range(T)):
        g = 0.0 if term[t] else (boot[t] if last[t] else g_next)
        y[t] = r[t] + gamma * g
        g_next = y[t] - alpha * lp[t]
    got = soft_returns_backward(*(jnp.asarray(x, jnp.float32) for x in (r, lp, term, last, boot)),
                                gamma, alpha)
    np.testing.assert_allclose(np.asarray(got), y, rtol=1e-5, atol=1e-5)
