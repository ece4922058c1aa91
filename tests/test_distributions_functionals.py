"""Return-distribution functionals and projections vs NumPy references on sampled distributions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl import distributions as D


def np_cvar_by_samples(x, p, alpha):
    # independent reference: expand to a fine equally weighted sample (p are multiples of 1/M)
    M = 1000
    counts = np.round(p * M).astype(int)
    sample = np.sort(np.repeat(x, counts))
    n = int(round(alpha * M))
    return sample[:n].mean(), sample[n - 1]


@pytest.mark.parametrize("alpha", [0.05, 0.1, 0.333, 0.5, 1.0])
def test_cvar_and_var_match_numpy(alpha):
    rng = np.random.default_rng(0)
    for _ in range(5):
        x = rng.normal(size=7)
        p = rng.multinomial(1000, np.ones(7) / 7) / 1000.0  # multiples of 1/1000
        d = D.FiniteSupport(jnp.asarray(x), jnp.asarray(p))
        ref_cvar, ref_var = np_cvar_by_samples(x, p, alpha)
        assert abs(float(D.cvar(d, alpha)) - ref_cvar) < 1e-5
        assert abs(float(D.value_at_risk(d, alpha)) - ref_var) < 1e-6
        # Rockafellar-Uryasev form, maximum over b on a fine grid plus the atoms
        b = np.concatenate([np.linspace(-4, 4, 4001), x])
        ru = (b + (p[None] * np.minimum(x[None] - b[:, None], 0)).sum(-1) / alpha).max()
        assert abs(float(D.cvar(d, alpha)) - ru) < 1e-5


def test_other_functionals_match_numpy():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 9))
    p = rng.dirichlet(np.ones(9), size=4)
    d = D.FiniteSupport(jnp.asarray(x), jnp.asarray(p))
    np.testing.assert_allclose(D.mean(d), (x * p).sum(-1), rtol=1e-5)
    var = (p * (x - (x * p).sum(-1, keepdims=True)) ** 2).sum(-1)
    np.testing.assert_allclose(D.variance(d), var, rtol=1e-4)
    np.testing.assert_allclose(D.threshold_probability(d, 0.2), (p * (x >= 0.2)).sum(-1),
                               atol=1e-6)
    u = D.utilities.exponential(0.7)
    np.testing.assert_allclose(D.expected_utility(d, u),
                               (p * (1 - np.exp(-0.7 * x)) / 0.7).sum(-1), rtol=1e-5)
    np.testing.assert_allclose(D.cdf(d, 0.0), (p * (x <= 0)).sum(-1), atol=1e-6)
    # batched cvar equals per-row cvar
    rows = [float(D.cvar(D.FiniteSupport(jnp.asarray(x[i]), jnp.asarray(p[i])), 0.3))
            for i in range(4)]
    np.testing.assert_allclose(D.cvar(d, 0.3), rows, rtol=1e-6)


def test_categorical_and_quantile_views():
    support = jnp.linspace(-2, 2, 5)
    probs = jnp.array([0.1, 0.2, 0.3, 0.25, 0.15])
    c = D.Categorical(support, probs)
    assert abs(float(D.mean(c)) - float((support * probs).sum())) < 1e-6
    q = D.Quantile(jnp.array([-1.0, 0.0, 3.0, 4.0]))
    assert abs(float(D.cvar(q, 0.5)) - (-0.5)) < 1e-6
    assert abs(float(D.mean(q)) - 1.5) < 1e-6
    with pytest.raises(ValueError, match="alpha"):
        D.cvar(c, 0.0)


def np_projection(support, atoms, probs):
    # textbook C51 projection (Bellemare et al. 2017, Alg. 1), uniform support
    K = support.size
    dz = support[1] - support[0]
    out = np.zeros(K)
    for x, p in zip(atoms, probs, strict=True):
        b = (np.clip(x, support[0], support[-1]) - support[0]) / dz
        lo, hi = int(np.floor(b)), int(np.ceil(b))
        if lo == hi:
            out[lo] += p
        else:
            out[lo] += p * (hi - b)
            out[hi] += p * (b - lo)
    return out


def test_categorical_projection_preserves_mass_and_mean():
    rng = np.random.default_rng(2)
    support = np.linspace(-3, 3, 13)
    for _ in range(10):
        atoms = rng.uniform(-2.9, 2.9, size=20)  # inside the support: mean preserved
        probs = rng.dirichlet(np.ones(20))
        out = np.asarray(D.categorical_projection(jnp.asarray(support), jnp.asarray(atoms),
                                                  jnp.asarray(probs)))
        np.testing.assert_allclose(out, np_projection(support, atoms, probs), atol=1e-6)
        assert abs(out.sum() - 1) < 1e-6
        assert abs((out * support).sum() - (atoms * probs).sum()) < 1e-5
    # outside the support: mass preserved, atoms clipped to the ends
    out = D.categorical_projection(jnp.asarray(support), jnp.array([-10.0, 10.0]),
                                   jnp.array([0.4, 0.6]))
    np.testing.assert_allclose(out[0], 0.4, atol=1e-7)
    np.testing.assert_allclose(out[-1], 0.6, atol=1e-7)
    proj = D.project_to_categorical(D.Quantile(jnp.array([-0.5, 0.25])), jnp.asarray(support))
    np.testing.assert_allclose(proj.probs.sum(), 1.0, atol=1e-6)


def test_quantile_loss_matches_numpy_and_is_minimized_at_quantiles():
    K = 4
    tau = np.asarray(D.quantile_levels(K))
    np.testing.assert_allclose(tau, (2 * np.arange(K) + 1) / (2 * K))
    rng = np.random.default_rng(3)
    locs, targets = rng.normal(size=K), rng.normal(size=11)
    u = targets[None] - locs[:, None]
    ref = (np.abs(tau[:, None] - (u < 0)) * np.abs(u)).mean(1).sum()
    got = D.quantile_huber_loss(jnp.asarray(locs), jnp.asarray(targets), kappa=0.0)
    assert abs(float(got) - ref) < 1e-5
    # gradient descent on the loss recovers the sample quantiles (QR-DQN)
    samples = jnp.asarray(rng.normal(size=400))
    grad = jax.jit(jax.grad(lambda q: D.quantile_huber_loss(q, samples, 0.0)))
    q = jnp.zeros(K)
    for _ in range(2000):
        q = q - 0.05 * grad(q)
    np.testing.assert_allclose(q, np.quantile(np.asarray(samples), tau), atol=0.08)
