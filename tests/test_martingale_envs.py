"""Diffusion environments: Euler-Maruyama moments and values against closed forms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.envs import diffusions as dif


def _sim(env, params, n, k, seed=0):
    return jax.jit(lambda key: dif.simulate(key, env, params, n, k))(jax.random.PRNGKey(seed))


@pytest.mark.parametrize(
    "make,kw,t_end",
    [
        (dif.make_ou, dict(dt=0.01, x0_mean=2.0, x0_std=0.5), 1.0),
        (dif.make_brownian, dict(dt=0.02, mu=0.3, sigma=0.7, horizon=1.0), 1.0),
        (dif.make_black_scholes, dict(dt=0.01, mu=0.1, vol=0.3), 1.0),
    ],
)
def test_sde_moments_match_closed_form(make, kw, t_end):
    env, params = make(**kw)
    n, k = 20000, int(round(t_end / kw["dt"]))
    x = np.asarray(_sim(env, params, n, k).x[:, -1], np.float64)
    mean, var = (float(v) for v in env.moments(t_end, params))
    # Tolerance: 4 MC standard errors + an O(dt) Euler-Maruyama weak error.
    se_mean = np.sqrt(var / n)
    se_var = var * np.sqrt(2.0 / (n - 1)) * 1.5  # allow a little kurtosis
    assert abs(x.mean() - mean) < 4 * se_mean + 2 * kw["dt"] * abs(mean)
    assert abs(x.var() - var) < 4 * se_var + 4 * kw["dt"] * var


def test_ou_mean_matches_exact_euler_recursion():
    # E X_k = b + (x0 - b)(1 - a dt)^k exactly for Euler-Maruyama (no O(dt) slack needed).
    env, params = dif.make_ou(dt=0.1, a=1.3, b=-0.5, x0_mean=2.0, x0_std=0.0, sigma=0.4)
    traj = _sim(env, params, 40000, 10)
    k = np.arange(11)
    exact = -0.5 + 2.5 * (1 - 0.13) ** k
    sd = np.sqrt(0.16 * 0.1 * k + 1e-12)  # crude upper bound on the per-time sd
    assert np.all(np.abs(np.asarray(traj.x).mean(0) - exact) < 4 * sd / np.sqrt(40000) + 1e-5)


def test_ou_value_params_solve_hjb():
    a, b, sigma, q, rho = 0.7, -0.3, 0.9, 0.4, 0.8
    A, B, C = (float(v) for v in dif.ou_value_params(a, b, sigma, q, rho))
    J = lambda x: A * x**2 / 2 + B * x + C
    for x in (-1.3, 0.0, 2.1):
        jx = jax.grad(J)(x)
        jxx = jax.grad(jax.grad(J))(x)
        lhs = rho * J(x)
        rhs = x**2 / 2 + q * x + a * (b - x) * jx + 0.5 * sigma**2 * jxx
        assert abs(lhs - rhs) < 1e-5
    # The digest's worked example.
    np.testing.assert_allclose(dif.ou_value_params(1.0, 1.0, 0.5, 1.0, 1.5),
                               [0.285714, 0.514286, 0.366667], atol=1e-5)


def test_values_match_monte_carlo():
    # OU: discounted return from a fixed start over 12/rho time units.
    env, params = dif.make_ou(dt=0.02, x0_mean=0.5, x0_std=0.0, rho=1.5)
    k = int(12 / 1.5 / 0.02)
    traj = _sim(env, params, 4000, k, seed=3)
    disc = np.exp(-1.5 * np.asarray(traj.t[:-1]))
    ret = (np.asarray(traj.r) * disc).sum(1) * 0.02
    j = float(env.value(0.0, 0.5, params))
    assert abs(ret.mean() - j) < 4 * ret.std() / np.sqrt(4000) + 0.04 * abs(j)
    # Black-Scholes: discounted payoff from S0 = 1.
    env, params = dif.make_black_scholes(dt=0.01, x0_std=0.0)
    traj = _sim(env, params, 20000, 100, seed=4)
    pay = np.exp(-float(params.rho)) * np.asarray(traj.terminal)
    j = float(env.value(0.0, 1.0, params))
    assert abs(pay.mean() - j) < 4 * pay.std() / np.sqrt(20000) + 0.01 * j
    # Brownian: J(t, x) = x + mu (T - t).
    env, params = dif.make_brownian(mu=0.2)
    assert float(env.value(0.25, 1.0, params)) == pytest.approx(1.15)


def test_gymnax_protocol_and_terminal_reward():
    env, params = dif.make_brownian(dt=0.25, horizon=1.0)
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    assert obs.shape == (2,)
    done = []
    for i in range(4):
        obs, state, r, term, trunc, info = env.step(jax.random.PRNGKey(i + 1), state,
                                                    jnp.zeros(1), params)
        done.append(bool(term))
        if term:
            assert float(r) == pytest.approx(float(info["final_observation"][0]))
    assert done == [False, False, False, True]


def test_simulate_masks_and_vmaps_over_dt():
    env, params = dif.make_brownian(horizon=1.0)
    k = 20
    dts = jnp.array([0.1, 0.05])
    key = jax.random.PRNGKey(5)
    sim = lambda dt: dif.simulate(key, env, params.replace(dt=dt), 7, k)
    batched = jax.jit(jax.vmap(sim))(dts)
    for i, dt in enumerate([0.1, 0.05]):
        single = jax.jit(sim)(jnp.float32(dt))
        np.testing.assert_allclose(batched.x[i], single.x, rtol=1e-6, atol=1e-6)
        n_valid = int(round(1.0 / dt))
        assert float(single.mask.sum()) == n_valid and float(single.last[n_valid - 1]) == 1.0
        np.testing.assert_allclose(single.terminal, single.x[:, n_valid], rtol=1e-6)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="rho"):
        dif.check_ou_params(a=1.0, sigma=0.5, rho=0.0)
    with pytest.raises(ValueError, match="a="):
        dif.check_ou_params(a=-2.0, sigma=0.5, rho=1.0)
    env, params = dif.make_brownian(dt=0.1, horizon=1.0)
    with pytest.raises(ValueError, match="num_steps"):
        dif.simulate(jax.random.PRNGKey(0), env, params, 4, 5)
