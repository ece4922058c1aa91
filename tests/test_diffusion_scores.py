"""Closed-form scores, mixture validation, forward processes and metrics against independent
references (autodiff of the log density, NumPy, inverse functions)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.diffusion import metrics, scores, sde


def _random_gmm(rng, m, d):
    w = rng.dirichlet(np.ones(m))
    means = rng.normal(size=(m, d)) * 2.0
    a = rng.normal(size=(m, d, d)) / np.sqrt(d)
    covs = np.einsum("mij,mkj->mik", a, a) + 0.1 * np.eye(d)
    return scores.validate_gmm(w, means, covs)


@pytest.mark.parametrize("d", [2, 16])
def test_gmm_score_equals_autodiff_of_log_density(d):
    rng = np.random.default_rng(d)
    gmm = _random_gmm(rng, 4, d)
    xs = jnp.asarray(rng.normal(size=(5, d)) * 3.0, jnp.float32)
    for sigma in [0.0, 0.05, 1.0, 20.0]:
        s = jnp.float32(sigma)
        closed = jax.vmap(lambda x: scores.gmm_score(x, s, gmm))(xs)
        auto = jax.vmap(jax.grad(lambda x: scores.gmm_logpdf(x, s, gmm)))(xs)
        scale = 1.0 + np.abs(np.asarray(auto)).max()
        np.testing.assert_allclose(closed, auto, atol=2e-4 * scale, rtol=2e-4)
        if sigma > 0:  # the fast (eigendecomposition) denoiser is Tweedie of the same score
            fast = jax.vmap(lambda x: scores.gmm_denoiser(gmm)(x, s))(xs)
            np.testing.assert_allclose(fast, xs + sigma**2 * auto,
                                       atol=5e-4 * scale * max(1.0, sigma**2), rtol=5e-4)


def test_gaussian_logpdf_matches_scipy_and_score_matches_single_component():
    from scipy.stats import multivariate_normal
    rng = np.random.default_rng(0)
    gmm = _random_gmm(rng, 1, 3)
    x = rng.normal(size=3).astype(np.float32)
    cov = np.asarray(gmm.covs[0]) + 0.25 * np.eye(3)
    ref = multivariate_normal(np.asarray(gmm.means[0]), cov).logpdf(x)
    np.testing.assert_allclose(scores.gmm_logpdf(jnp.asarray(x), 0.5, gmm), ref, rtol=1e-4)
    np.testing.assert_allclose(
        scores.gaussian_score(jnp.asarray(x), 0.5, gmm.means[0], gmm.covs[0]),
        np.linalg.solve(cov, np.asarray(gmm.means[0]) - x), rtol=1e-4, atol=1e-5)


def test_gmm_moments_and_sampler_agree():
    rng = np.random.default_rng(1)
    gmm = _random_gmm(rng, 3, 2)
    mean, cov = scores.gaussian_moments_of_gmm(gmm)
    xs = np.asarray(scores.sample_gmm(jax.random.PRNGKey(0), gmm, 200_000))
    np.testing.assert_allclose(xs.mean(0), mean, atol=0.03)
    np.testing.assert_allclose(np.cov(xs.T), cov, atol=0.08)


@pytest.mark.parametrize(
    "w,means,covs,match",
    [
        ([0.5, 0.6], [[0.0], [1.0]], [[[1.0]], [[1.0]]], "sum to 1"),
        ([1.5, -0.5], [[0.0], [1.0]], [[[1.0]], [[1.0]]], "non-negative"),
        ([1.0], [[0.0, 0.0]], [[[1.0, 0.5], [0.0, 1.0]]], "not symmetric"),
        ([1.0], [[0.0, 0.0]], [[[1.0, 2.0], [2.0, 1.0]]], "not positive definite"),
        ([1.0], [[0.0, 0.0]], [[[1.0, 0.0]]], "covs must have shape"),
        ([0.5, 0.5], [[0.0, 0.0]], [[[1.0]]], "means must have shape"),
    ],
)
def test_invalid_mixtures_fail_naming_the_problem(w, means, covs, match):
    with pytest.raises(ValueError, match=match):
        scores.validate_gmm(w, means, covs)


def test_vp_ve_edm_marginals_and_inverses():
    vp = sde.VPSDE()
    t = jnp.linspace(0.01, 1.0, 7)
    np.testing.assert_allclose(vp.t_of_sigma(vp.sigma(t)), t, rtol=1e-4)
    a, s = vp.marginal(t)
    np.testing.assert_allclose(a**2 + s**2, 1.0, rtol=1e-6)
    np.testing.assert_allclose(s / a, vp.sigma(t), rtol=1e-4)
    # alpha(t) = exp(-int beta / 2): compare with numerical quadrature of beta.
    grid = np.linspace(0, 0.6, 20001)
    integral = np.trapezoid(np.asarray(vp.beta(jnp.asarray(grid))), grid)
    np.testing.assert_allclose(vp.alpha(jnp.float32(0.6)), np.exp(-integral / 2), rtol=1e-4)
    ve = sde.VESDE()
    np.testing.assert_allclose(ve.t_of_sigma(ve.sigma(t)), t, rtol=1e-4, atol=1e-6)
    # VE: g(t)^2 = d sigma^2 / dt (finite difference).
    h = 1e-3
    fd = (ve.sigma(t + h) ** 2 - ve.sigma(t - h) ** 2) / (2 * h)
    np.testing.assert_allclose(ve.diffusion(t) ** 2, fd, rtol=1e-3)
    sig = sde.edm_sigmas(18)
    assert sig.shape == (19,) and sig[-1] == 0.0
    np.testing.assert_allclose([sig[0], sig[-2]], [80.0, 0.002], rtol=1e-5)
    assert np.all(np.diff(sig) < 0)
    with pytest.raises(ValueError, match="num_steps"):
        sde.edm_sigmas(0)


def test_sliced_wasserstein_and_mmd_against_references():
    key = jax.random.PRNGKey(0)
    x = jax.random.normal(key, (500, 3))
    assert float(metrics.sliced_wasserstein(key, x, x)) == 0.0
    # A shift by m along e1 moves every projection by m * theta_1 exactly.
    m = 0.7
    y = x.at[:, 0].add(m)
    theta = jax.random.normal(key, (3, 128))
    theta = theta / jnp.linalg.norm(theta, axis=0, keepdims=True)
    np.testing.assert_allclose(metrics.sliced_wasserstein(key, x, y),
                               m * np.sqrt(np.mean(np.asarray(theta[0]) ** 2)), rtol=1e-4)
    # MMD against a NumPy brute-force U-statistic.
    xn, yn = np.asarray(x[:60]), np.asarray(y[:50])
    h = 1.3
    k = lambda a, b: np.exp(-((a[:, None] - b[None]) ** 2).sum(-1) / (2 * h * h))
    kxx, kyy = k(xn, xn), k(yn, yn)
    ref = ((kxx.sum() - 60) / (60 * 59) + (kyy.sum() - 50) / (50 * 49) - 2 * k(xn, yn).mean())
    np.testing.assert_allclose(metrics.mmd(x[:60], y[:50], h), np.sqrt(ref), rtol=1e-3)
