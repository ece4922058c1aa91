"""jaxrl.action_dists against scipy / NumPy closed forms, and distrax's draws from the same key."""

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jaxrl.action_dists import Categorical, DiagGaussian

RNG = np.random.default_rng(0)
LOGITS = RNG.normal(size=(5, 4)).astype(np.float32) * 2
LOGITS2 = RNG.normal(size=(5, 4)).astype(np.float32)
LOC, SCALE = RNG.normal(size=(5, 3)).astype(np.float32), np.exp(RNG.normal(size=(5, 3)) * 0.5)
LOC2, SCALE2 = RNG.normal(size=(5, 3)).astype(np.float32), np.exp(RNG.normal(size=(5, 3)) * 0.5)
SCALE, SCALE2 = SCALE.astype(np.float32), SCALE2.astype(np.float32)


def _np_probs(logits):
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_categorical_matches_the_closed_forms():
    d, q = Categorical(jnp.asarray(LOGITS)), Categorical(jnp.asarray(LOGITS2))
    p, p2 = _np_probs(LOGITS.astype(np.float64)), _np_probs(LOGITS2.astype(np.float64))
    a = np.array([0, 3, 1, 2, 3])
    np.testing.assert_allclose(d.log_prob(a), np.log(p[np.arange(5), a]), rtol=1e-5)
    np.testing.assert_allclose(d.probs, p, rtol=1e-5)
    np.testing.assert_allclose(d.entropy(), stats.entropy(p, axis=-1), rtol=1e-5)
    np.testing.assert_allclose(d.kl_divergence(q), stats.entropy(p, p2, axis=-1), rtol=1e-4)
    np.testing.assert_array_equal(d.mode(), LOGITS.argmax(-1))


def test_categorical_with_an_impossible_action_has_finite_values_and_gradients():
    logits = jnp.array([0.3, -jnp.inf, 1.0])
    d = Categorical(logits)
    p = _np_probs(np.array([0.3, -np.inf, 1.0]))
    np.testing.assert_allclose(d.entropy(), stats.entropy(p), rtol=1e-6)
    np.testing.assert_allclose(d.kl_divergence(Categorical(jnp.zeros(3))),
                               stats.entropy(p, np.full(3, 1 / 3)), rtol=1e-5)
    g = jax.grad(lambda x: Categorical(x).entropy())(logits)
    assert np.all(np.isfinite(np.asarray(g)[[0, 2]]))
    assert not np.any(np.asarray(jax.vmap(lambda k: d.sample(seed=k))(
        jax.random.split(jax.random.PRNGKey(0), 500)))
                      == 1)


def test_diag_gaussian_matches_the_closed_forms():
    d, q = DiagGaussian(jnp.asarray(LOC), jnp.asarray(SCALE)), DiagGaussian(LOC2, SCALE2)
    x = RNG.normal(size=(5, 3)).astype(np.float32)
    np.testing.assert_allclose(d.log_prob(x), stats.norm.logpdf(x, LOC, SCALE).sum(-1), rtol=1e-5)
    ent = [stats.multivariate_normal(LOC[i], np.diag(SCALE[i] ** 2)).entropy() for i in range(5)]
    np.testing.assert_allclose(d.entropy(), ent, rtol=1e-5)
    kl = []  # the full-covariance formula, with matrices
    for i in range(5):
        s1, s2 = np.diag(SCALE[i] ** 2.0), np.diag(SCALE2[i] ** 2.0)
        dm, inv = LOC2[i] - LOC[i], np.linalg.inv(s2)
        kl.append(0.5 * (np.trace(inv @ s1) + dm @ inv @ dm - 3
                         + np.log(np.linalg.det(s2) / np.linalg.det(s1))))
    np.testing.assert_allclose(d.kl_divergence(q), kl, rtol=1e-4)
    np.testing.assert_array_equal(d.mode(), LOC)
    # A shared scale broadcasts over the batch (PPO's state-independent log-std).
    shared = DiagGaussian(jnp.asarray(LOC), jnp.asarray(SCALE[0]))
    np.testing.assert_allclose(shared.log_prob(x), stats.norm.logpdf(x, LOC, SCALE[0]).sum(-1),
                               rtol=1e-5)
    assert shared.entropy().shape == (5,) and shared.mode().shape == (5, 3)


def test_samples_are_distraxs_draws_from_the_same_key_and_have_the_right_law():
    keys = jax.random.split(jax.random.PRNGKey(3), 4)
    for k in keys:
        np.testing.assert_array_equal(Categorical(LOGITS).sample(seed=k),
                                      distrax.Categorical(logits=LOGITS).sample(seed=k))
        np.testing.assert_array_equal(DiagGaussian(LOC, SCALE).sample(seed=k),
                                      distrax.MultivariateNormalDiag(LOC, SCALE).sample(seed=k))
    many = jax.vmap(lambda k: Categorical(LOGITS[0]).sample(seed=k))(
        jax.random.split(keys[0], 20000))
    freq = np.bincount(np.asarray(many), minlength=4) / 20000
    np.testing.assert_allclose(freq, _np_probs(LOGITS[0].astype(np.float64)), atol=0.015)
    g = jax.vmap(lambda k: DiagGaussian(LOC[0], SCALE[0]).sample(seed=k))(
        jax.random.split(keys[1], 20000))
    assert np.all(np.abs(np.asarray(g).mean(0) - LOC[0]) < 4 * SCALE[0] / np.sqrt(2e4))
    np.testing.assert_allclose(np.asarray(g).std(0), SCALE[0], rtol=0.03)


@pytest.mark.parametrize("cls", ["categorical", "gaussian"])
def test_distributions_pass_through_jit_and_vmap(cls):
    make = ((lambda x: Categorical(x)) if cls == "categorical"
            else (lambda x: DiagGaussian(x, jnp.ones_like(x))))
    d = jax.jit(jax.vmap(make))(jnp.asarray(LOGITS))
    assert type(d) is type(make(LOGITS[0]))
    np.testing.assert_allclose(d.entropy(), make(jnp.asarray(LOGITS)).entropy(), rtol=1e-6)
