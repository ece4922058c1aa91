"""The converged sampling-error estimators on MLP features against a float64 SciPy optimizer."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from scipy import optimize

from jaxrl.props import sampling_error as se


def _mlp_features(key, n, d=4, f=8):
    k1, k2, k3 = jax.random.split(key, 3)
    x = jax.random.normal(k1, (n, d))
    w1 = jax.random.normal(k2, (d, 16)) / np.sqrt(d)
    w2 = jax.random.normal(k3, (16, f)) / 4.0
    return jnp.tanh(jnp.tanh(x @ w1) @ w2)


def _scipy_mle(nll, x0):
    res = optimize.minimize(nll, x0, method="BFGS", options={"gtol": 1e-10, "maxiter": 5000})
    return res.fun


def test_softmax_estimator_converges_to_the_mle_on_mlp_features():
    n, f, k = 400, 8, 3
    feats = _mlp_features(jax.random.PRNGKey(0), n, f=f)
    kern = 0.5 * jax.random.normal(jax.random.PRNGKey(1), (f, k))
    bias = jnp.array([0.2, 0.0, -0.3])
    logits = feats @ kern + bias
    acts = jax.random.categorical(jax.random.PRNGKey(2), logits)
    mask = jnp.arange(n) < 350  # the last 50 rows are padding
    val, gnorm, iters = se.softmax_sampling_error(kern, bias, feats, acts, mask, max_iter=50,
                                                  tol=1e-5)
    assert float(gnorm) < 1e-5 and int(iters) < 50

    x = np.concatenate([np.asarray(feats, np.float64), np.ones((n, 1))], 1)[:350]
    a = np.asarray(acts)[:350]

    def nll(t):
        lg = x @ t.reshape(f + 1, k)
        lg = lg - lg.max(1, keepdims=True)
        return -np.mean(lg[np.arange(350), a] - np.log(np.exp(lg).sum(1)))

    theta0 = np.concatenate([np.asarray(kern, np.float64), np.asarray(bias)[None]]).ravel()
    want = nll(theta0) - _scipy_mle(nll, theta0)
    assert want > 1e-3  # a real, positive sampling error
    np.testing.assert_allclose(float(val), want, rtol=2e-3, atol=2e-6)


def test_gaussian_estimator_is_the_closed_form_mle_on_mlp_features():
    n, f, dim = 300, 8, 2
    feats = _mlp_features(jax.random.PRNGKey(3), n, f=f)
    kern = 0.3 * jax.random.normal(jax.random.PRNGKey(4), (f, dim))
    bias = jnp.array([0.1, -0.2])
    log_std = jnp.array([-0.5, 0.2])
    mean = feats @ kern + bias
    acts = mean + jnp.exp(log_std) * jax.random.normal(jax.random.PRNGKey(5), (n, dim))
    mask = jnp.arange(n) < 250
    val = se.gaussian_sampling_error(kern, bias, log_std, feats, acts, mask)

    x = np.concatenate([np.asarray(feats, np.float64), np.ones((n, 1))], 1)[:250]
    y = np.asarray(acts, np.float64)[:250]

    def nll(t):
        w, ls = t[:-dim].reshape(f + 1, dim), t[-dim:]
        z = (y - x @ w) / np.exp(ls)
        return np.mean((0.5 * z ** 2 + ls + 0.5 * np.log(2 * np.pi)).sum(1))

    t0 = np.concatenate([np.asarray(kern, np.float64), np.asarray(bias)[None]]).ravel()
    t0 = np.concatenate([t0, np.asarray(log_std, np.float64)])
    want = nll(t0) - _scipy_mle(nll, t0)
    assert want > 1e-3
    np.testing.assert_allclose(float(val), want, rtol=2e-3, atol=2e-6)
