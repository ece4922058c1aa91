"""Terminal states and finite horizons: DP and the gymnax environment score the same MDP
(issue 18, item 1). The truth is the environment itself (returns of rolled-out episodes) and
hand-computed returns."""

import jax
import numpy as np
import pytest

from experiments import dp as script
from experiments.configs import dp as cfg
from jaxrl import dp
from jaxrl.envs.finite_mdp import make_finite_mdp


def _loop_mdp():
    # s0 -> s1 (reward 0.5); s1 terminal with a rewarding self-loop (+1); H = 3
    P = np.zeros((2, 1, 2))
    P[0, 0, 1] = P[1, 0, 1] = 1.0
    R = np.zeros((2, 1, 2))
    R[0, 0, 1], R[1, 0, 1] = 0.5, 1.0
    return P, R, np.array([1.0, 0.0]), np.array([False, True])


def _env_returns(env, params, steps, n=4):
    rets = []
    for i in range(n):
        obs, st = env.reset(jax.random.PRNGKey(i), params)
        g, alive = 0.0, True
        for t in range(steps):
            obs, st, r, term, trunc, _ = env.step(jax.random.PRNGKey(100 + t), st, 0, params)
            if alive:
                g += float(r)
            alive = alive and not (bool(term) or bool(trunc))
        rets.append(g)
    return np.array(rets)


@pytest.mark.parametrize("time_indexed", [False, True])
def test_terminal_state_is_absorbing_with_zero_reward(time_indexed):
    P, R, mu0, term = _loop_mdp()
    env, params = make_finite_mdp(P, R, mu0, 1.0, horizon=3, terminal=term,
                                  time_indexed=time_indexed)
    g_env = _env_returns(env, params, 3)
    np.testing.assert_allclose(g_env, 0.5)  # the reward INTO the terminal state, nothing after
    mdp = dp.mdp_from_params(params)
    sol = dp.solve_exact(mdp, dp.make_objective("mean"))
    assert abs(sol.objective_value - 0.5) < 1e-6  # was 0.5 + 2 * 1.0 = 2.5 (terminal dropped)
    v, _ = dp.classic_value_iteration(mdp)
    assert abs(mdp.mu0 @ v - 0.5) < 1e-6


def test_mu0_on_a_terminal_state_is_refused():
    P, R, _, term = _loop_mdp()
    with pytest.raises(ValueError, match="terminal state 1"):
        dp.validate_mdp(P, R, np.array([0.5, 0.5]), 1.0, 3, term)
    with pytest.raises(ValueError, match="terminal state 1"):
        make_finite_mdp(P, R, np.array([0.5, 0.5]), 1.0, 3, terminal=term)
    with pytest.raises(ValueError, match="terminal must have shape"):
        dp.validate_mdp(P, R, np.array([1.0, 0.0]), 1.0, 3, np.array([True]))


def test_npz_terminal_array(tmp_path):
    P, R, mu0, term = _loop_mdp()
    path = tmp_path / "t.npz"
    np.savez(path, P=P, R=R, mu0=mu0, gamma=np.float64(1.0), horizon=np.int64(3), terminal=term)
    c = cfg.get_config("quick")
    c.mdp, c.objective = str(path), "mean"
    s = script.run(c, str(tmp_path / "out"))
    assert abs(s["objective_value"] - 0.5) < 1e-9
    np.savez(path, P=P, R=R, mu0=mu0, gamma=np.float64(1.0), horizon=np.int64(3))  # no terminal
    assert abs(script.run(c, str(tmp_path / "out2"))["objective_value"] - 2.5) < 1e-9


def test_time_indexed_observation_and_termination_at_the_horizon():
    # one state, one action, reward 1; H = 3: obs carries t, the episode TERMINATES at t = H
    env, params = make_finite_mdp(np.ones((1, 1, 1)), np.ones((1, 1)), np.ones(1), 1.0,
                                  horizon=3, time_indexed=True)
    assert env.observation_space(params).shape == (4,)
    obs, st = env.reset(jax.random.PRNGKey(0), params)
    seen, terms = [np.asarray(obs)], []
    for t in range(3):
        obs, st, r, term, trunc, info = env.step(jax.random.PRNGKey(t), st, 0, params)
        seen.append(np.asarray(info["final_observation"]))
        terms.append(bool(term))
    np.testing.assert_array_equal(np.stack(seen)[:, 1:], np.vstack([np.eye(3), np.zeros(3)]))
    assert terms == [False, False, True]
    with pytest.raises(ValueError, match="time_indexed needs a horizon"):
        make_finite_mdp(np.ones((1, 1, 1)), np.ones((1, 1)), np.ones(1), 0.9, time_indexed=True)
