"""Calibration variants of the BPG posteriors (issue 19 item 1, `gradient_study.
calibration_variants`): the Student-t marginal from integrating the common scale of signal and
noise against a numerical integral over `s^2` (scipy.integrate) and scipy.stats; the
heteroscedastic and the restricted (constant prior mean integrated out) evidence against dense
NumPy log evidences maximized by scipy.optimize; Model 2 with an integrated constant mean
against the large-variance-constant-kernel limit in NumPy; t-coverage on calibrated draws."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, optimize, stats

from jaxrl.bayes_pg import bpg, gp, gradient_study
from jaxrl.envs.lqr import LQRParams


def _rbf_np(a, b, ell):
    d = a[:, None, :] - b[None, :, :]
    return np.exp(-0.5 * np.sum(d**2, -1) / ell**2)


def _maximize(neg, x0s):
    best = None
    for x0 in x0s:
        r = optimize.minimize(neg, x0, method="Nelder-Mead",
                              options=dict(xatol=1e-10, fatol=1e-12, maxiter=40000))
        if best is None or r.fun < best.fun:
            best = r
    return np.exp(best.x), -best.fun


def _log_normal_np(y, s):
    sign, logdet = np.linalg.slogdet(s)
    assert sign > 0
    return -0.5 * (y @ np.linalg.solve(s, y) + logdet + len(y) * np.log(2 * np.pi))


def _data(seed, n=14):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    k = _rbf_np(x, x, 1.2)
    d = np.exp(rng.normal(size=n))  # heteroscedastic noise shape
    y = np.linalg.cholesky(3.0 * k + 0.4 * np.diag(d)) @ rng.normal(size=n) + 2.5
    return k, d, y


def test_heteroscedastic_evidence_fit_matches_scipy():
    k, d, y = _data(0)
    (a_ref, b_ref), le_ref = _maximize(
        lambda t: -_log_normal_np(y, np.exp(t[0]) * k + np.exp(t[1]) * np.diag(d)),
        ([0.0, 0.0], [2.0, -2.0], [-2.0, 2.0]))
    with jax.enable_x64(True):
        fit = gp.fit_scale_noise(jnp.asarray(k), jnp.asarray(y), noise_diag=jnp.asarray(d))
    assert not bool(fit.at_bound)
    np.testing.assert_allclose(float(fit.log_evidence), le_ref, rtol=1e-7, atol=1e-7)
    np.testing.assert_allclose([float(fit.scale), float(fit.noise)], [a_ref, b_ref], rtol=1e-3)


def _restricted_log_evidence_np(k, y, a, b):
    """log int N(y; mu 1, a K + b I) d mu (flat prior on mu), dense NumPy."""
    s = a * k + b * np.eye(len(y))
    one = np.ones(len(y))
    si1, siy = np.linalg.solve(s, one), np.linalg.solve(s, y)
    mu = (one @ siy) / (one @ si1)
    res = y - mu
    return (-0.5 * (res @ np.linalg.solve(s, res) + np.linalg.slogdet(s)[1]
                    + np.log(one @ si1) + (len(y) - 1) * np.log(2 * np.pi)))


def test_restricted_evidence_fit_matches_scipy_and_quadrature():
    k, _, y = _data(1)
    # the closed form against a numerical integral over mu at one (a, b)
    val, _ = integrate.quad(lambda mu: np.exp(_log_normal_np(y - mu, 2.0 * k + 0.5 * np.eye(14))
                                              + 20.0), -50, 50, epsabs=0, epsrel=1e-11,
                            points=[2.5], limit=200)
    np.testing.assert_allclose(_restricted_log_evidence_np(k, y, 2.0, 0.5), np.log(val) - 20.0,
                               rtol=1e-9)
    (a_ref, b_ref), le_ref = _maximize(
        lambda t: -_restricted_log_evidence_np(k, y, *np.exp(t)),
        ([0.0, 0.0], [2.0, -2.0], [-2.0, 2.0]))
    with jax.enable_x64(True):
        fit = gp.fit_scale_noise(jnp.asarray(k), jnp.asarray(y), center=True)
        valid = np.arange(18) < 14  # padding rows are ignored
        kp = np.zeros((18, 18))
        kp[:14, :14] = k
        yp = np.concatenate([y, 100.0 * np.ones(4)])
        fit_p = gp.fit_scale_noise(jnp.asarray(kp), jnp.asarray(yp), jnp.asarray(valid),
                                   center=True)
    np.testing.assert_allclose(float(fit.log_evidence), le_ref, rtol=1e-7, atol=1e-7)
    np.testing.assert_allclose([float(fit.scale), float(fit.noise)], [a_ref, b_ref], rtol=1e-3)
    for x, z in zip(fit, fit_p, strict=True):
        np.testing.assert_allclose(float(x), float(z), rtol=1e-9)


def test_student_t_marginal_matches_integral_over_signal_scale():
    """`N(m, s^2 V)` with `s^2 ~ p(s^2 | y, r)` (Jeffreys prior, evidence integrated
    numerically) has the CDF of `t_dof(m, a V)` with `a` the fitted scale, `dof` from
    `gp.student_t_dof`, for Model 2 at its fitted ratio `r = b / a`."""
    rng = np.random.default_rng(2)
    m, n = 6, 2
    u = rng.normal(size=(m, n))
    ret = rng.normal(size=m) * 3 - 1.0
    g = np.array([[1.7, 0.2], [0.2, 1.1]])
    for center in (False, True):
        with jax.enable_x64(True):
            ju, jg, jr = jnp.asarray(u), jnp.asarray(g), jnp.asarray(ret)
            f = bpg.evidence_fit(2, jr, ju, jg, center=center)
            post = bpg.bpg_model2(jr, ju, jg, f.noise, signal_scale=f.scale, center=center)
            unit = bpg.bpg_model2(jr, ju, jg, f.noise / f.scale, center=center)  # V at s^2 = 1
        dof = gp.student_t_dof(m, 1, center)
        r = float(f.noise / f.scale)
        k0 = u @ np.linalg.inv(g) @ u.T + r * np.eye(m)
        one = np.ones(m)
        if center:  # restricted likelihood of s^2 (mu integrated)
            mu = one @ np.linalg.solve(k0, ret) / (one @ np.linalg.solve(k0, one))
            res, p_eff = ret - mu, m - 1
        else:
            res, p_eff = ret, m
        q = res @ np.linalg.solve(k0, res)

        def log_post_s2(s2, q=q, p_eff=p_eff):  # (1/s^2) * likelihood, up to a constant
            return -np.log(s2) - 0.5 * p_eff * np.log(s2) - 0.5 * q / s2

        s2_mode = q / (p_eff + 2)
        c = log_post_s2(s2_mode)
        dens = lambda s2, c=c: np.exp(log_post_s2(s2) - c)  # noqa: E731
        z, _ = integrate.quad(dens, 0, np.inf, epsabs=0, epsrel=1e-12, limit=400)
        mean, v = np.asarray(unit.mean), np.asarray(unit.cov)
        np.testing.assert_allclose(np.asarray(post.cov), float(f.scale) * v, rtol=1e-9)
        for j in range(n):
            for x in (mean[j] - 3.0 * np.sqrt(float(f.scale) * v[j, j]),
                      mean[j] + 1.0 * np.sqrt(float(f.scale) * v[j, j])):
                cdf, _ = integrate.quad(
                    lambda s2, x=x, j=j, dens=dens: dens(s2) * stats.norm.cdf(
                        (x - mean[j]) / np.sqrt(s2 * v[j, j])), 0, np.inf, epsabs=0,
                    epsrel=1e-12, limit=400)
                ref = stats.t.cdf(x, dof, loc=float(post.mean[j]),
                                  scale=np.sqrt(float(post.cov[j, j])))
                np.testing.assert_allclose(cdf / z, ref, rtol=1e-6)


def test_model2_integrated_constant_mean_is_the_flat_prior_limit():
    """`center=True` equals a zero-mean GP with kernel `K + c 1 1^T`, `c` large (dense NumPy;
    the constant's quadrature integral is `c int grad Pr = 0`), also with heteroscedastic
    noise."""
    rng = np.random.default_rng(3)
    m, a, b = 8, 2.5, 0.7
    u, ret = rng.normal(size=(m, 2)), rng.normal(size=m) - 40.0
    g = np.array([[2.0, 0.3], [0.3, 1.5]])
    d = np.exp(rng.normal(size=m))
    with jax.enable_x64(True):
        p = bpg.bpg_model2(jnp.asarray(ret), jnp.asarray(u), jnp.asarray(g), b,
                           signal_scale=a, noise_diag=jnp.asarray(d), center=True)
        pm = bpg.bpg_model2(jnp.asarray(np.concatenate([ret, [5.0, 9.0]])),
                            jnp.asarray(np.concatenate([u, rng.normal(size=(2, 2))])),
                            jnp.asarray(g), b, mask=jnp.asarray(np.arange(m + 2) < m),
                            signal_scale=a, noise_diag=jnp.asarray(np.concatenate([d, [1, 1]])),
                            center=True)

    def limit(c):
        s = a * (u @ np.linalg.inv(g) @ u.T) + a * c * np.ones((m, m)) + b * np.diag(d)
        return a * u.T @ np.linalg.solve(s, ret), a * g - a**2 * u.T @ np.linalg.solve(s, u)

    (m1, c1), (m2, c2) = limit(1e5), limit(2e5)  # Richardson: error O(1 / c^2)
    np.testing.assert_allclose(p.mean, 2 * m2 - m1, rtol=1e-8)
    np.testing.assert_allclose(p.cov, 2 * c2 - c1, rtol=1e-8)
    np.testing.assert_allclose(pm.mean, p.mean, rtol=1e-9)
    np.testing.assert_allclose(pm.cov, p.cov, rtol=1e-9)


def test_heteroscedastic_posteriors_match_numpy():
    rng = np.random.default_rng(4)
    m, n, a, b = 9, 2, 1.5, 0.6
    r, u = rng.normal(size=m) * 4, rng.normal(size=(m, n))
    g = np.array([[2.0, 0.3], [0.3, 1.5]])
    gi = np.linalg.inv(g)
    with jax.enable_x64(True):
        d1 = np.asarray(bpg.noise_profile(1, jnp.asarray(u), jnp.asarray(g)))
        d2 = np.asarray(bpg.noise_profile(2, jnp.asarray(u), jnp.asarray(g)))
        p1 = bpg.bpg_model1(jnp.asarray(r), jnp.asarray(u), jnp.asarray(g), b, signal_scale=a,
                            noise_diag=jnp.asarray(d1))
        p2 = bpg.bpg_model2(jnp.asarray(r), jnp.asarray(u), jnp.asarray(g), b, signal_scale=a,
                            noise_diag=jnp.asarray(d2))
    qf = np.einsum("mi,ij,mj->m", u, gi, u)
    np.testing.assert_allclose(d1, (1 + qf) ** 2 / np.mean((1 + qf) ** 2), rtol=1e-12)
    np.testing.assert_allclose(d2, qf / np.mean(qf), rtol=1e-12)
    s2 = a * (u @ gi @ u.T) + b * np.diag(d2)
    np.testing.assert_allclose(p2.mean, a * u.T @ np.linalg.solve(s2, r), rtol=1e-9)
    np.testing.assert_allclose(p2.cov, a * g - a**2 * u.T @ np.linalg.solve(s2, u), rtol=1e-9,
                               atol=1e-12)
    s1 = a * (1 + u @ gi @ u.T) ** 2 + b * np.diag(d1)
    bb = a * (1 + qf)
    np.testing.assert_allclose(p1.mean, bb @ np.linalg.solve(s1, r[:, None] * u), rtol=1e-9)
    np.testing.assert_allclose(p1.cov, (a * (1 + n) - bb @ np.linalg.solve(s1, bb)) * np.eye(n),
                               rtol=1e-9, atol=1e-12)


def test_t_coverage_is_nominal_for_calibrated_student_t():
    rng = np.random.default_rng(5)
    reps, truth, dof = 4000, np.array([-180.0, -100.0]), 4.0
    a = rng.normal(size=(reps, 2, 2)) * 5
    cov = a @ np.swapaxes(a, 1, 2) + np.eye(2)
    z = rng.normal(size=(reps, 2)) / np.sqrt(rng.chisquare(dof, (reps, 1)) / dof)
    mean = truth + np.einsum("rij,rj->ri", np.linalg.cholesky(cov), z)
    dofs = np.full(reps, dof)
    out = gradient_study.coverage(mean, cov, truth, np.random.default_rng(6), 1000, dofs)
    se = np.sqrt(0.95 * 0.05 / reps)
    assert abs(out["inside"].mean() - 0.95) < 4 * se
    assert abs(out["angle_inside"].mean() - 0.95) < 6 * se
    gauss = gradient_study.coverage(mean, cov, truth, np.random.default_rng(6), 1000)
    assert gauss["inside"].mean() < 0.95 - 6 * se  # the normal quantile under-covers
    inf = gradient_study.coverage(mean, cov, truth, np.random.default_rng(6), 1000,
                                  np.full(reps, np.inf))
    np.testing.assert_array_equal(inf["inside"], gauss["inside"])


@pytest.mark.parametrize("mode", ["steps", "exact"])
def test_calibration_variants_smoke(mode):
    theta, params = jnp.array([-0.2, 1.0]), LQRParams()
    # one `_dg` variant (jacfwd compiles slowly; the delta method has its own tests)
    names = tuple(n for n in gradient_study.CALIBRATION_VARIANTS if n != "bpg1_het_t_dg")
    out = jax.jit(lambda k: gradient_study.calibration_variants(k, theta, params, 5, mode,
                                                                names))(jax.random.PRNGKey(0))
    ref = jax.jit(lambda k: gradient_study.estimate_gradients(
        k, theta, params, 5, mode, fit=True, names=("bpg1", "bpg2")))(jax.random.PRNGKey(0))
    for name in ("bpg1", "bpg2"):  # the plain variants are the study's estimators
        np.testing.assert_allclose(out[name], ref[name], rtol=1e-3)  # float32, two programs
        np.testing.assert_allclose(out[f"{name}_cov"], ref[f"{name}_cov"], rtol=1e-3)
    assert float(out["bpg2_dof"]) == np.inf
    assert float(out["bpg1_t_dof"]) == 10 and float(out["bpg2_t_dof"]) == 5
    assert float(out["bpg2_mean_t_dof"]) == 4
    for name in names:
        assert np.all(np.isfinite(np.asarray(out[f"{name}_cov"])))
    if mode == "steps":  # the propagated G error only widens the interval
        extra = np.asarray(out["bpg2_mean_het_t_dg_cov"]) - np.asarray(out["bpg2_mean_het_t_cov"])
        assert np.all(np.linalg.eigvalsh(extra) >= -1e-3 * np.abs(extra).max())
