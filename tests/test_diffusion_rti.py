"""Warm-started (RTI) denoising: shifting, discrete scaling, Lipschitz estimates and warm starts
against closed forms, the two-sided agreement statistics and the start-level rule (which rejects
a collapsed level), and the tasks' exact denoisers against autodiff."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.diffusion import rti, samplers, scores, sde, tasks


def test_shift_and_discrete_scaling():
    chunk = jnp.arange(12.0).reshape(4, 3) - 5.0
    np.testing.assert_array_equal(rti.shift_chunk(chunk),
                                  np.concatenate([chunk[1:], chunk[-1:]]))
    mask = jnp.array([False, False, True])
    scaled = rti.scale_discrete(chunk, mask, 10.0)
    np.testing.assert_allclose(scaled[:, 2], chunk[:, 2] / 10.0)
    np.testing.assert_allclose(scaled[:, :2], chunk[:, :2])
    back = rti.unscale_discrete(scaled, mask)
    sign = np.where(np.asarray(chunk[:, 2]) >= 0, 1.0, -1.0)  # 0 counts as closed (+1)
    np.testing.assert_array_equal(back[:, 2], sign)
    np.testing.assert_allclose(rti.clip_discrete(chunk, mask, 10.0)[:, 2], sign / 10.0)


def test_lipschitz_of_linear_map_and_gaussian_flow():
    a = jnp.array([[2.0, 1.0], [0.0, 0.5]])
    lip = rti.map_lipschitz(lambda x: a @ x, jnp.ones(2), jax.random.PRNGKey(0))
    np.testing.assert_allclose(lip, np.linalg.norm(np.asarray(a), 2), rtol=1e-4)
    # Exact PF-ODE flow of Gaussian data from sigma to 0 contracts by sqrt(lam / (sigma^2 + lam)).
    cov = jnp.diag(jnp.array([0.04, 1.0]))
    den = scores.gaussian_denoiser(jnp.zeros(2), cov)
    sig = jnp.asarray(sde.edm_sigmas(200, sigma_min=0.01, sigma_max=0.5))
    flow = lambda x: samplers.heun(den, x, sig)[0]
    lip = rti.map_lipschitz(flow, jnp.ones(2), jax.random.PRNGKey(1))
    np.testing.assert_allclose(lip, np.sqrt(1.0 / (0.25 + 1.0)), rtol=2e-2)


@pytest.mark.parametrize("task_cls", [tasks.LaneTrackTask, tasks.ReachGraspTask])
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
    task = tasks.LaneTrackTask()
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


def test_warm_starts_against_the_gaussian_posterior():
    """Gaussian data N(mu, S), a guess g taken as the state at level s: one Euler step returns
    the posterior mean mu + S (S + s^2)^{-1} (g - mu) (NumPy), i.e. a point mass (the collapse of
    the issue); 100 ancestral DDPM steps sample the posterior N(that mean, s^2 S (S + s^2)^{-1})."""
    mu, var = np.array([0.3, -0.2]), np.array([0.02**2, 0.05**2])
    den = scores.gaussian_denoiser(jnp.asarray(mu), jnp.diag(jnp.asarray(var)))
    g, s = np.array([0.33, -0.1]), 0.04
    post_mean = mu + var / (var + s**2) * (g - mu)
    post_std = np.sqrt(s**2 * var / (var + s**2))
    x, nfe = rti.warm_start_denoise(den, jnp.asarray(g), jnp.array([s, 0.0]), name="euler")
    np.testing.assert_allclose(x, post_mean, rtol=1e-4)
    assert int(nfe) == 1
    tail = jnp.asarray(sde.edm_sigmas(100, sigma_min=1e-3, sigma_max=s))
    xs = jax.jit(jax.vmap(lambda k: rti.warm_start_denoise(
        den, jnp.asarray(g), tail, name="ddpm", key=k)[0]))(
        jax.random.split(jax.random.PRNGKey(0), 4000))
    assert np.all(np.abs(np.asarray(xs).mean(0) - post_mean) < 4 * post_std / np.sqrt(4e3))
    np.testing.assert_allclose(np.asarray(xs).std(0), post_std, rtol=0.06)


def _two_modes(key, n, t, std, share0=0.5):
    """`[t, n, 3]` first actions around the modes +-0.15 e1 (std per coordinate), gripper +1."""
    k1, k2 = jax.random.split(key)
    mode = jax.random.uniform(k1, (t, n)) >= share0
    centre = jnp.where(mode[..., None], 0.15, -0.15) * jnp.array([1.0, 0.0])
    xy = centre + std * jax.random.normal(k2, (t, n, 2))
    return jnp.concatenate([xy, jnp.ones((t, n, 1))], -1)


def test_agreement_and_rule_reject_collapse_blur_and_mode_loss():
    """Dispersion ratio = the std ratio (closed form for isotropic 2-D Gaussians: RMS distance
    sqrt(2) std); a collapsed set (every action at its mode mean: lower action error than the
    full solve) is rejected as under-dispersed, a doubled spread as over-dispersed, a one-mode
    set by the mode share; an independent draw of the same law is accepted."""
    t, n = 4, 200
    means = jnp.broadcast_to(jnp.array([[-0.15, 0.0], [0.15, 0.0]]), (t, 2, 2))
    ks = jax.random.split(jax.random.PRNGKey(0), 8)
    fa, fb = _two_modes(ks[0], n, t, 0.02), _two_modes(ks[1], n, t, 0.02)
    cases = {"same": _two_modes(ks[2], n, t, 0.02), "collapsed": _two_modes(ks[3], n, t, 0.0),
             "blurred": _two_modes(ks[4], n, t, 0.04), "one_mode": _two_modes(ks[5], n, t, 0.02,
                                                                              share0=1.0)}
    agree = jax.jit(rti.agreement)
    out = {k: agree(ks[6], v, fa, fb, means) for k, v in cases.items()}
    np.testing.assert_allclose(out["blurred"]["dispersion"], 2.0, rtol=0.05)
    assert float(out["collapsed"]["dispersion"]) < 1e-6
    assert abs(float(out["same"]["dispersion_floor"]) - 1.0) < 0.05
    verdicts = {k: rti.accept(v, 1.0, 1.0) for k, v in out.items()}
    assert verdicts["same"] == (True, [])
    assert any("under-dispersed" in w for w in verdicts["collapsed"][1])
    assert any("over-dispersed" in w for w in verdicts["blurred"][1])
    assert any("mode-0 share" in w for w in verdicts["one_mode"][1])
    assert not rti.accept(out["same"], 0.5, 0.9)[0]  # closed-loop success drop
    cands = [dict(nfe=1, accepted=False), dict(nfe=3, accepted=True), dict(nfe=9, accepted=True)]
    assert rti.choose_start_level(cands)["nfe"] == 3
    assert rti.choose_start_level([dict(nfe=1, accepted=False)]) is None


def test_rule_rejects_the_one_step_euler_warm_start_on_the_lane_task():
    """Matched states of the lane task: the 1-NFE Euler warm start from sigma 0.1 collapses onto
    the mode means (dispersion ~ tau^2 / (tau^2 + 0.1^2) ~ 0.04 after one step; the executed
    action error is BELOW the full solve's) and the rule rejects it; the full solve with fresh
    noise passes against itself."""
    task = tasks.LaneTrackTask()
    full = rti.Solver("euler", jnp.asarray(sde.edm_sigmas(20, sigma_max=10.0)), False)
    euler1 = rti.Solver("euler", jnp.array([0.1, 0.0]), True)
    key = jax.random.PRNGKey(0)
    _, _, _, ps, ts, ctx = rti.closed_loop(key, task, full, full, 4)
    means = jax.vmap(lambda p, t: task.expert(p, t, ctx)[0][:, 0])(ps, ts)
    def run(solver, keys):
        return jax.jit(jax.vmap(lambda k: rti.matched_state_actions(
            k, task, solver, full, ps, ts, ctx, 128)))(keys)

    fa, fb, fc = run(full, jax.random.split(jax.random.PRNGKey(1), 3))
    warm = run(euler1, jax.random.PRNGKey(4)[None])[0]
    sl = slice(1, None)
    agree = jax.jit(rti.agreement)
    ag = agree(key, warm[sl], fa[sl], fb[sl], means[sl])
    ok, why = rti.accept(ag, 1.0, 1.0)
    assert not ok and any("under-dispersed" in w for w in why), why
    assert float(ag["dispersion"]) < 0.1
    assert rti.accept(agree(key, fc[sl], fa[sl], fb[sl], means[sl]), 1.0, 1.0)[0]


def test_scaled_gripper_flips_only_above_derived_start_level():
    # Exact denoiser on one gripper entry: a guess at -c is overturned (posterior > 1/2 for +c)
    # iff log-odds > 2 c^2 / (v + s^2), the condition behind the start-level floor.
    task = tasks.LaneTrackTask()
    c, v = 1.0 / task.factor, (task.tau_grip / task.factor) ** 2
    w = np.full(task.horizon, 0.9)
    q = jnp.zeros((2, task.horizon, 2))
    den = tasks.chunk_mixture_denoiser(q, jnp.asarray(w), task.tau, task.tau_grip,
                                           task.factor)
    x = jnp.concatenate([jnp.zeros((task.horizon, 2)), jnp.full((task.horizon, 1), -c)], 1)
    s_star = np.sqrt(2 * c**2 / np.log(9.0) - v)
    assert abs(s_star - np.sqrt(2.0 / np.log(9.0)) / task.factor) < 1e-3  # v is negligible
    for s, flips in [(0.7 * s_star, False), (1.5 * s_star, True)]:
        out = den(x.reshape(-1), jnp.float32(s)).reshape(task.horizon, 3)[:, 2]
        # one Euler step from s to 0 returns D itself: its sign is the executed gripper command
        np.testing.assert_array_equal(np.asarray(out) > 0, flips)
