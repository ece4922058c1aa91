"""Samplers: measured convergence orders, exact NFE counts, SDE statistics, teleportation, and
seed-vmap equivalence, all against the exact mixture / Gaussian score."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.diffusion import samplers, scores, sde, teleport

GMM = scores.validate_gmm(
    [0.3, 0.7], [[-1.5, 0.0], [1.0, 1.0]], [np.eye(2) * 0.3, [[0.5, 0.2], [0.2, 0.4]]])
DEN = scores.gmm_denoiser(GMM)
SIGMA_MAX = 5.0


def _run(name, n, x, key=None, den=DEN, sigma_max=SIGMA_MAX):
    key = jax.random.PRNGKey(0) if key is None else key
    sig = jnp.asarray(sde.edm_sigmas(n, sigma_max=sigma_max))
    return jax.jit(lambda k, x: samplers.sample(k, x, sig, name=name, denoiser=den))(key, x)


@pytest.fixture(scope="module")
def start_and_reference():
    x = SIGMA_MAX * jax.random.normal(jax.random.PRNGKey(1), (32, 2))
    ref, _ = _run("heun", 800, x)
    return x, ref


@pytest.mark.parametrize("name,order", [("euler", 1.0), ("ddim", 1.0), ("heun", 2.0),
                                        ("dpmpp_2m", 2.0)])
def test_ode_sampler_convergence_order(start_and_reference, name, order):
    x, ref = start_and_reference
    ns = np.array([8, 16, 32, 64])
    errs = [float(jnp.sqrt(jnp.mean((_run(name, int(n), x)[0] - ref) ** 2))) for n in ns]
    slope = -np.polyfit(np.log(ns), np.log(errs), 1)[0]
    assert abs(slope - order) < 0.35, (name, errs, slope)


@pytest.mark.parametrize("name", samplers.SAMPLERS)
def test_nfe_counted_exactly(name):
    calls = []

    def den(x, s):
        calls.append(1)
        return DEN(x, s)

    sig = jnp.asarray(sde.edm_sigmas(3, sigma_max=SIGMA_MAX))
    fn = samplers.get_sampler(name)
    with jax.disable_jit():  # scans run as Python loops, so `calls` counts real evaluations
        _, nfe = fn(den, jnp.ones(2), sig, key=jax.random.PRNGKey(0))
    assert int(nfe) == len(calls) == samplers.nfe_for_steps(name, 3)
    steps = samplers.steps_for_nfe(name, 9)
    assert samplers.nfe_for_steps(name, steps) <= 9 < samplers.nfe_for_steps(name, steps + 1)


def test_sde_sample_statistics_approach_target():
    mean = jnp.array([1.0, -0.5])
    cov = jnp.array([[0.6, 0.25], [0.25, 0.3]])
    den = scores.gaussian_denoiser(mean, cov)
    x = 10.0 * jax.random.normal(jax.random.PRNGKey(3), (3000, 2))
    for name in ["euler_maruyama", "predictor_corrector"]:
        errs = []
        for n in [4, 16, 64]:
            y, _ = _run(name, n, x, key=jax.random.PRNGKey(4), den=den, sigma_max=10.0)
            err = np.abs(np.cov(np.asarray(y).T) - np.asarray(cov)).max() + np.abs(
                np.asarray(y).mean(0) - np.asarray(mean)).max()
            errs.append(err)
        assert errs[0] > errs[1] > errs[2] and errs[2] < 0.1, (name, errs)
    # The VP-SDE discretisation targets the same distribution.
    sig = jnp.asarray(sde.edm_sigmas(64, sigma_max=10.0))
    ys = jax.jit(jax.vmap(lambda k, x: samplers.euler_maruyama(den, x, sig, k, sde="vp")[0]))(
        jax.random.split(jax.random.PRNGKey(5), 3000), x)
    assert np.abs(np.cov(np.asarray(ys).T) - np.asarray(cov)).max() < 0.06


def test_teleport_equals_integrated_gaussian_ode():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 3))
    cov = jnp.asarray(a @ a.T + 0.05 * np.eye(3), jnp.float32)
    mean = jnp.asarray(rng.normal(size=3), jnp.float32)
    den = scores.gaussian_denoiser(mean, cov)
    x_t = 20.0 * jax.random.normal(jax.random.PRNGKey(0), (16, 3))
    sig = jnp.asarray(sde.edm_sigmas(600, sigma_min=0.5, sigma_max=20.0)[:-1])  # 20 -> 0.5
    ode = jax.jit(jax.vmap(lambda x: samplers.heun(den, x, sig)[0]))(x_t)
    # the schedule ends at 0.5 (Heun on every step), so compare at the same level:
    closed = teleport.gaussian_pf_ode_solution(x_t, 20.0, 0.5, mean, cov)
    np.testing.assert_allclose(ode, closed, atol=2e-3 * float(jnp.abs(closed).max()))


def test_teleport_then_sample_is_at_least_as_accurate_for_gaussian_data():
    # For Gaussian data the jump is exact, so teleport + Heun can only remove discretisation error.
    mean, cov = scores.gaussian_moments_of_gmm(GMM)
    den = scores.gaussian_denoiser(mean, cov)
    sig = jnp.asarray(sde.edm_sigmas(20, sigma_max=SIGMA_MAX))
    x = SIGMA_MAX * jax.random.normal(jax.random.PRNGKey(2), (16, 2))
    exact = teleport.gaussian_pf_ode_solution(x, SIGMA_MAX, 0.0, mean, cov)
    skip = teleport.skip_steps_for_fraction(20, 0.3)
    y_tp, nfe = teleport.teleport_then_sample(jax.random.PRNGKey(0), x, sig, skip, mean, cov,
                                              name="heun", denoiser=den)
    y_full, nfe_full = samplers.sample(jax.random.PRNGKey(0), x, sig, name="heun", denoiser=den)
    err_tp, err_full = (float(jnp.abs(y - exact).max()) for y in (y_tp, y_full))
    assert err_tp <= err_full + 1e-4 and err_full < 0.05, (err_tp, err_full)
    assert int(nfe[0]) == int(nfe_full[0]) - 2 * skip
    with pytest.raises(ValueError, match="fraction"):
        teleport.skip_steps_for_fraction(10, 1.0)


def test_vmapped_seed_equals_single_seed():
    sig = jnp.asarray(sde.edm_sigmas(10, sigma_max=SIGMA_MAX))
    one = lambda k: samplers.sample_from_noise(k, 8, 2, sig, name="euler_maruyama",
                                               denoiser=DEN)[0]
    keys = jnp.stack([jax.random.PRNGKey(s) for s in range(4)])
    batched = jax.jit(jax.vmap(one))(keys)
    single = jax.jit(one)
    for i in range(4):
        np.testing.assert_allclose(batched[i], single(keys[i]), atol=1e-5)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="unknown sampler"):
        samplers.get_sampler("rk4")
    with pytest.raises(ValueError, match="too small"):
        samplers.steps_for_nfe("predictor_corrector", 1)
    with pytest.raises(ValueError, match="one sample"):
        samplers.euler(DEN, jnp.ones((3, 2)), jnp.asarray(sde.edm_sigmas(3)))
