"""A learned conditional diffusion policy on the lane task (issue 20 item 3): expert chunks come
from the distribution the exact denoiser denoises, and a small net trained by DSM on them
approaches that exact (closed-form mixture) denoiser and uses its observation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.diffusion import network, tasks

TASK = tasks.LaneTrackTask()
CFG = network.ScoreNetConfig(hidden=64, depth=2, num_steps=800, batch_size=256,
                             learning_rate=3e-3, sigma_data=0.25)


_chunks = jax.jit(lambda k: tasks.expert_chunks(TASK, k, 64, 30))


@pytest.fixture(scope="module")
def policy():
    obs, ch, off = _chunks(jax.random.PRNGKey(0))[:3]
    params, losses = jax.jit(lambda k: network.train_score_net(k, ch - off, CFG, obs))(
        jax.random.PRNGKey(1))
    return tasks.LearnedPolicyTask(TASK, params, CFG), losses


def test_sample_chunk_has_the_mixture_moments_numpy():
    """`sample_chunk` at one state: the mean and per-entry variance of 20k chunks match the
    two-mode mixture's (NumPy from `expert`: mean (q0 + q1) / 2, variance tau^2 + (q0 - q1)^2 / 4;
    gripper mean (2 w - 1) / factor)."""
    p0, ctx = TASK.init(jax.random.PRNGKey(3))
    t = jnp.float32(4.0)
    x = jax.jit(jax.vmap(lambda k: TASK.sample_chunk(k, p0, t, ctx)))(
        jax.random.split(jax.random.PRNGKey(4), 20000))
    x = np.asarray(x).reshape(-1, TASK.horizon, 3)
    q, w = (np.asarray(a, np.float64) for a in TASK.expert(p0, t, ctx))
    np.testing.assert_allclose(x[..., :2].mean(0), q.mean(0), atol=0.004)
    np.testing.assert_allclose(x[..., :2].var(0), TASK.tau**2 + (q[0] - q[1]) ** 2 / 4,
                               rtol=0.05, atol=1e-5)
    np.testing.assert_allclose(x[..., 2].mean(0), (2 * w - 1) / TASK.factor, atol=0.003)


def test_learned_denoiser_beats_trivial_and_approaches_exact(policy):
    """On held-out expert data: the net's DSM loss is far below the zero-output net's
    (`D = c_skip x`, the untrained net), and at sigma 0.1 and 1 its output is within a fraction
    of the trivial predictor's distance of the exact mixture denoiser (`chunk_mixture_denoiser`,
    itself checked against autodiff of the smoothed density in test_diffusion_rti.py)."""
    learned, _ = policy
    held = _chunks(jax.random.PRNGKey(9))  # held-out expert data (another key)
    obs, y = held.obs, held.chunks - held.offsets
    net = network.ScoreNet(dim=y.shape[1], hidden=CFG.hidden, depth=CFG.depth,
                           num_freqs=CFG.num_freqs)
    key = jax.random.PRNGKey(10)
    sd = CFG.sigma_data
    loss = float(jax.jit(lambda p, y, obs: network.denoising_loss(
        lambda x, s: network.precond_denoise(net, p, x, s, sd, obs), key, y, CFG))(
        learned.params, y, obs))
    trivial = float(jax.jit(lambda y: network.denoising_loss(
        lambda x, s: sd**2 / (s[:, None] ** 2 + sd**2) * x, key, y, CFG))(y))
    assert loss < 0.5 * trivial, (loss, trivial)

    ps, ts, cs = held.p[::16], held.t[::16], held.ctx[::16]  # 120 held-out states

    def gaps(params, p, t, ctx, k, sigma):
        x0 = jax.vmap(lambda kk: TASK.sample_chunk(kk, p, t, ctx))(jax.random.split(k, 16))
        x = x0 + sigma * jax.random.normal(jax.random.fold_in(k, 1), x0.shape)
        ex = jax.vmap(TASK.denoiser(p, t, ctx), (0, None))(x, sigma)
        le = jax.vmap(tasks.LearnedPolicyTask(TASK, params, CFG).denoiser(p, t, ctx),
                      (0, None))(x, sigma)
        off_p = TASK.offset(p)
        triv = off_p + sd**2 / (sigma**2 + sd**2) * (x - off_p)
        return jnp.mean((le - ex) ** 2), jnp.mean((triv - ex) ** 2)

    gaps = jax.jit(jax.vmap(gaps, (None, 0, 0, 0, 0, None)))
    for sigma, tol in ((0.1, 0.5), (1.0, 0.3)):
        g, g0 = gaps(learned.params, ps, ts, cs, jax.random.split(key, ps.shape[0]), sigma)
        rel = float(jnp.sqrt(g.mean() / g0.mean()))
        assert rel < tol, (sigma, rel)


def test_conditioning_matters_means_follow_the_expert(policy):
    """At sigma 3 the denoiser's output at `x = offset(p)` is close to the chunk's conditional
    mean; the learned net given each state's own observation lands near the exact denoiser
    there (RMS < 0.3 x the spread across states of the exact outputs relative to the state),
    and given another
    state's observation it does not (> 2 x the own-observation error)."""
    learned, _ = policy
    held = _chunks(jax.random.PRNGKey(12))
    ps, ts, cs = held.p[::16], held.t[::16], held.ctx[::16]
    sigma = 3.0

    def outs(params, p, t, ctx, p_obs, t_obs, ctx_obs):
        x = TASK.offset(p)
        ex = TASK.denoiser(p, t, ctx)(x, sigma)
        own = tasks.LearnedPolicyTask(TASK, params, CFG).denoiser(p, t, ctx)(x, sigma)
        other = network.make_denoiser(params, x.shape[0], CFG,
                                      cond=TASK.observation(p_obs, t_obs, ctx_obs),
                                      offset=TASK.offset(p))(x, sigma)
        return ex - x, own - x, other - x  # relative to the state: the offset cancels

    perm = jax.random.permutation(jax.random.PRNGKey(13), ps.shape[0])
    ex, own, other = jax.jit(jax.vmap(outs, (None, 0, 0, 0, 0, 0, 0)))(
        learned.params, ps, ts, cs, ps[perm], ts[perm], cs[perm])
    rms = lambda a: float(jnp.sqrt(jnp.mean(a**2)))
    err_own, err_other = rms(own - ex), rms(other - ex)
    spread = rms(ex - ex.mean(0))
    assert err_own < 0.3 * spread, (err_own, spread)
    assert err_other > 2.0 * err_own, (err_other, err_own)
