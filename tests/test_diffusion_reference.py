"""Samplers and processes against independent NumPy (float64) references: a mixture denoiser
written with scipy, EDM Algorithm 1, the DDIM / DPM-Solver++(2M) / Euler-Maruyama updates in the
VE variable and the DDPM posterior derived in the VE variable (the library writes DDIM and DDPM in
VP variables), the NFE rule on schedules ending above 0, and the VE marginal by quadrature."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import logsumexp, softmax
from scipy.stats import multivariate_normal

from jaxrl.diffusion import samplers, scores, sde

W = np.array([0.3, 0.7])
MU = np.array([[-1.5, 0.0], [1.0, 1.0]])
COV = np.stack([np.eye(2) * 0.3, [[0.5, 0.2], [0.2, 0.4]]])
DEN = scores.gmm_denoiser(scores.validate_gmm(W, MU, COV))


def np_denoiser(x, s):
    """E[y | y + s n = x] of the mixture, float64: responsibilities by scipy, Gaussian posterior
    means per component."""
    covs = COV + s**2 * np.eye(2)
    logp = np.array([multivariate_normal(MU[m], covs[m]).logpdf(x) for m in range(2)])
    r = softmax(np.log(W) + logp)
    post = [MU[m] + COV[m] @ np.linalg.solve(covs[m], x - MU[m]) for m in range(2)]
    assert np.isfinite(logsumexp(logp))
    return sum(r[m] * post[m] for m in range(2))


def ref_euler(x, sig, z=None):
    for s, s2 in zip(sig[:-1], sig[1:], strict=True):
        x = x + (s2 - s) * (x - np_denoiser(x, s)) / s
    return x, len(sig) - 1


def ref_heun(x, sig, z=None):
    """Karras et al. 2022, Algorithm 1 with S_churn = 0 (2nd-order correction iff sigma' != 0)."""
    nfe = 0
    for s, s2 in zip(sig[:-1], sig[1:], strict=True):
        d = (x - np_denoiser(x, s)) / s
        x_new = x + (s2 - s) * d
        nfe += 1
        if s2 != 0:
            d2 = (x_new - np_denoiser(x_new, s2)) / s2
            x_new = x + (s2 - s) * (0.5 * d + 0.5 * d2)
            nfe += 1
        x = x_new
    return x, nfe


def ref_ddim(x, sig, z=None):
    """DDIM eta = 0 in the VE variable: x' = x0 + (s' / s) (x - x0) (Song et al., Eq. 13 with
    x_vp = x / sqrt(1 + s^2))."""
    for s, s2 in zip(sig[:-1], sig[1:], strict=True):
        x0 = np_denoiser(x, s)
        x = x0 + (s2 / s) * (x - x0)
    return x, len(sig) - 1


def ref_dpmpp_2m(x, sig, z=None):
    """DPM-Solver++(2M) (Lu et al. 2022, Alg. 2) in lambda = -log sigma."""
    old = None
    for i in range(len(sig) - 1):
        s, s2 = sig[i], sig[i + 1]
        x0 = np_denoiser(x, s)
        if old is None or s2 == 0:
            dd = x0
        else:
            h = np.log(s) - np.log(s2)
            r = (np.log(sig[i - 1]) - np.log(s)) / h
            dd = (1 + 1 / (2 * r)) * x0 - old / (2 * r)
        x = (s2 / s) * x + (1 - s2 / s) * dd
        old = x0
    return x, len(sig) - 1


def ref_ddpm(x, sig, z):
    """DDPM posterior in the VE variable: x_{s'} | x_s, x0 ~ N(x0 + s'^2 / s^2 (x_s - x0),
    s'^2 (s^2 - s'^2) / s^2)."""
    for i, (s, s2) in enumerate(zip(sig[:-1], sig[1:], strict=True)):
        x0 = np_denoiser(x, s)
        x = x0 + (s2**2 / s**2) * (x - x0) + np.sqrt(s2**2 * (s**2 - s2**2)) / s * z[i]
    return x, len(sig) - 1


def ref_euler_maruyama(x, sig, z):
    n = len(sig) - 1
    for i, (s, s2) in enumerate(zip(sig[:-1], sig[1:], strict=True)):
        score = (np_denoiser(x, s) - x) / s**2
        x = x + (s**2 - s2**2) * score + (0.0 if i == n - 1 else np.sqrt(s**2 - s2**2)) * z[i]
    return x, n


REFS = {"euler": ref_euler, "heun": ref_heun, "ddim": ref_ddim, "dpmpp_2m": ref_dpmpp_2m,
        "ddpm": ref_ddpm, "euler_maruyama": ref_euler_maruyama}
SCHEDULES = {
    "edm_to_0": sde.edm_sigmas(6, sigma_min=0.05, sigma_max=5.0),
    "ends_above_0": np.array([2.0, 1.0, 0.5], np.float32),  # the 2 -> 1 -> 0.5 tail
}


@pytest.mark.parametrize("schedule", sorted(SCHEDULES))
@pytest.mark.parametrize("name", sorted(REFS))
def test_sampler_matches_numpy_reference(name, schedule):
    sig = SCHEDULES[schedule]
    xs = np.random.default_rng(0).normal(size=(4, 2)) * float(sig[0])
    keys = jax.random.split(jax.random.PRNGKey(3), 4)
    fn = samplers.get_sampler(name)
    out, nfe = jax.jit(jax.vmap(lambda k, x: fn(DEN, x, jnp.asarray(sig), key=k)))(
        keys, jnp.asarray(xs, jnp.float32))
    n = len(sig) - 1
    for i in range(4):
        # the library's noise draws: one key per step, split from the sample's key
        z = np.asarray(jax.vmap(lambda k: jax.random.normal(k, (2,)))(
            jax.random.split(keys[i], n)), np.float64)
        ref, ref_nfe = REFS[name](xs[i].astype(np.float32).astype(np.float64),
                                  sig.astype(np.float64), z)
        np.testing.assert_allclose(out[i], ref, atol=2e-5 * (1 + np.abs(ref).max()))
        assert int(nfe[i]) == ref_nfe
    assert int(nfe[0]) == samplers.nfe_for_steps(name, n, ends_at_zero=bool(sig[-1] == 0))


def test_heun_counts_four_evaluations_on_a_tail_ending_above_zero():
    calls = []

    def den(x, s):
        calls.append(float(s))
        return DEN(x, s)

    with jax.disable_jit():
        _, nfe = samplers.heun(den, jnp.ones(2), jnp.array([2.0, 1.0, 0.5]))
    assert int(nfe) == 4 and calls == [2.0, 1.0, 1.0, 0.5]
    assert samplers.nfe_for_steps("heun", 2, ends_at_zero=False) == 4
    assert samplers.nfe_for_steps("heun", 2) == 3


def test_ddpm_eta0_is_ddim_and_eta1_has_the_posterior_variance():
    """eta = 0 is deterministic (the DDIM reference); eta = 1 one step from s to s' has the
    closed-form posterior spread s' sqrt(1 - s'^2 / s^2) around x0 + s'^2 / s^2 (x - x0)."""
    sig = SCHEDULES["edm_to_0"]
    x = jnp.array([0.3, -0.7])
    det, _ = samplers.ddpm(DEN, x, jnp.asarray(sig), jax.random.PRNGKey(0), eta=0.0)
    np.testing.assert_allclose(det, ref_ddim(np.asarray(x, np.float64), sig.astype(np.float64))[0],
                               atol=2e-5)
    s, s2 = 1.0, 0.6
    keys = jax.random.split(jax.random.PRNGKey(1), 20000)
    one = jax.jit(jax.vmap(lambda k: samplers.ddpm(DEN, x, jnp.array([s, s2]), k)[0]))(keys)
    x0 = np_denoiser(np.asarray(x, np.float64), s)
    mean = x0 + s2**2 / s**2 * (np.asarray(x) - x0)
    np.testing.assert_allclose(np.asarray(one).mean(0), mean, atol=0.02)
    np.testing.assert_allclose(np.asarray(one).std(0), s2 * np.sqrt(1 - s2**2 / s**2), rtol=0.03)


def test_ddpm_schedules_and_rti_tail():
    """Linear and cosine DDPM schedules against their defining products; RTI-DP's `[2, 1, 0]`."""
    betas = 1e-4 + (0.02 - 1e-4) * np.arange(100) / 99
    ab = np.array([np.prod(1 - betas[: t + 1]) for t in range(100)])
    np.testing.assert_allclose(sde.ddpm_sigmas(100), np.sqrt(1 / ab - 1), rtol=1e-5)
    f = np.cos((np.arange(101) / 100 + 0.008) / 1.008 * np.pi / 2) ** 2
    ab_cos = np.cumprod(np.minimum(1 - f[1:] / f[:-1], 0.999) * -1 + 1)
    np.testing.assert_allclose(sde.ddpm_sigmas(100, "cosine"), np.sqrt(1 / ab_cos - 1), rtol=1e-5)
    tail = sde.ddpm_tail(sde.ddpm_sigmas(100), 2)
    np.testing.assert_allclose(tail, [np.sqrt(1 / ab[2] - 1), np.sqrt(1 / ab[1] - 1),
                                      np.sqrt(1 / ab[0] - 1), 0.0], rtol=1e-5)
    assert samplers.nfe_for_steps("ddpm", len(tail) - 1) == 3  # RTI-DP's three model calls


def test_marginals_follow_the_module_convention():
    """`marginal(t) = (alpha, alpha sigma(t))` for both processes; VE's variance is sigma_min^2
    (the start) plus the quadrature of g^2, VP's std^2 + alpha^2 = 1 with alpha by quadrature."""
    t = np.array([0.1, 0.4, 0.9])
    ve = sde.VESDE()
    a, std = ve.marginal(jnp.asarray(t))
    grid = np.linspace(0.0, 1.0, 200001)
    g2 = np.asarray(ve.diffusion(jnp.asarray(grid))) ** 2
    var = [ve.sigma_min**2 + np.trapezoid(g2[grid <= ti], grid[grid <= ti]) for ti in t]
    np.testing.assert_allclose(np.asarray(std) ** 2, var, rtol=1e-3)
    np.testing.assert_allclose(a, 1.0)
    vp = sde.VPSDE()
    a, std = vp.marginal(jnp.asarray(t))
    alpha = [np.exp(-0.5 * np.trapezoid(np.asarray(vp.beta(jnp.asarray(grid[grid <= ti]))),
                                        grid[grid <= ti])) for ti in t]
    np.testing.assert_allclose(a, alpha, rtol=1e-4)
    np.testing.assert_allclose(np.asarray(std) / np.asarray(a), vp.sigma(jnp.asarray(t)),
                               rtol=1e-4)
