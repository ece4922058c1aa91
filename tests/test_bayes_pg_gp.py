"""GP building blocks of jaxrl.bayes_pg against NumPy references and definitions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.bayes_pg import gp, policies


def _rbf_np(a, b, ell):
    d = a[:, None, :] - b[None, :, :]
    return np.exp(-0.5 * np.sum(d**2, -1) / ell**2)


def test_gp_posterior_matches_numpy():
    rng = np.random.default_rng(0)
    x, q = rng.normal(size=(7, 2)), rng.normal(size=(4, 2))
    y, ell, s2 = rng.normal(size=7), 0.8, 0.3
    k = lambda a, b: gp.rbf_kernel(a, b, ell)  # noqa: E731
    with jax.enable_x64(True):
        post = gp.gp_posterior(gp.gram(k, jnp.asarray(x), jnp.asarray(x)),
                               gp.gram(k, jnp.asarray(q), jnp.asarray(x)),
                               gp.gram(k, jnp.asarray(q), jnp.asarray(q)), jnp.asarray(y), s2)
        assert post.mean.dtype == jnp.float64
    kxx, kqx, kqq = _rbf_np(x, x, ell), _rbf_np(q, x, ell), _rbf_np(q, q, ell)
    inv = np.linalg.inv(kxx + s2 * np.eye(7))
    np.testing.assert_allclose(post.mean, kqx @ inv @ y, rtol=1e-10)
    np.testing.assert_allclose(post.cov, kqq - kqx @ inv @ kqx.T, rtol=1e-9, atol=1e-12)


def test_bq_posterior_matches_numpy_vector_and_scalar():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(6, 6))
    kxx = a @ a.T
    b, bmat, y, ymat = rng.normal(size=6), rng.normal(size=(3, 6)), rng.normal(size=6), \
        rng.normal(size=(6, 3))
    c = np.linalg.inv(kxx + 0.5 * np.eye(6))
    with jax.enable_x64(True):
        p1 = gp.bq_posterior(jnp.asarray(kxx), jnp.asarray(b), 2.0, jnp.asarray(ymat), 0.5)
        p2 = gp.bq_posterior(jnp.asarray(kxx), jnp.asarray(bmat), jnp.eye(3) * 4.0,
                             jnp.asarray(y), 0.5)
    np.testing.assert_allclose(p1.mean, b @ c @ ymat, rtol=1e-10)
    np.testing.assert_allclose(p1.cov, 2.0 - b @ c @ b, rtol=1e-10)
    np.testing.assert_allclose(p2.mean, bmat @ c @ y, rtol=1e-10)
    np.testing.assert_allclose(p2.cov, 4.0 * np.eye(3) - bmat @ c @ bmat.T, rtol=1e-10,
                               atol=1e-12)


def test_jittered_cholesky_singular_psd_gets_jitter():
    u = np.random.default_rng(2).normal(size=(5, 2))
    k = jnp.asarray(u @ u.T, jnp.float32)  # rank 2, singular
    chol, jit = gp.jittered_cholesky(k)
    assert np.all(np.isfinite(np.asarray(chol)))
    assert float(jit) >= 0.0
    np.testing.assert_allclose(chol @ chol.T, k + jit * jnp.eye(5), rtol=1e-4, atol=1e-4)


def test_jittered_cholesky_not_pd_raises_clear_error_and_nan_under_jit():
    k = jnp.diag(jnp.array([1.0, -2.0, 3.0]))
    with pytest.raises(gp.NotPositiveDefiniteError, match="not positive definite"):
        gp.jittered_cholesky(k)
    chol, _ = jax.jit(gp.jittered_cholesky)(k)
    assert np.all(np.isnan(np.asarray(chol)))


def test_float64_option():
    with pytest.raises(ValueError, match="x64"):
        gp.as_float(jnp.ones(2), float64=True)
    with jax.enable_x64(True):
        assert gp.as_float(jnp.ones(2), float64=True).dtype == jnp.float64


def test_partitioned_inverse_update_equals_direct_inverse():
    rng = np.random.default_rng(3)
    pts = rng.normal(size=(5, 2))
    k = _rbf_np(pts, pts, 1.0) + 1e-3 * np.eye(5)
    cap = 6
    with jax.enable_x64(True):
        k_inv = jnp.zeros((cap, cap)).at[:4, :4].set(np.linalg.inv(k[:4, :4]))
        kx = jnp.zeros(cap).at[:4].set(k[:4, 4])
        a = k_inv @ kx
        delta = k[4, 4] - kx @ a
        new = gp.partitioned_inverse_update(k_inv, a, delta, jnp.asarray(4))
    np.testing.assert_allclose(np.asarray(new)[:5, :5], np.linalg.inv(k), rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(np.asarray(new)[5], 0.0)


def test_ald_nu0_keeps_distinct_points_and_drops_duplicates():
    rng = np.random.default_rng(4)
    base = rng.normal(size=(4, 2))
    xs = np.concatenate([base, base[1:2], base[3:4]])  # two exact duplicates at the end
    kern = lambda a, b: gp.rbf_kernel(a, b, 1.0)  # noqa: E731
    with jax.enable_x64(True):
        d = gp.ald_sparsify(kern, jnp.asarray(xs), 1e-10, 8)
        assert int(d.size) == 4 and not bool(d.overflow)
        coeffs = np.asarray(d.coeffs)
        np.testing.assert_allclose(coeffs[4], np.eye(8)[1], atol=1e-6)
        np.testing.assert_allclose(coeffs[5], np.eye(8)[3], atol=1e-6)
        d0 = gp.ald_sparsify(kern, jnp.asarray(base), 0.0, 8)
        assert int(d0.size) == 4
        kd = _rbf_np(base, base, 1.0)
        np.testing.assert_allclose(np.asarray(d0.k_inv)[:4, :4], np.linalg.inv(kd), rtol=1e-7)


def test_ald_reconstructs_kernel_of_dependent_points_and_flags_overflow():
    # Linear kernel in 2-D: at most 2 dictionary points, the rest are exact combinations.
    lin = lambda a, b: a @ b  # noqa: E731
    with jax.enable_x64(True):
        xs = jnp.asarray(np.random.default_rng(5).normal(size=(6, 2)))
        d = gp.ald_sparsify(lin, xs, 1e-9, 4)
        kd = gp.gram(lin, d.points, d.points) * d.mask[:, None] * d.mask[None, :]
        approx = d.coeffs @ kd @ d.coeffs.T
        np.testing.assert_allclose(approx, np.asarray(xs @ xs.T), rtol=1e-8, atol=1e-8)
        assert int(d.size) == 2
        small = gp.ald_sparsify(lambda a, b: gp.rbf_kernel(a, b, 0.1), xs, 0.0, 2)
        assert bool(small.overflow)


def test_fisher_kernel_from_gaussian_policy_score_matches_definition():
    """Single-step Gaussian policy a ~ N(lambda x, sigma^2): score by autodiff equals
    (eps x / sigma, (eps^2 - 1) / sigma); the Fisher kernel equals u^T G^{-1} u' with the
    analytic G = diag(x^2 / sigma^2, 2 / sigma^2), and G = E[u u^T] by Monte Carlo."""
    pol = policies.gaussian_linear_policy()
    theta = jnp.array([-0.4, 0.7])
    obs = jnp.array([1.3])
    score = gp.score_function(pol.log_prob)
    eps = jax.random.normal(jax.random.PRNGKey(0), (200_000,))
    acts = theta[0] * obs[0] + theta[1] * eps
    u = jax.vmap(lambda a: score(theta, obs, a))(acts)
    ref = jnp.stack([eps * obs[0] / theta[1], (eps**2 - 1) / theta[1]], -1)
    np.testing.assert_allclose(u, ref, rtol=1e-4, atol=1e-4)
    g = jnp.diag(jnp.array([obs[0] ** 2 / theta[1] ** 2, 2 / theta[1] ** 2]))
    g_mc = u.T @ u / u.shape[0]
    np.testing.assert_allclose(g_mc, g, rtol=0.03, atol=0.03)
    g_inv = jnp.linalg.inv(g)
    k = gp.gram(lambda a, b: gp.fisher_kernel(a, b, g_inv), u[:5], u[:5])
    np.testing.assert_allclose(k, np.asarray(u[:5]) @ np.linalg.inv(g) @ np.asarray(u[:5]).T,
                               rtol=1e-5)
    kq = gp.gram(lambda a, b: gp.quadratic_fisher_kernel(a, b, g_inv), u[:5], u[:5])
    np.testing.assert_allclose(kq, (1 + np.asarray(k)) ** 2, rtol=1e-5)
