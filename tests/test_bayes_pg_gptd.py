"""GPTD critic and Bayesian actor-critic (digest Part B ground truth 5) and the learners."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

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
    base = dataclasses.replace(learn.LearnConfig(), num_updates=2, num_episodes=3, max_steps=6,
                               bac_capacity=8)
    for est in ("bac", "bpg2"):
        algo = learn.make_learner(dataclasses.replace(base, estimator=est))
        res = sweep.run(algo, seeds=[0, 1], progress=False)
        assert res.num_failed == 0
        assert np.all(np.isfinite(res.metrics["return"]))
        _, m1 = jax.jit(sweep.make_train(algo))(jax.random.PRNGKey(1))
        np.testing.assert_allclose(res.metrics["return"][1], m1["return"], rtol=1e-4)
        if est == "bac":
            assert np.all(res.metrics["dict_size"] <= 8)


def test_learn_config_marks_hparams_and_validation_names_the_field():
    cfg = learn.LearnConfig()
    # hparams are exactly the sweepable floats, with the dataclass defaults
    assert learn.make_learner(cfg).hparams == {
        "lr": 0.05, "gp_noise": 1.0, "gamma": 1.0, "bac_noise": 1.0, "bac_c_x": 1.0,
        "bac_c_f": 1.0, "bac_lengthscale": 1.0, "bac_nu": 0.1, "fisher_ridge": 1e-6}
    for bad, field in ((dict(num_episodes=0), "config.algo.num_episodes"),
                       (dict(estimator="mc_baseline", num_episodes=1), "config.algo.num_episodes"),
                       (dict(estimator="ppo"), "config.algo.estimator"),
                       (dict(lr=0.0), "config.algo.lr"), (dict(gamma=1.5), "config.algo.gamma"),
                       (dict(bac_nu=-0.1), "config.algo.bac_nu"),
                       (dict(fisher_ridge=-1e-3), "config.algo.fisher_ridge"),
                       (dict(env="MountainCar-v9"), "config.algo.env")):
        with pytest.raises(ValueError, match=field.replace(".", r"\.")) as e:
            learn.make_learner(dataclasses.replace(cfg, **bad))
        assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match=r"config\.sweep\.lr"):
        learn.validate(cfg, {"lr": (0.1, -0.1)})
    with pytest.raises(ValueError, match=r"config\.sweep\.num_updates is not a sweepable"):
        learn.validate(cfg, {"num_updates": (1.0,)})
    with pytest.raises(ValueError, match="unknown field"):
        learn.as_config({"learning_rate": 0.1})


def test_bac_gradient_with_c_f_not_one_matches_numpy():
    """BAC with kernel `c_x k_x + c_F u^T G^{-1} u'` (c_F = 2.5, c_x = 0.7): mean
    `c_F U^T (K + s I)^{-1} y` and cov `c_F G - c_F^2 U^T (K + s I)^{-1} U` in NumPy."""
    rng = np.random.default_rng(5)
    n_pts, d, n, c_x, c_f, s2 = 12, 1, 2, 0.7, 2.5, 0.4
    obs, u, y = rng.normal(size=(n_pts, d)), rng.normal(size=(n_pts, n)), rng.normal(size=n_pts)
    g = u.T @ u / 4
    with jax.enable_x64(True):
        z = jnp.asarray(np.concatenate([obs, u], 1))
        kern = gptd.bac_kernel(c_x, c_f, 1.0, jnp.linalg.inv(g), d)
        k = gp.gram(kern, z, z)
        post = gptd.bac_gradient(gptd.mc_gptd(k, jnp.asarray(y), s2), jnp.asarray(u),
                                 jnp.asarray(g), c_f)
    k_np = c_x * _rbf_np(obs, obs, 1.0) + c_f * u @ np.linalg.inv(g) @ u.T
    np.testing.assert_allclose(k, k_np, rtol=1e-10)
    s = k_np + s2 * np.eye(n_pts)
    np.testing.assert_allclose(post.mean, c_f * u.T @ np.linalg.solve(s, y), rtol=1e-9)
    np.testing.assert_allclose(post.cov, c_f * g - c_f**2 * u.T @ np.linalg.solve(s, u),
                               rtol=1e-9, atol=1e-12)


def _lqr_bac(m, keys, hypers, fisher="exact"):
    from jaxrl.bayes_pg import gradient_study
    from jaxrl.envs.lqr import LQRParams

    th, p = jnp.array([-0.2, 1.0]), LQRParams()
    f = jax.jit(jax.vmap(lambda k: gradient_study.estimate_gradients(
        k, th, p, m, fisher, names=("bac",), hypers=hypers)))
    return f(keys)


def test_bac_kernel_scale_invariance_on_lqr_episodes():
    """Scaling the whole BAC kernel (c_x, c_F), the noise and the ALD threshold by c = 3 leaves
    the gradient mean unchanged and multiplies its covariance by c (the c_F factor of
    `bac_gradient` is what makes the mean invariant)."""
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    base = _lqr_bac(8, keys, {})
    c = 3.0
    scaled = _lqr_bac(8, keys, {"bac_c_x": c, "bac_c_f": c, "bac_noise": c, "bac_nu": 0.1 * c})
    np.testing.assert_array_equal(base["bac_dict_size"], scaled["bac_dict_size"])
    np.testing.assert_allclose(scaled["bac"], base["bac"], rtol=2e-3)
    np.testing.assert_allclose(scaled["bac_cov"], c * base["bac_cov"], rtol=2e-3,
                               atol=1e-3 * float(jnp.abs(base["bac_cov"]).max()))


def test_bac_approaches_exact_lqr_gradient():
    """BAC (ALD-sparse MC-GPTD, exact G, the papers' fixed c_x = c_F = 1, noise 1) against the
    exact LQR gradient (-180.07, -100.06): about 16 deg mean angle at M = 10 and 3.7 deg at
    M = 150 (measured over 24 repetitions; bounds with margin), magnitude within 20%."""
    from jaxrl.bayes_pg import bpg
    from jaxrl.envs.lqr import LQRParams, lqr_exact_gradient

    truth = lqr_exact_gradient(jnp.array([-0.2, 1.0]), LQRParams())
    keys = jax.random.split(jax.random.PRNGKey(3), 24)
    a10 = bpg.angle_deg(_lqr_bac(10, keys, {})["bac"], truth)
    est = _lqr_bac(150, keys, {})["bac"]
    a150 = bpg.angle_deg(est, truth)
    assert 8.0 < float(a10.mean()) < 28.0, float(a10.mean())
    assert float(a150.mean()) < 6.0, float(a150.mean())
    assert float(bpg.relative_error(est, truth).mean()) < 0.2
    np.testing.assert_allclose(est.mean(0), truth, rtol=0.1)


def test_sgd_learner_takes_the_papers_fixed_step():
    """`optimizer="sgd"`: theta_1 = project(theta_0 + lr * g), g the REINFORCE gradient of the
    update's own episodes (recollected here with the same key)."""
    from jaxrl.bayes_pg import bpg, policies
    from jaxrl.envs.lqr import make_lqr

    cfg = dataclasses.replace(learn.LearnConfig(), estimator="mc", optimizer="sgd", lr=1e-3,
                              num_episodes=6, max_steps=20, num_updates=1)
    algo = learn.make_learner(cfg)
    hp = {k: jnp.asarray(v) for k, v in algo.hparams.items()}
    s0 = algo.init(jax.random.PRNGKey(4), hp)
    s1, _ = algo.update(s0, hp)
    env, params = make_lqr(max_steps_in_episode=20)
    pol = policies.gaussian_linear_policy()
    ep = policies.collect_episodes(env, params, pol, s0.theta, jax.random.split(s0.key)[1], 6, 20)
    g = bpg.mc_gradient(ep.returns, ep.trajectory_scores)
    np.testing.assert_allclose(s1.theta, pol.project(s0.theta + 1e-3 * g), rtol=1e-5)


def test_iterations_to_target_counts_updates():
    from jaxrl.stats import iterations_to_target

    ret = np.array([[-50.0, -3.0, -0.9, -0.5], [-50.0, -20.0, -10.0, -2.0],
                    [-50.0, np.nan, -0.2, -0.1]])
    np.testing.assert_array_equal(iterations_to_target(ret, -1.0), [2.0, np.inf, 2.0])
