"""Finite-MDP gymnax environment and the stock-augmentation wrapper."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.envs.finite_mdp import make_finite_mdp, random_mdp
from jaxrl.envs.stock import StockAugmentation


def test_transition_frequencies_match_P():
    env, params = random_mdp(jax.random.PRNGKey(0), 3, 2, gamma=0.9, horizon=5)
    n = 20000
    keys = jax.random.split(jax.random.PRNGKey(1), n)
    _, states = jax.vmap(env.reset, (0, None))(keys, params)
    s0 = np.asarray(states.state)
    np.testing.assert_allclose(np.bincount(s0, minlength=3) / n, params.mu0, atol=0.015)
    actions = jnp.asarray(np.arange(n) % 2)
    keys2 = jax.random.split(jax.random.PRNGKey(2), n)
    obs, nxt, rew, term, trunc, info = jax.vmap(env.step, (0, 0, 0, None))(
        keys2, states, actions, params)
    s1 = np.asarray(info["final_observation"]).argmax(-1)
    P = np.asarray(params.P)
    R = np.asarray(params.R)
    for s in range(3):
        for a in range(2):
            sel = (s0 == s) & (np.asarray(actions) == a)
            if sel.sum() > 500:
                freq = np.bincount(s1[sel], minlength=3) / sel.sum()
                np.testing.assert_allclose(freq, P[s, a], atol=4 / np.sqrt(sel.sum()))
    np.testing.assert_allclose(rew, R[s0, np.asarray(actions), s1], atol=1e-6)
    assert not bool(term.any()) and not bool(trunc.any())


def test_truncation_at_horizon_and_index_obs():
    P = np.zeros((2, 1, 2))
    P[:, 0, 1] = 1.0
    env, params = make_finite_mdp(P, np.ones((2, 1)), np.array([1.0, 0.0]), 1.0, horizon=3,
                                  obs="index")
    obs, st = env.reset(jax.random.PRNGKey(0), params)
    assert int(obs) == 0
    truncs = []
    for i in range(4):
        obs, st, r, term, trunc, info = env.step(jax.random.PRNGKey(i), st, 0, params)
        truncs.append(bool(trunc))
        assert float(r) == 1.0 and not bool(term)
    assert truncs == [False, False, True, False]
    assert int(st.time) == 1  # auto-reset after the truncation, then one step


def test_make_finite_mdp_rejects_bad_arrays():
    P = np.full((2, 1, 2), 0.5)
    with pytest.raises(ValueError, match="P rows must sum to 1"):
        make_finite_mdp(P * 2, np.zeros((2, 1)), np.array([0.5, 0.5]))
    with pytest.raises(ValueError, match="R must have shape"):
        make_finite_mdp(P, np.zeros((3,)), np.array([0.5, 0.5]))
    with pytest.raises(ValueError, match="mu0 contains NaN"):
        make_finite_mdp(P, np.zeros((2, 1)), np.array([np.nan, 0.5]))


def test_stock_wrapper_tracks_discounted_stock():
    env, params = random_mdp(jax.random.PRNGKey(3), 4, 2, gamma=0.8, horizon=6)
    gamma = 0.8
    wrapped = StockAugmentation(env, c0=(-2.0, 2.0), gamma=gamma)
    wp = wrapped.default_params
    obs, st = wrapped.reset(jax.random.PRNGKey(4), wp)
    assert obs.shape == (5,) and wrapped.observation_space(wp).shape == (5,)
    c0 = float(st.stock)
    assert -2.0 <= c0 <= 2.0 and abs(float(obs[-1]) - c0) < 1e-6
    key = jax.random.PRNGKey(5)
    rewards, c = [], c0
    for t in range(6):
        key, k = jax.random.split(key)
        obs, st, r, term, trunc, info = wrapped.step(k, st, t % 2, wp)
        rewards.append(float(r))
        c = (c + float(r)) / gamma
        assert abs(float(info["final_stock"]) - c) < 1e-4
        assert abs(float(info["final_observation"][-1]) - c) < 1e-4
    # stock identity: c_H = gamma^{-H} (c_0 + G)
    G = sum(gamma**t * r for t, r in enumerate(rewards))
    assert abs(c - (c0 + G) / gamma**6) < 1e-3
    assert bool(trunc) and int(st.time) == 0  # re-drawn stock after the auto-reset
    assert abs(float(obs[-1]) - float(st.stock)) < 1e-6
    fixed = StockAugmentation(env, c0=-1.5)
    _, st2 = fixed.reset(jax.random.PRNGKey(0))
    assert float(st2.stock) == -1.5


def test_vmapped_seed_equals_single_seed():
    env, params = random_mdp(jax.random.PRNGKey(6), 3, 2, horizon=4)
    wrapped = StockAugmentation(env, c0=(-1.0, 1.0), gamma=0.9)
    keys = jax.random.split(jax.random.PRNGKey(7), 4)
    obs_v, st_v = jax.vmap(wrapped.reset)(keys)
    out_v = jax.vmap(wrapped.step, (0, 0, None))(keys, st_v, 1)
    obs_1, st_1 = wrapped.reset(keys[2])
    out_1 = wrapped.step(keys[2], st_1, 1)
    np.testing.assert_allclose(obs_v[2], obs_1)
    np.testing.assert_allclose(out_v[0][2], out_1[0])
    np.testing.assert_allclose(out_v[2][2], out_1[2])


def test_stock_wrapper_carry_zero_keeps_the_initial_stock():
    env, _ = random_mdp(jax.random.PRNGKey(3), 4, 2, gamma=0.8, horizon=6)
    wrapped = StockAugmentation(env, c0=-1.25, gamma=0.8)
    wp = wrapped.default_params.replace(carry=0.0)
    obs, st = wrapped.reset(jax.random.PRNGKey(4), wp)
    key, total = jax.random.PRNGKey(5), 0.0
    for t in range(5):
        key, k = jax.random.split(key)
        obs, st, r, term, trunc, info = wrapped.step(k, st, t % 2, wp)
        total += abs(float(r))
        assert float(st.stock) == -1.25 and float(obs[-1]) == -1.25
        assert float(info["final_stock"]) == -1.25
    assert total > 0  # rewards were paid, the stock ignored them


@pytest.mark.parametrize("bad, message", [
    (dict(P=np.full((2, 1, 2), 0.7)), "P rows must sum to 1: P[0, 0, :] sums to 1.4"),
    (dict(P=np.array([[[1.5, -0.5]], [[0.5, 0.5]]])), "P has a negative entry at index (0, 0, 1)"),
    (dict(R=np.zeros(3)), "R must have shape (2, 1, 2) (or (2, 1)) to match P, got (3,)"),
    (dict(mu0=np.array([np.nan, 0.5])), "mu0 contains NaN/inf (first at index (0,))"),
    (dict(mu0=np.array([0.2, 0.2])), "mu0 must be non-negative and sum to 1, sums to 0.4"),
    (dict(gamma=1.5), "gamma must be in (0, 1], got 1.5"),
    (dict(horizon=2.5), "horizon must be an integer >= 0 (0 = infinite), got 2.5"),
])
def test_one_validator_for_the_env_the_tasks_and_dp(bad, message):
    """The environment, the finite-horizon tasks' factory and DP reject a malformed MDP with the
    same one-line message (one validator, `validate_finite_mdp`)."""
    from jaxrl import dp
    from jaxrl.envs.gamble import make_finite_horizon

    m = dict(P=np.full((2, 1, 2), 0.5), R=np.zeros((2, 1)), mu0=np.array([0.5, 0.5]),
             gamma=0.9, horizon=3)
    m.update(bad)
    calls = [lambda: make_finite_mdp(m["P"], m["R"], m["mu0"], m["gamma"], m["horizon"]),
             lambda: make_finite_horizon(m),
             lambda: dp.validate_mdp(m["P"], m["R"], m["mu0"], m["gamma"], m["horizon"])]
    for call in calls:
        with pytest.raises(ValueError) as err:
            call()
        assert str(err.value) == message


def test_the_finite_horizon_tasks_are_the_time_indexed_finite_mdp():
    """`Gamble-v0` is the library's one finite-MDP env (time-indexed): obs = [one_hot(s, 3),
    one_hot(t, H)], terminated exactly at t = H, and DP reads the same arrays."""
    from jaxrl import dp, envs
    from jaxrl.envs.finite_mdp import FiniteMDP

    env, params = envs.make("Gamble-v0", horizon=2)
    assert isinstance(env, FiniteMDP) and env.horizon == 2
    obs, st = env.reset(jax.random.PRNGKey(0), params)
    np.testing.assert_array_equal(obs, [1, 0, 0, 1, 0])
    obs, st, r, term, _, _ = env.step(jax.random.PRNGKey(1), st, 0, params)
    np.testing.assert_array_equal(obs, [1, 0, 0, 0, 1])
    assert float(r) == 1.0 and not bool(term)
    _, _, r, term, _, _ = env.step(jax.random.PRNGKey(2), st, 0, params)
    assert float(r) == 1.0 and bool(term)
    mdp = dp.mdp_from_params(params)
    assert mdp.horizon == 2 and mdp.P.shape == (3, 2, 3)
