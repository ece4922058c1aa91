"""Martingale estimators against truth: closed-form values, a NumPy solve of the orthogonality
conditions, algebraic identities (CTD(1) == ML), and the bias of the mean-square TD error."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl import martingale as mg
from jaxrl.envs import diffusions as dif

QUAD = mg.LinearValue(mg.quadratic_features)
OU_TRUTH = np.array([0.285714, 0.514286, 0.366667])  # a = b = 1, sigma = .5, q = 1, rho = 1.5


def _ou_traj(key, dt, n=256, horizon=6.0):
    env, params = dif.make_ou(dt=dt, horizon=horizon)
    return dif.simulate(key, env, params, n, int(round(horizon / dt)))


@pytest.fixture(scope="module")
def ou_data():
    return jax.jit(lambda k: _ou_traj(k, 0.1))(jax.random.PRNGKey(0))


def _numpy_orthogonality(traj, feat, test, lam=None):
    """Independent NumPy evaluation of G(theta) = mean_n sum_i xi_i delta_i(theta)."""
    t, x, r = np.asarray(traj.t, np.float64), np.asarray(traj.x, np.float64), np.asarray(traj.r)
    dt, rho = float(traj.dt), float(traj.rho)
    mask, last, term = np.asarray(traj.mask), np.asarray(traj.last), np.asarray(traj.terminal)
    n, k = r.shape
    gamma = np.exp(-rho * dt)

    def G(theta):
        total = 0.0
        for p in range(n):
            e = 0.0
            for i in range(k):
                f = np.asarray(test(t[i], x[p, i]), np.float64)
                if lam is None:
                    xi = f
                else:
                    e = gamma * lam**dt * e + dt * f
                    xi = e
                if mask[i] == 0:
                    continue
                j_i = theta @ np.asarray(feat(t[i], x[p, i]), np.float64)
                j_n = term[p] if last[i] else theta @ np.asarray(feat(t[i + 1], x[p, i + 1]))
                total = total + xi * (gamma * j_n - j_i + r[p, i] * dt)
        return total / n

    return G


def _np_feat(t, x):
    return np.array([x * x / 2, x, 1.0])


@pytest.mark.parametrize("lam,test", [(None, None), (0.5, None),
                                      (None, lambda t, x: jnp.stack([jnp.ones_like(x), x, x**3]))])
def test_clstd_equals_direct_solution_of_orthogonality_equations(lam, test):
    traj = jax.jit(lambda k: _ou_traj(k, 0.2, n=6, horizon=3.0))(jax.random.PRNGKey(2))
    theta = np.asarray(mg.clstd(QUAD, traj, test_fn=test, lam=lam), np.float64)
    np_test = _np_feat if test is None else (lambda t, x: np.array([1.0, x, x**3]))
    G = _numpy_orthogonality(traj, _np_feat, np_test, lam)
    # G is affine: build its Jacobian by finite differences and solve G(theta) = 0 directly.
    g0 = G(np.zeros(3))
    jac = np.stack([G(np.eye(3)[j]) - g0 for j in range(3)], axis=1)
    direct = np.linalg.solve(jac, -g0)
    np.testing.assert_allclose(theta, direct, rtol=2e-3, atol=2e-3)
    assert np.max(np.abs(G(theta))) < 1e-3 * max(1.0, np.max(np.abs(g0)))


def test_ctd1_equals_ml_on_finite_horizon():
    env, params = dif.make_black_scholes(dt=0.05)
    traj = jax.jit(lambda k: dif.simulate(k, env, params, 200, 20))(jax.random.PRNGKey(3))
    value = mg.LinearValue(lambda t, x: jnp.stack([jnp.ones_like(x), x - 1.0, (1.0 - t) * x]))
    np.testing.assert_allclose(mg.clstd(value, traj, lam=1.0), mg.ml_linear(value, traj),
                               rtol=1e-3, atol=1e-4)


def test_mstde_is_biased_on_the_same_data(ou_data):
    ml = np.asarray(mg.ml_linear(QUAD, ou_data, fit_until=1.0))
    lstd = np.asarray(mg.clstd(QUAD, ou_data))
    ms = np.asarray(mg.mstde_linear(QUAD, ou_data))
    err = lambda th: np.linalg.norm(th - OU_TRUTH)
    assert err(ms) > 0.3 and err(ms) > 4 * max(err(ml), err(lstd))


def test_online_ctd0_and_cgtd_converge_to_clstd(ou_data):
    lstd = np.asarray(mg.clstd(QUAD, ou_data))
    ctd = np.asarray(jax.jit(lambda d: mg.ctd(jnp.zeros(3), QUAD, d, 1.0, num_epochs=20))(ou_data))
    np.testing.assert_allclose(ctd, lstd, atol=0.02)
    gtd = np.asarray(jax.jit(
        lambda d: mg.cgtd(jnp.zeros(3), QUAD, d, 0.5, 2.0, num_epochs=30))(ou_data))
    np.testing.assert_allclose(gtd, lstd, atol=0.06)


def test_gradient_martingale_loss_matches_closed_form(ou_data):
    p, losses = jax.jit(lambda d: mg.fit_loss(
        lambda th: mg.martingale_loss(th, QUAD, d, fit_until=1.0), jnp.zeros(3), 1500, 0.05))(
        ou_data)
    np.testing.assert_allclose(p, mg.ml_linear(QUAD, ou_data, fit_until=1.0), atol=5e-3)
    assert losses[-1] <= losses[0]


def test_vmapped_seed_equals_single_seed():
    def est(key):
        traj = _ou_traj(key, 0.2, n=32, horizon=3.0)
        return jnp.stack([mg.ml_linear(QUAD, traj, 1.0), mg.clstd(QUAD, traj),
                          mg.mstde_linear(QUAD, traj),
                          mg.ctd(jnp.zeros(3), QUAD, traj, 1.0, num_epochs=2)])

    keys = jnp.stack([jax.random.PRNGKey(s) for s in range(3)])
    batched = jax.jit(jax.vmap(est))(keys)
    for i in range(3):
        np.testing.assert_allclose(batched[i], jax.jit(est)(keys[i]), rtol=1e-4, atol=1e-5)


def test_mlp_value_shapes_and_time_dependence():
    p, f = mg.mlp_value(jax.random.PRNGKey(0), hidden=(8,), time_dependent=True)
    assert f(p, jnp.float32(0.1), jnp.float32(1.0)).shape == ()
    assert f(p, 0.1, 1.0) != f(p, 0.9, 1.0)
