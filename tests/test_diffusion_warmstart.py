"""Warm-started (RTI) denoising: shifting, discrete scaling, Lipschitz estimates against closed
forms, the task's exact denoiser against autodiff, and the bring-your-own-mixture CLI."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.diffusion import samplers, scores, sde, warmstart


def test_shift_and_discrete_scaling():
    chunk = jnp.arange(12.0).reshape(4, 3) - 5.0
    np.testing.assert_array_equal(warmstart.shift_chunk(chunk),
                                  np.concatenate([chunk[1:], chunk[-1:]]))
    mask = jnp.array([False, False, True])
    scaled = warmstart.scale_discrete(chunk, mask, 10.0)
    np.testing.assert_allclose(scaled[:, 2], chunk[:, 2] / 10.0)
    np.testing.assert_allclose(scaled[:, :2], chunk[:, :2])
    back = warmstart.unscale_discrete(scaled, mask)
    sign = np.where(np.asarray(chunk[:, 2]) >= 0, 1.0, -1.0)  # 0 counts as closed (+1)
    np.testing.assert_array_equal(back[:, 2], sign)
    np.testing.assert_allclose(warmstart.clip_discrete(chunk, mask, 10.0)[:, 2], sign / 10.0)


def test_lipschitz_of_linear_map_and_gaussian_flow():
    a = jnp.array([[2.0, 1.0], [0.0, 0.5]])
    lip = warmstart.map_lipschitz(lambda x: a @ x, jnp.ones(2), jax.random.PRNGKey(0))
    np.testing.assert_allclose(lip, np.linalg.norm(np.asarray(a), 2), rtol=1e-4)
    # Exact PF-ODE flow of Gaussian data from sigma to 0 contracts by sqrt(lam / (sigma^2 + lam)).
    cov = jnp.diag(jnp.array([0.04, 1.0]))
    den = scores.gaussian_denoiser(jnp.zeros(2), cov)
    sig = jnp.asarray(sde.edm_sigmas(200, sigma_min=0.01, sigma_max=0.5))
    lip = warmstart.tail_lipschitz(den, jnp.ones(2), sig, 0, jax.random.PRNGKey(1), name="heun")
    np.testing.assert_allclose(lip, np.sqrt(1.0 / (0.25 + 1.0)), rtol=2e-2)
    assert warmstart.choose_start_index([0.9, 0.5, 0.95, 1.0], err0=1.0, tol=0.6) == 1
    assert warmstart.choose_start_index([0.9, 0.8], err0=1.0, tol=0.1) == 0


@pytest.mark.parametrize("task_cls", [warmstart.LaneTrackTask, warmstart.ReachGraspTask])
def test_task_denoiser_equals_tweedie_of_autodiff_log_density(task_cls):
    task = task_cls()
    p, ctx = task.init(jax.random.PRNGKey(3))
    t = jnp.float32(5.0)
    q, w = task.expert(p, t, ctx)
    c, v = 1.0 / task.factor, (task.tau_grip / task.factor) ** 2

    def logp(x, sigma):
        x = x.reshape(task.horizon, 3)
        sd_c = jnp.sqrt(task.tau**2 + sigma**2)
        cont = jax.scipy.special.logsumexp(jnp.stack(
            [jax.scipy.stats.norm.logpdf(x[:, :2], q[j], sd_c).sum() for j in range(2)]))
        sd = jnp.sqrt(v + sigma**2)
        grip = jnp.logaddexp(jnp.log(w) + jax.scipy.stats.norm.logpdf(x[:, 2], c, sd),
                             jnp.log1p(-w) + jax.scipy.stats.norm.logpdf(x[:, 2], -c, sd)).sum()
        return cont + grip

    x = jnp.concatenate([q[0], jnp.zeros((task.horizon, 1))], 1).reshape(-1)
    x = x + 0.05 * jax.random.normal(jax.random.PRNGKey(0), x.shape)
    sigmas = jnp.array([0.01, 0.1, 2.0])
    ref = jax.jit(jax.vmap(lambda s: x + s**2 * jax.grad(logp)(x, s)))(sigmas)
    out = jax.jit(jax.vmap(lambda s: task.denoiser(p, t, ctx)(x, s)))(sigmas)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)


def test_lane_task_expert_is_time_consistent():
    # Executing a mode plan's first action (no noise) makes the next plan of that mode equal to
    # the old plan shifted by one step, except the padded last entry: RTI's premise, checked
    # against an independent NumPy evaluation of the lane geometry.
    task = warmstart.LaneTrackTask()
    p, ctx = task.init(jax.random.PRNGKey(1))
    for t in [0.0, 3.0, 11.0]:
        q, _ = task.expert(p, jnp.float32(t), ctx)
        for j in range(2):
            q_next, _ = task.expert(q[j, 0], jnp.float32(t + 1), ctx)
            np.testing.assert_allclose(q_next[j, :-1], q[j, 1:], atol=1e-5)
        # the mode plans converge onto the two lanes: r = radius -+ delta at step t + k
        ang = float(ctx[0]) + task.speed * (t + task.horizon)
        lane = np.array([np.cos(ang), np.sin(ang)]) * (task.radius + np.array([[-1.0], [1.0]])
                                                       * task.delta)
        gap = np.abs(np.asarray(q[:, -1]) - lane).max()
        assert gap <= task.gamma ** task.horizon * 2.0 + 1e-6


def test_warm_start_from_exact_solution_stays_there():
    task = warmstart.ReachGraspTask()
    p, g, t = jnp.array([0.4, 0.2]), jnp.array([0.0, 0.1]), jnp.float32(0.0)
    den = task.denoiser(p, t, g)
    full = jnp.asarray(sde.edm_sigmas(20, sigma_max=10.0))
    q, w = task.expert(p, t, g)
    mode = jnp.concatenate([q[0], jnp.where(w >= 0.5, 1.0, -1.0)[:, None] / task.factor], 1)
    x, nfe = warmstart.warm_start_denoise(den, mode.reshape(-1), full[-3:], name="euler")
    assert int(nfe) == 2
    np.testing.assert_allclose(x, mode.reshape(-1), atol=1e-3)
    x_full, nfe_full = samplers.euler(den, 10.0 * jax.random.normal(jax.random.PRNGKey(0), (24,)),
                                      full)
    assert int(nfe_full) == 20
    # the full solve lands within a few policy standard deviations of one of the two routes
    dist = min(float(jnp.abs(x_full.reshape(-1, 3)[:, :2] - q[j]).max()) for j in range(2))
    assert dist < 5 * task.tau


def test_scaled_gripper_flips_only_above_derived_start_level():
    # Exact denoiser on one gripper entry: a guess at -c is overturned (posterior > 1/2 for +c)
    # iff log-odds > 2 c^2 / (v + s^2), the condition behind the start-level floor.
    task = warmstart.LaneTrackTask()
    c, v = 1.0 / task.factor, (task.tau_grip / task.factor) ** 2
    w = np.full(task.horizon, 0.9)
    q = jnp.zeros((2, task.horizon, 2))
    den = warmstart.chunk_mixture_denoiser(q, jnp.asarray(w), task.tau, task.tau_grip,
                                           task.factor)
    x = jnp.concatenate([jnp.zeros((task.horizon, 2)), jnp.full((task.horizon, 1), -c)], 1)
    s_star = np.sqrt(2 * c**2 / np.log(9.0) - v)
    assert abs(s_star - np.sqrt(2.0 / np.log(9.0)) / task.factor) < 1e-3  # v is negligible
    for s, flips in [(0.7 * s_star, False), (1.5 * s_star, True)]:
        out = den(x.reshape(-1), jnp.float32(s)).reshape(task.horizon, 3)[:, 2]
        # one Euler step from s to 0 returns D itself: its sign is the executed gripper command
        np.testing.assert_array_equal(np.asarray(out) > 0, flips)


def test_cli_writes_samples_and_rejects_bad_mixtures(tmp_path):
    from experiments import samplers as exp

    good = tmp_path / "good.npz"
    np.savez(good, weights=np.array([0.4, 0.6]), means=np.array([[0.0, 0.0], [3.0, 1.0]]),
             covs=np.stack([np.eye(2) * 0.2, np.eye(2) * 0.5]))
    out = tmp_path / "x.npy"
    info = exp.sample_gmm_file(str(good), "dpmpp_2m", 12, 300, 0, str(out), teleport_fraction=0.25)
    x = np.load(out)
    assert x.shape == (300, 2) and info["nfe"] == 12 - 3
    assert abs(x[:, 0].mean() - 1.8) < 0.3
    for kwargs, match in [
        (dict(weights=[0.5, 0.6], means=[[0.0], [1.0]], covs=[[[1.0]], [[1.0]]]), "sum to 1"),
        (dict(weights=[1.0], means=[[0.0, 0.0]], covs=[[[1.0, 2.0], [2.0, 1.0]]]),
         "positive definite"),
        (dict(weights=[1.0], means=[[0.0, 0.0]], covs=[[[1.0, 0.3], [0.0, 1.0]]]),
         "symmetric"),
        (dict(weights=[1.0], means=[[0.0, 0.0]]), "lacks"),
    ]:
        bad = tmp_path / "bad.npz"
        np.savez(bad, **{k: np.asarray(v) for k, v in kwargs.items()})
        with pytest.raises(ValueError, match=match):
            exp.sample_gmm_file(str(bad), "heun", 5, 10, 0, str(out))
    with pytest.raises(ValueError, match="unknown sampler"):
        exp.sample_gmm_file(str(good), "rk45", 5, 10, 0, str(out))


def test_cli_samples_of_an_off_centre_mixture_are_unbiased(tmp_path):
    """Mean and mode weights of `--gmm` samples match the mixture's (4 standard errors) for data
    far from the origin: the start law carries the data mean (a N(0, sigma_max^2) start leaves a
    bias of about |mean| * scale / sigma_max, here ~0.15, i.e. > 6 standard errors)."""
    from experiments import samplers as exp

    w, mu = np.array([0.3, 0.7]), np.array([[6.0, 4.0], [9.0, 5.0]])
    path = tmp_path / "far.npz"
    np.savez(path, weights=w, means=mu, covs=np.stack([np.eye(2) * 0.5, np.eye(2)]))
    out = tmp_path / "x.npy"
    n = 4000
    exp.sample_gmm_file(str(path), "heun", 35, n, 1, str(out))
    x = np.load(out)
    mean = w @ mu
    var = w @ (np.array([0.5, 1.0])[:, None] + mu**2) - mean**2
    assert np.all(np.abs(x.mean(0) - mean) < 4 * np.sqrt(var / n)), (x.mean(0), mean)
    frac = (x[:, 0] > 7.5).mean()  # ~ the weight of the second component
    p = 0.7 * 0.9332 + 0.3 * 0.0169  # P(x0 > 7.5) under the mixture (normal tail values)
    assert abs(frac - p) < 4 * np.sqrt(p * (1 - p) / n), (frac, p)
