"""Denoising score matching: its minimiser approaches the analytic score of Gaussian data."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.diffusion import network, scores

MEAN = jnp.array([0.5, -0.3])
COV = jnp.array([[0.30, 0.12], [0.12, 0.15]])


def test_dsm_loss_of_the_exact_denoiser_is_the_closed_form_bayes_risk():
    """`network.denoising_loss` with the exact Gaussian denoiser equals the closed-form minimum
    `E_sigma[lambda(sigma) tr(sigma^2 S (S + sigma^2 I)^{-1}) / D]` (Gauss-Hermite over
    log sigma), and a denoiser off by a constant `b` pays `E[lambda] |b|^2 / D` more (8%:
    Monte Carlo noise of the heavy-tailed `lambda`)."""
    cfg = network.ScoreNetConfig(sigma_data=0.5, p_mean=-1.2, p_std=1.2)
    n = 200_000
    y = MEAN + jax.random.normal(jax.random.PRNGKey(1), (n, 2)) @ jnp.linalg.cholesky(COV).T
    exact = jax.vmap(scores.gaussian_denoiser(MEAN, COV))
    b = jnp.array([0.1, -0.2])
    key = jax.random.PRNGKey(2)
    got = float(network.denoising_loss(exact, key, y, cfg))
    got_off = float(network.denoising_loss(lambda x, s: exact(x, s) + b, key, y, cfg))
    u, wq = np.polynomial.hermite_e.hermegauss(80)
    sig = np.exp(cfg.p_mean + cfg.p_std * u)
    wq = wq / wq.sum()
    lam = (sig**2 + 0.25) / (sig * 0.5) ** 2
    s_np = np.asarray(COV, np.float64)
    risk = [np.trace(s**2 * s_np @ np.linalg.inv(s_np + s**2 * np.eye(2))) / 2 for s in sig]
    np.testing.assert_allclose(got, np.sum(wq * lam * risk), rtol=0.02)
    np.testing.assert_allclose(got_off - got, np.sum(wq * lam) * float(b @ b) / 2, rtol=0.08)


def test_trained_net_approaches_analytic_score_and_seed_vmap_matches():
    cfg = network.ScoreNetConfig(hidden=64, depth=2, num_steps=1200, batch_size=256,
                                 learning_rate=3e-3, sigma_data=0.5)
    data = MEAN + jax.random.normal(jax.random.PRNGKey(1), (4000, 2)) @ jnp.linalg.cholesky(COV).T
    keys = jnp.stack([jax.random.PRNGKey(0), jax.random.PRNGKey(1)])
    p = jax.jit(lambda k: network.train_score_net(k, data, cfg)[0])(keys[0])
    xs = MEAN + jax.random.normal(jax.random.PRNGKey(5), (200, 2)) * 0.6
    for i in range(1):
        den = network.make_denoiser(p, 2, cfg)
        for sigma in [0.3, 1.0, 3.0]:
            s_net = jax.vmap(lambda x, sigma=sigma: (den(x, sigma) - x) / sigma**2)(xs)
            s_true = jax.vmap(lambda x, sigma=sigma: scores.gaussian_score(x, sigma, MEAN, COV))(
                xs)
            rel = float(jnp.linalg.norm(s_net - s_true) / jnp.linalg.norm(s_true))
            assert rel < 0.12, (i, sigma, rel)
    # vmapped seed i == single seed i (short runs keep this cheap).
    short = network.ScoreNetConfig(hidden=16, depth=1, num_steps=5, batch_size=8)
    one = jax.jit(lambda k: network.train_score_net(k, data, short)[1])
    many = jax.jit(jax.vmap(lambda k: network.train_score_net(k, data, short)[1]))(keys)
    for i in range(2):
        np.testing.assert_allclose(many[i], one(keys[i]), rtol=1e-5, atol=1e-6)


def test_runtime_trainer_matches_train_score_net_and_resumes(tmp_path):
    """`score_net_trainer` through the runtime (one DSM step per update, chunks of 2, stopped
    and resumed) gives the losses and parameters of `train_score_net` for the same key."""
    import filecmp
    import os

    from jaxrl import experiment

    data = MEAN + jax.random.normal(jax.random.PRNGKey(1), (256, 2)) @ jnp.linalg.cholesky(COV).T
    cfg = network.ScoreNetConfig(hidden=16, depth=1, num_steps=6, batch_size=8,
                                 learning_rate=3e-3)
    algo = network.score_net_trainer(data, cfg)
    assert algo.hparams == {"learning_rate": 3e-3} and algo.num_updates == 6
    kw = dict(chunk_size=2, progress=False)
    res = experiment.run(algo, [0, 1], workdir=str(tmp_path / "a"), **kw)
    stop = experiment.run(algo, [0, 1], workdir=str(tmp_path / "b"), stop_after_chunks=1, **kw)
    assert stop.interrupted_at == 2
    experiment.run(algo, [0, 1], workdir=str(tmp_path / "b"), **kw)
    assert filecmp.cmp(os.path.join(tmp_path, "a", "metrics.csv"),
                       os.path.join(tmp_path, "b", "metrics.csv"), shallow=False)
    for i in range(2):
        p, losses = jax.jit(lambda k: network.train_score_net(k, data, cfg))(
            jax.random.PRNGKey(i))
        np.testing.assert_allclose(res.metrics["loss"][i], losses, rtol=1e-4, atol=1e-5)
        got = jax.tree.map(lambda x, i=i: x[i], res.state.algo.params)
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(p), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)
    with pytest.raises(ValueError, match=r"config\.net\.learning_rate"):
        network.ScoreNetConfig(learning_rate=0.0).validate(prefix="config.net")
    with pytest.raises(ValueError, match=r"ScoreNetConfig\.hidden"):
        network.ScoreNetConfig(hidden=0).validate()
