"""BPG Models 1 and 2 and MC-PG: BQ integrals vs Monte Carlo, reductions to MC, convergence
to the exact LQR gradient, PSD covariances, masks and vmapped seeds (digest Part B, 3-4)."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.bayes_pg import bpg, gp, gradient_study, policies
from jaxrl.envs.lqr import LQR, LQRParams, lqr_exact_gradient, lqr_trajectory_fisher

TH = (-0.2, 1.0)


def _episodes(n, seed=0):
    th = jnp.array(TH)
    ep = policies.collect_episodes(LQR(), LQRParams(), policies.gaussian_linear_policy(), th,
                                   jax.random.PRNGKey(seed), n, 20)
    return th, ep


def test_bq_integrals_match_monte_carlo():
    with jax.enable_x64(True):
        th, ep = _episodes(40000)
        u = ep.trajectory_scores
        g = lqr_trajectory_fisher(th, LQRParams())
        g_inv = jnp.linalg.inv(g)
        ui = u[:3]  # three "observed" trajectories; the rest integrate the kernel
        draws = u[3:]
        b, b0 = bpg.bq_model1_integrals(ui, g_inv)
        k_mc = gp.gram(lambda a, c: gp.quadratic_fisher_kernel(a, c, g_inv), draws, ui)
        np.testing.assert_allclose(k_mc.mean(0), b, rtol=0.04)
        half = draws.shape[0] // 2
        k_pairs = jax.vmap(lambda a, c: gp.quadratic_fisher_kernel(a, c, g_inv))(
            draws[:half], draws[half:2 * half])
        np.testing.assert_allclose(k_pairs.mean(), b0, rtol=0.04)
        assert float(b0) == 3.0
        bmat, b0_2 = bpg.bq_model2_integrals(ui, g)
        f_mc = draws.T @ gp.gram(lambda a, c: gp.fisher_kernel(a, c, g_inv), draws, ui) / (
            draws.shape[0])
        np.testing.assert_allclose(f_mc, bmat, rtol=0.06, atol=0.1)
        kk = jax.vmap(lambda a, c: gp.fisher_kernel(a, c, g_inv))(
            draws[:half], draws[half:2 * half])
        b0_mc = jnp.einsum("m,mi,mj->ij", kk, draws[:half], draws[half:2 * half]) / half
        np.testing.assert_allclose(b0_mc, b0_2, rtol=0.1, atol=2.0)


def test_models_reduce_to_monte_carlo():
    rng = np.random.default_rng(0)
    m, n = 12, 3
    with jax.enable_x64(True):
        r = jnp.asarray(rng.normal(size=m) * 5)
        u = jnp.asarray(rng.normal(size=(m, n)))
        y = r[:, None] * u
        for s2 in (2.0, 1e-8):
            # Model 1 with the constant kernel k = 1 (b_i = 1, b_0 = 1): Y 1 / (M + s2).
            p1 = gp.bq_posterior(jnp.ones((m, m)), jnp.ones(m), 1.0, y, s2)
            np.testing.assert_allclose(p1.mean, y.sum(0) / (m + s2), rtol=1e-7)
            # Model 2 with G = U U^T / M: U y / (M + s2).
            p2 = bpg.bpg_model2(r, u, bpg.fisher_from_trajectories(u), s2)
            np.testing.assert_allclose(p2.mean, u.T @ r / (m + s2), rtol=1e-6)
        np.testing.assert_allclose(p2.mean, bpg.mc_gradient(r, u), rtol=1e-6)
        np.testing.assert_allclose(p1.mean, bpg.mc_gradient(r, u), rtol=1e-6)


def test_baseline_mc_matches_numpy_and_masks_equal_subsets():
    rng = np.random.default_rng(1)
    r, u = rng.normal(size=8), rng.normal(size=(8, 2))
    loo = (r.sum() - r) / 7
    np.testing.assert_allclose(bpg.mc_gradient(jnp.asarray(r), jnp.asarray(u), baseline=True),
                               u.T @ (r - loo) / 8, rtol=1e-5)
    mask = jnp.arange(8) < 5
    g = jnp.asarray(np.diag([2.0, 3.0]))
    for f in (lambda r, u, m: bpg.mc_gradient(r, u, True, mask=m),
              lambda r, u, m: bpg.bpg_model1(r, u, g, 1.0, m).mean,
              lambda r, u, m: bpg.bpg_model2(r, u, g, 1.0, m).mean,
              lambda r, u, m: bpg.bpg_model1(r, u, g, 1.0, m).cov,
              lambda r, u, m: bpg.bpg_model2(r, u, g, 1.0, m).cov):
        full = f(jnp.asarray(r[:5]), jnp.asarray(u[:5]), None)
        masked = f(jnp.asarray(r), jnp.asarray(u), mask)
        np.testing.assert_allclose(masked, full, rtol=1e-4, atol=1e-5)


def test_bpg_posterior_mean_converges_to_exact_lqr_gradient():
    params = LQRParams()
    with jax.enable_x64(True):
        th = jnp.array(TH)
        truth = lqr_exact_gradient(th, params)
        keys = jax.random.split(jax.random.PRNGKey(7), 6)
        err = {}
        for m in (10, 300):
            est = jax.jit(jax.vmap(lambda k, m=m: gradient_study.estimate_gradients(
                k, th, params, m)))(keys)
            err[m] = {k: float(jnp.mean(bpg.relative_error(est[k], truth)))
                      for k in ("bpg1", "bpg2")}
    assert err[300]["bpg1"] < 0.1, err
    assert err[300]["bpg2"] < 0.3, err
    for k in ("bpg1", "bpg2"):
        assert err[300][k] < 0.6 * err[10][k], err


def test_gradient_covariances_symmetric_psd_and_natural_gradient():
    with jax.enable_x64(True):
        th, ep = _episodes(15, seed=3)
        r, u = ep.returns, ep.trajectory_scores
        for g in (lqr_trajectory_fisher(th, LQRParams()), bpg.fisher_from_steps(ep.scores)):
            for post in (bpg.bpg_model1(r, u, g, 1.0), bpg.bpg_model2(r, u, g, 1.0)):
                c = np.asarray(post.cov)
                np.testing.assert_allclose(c, c.T, atol=1e-10)
                assert np.linalg.eigvalsh(c).min() > -1e-8 * np.abs(c).max()
                nat = bpg.natural_gradient(post, g)
                np.testing.assert_allclose(nat.mean, np.linalg.solve(g, post.mean), rtol=1e-8)
                gi = np.linalg.inv(g)
                np.testing.assert_allclose(nat.cov, gi @ c @ gi, rtol=1e-7, atol=1e-12)


def test_vmapped_repetition_equals_single():
    th, p = jnp.array(TH), LQRParams()
    keys = jax.random.split(jax.random.PRNGKey(11), 3)
    f = lambda k: gradient_study.estimate_gradients(k, th, p, 6)  # noqa: E731
    batched = jax.jit(jax.vmap(f))(keys)
    single = jax.jit(f)(keys[2])
    for k in ("mc", "bpg1", "bpg2"):
        np.testing.assert_allclose(batched[k][2], single[k], rtol=1e-4, atol=1e-3)


def test_softmax_policy_log_probs_and_nonsingular_fisher():
    """Log-probs vs a NumPy softmax with action 0's logit at 0; the exact Fisher information
    `sum_x sum_a pi(a|x) s s^T` over random states is well conditioned (identifiable form)."""
    obs_dim, num_actions = 4, 3
    pol = policies.softmax_linear_policy(obs_dim, num_actions)
    assert pol.num_params == (num_actions - 1) * (obs_dim + 1)
    rng = np.random.default_rng(0)
    theta = jnp.asarray(rng.normal(size=pol.num_params), jnp.float32)
    xs = jnp.asarray(rng.normal(size=(64, obs_dim)), jnp.float32)
    w = np.asarray(theta).reshape(num_actions - 1, obs_dim + 1)
    fisher = np.zeros((pol.num_params, pol.num_params))
    for x in xs:
        z = np.concatenate([[0.0], w @ np.append(np.asarray(x), 1.0)])
        p = np.exp(z - z.max())
        p /= p.sum()
        for a in range(num_actions):
            np.testing.assert_allclose(pol.log_prob(theta, x, a), np.log(p[a]), atol=1e-5)
            s = np.asarray(jax.grad(pol.log_prob)(theta, x, a), np.float64)
            fisher += p[a] * np.outer(s, s) / len(xs)
    eig = np.linalg.eigvalsh(fisher)
    assert eig.min() > 1e-3 * eig.max(), eig
