"""The paper's LQR: exact gradient and trajectory Fisher (digest Part B ground truth 1, 2)."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.bayes_pg import bpg, policies
from jaxrl.envs.lqr import (
    LQR,
    LQRParams,
    lqr_exact_gradient,
    lqr_expected_return,
    lqr_trajectory_fisher,
    make_lqr,
)


def test_exact_gradient_matches_digest_autodiff_and_finite_differences():
    with jax.enable_x64(True):
        th = jnp.array([-0.2, 1.0])
        p = LQRParams()
        np.testing.assert_allclose(lqr_expected_return(th, p), -50.76597, atol=1e-5)
        g = lqr_exact_gradient(th, p)
        np.testing.assert_allclose(g, [-180.0747, -100.0638], atol=1e-4)
        np.testing.assert_allclose(g, jax.grad(lqr_expected_return)(th, p), rtol=1e-12)
        h = 1e-5
        fd = [(lqr_expected_return(th + h * e, p) - lqr_expected_return(th - h * e, p)) / (2 * h)
              for e in jnp.eye(2)]
        np.testing.assert_allclose(g, fd, rtol=1e-7)
        # another member of the family
        p2 = LQRParams(max_steps_in_episode=7, noise_var=0.05)
        th2 = jnp.array([-0.5, 0.4])
        np.testing.assert_allclose(lqr_exact_gradient(th2, p2),
                                   jax.grad(lqr_expected_return)(th2, p2), rtol=1e-12)


def test_trajectory_fisher_matches_digest_and_monte_carlo():
    with jax.enable_x64(True):
        th = jnp.array([-0.2, 1.0])
        p = LQRParams()
        g = lqr_trajectory_fisher(th, p)
        np.testing.assert_allclose(np.diag(g), [48.5717, 40.0], atol=1e-4)
        env, pol = LQR(), policies.gaussian_linear_policy()
        ep = policies.collect_episodes(env, p, pol, th, jax.random.PRNGKey(0), 20000, 20)
        u = ep.trajectory_scores
        g_mc = bpg.fisher_from_trajectories(u)
        np.testing.assert_allclose(g_mc, g, rtol=0.05, atol=1.5)
        g_steps = bpg.fisher_from_steps(ep.scores)
        np.testing.assert_allclose(g_steps, g, rtol=0.03, atol=1.0)
        # Monte Carlo return and REINFORCE agree with the closed forms (5 standard errors).
        r = ep.returns
        assert abs(float(r.mean()) - float(lqr_expected_return(th, p))) < 5 * float(
            r.std() / np.sqrt(r.size))
        per = u * r[:, None]
        se = per.std(0) / np.sqrt(r.size)
        assert np.all(np.abs(per.mean(0) - lqr_exact_gradient(th, p)) < 5 * se)


def test_lqr_env_protocol_truncation_and_vmapped_seeds():
    env, p = make_lqr(max_steps_in_episode=3)
    obs, s = env.reset(jax.random.PRNGKey(0), p)
    assert obs.shape == (1,)
    for t in range(3):
        obs2, s2, r, term, trunc, info = env.step(jax.random.PRNGKey(t + 1), s, 0.1, p)
        np.testing.assert_allclose(r, -(s.x**2 + 0.1 * 0.1**2), rtol=1e-6)
        assert not bool(term)
        assert bool(trunc) == (t == 2)
        if t < 2:
            # x' = x + a + noise with the noise of the step key
            k_step, _ = jax.random.split(jax.random.PRNGKey(t + 1))
            n = 0.1 * jax.random.normal(k_step, ())
            np.testing.assert_allclose(s2.x, s.x + 0.1 + n, rtol=1e-5)
        s = s2
    keys = jax.random.split(jax.random.PRNGKey(3), 4)
    batch = jax.vmap(env.reset, (0, None))(keys, p)[0]
    for i in range(4):
        np.testing.assert_allclose(batch[i], env.reset(keys[i], p)[0])
