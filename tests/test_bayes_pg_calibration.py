"""GP hyperparameter fitting by evidence maximization and calibration measures (issue 19 item
1): the profile-likelihood fit against scipy.optimize on a NumPy log evidence, the sparse
(ALD) evidence algebra against dense NumPy, the signal-scale semantics of the BPG posteriors
against NumPy, and the coverage measure on posteriors that are calibrated by construction."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import optimize

from jaxrl.bayes_pg import bpg, gp, gradient_study


def _rbf_np(a, b, ell):
    d = a[:, None, :] - b[None, :, :]
    return np.exp(-0.5 * np.sum(d**2, -1) / ell**2)


def _log_evidence_np(k, y, a, b):
    """sum_j log N(y_j; 0, a K + b I) with NumPy (columns of y independent)."""
    y = y.reshape(len(k), -1)
    s = a * k + b * np.eye(len(k))
    sign, logdet = np.linalg.slogdet(s)
    assert sign > 0
    quad = np.sum(y * np.linalg.solve(s, y))
    n, p = y.shape
    return -0.5 * (quad + p * logdet + n * p * np.log(2 * np.pi))


def _scipy_fit(k, y):
    best = None
    for x0 in ([0.0, 0.0], [2.0, -2.0], [-2.0, 2.0]):
        r = optimize.minimize(lambda t: -_log_evidence_np(k, y, *np.exp(t)), x0,
                              method="Nelder-Mead",
                              options=dict(xatol=1e-9, fatol=1e-11, maxiter=20000))
        if best is None or r.fun < best.fun:
            best = r
    return np.exp(best.x), -best.fun


@pytest.mark.parametrize("columns", [1, 2])
def test_evidence_fit_matches_scipy_on_numpy_log_evidence(columns):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(15, 2))
    k = _rbf_np(x, x, 1.3)
    # data from a GP with a = 4, b = 0.3 (plus a second, independent column)
    chol = np.linalg.cholesky(4.0 * k + 0.3 * np.eye(15))
    y = chol @ rng.normal(size=(15, columns))
    y = y[:, 0] if columns == 1 else y
    (a_ref, b_ref), le_ref = _scipy_fit(k, y)
    with jax.enable_x64(True):
        fit = gp.fit_scale_noise(jnp.asarray(k), jnp.asarray(y))
    assert not bool(fit.at_bound)
    np.testing.assert_allclose(float(fit.log_evidence), le_ref, rtol=1e-7, atol=1e-7)
    np.testing.assert_allclose(float(fit.log_evidence),
                               _log_evidence_np(k, y, float(fit.scale), float(fit.noise)),
                               rtol=1e-9)
    np.testing.assert_allclose([float(fit.scale), float(fit.noise)], [a_ref, b_ref], rtol=1e-3)


def test_evidence_fit_ignores_masked_rows():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(12, 1))
    k, y = _rbf_np(x, x, 0.7), rng.normal(size=12) * 3
    valid = np.arange(12) < 8
    with jax.enable_x64(True):
        masked = gp.fit_scale_noise(jnp.asarray(k), jnp.asarray(y * 50.0), jnp.asarray(valid))
        sub = gp.fit_scale_noise(jnp.asarray(k[:8, :8]), jnp.asarray(y[:8] * 50.0))
    for a, b in zip(masked, sub, strict=True):
        np.testing.assert_allclose(float(a), float(b), rtol=1e-9)


@pytest.mark.parametrize("nu", [0.0, 0.3])
def test_sparse_evidence_algebra_matches_dense_numpy(nu):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(20, 2))
    y = rng.normal(size=20)
    valid = np.arange(20) < 17
    kern = lambda a, b: gp.rbf_kernel(a, b, 1.0)  # noqa: E731
    with jax.enable_x64(True):
        dic = gp.ald_sparsify(kern, jnp.asarray(x), nu, 24, jnp.asarray(valid))
        kd = gp.gram(kern, dic.points, dic.points) * dic.mask[:, None] * dic.mask[None, :]
        yv = jnp.where(jnp.asarray(valid), jnp.asarray(y), 0.0)
        f = gp.sparse_quad_logdet(kd, dic.coeffs, yv, 17.0)
        a = np.asarray(dic.coeffs)[valid]
        k_sparse = a @ np.asarray(kd) @ a.T  # the sparse model's kernel matrix (valid rows)
        if nu == 0.0:
            np.testing.assert_allclose(k_sparse, _rbf_np(x[valid], x[valid], 1.0), atol=1e-8)
        for r in (0.05, 1.0, 7.0):
            q, ld = f(jnp.asarray(r))
            s = k_sparse + r * np.eye(17)
            np.testing.assert_allclose(float(q), y[valid] @ np.linalg.solve(s, y[valid]),
                                       rtol=1e-7)
            np.testing.assert_allclose(float(ld), np.linalg.slogdet(s)[1], rtol=1e-8)


def test_bpg_signal_scale_is_a_kernel_scale_numpy():
    """Kernel `a k`, noise `b`: mean `a B (a K + b I)^{-1} y`, cov `a B_0 - a^2 B (.)^{-1} B^T`."""
    rng = np.random.default_rng(3)
    m, n, a, b = 9, 2, 3.5, 0.8
    r, u = rng.normal(size=m) * 4, rng.normal(size=(m, n))
    g = np.array([[2.0, 0.3], [0.3, 1.5]])
    gi = np.linalg.inv(g)
    with jax.enable_x64(True):
        p2 = bpg.bpg_model2(jnp.asarray(r), jnp.asarray(u), jnp.asarray(g), b, signal_scale=a)
        p1 = bpg.bpg_model1(jnp.asarray(r), jnp.asarray(u), jnp.asarray(g), b, signal_scale=a)
    s = a * (u @ gi @ u.T) + b * np.eye(m)
    np.testing.assert_allclose(p2.mean, a * u.T @ np.linalg.solve(s, r), rtol=1e-9)
    np.testing.assert_allclose(p2.cov, a * g - a**2 * u.T @ np.linalg.solve(s, u), rtol=1e-9,
                               atol=1e-12)
    s1 = a * (1 + u @ gi @ u.T) ** 2 + b * np.eye(m)
    bb = a * (1 + np.einsum("mi,ij,mj->m", u, gi, u))
    np.testing.assert_allclose(p1.mean, bb @ np.linalg.solve(s1, r[:, None] * u), rtol=1e-9)
    np.testing.assert_allclose(p1.cov, (a * (1 + n) - bb @ np.linalg.solve(s1, bb)) * np.eye(n),
                               rtol=1e-9, atol=1e-12)


def test_coverage_is_nominal_for_calibrated_gaussians():
    """Means drawn from N(truth, S_r) with reported covariance S_r cover at 95% (+- 4 se)."""
    rng = np.random.default_rng(4)
    reps, truth = 4000, np.array([-180.0, -100.0])
    a = rng.normal(size=(reps, 2, 2)) * 5
    cov = a @ np.swapaxes(a, 1, 2) + 1.0 * np.eye(2)
    mean = truth + np.einsum("rij,rj->ri", np.linalg.cholesky(cov), rng.normal(size=(reps, 2)))
    out = gradient_study.coverage(mean, cov, truth, np.random.default_rng(5), samples=1000)
    se = np.sqrt(0.95 * 0.05 / reps)
    assert abs(out["inside"].mean() - 0.95) < 4 * se
    assert abs(out["angle_inside"].mean() - 0.95) < 6 * se
    np.testing.assert_allclose(np.median(np.abs(out["z"]), 0), 0.6745, atol=0.05)
    # an overconfident posterior (covariance / 10) covers far less
    low = gradient_study.coverage(mean, cov / 10, truth, np.random.default_rng(5), samples=1000)
    assert low["inside"].mean() < 0.6 and low["angle_inside"].mean() < 0.6
