"""The action-expected Fisher estimate `policies.fisher_from_states`: each policy's `fisher_at`
against Monte Carlo over actions / NumPy enumeration, and the batch estimate against the LQR's
closed-form trajectory Fisher (digest ground truth 2) with less variance than the per-step one."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.bayes_pg import bpg, gradient_study, policies
from jaxrl.envs.lqr import LQR, LQRParams, lqr_trajectory_fisher


def test_gaussian_fisher_at_matches_monte_carlo_over_actions():
    pol = policies.gaussian_linear_policy()
    theta, x = jnp.array([-0.4, 0.7]), jnp.array([0.9])
    acts = jax.vmap(lambda k: pol.sample(k, theta, x))(jax.random.split(jax.random.PRNGKey(0),
                                                                          200_000))
    u = np.asarray(jax.vmap(jax.grad(pol.log_prob), (None, None, 0))(theta, x, acts), np.float64)
    mc = u.T @ u / len(u)
    # closed form diag(x^2 / s^2, 2 / s^2) = diag(1.653, 4.082)
    # off-diagonal: 0 vs a Monte Carlo mean with se ~0.013
    np.testing.assert_allclose(np.asarray(pol.fisher_at(theta, x)), mc, rtol=0.02, atol=0.06)
    np.testing.assert_allclose(np.diag(np.asarray(pol.fisher_at(theta, x))),
                               [0.81 / 0.49, 2 / 0.49], rtol=1e-6)


def test_softmax_fisher_at_matches_numpy_enumeration():
    phi, k = policies.rbf_grid_features(3, 2)
    pol = policies.softmax_linear_policy(2, 3, phi, k)
    rng = np.random.default_rng(1)
    theta = jnp.asarray(rng.normal(size=pol.num_params), jnp.float32)
    x = jnp.asarray([0.3, 0.8], jnp.float32)
    c = np.array([[i / 2, j / 2] for i in range(3) for j in range(3)])
    f = np.append(np.exp(-0.5 * np.sum((np.asarray(x) - c) ** 2, axis=1) / 0.25), 1.0)  # [10]
    w = np.asarray(theta, np.float64).reshape(2, 10)
    logits = np.concatenate([[0.0], w @ f])
    p = np.exp(logits - logits.max())
    p /= p.sum()
    ref = np.zeros((20, 20))
    for a in range(3):  # d log p_a / d w_b = (1{a = b} - p_b) f, for b = 1, 2
        u = np.concatenate([((a == b) - p[b]) * f for b in (1, 2)])
        ref += p[a] * np.outer(u, u)
    np.testing.assert_allclose(np.asarray(pol.fisher_at(theta, x)), ref, rtol=1e-4, atol=1e-6)


def _episodes(key, m):
    params, theta = LQRParams(), jnp.array([-0.2, 1.0])
    pol = policies.gaussian_linear_policy()
    ep = policies.collect_episodes(LQR(), params, pol, theta, key, m, params.max_steps_in_episode)
    return pol, theta, params, ep


def test_states_fisher_is_unbiased_and_less_noisy_than_per_step():
    pol, theta, params, ep = _episodes(jax.random.PRNGKey(2), 20_000)
    exact = np.asarray(lqr_trajectory_fisher(theta, params), np.float64)  # diag(48.57, 40)
    g = np.asarray(policies.fisher_from_states(pol, theta, ep), np.float64)
    np.testing.assert_allclose(g, exact, rtol=0.01, atol=0.05)
    # per batch of 10 episodes: the sigma-sigma element is exact (2T / sigma^2, no noise), the
    # lambda-lambda element's spread is below the per-step estimate's
    def both(k):
        e = _episodes(k, 10)[3]
        return policies.fisher_from_states(pol, theta, e), bpg.fisher_from_steps(e.scores)

    st, sp = (np.asarray(a, np.float64) for a in
              jax.jit(jax.vmap(both))(jax.random.split(jax.random.PRNGKey(3), 400)))
    np.testing.assert_allclose(st[:, 1, 1], 40.0, rtol=1e-5)
    assert st[:, 1, 1].std() < 1e-3 * sp[:, 1, 1].std()
    assert st[:, 0, 0].std() < 0.7 * sp[:, 0, 0].std()
    np.testing.assert_allclose(st[:, 0, 0].mean(), exact[0, 0], rtol=0.03)


def test_states_fisher_mask_keeps_the_episodes_and_modes_accept_it():
    pol, theta, params, ep = _episodes(jax.random.PRNGKey(4), 6)
    mask = jnp.array([1, 0, 1, 1, 0, 1])
    kept = jax.tree.map(lambda x: x[np.asarray(mask, bool)], ep)
    np.testing.assert_allclose(np.asarray(policies.fisher_from_states(pol, theta, ep, mask)),
                               np.asarray(policies.fisher_from_states(pol, theta, kept)),
                               rtol=1e-6)
    out = gradient_study.estimate_gradients(jax.random.PRNGKey(5), theta, params, 10, "states",
                                            names=("bpg1",), fit=True)
    assert np.all(np.isfinite(np.asarray(out["bpg1"])))
    with pytest.raises(ValueError, match="fisher_mode"):
        gradient_study.calibration_variants(jax.random.PRNGKey(0), theta, params, 5, "traj")


def test_fisher_error_cov_is_the_delta_method():
    rng = np.random.default_rng(6)
    per = rng.normal(size=(30, 2, 2)) ** 2 + np.eye(2)
    per = (per + per.transpose(0, 2, 1)) / 2
    g = per.mean(0)
    a = rng.normal(size=(2, 4))
    lin = bpg.fisher_error_cov(lambda gg: jnp.asarray(a, jnp.float32) @ gg.reshape(-1),
                               jnp.asarray(g, jnp.float32), jnp.asarray(per, jnp.float32))
    v = np.cov(per.reshape(30, 4), rowvar=False) / 30  # Cov(vec G_i) / M
    np.testing.assert_allclose(np.asarray(lin), a @ v @ a.T, rtol=1e-4, atol=1e-6)
    mask = jnp.asarray(np.arange(30) < 20)
    sub = bpg.fisher_error_cov(lambda gg: jnp.asarray(a, jnp.float32) @ gg.reshape(-1),
                               jnp.asarray(per[:20].mean(0), jnp.float32),
                               jnp.asarray(per, jnp.float32), mask)
    v20 = np.cov(per[:20].reshape(20, 4), rowvar=False) / 20
    np.testing.assert_allclose(np.asarray(sub), a @ v20 @ a.T, rtol=1e-4, atol=1e-6)


def test_fisher_error_cov_on_model2_matches_a_bootstrap_of_the_fisher_estimate():
    """Nonlinear case: the delta-method covariance of BPG Model 2's mean against the spread of
    the mean over bootstrap resamples of the per-episode Fisher contributions (small errors:
    200 episodes), in float64."""
    with jax.enable_x64(True):
        pol, theta, params, ep = _episodes(jax.random.PRNGKey(8), 200)
        theta = theta.astype(jnp.float64)
        ep = jax.tree.map(lambda x: x.astype(jnp.float64) if x.dtype == jnp.float32 else x, ep)
        per = policies.fisher_per_episode_states(pol, theta, ep)
        g = per.mean(0)
        r, u = ep.returns, ep.trajectory_scores

        def mean_fn(gg):
            return bpg.bpg_model2(r, u, gg, 1e3, signal_scale=1.0).mean

        delta = np.asarray(jax.jit(lambda gg, pp: bpg.fisher_error_cov(mean_fn, gg, pp))(g, per))
        idx = np.random.default_rng(9).integers(0, 200, size=(600, 200))
        boots = np.asarray(jax.jit(jax.vmap(lambda i: mean_fn(per[i].mean(0))))(jnp.asarray(idx)))
    np.testing.assert_allclose(np.diag(delta), boots.var(axis=0, ddof=1), rtol=0.2)
