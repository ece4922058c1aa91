"""GPTD critic and Bayesian actor-critic (digest Part B ground truth 5) and the learners."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl import sweep
from jaxrl.bayes_pg import gp, gptd, learn


def _rbf_np(a, b, ell):
    d = a[:, None, :] - b[None, :, :]
    return np.exp(-0.5 * np.sum(d**2, -1) / ell**2)


def test_returns_to_go_matches_numpy():
    r = np.array([1.0, -2.0, 0.5, 3.0, 9.0])
    valid = np.array([1, 1, 1, 1, 0], bool)
    y = gptd.discounted_returns_to_go(jnp.asarray(r), jnp.asarray(valid), 0.9)
    ref = [sum(0.9 ** (s - t) * r[s] for s in range(t, 4)) for t in range(4)] + [0.0]
    np.testing.assert_allclose(y, ref, rtol=1e-6)


def test_mc_gptd_on_terminating_episode_equals_closed_form():
    rng = np.random.default_rng(0)
    t, gamma, s2 = 6, 0.9, 0.7
    x = rng.normal(size=(t, 2))
    r = rng.normal(size=t)
    with jax.enable_x64(True):
        k = jnp.asarray(_rbf_np(x, x, 1.0))
        h = gptd.gptd_h_matrix(t, gamma, jnp.float64)
        general = gptd.gptd_posterior(k, h, jnp.asarray(r), s2 * h @ h.T)
        y = gptd.discounted_returns_to_go(jnp.asarray(r), jnp.ones(t, bool), gamma)
        closed = gptd.mc_gptd(k, y, s2)
    # H^{-1} r are the discounted returns-to-go.
    np.testing.assert_allclose(np.linalg.solve(np.asarray(h), r), y, rtol=1e-10)
    inv = np.linalg.inv(np.asarray(k) + s2 * np.eye(t))
    np.testing.assert_allclose(closed.alpha, inv @ np.asarray(y), rtol=1e-9)
    np.testing.assert_allclose(general.alpha, closed.alpha, rtol=1e-8)
    np.testing.assert_allclose(general.c, closed.c, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(closed.c, inv, rtol=1e-9)


def test_sparse_ald_nu0_equals_full_gptd_and_bac_gradient():
    rng = np.random.default_rng(1)
    n_pts, d, n = 10, 1, 2
    obs = rng.normal(size=(n_pts, d))
    u = rng.normal(size=(n_pts, n))
    y = rng.normal(size=n_pts)
    with jax.enable_x64(True):
        z = jnp.asarray(np.concatenate([obs, u], 1))
        g = jnp.asarray(u.T @ u / n_pts)
        kern = gptd.bac_kernel(1.0, 1.0, 1.0, jnp.linalg.inv(g), d)
        k_full = gp.gram(kern, z, z)
        full = gptd.mc_gptd(k_full, jnp.asarray(y), 0.5)
        dic = gp.ald_sparsify(kern, z, 0.0, n_pts + 2)
        assert int(dic.size) == n_pts
        k_dict = gp.gram(kern, dic.points, dic.points) * dic.mask[:, None] * dic.mask[None, :]
        sparse = gptd.sparse_mc_gptd(k_dict, dic.coeffs, jnp.asarray(y), 0.5)
        # Predictions at query points agree (mean and covariance of Q).
        zq = jnp.asarray(rng.normal(size=(4, d + n)))
        kq_full = gp.gram(kern, zq, z)
        kq_sp = gp.gram(kern, zq, dic.points) * dic.mask[None, :]
        # (the sparse path inverts the near-singular dictionary kernel: float64 rounding ~1e-5)
        np.testing.assert_allclose(kq_sp @ sparse.alpha, kq_full @ full.alpha, rtol=2e-4)
        np.testing.assert_allclose(kq_sp @ sparse.c @ kq_sp.T, kq_full @ full.c @ kq_full.T,
                                   rtol=2e-4, atol=1e-6)
        # BAC gradient posterior identical; covariance symmetric PSD.
        g_full = gptd.bac_gradient(full, jnp.asarray(u), g, 1.0)
        u_dict = jnp.where(dic.mask[:, None], dic.points[:, d:], 0.0)
        g_sp = gptd.bac_gradient(sparse, u_dict, g, 1.0)
        np.testing.assert_allclose(g_sp.mean, g_full.mean, rtol=2e-4)
        tol = 1e-3 * float(jnp.abs(g_full.cov).max())
        np.testing.assert_allclose(g_sp.cov, g_full.cov, atol=tol)
        np.testing.assert_allclose(g_full.cov, g_full.cov.T)
        assert np.linalg.eigvalsh(np.asarray(g_full.cov)).min() > -1e-9
        # Closed form of the BAC mean: c_F U^T (K + s I)^{-1} y.
        ref = u.T @ np.linalg.solve(np.asarray(k_full) + 0.5 * np.eye(n_pts), y)
        np.testing.assert_allclose(g_full.mean, ref, rtol=1e-8)


def test_sparse_with_duplicates_equals_full_and_masked_points_are_ignored():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(5, 2))
    xs = np.concatenate([x, x[:2]])  # two repeated state-action points
    y = rng.normal(size=7)
    kern = lambda a, b: gp.rbf_kernel(a, b, 1.0)  # noqa: E731
    with jax.enable_x64(True):
        k = gp.gram(kern, jnp.asarray(xs), jnp.asarray(xs))
        full = gptd.mc_gptd(k, jnp.asarray(y), 0.3)
        dic = gp.ald_sparsify(kern, jnp.asarray(xs), 1e-10, 8)
        assert int(dic.size) == 5
        kd = gp.gram(kern, dic.points, dic.points) * dic.mask[:, None] * dic.mask[None, :]
        sp = gptd.sparse_mc_gptd(kd, dic.coeffs, jnp.asarray(y), 0.3)
        kq = gp.gram(kern, jnp.asarray(xs), dic.points) * dic.mask[None, :]
        np.testing.assert_allclose(kq @ sp.alpha, k @ full.alpha, rtol=2e-4, atol=1e-6)
        valid = jnp.arange(7) < 5
        masked = gptd.mc_gptd(k, jnp.asarray(y), 0.3, valid)
        sub = gptd.mc_gptd(k[:5, :5], jnp.asarray(y[:5]), 0.3)
        np.testing.assert_allclose(masked.alpha[:5], sub.alpha, rtol=1e-9)
        np.testing.assert_allclose(masked.alpha[5:], 0.0)


def test_learners_run_finite_and_vmapped_seed_equals_single():
    cfg = learn.default_config()
    cfg.num_updates, cfg.num_episodes, cfg.max_steps = 2, 3, 6
    cfg.bac_capacity = 8
    for est in ("bac", "bpg2"):
        cfg.estimator = est
        algo = learn.make_learner(cfg)
        res = sweep.run(algo, seeds=[0, 1], progress=False)
        assert res.num_failed == 0
        assert np.all(np.isfinite(res.metrics["return"]))
        _, m1 = jax.jit(sweep.make_train(algo))(jax.random.PRNGKey(1))
        np.testing.assert_allclose(res.metrics["return"][1], m1["return"], rtol=1e-4)
        if est == "bac":
            assert np.all(res.metrics["dict_size"] <= 8)


def test_config_validation_names_the_field():
    cfg = learn.default_config()
    cfg.num_episodes = 0
    try:
        learn.make_learner(cfg)
    except ValueError as e:
        assert "config.num_episodes" in str(e)
    else:
        raise AssertionError("no error")
