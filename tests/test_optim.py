"""`jaxrl.optim`: run-time learning rates through `optax.inject_hyperparams`."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxrl import optim


def test_adam_step_is_bit_identical_to_scale_by_adam_then_minus_lr_u():
    """Three Adam steps with a run-time lr equal, bit for bit, `scale_by_adam` + `p - lr u`
    (Kingma & Ba 2015, Algorithm 1) computed by hand; a second lr in the same jitted function
    gives a different, again identical, result (no recompilation needed)."""
    k = jax.random.split(jax.random.PRNGKey(0), 2)
    p0 = {"w": jax.random.normal(k[0], (64,)), "b": jnp.float32(0.3)}
    g = {"w": jax.random.normal(k[1], (64,)), "b": jnp.float32(-1.0)}
    ref_opt = optax.scale_by_adam()
    opt = optim.adam()

    @jax.jit
    def ours(lr):
        p, s = p0, opt.init(p0)
        for _ in range(3):
            p, s = optim.step(opt, g, s, p, learning_rate=lr)
        return p, s.hyperparams["learning_rate"]

    @jax.jit
    def ref(lr):
        p, s = p0, ref_opt.init(p0)
        for _ in range(3):
            u, s = ref_opt.update(g, s, p)
            p = jax.tree.map(lambda a, b: a - lr * b, p, u)
        return p

    for lr in (jnp.float32(3e-3), jnp.float32(0.1)):
        (p, stored), r = ours(lr), ref(lr)
        assert float(stored) == float(lr)
        for a, b in zip(jax.tree.leaves(p), jax.tree.leaves(r), strict=True):
            np.testing.assert_array_equal(a, b)
    # Adam's first step moves every coordinate by lr (up to eps) against the gradient's sign
    p1, _ = optim.step(opt, g, opt.init(p0), p0, learning_rate=0.01)
    np.testing.assert_allclose(p0["w"] - p1["w"], 0.01 * np.sign(g["w"]), rtol=1e-4)


def test_unknown_hyperparameter_is_an_error():
    opt = optim.adam()
    with pytest.raises(KeyError, match="momentum"):
        optim.set_hparams(opt.init(jnp.zeros(2)), momentum=0.9)
    with pytest.raises(TypeError, match="lr"):
        optim.adam(lr=1.0)


def _numpy_adam(p, grads, lrs, b1=0.9, b2=0.999, eps=1e-8, max_norm=None):
    """Kingma & Ba 2015, Algorithm 1 in float64, step k with step size lrs[k]; with `max_norm`
    each gradient is first scaled by min(1, max_norm / ||g||) (global-norm clipping)."""
    p, m, v = np.array(p, np.float64), 0.0, 0.0
    for k, (g, lr) in enumerate(zip(grads, lrs, strict=True), start=1):
        g = np.asarray(g, np.float64)
        if max_norm is not None:
            g = g * min(1.0, max_norm / np.linalg.norm(g))
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = p - lr * (m / (1 - b1**k)) / (np.sqrt(v / (1 - b2**k)) + eps)
    return p


def test_clipped_adam_matches_numpy_and_the_optax_chain_bit_for_bit():
    """Run-time lr and clip norm: the NumPy reference (clipping active on some steps, not on
    others), and bit for bit the chain it replaces with constants baked in."""
    k = jax.random.split(jax.random.PRNGKey(1), 4)
    p0 = jax.random.normal(k[0], (16,))
    scales = (0.1, 3.0, 10.0)  # clipping at 2.0 inactive on the first step, active after
    grads = [jax.random.normal(kk, (16,)) * c for kk, c in zip(k[1:], scales, strict=True)]
    lr, clip = 0.05, 2.0
    opt = optim.clipped_adam(eps=1e-5)
    ref = optax.chain(optax.clip_by_global_norm(clip), optax.adam(lr, eps=1e-5))
    p, s, q, r = p0, opt.init(p0), p0, ref.init(p0)
    for g in grads:
        p, s = optim.step(opt, g, s, p, learning_rate=lr, max_grad_norm=clip)
        u, r = ref.update(g, r, q)
        q = optax.apply_updates(q, u)
    np.testing.assert_array_equal(p, q)
    np.testing.assert_allclose(p, _numpy_adam(p0, grads, [lr] * 3, eps=1e-5, max_norm=clip),
                               rtol=1e-5, atol=1e-6)
    assert sorted(s.hyperparams) == ["learning_rate", "max_grad_norm"]


def test_cosine_adam_follows_the_cosine_schedule():
    """Peak lr at run time, step k uses lr ((1 - a)(1 + cos(pi k / K)) / 2 + a), k = 0..,
    clamped at K: the NumPy reference, and bit for bit optax's schedule with the peak baked in."""
    steps, alpha, lr = 4, 0.05, 0.1
    k = jax.random.split(jax.random.PRNGKey(2), 7)
    p0 = jax.random.normal(k[0], (8,))
    grads = [jax.random.normal(kk, (8,)) for kk in k[1:]]
    opt = optim.cosine_adam(steps, alpha)
    ref = optax.adam(optax.cosine_decay_schedule(lr, steps, alpha))
    p, s, q, r = p0, opt.init(p0), p0, ref.init(p0)
    for g in grads:
        p, s = optim.step(opt, g, s, p, learning_rate=lr)
        u, r = ref.update(g, r, q)
        q = optax.apply_updates(q, u)
    np.testing.assert_array_equal(p, q)
    t = np.minimum(np.arange(len(grads)), steps)
    lrs = lr * ((1 - alpha) * 0.5 * (1 + np.cos(np.pi * t / steps)) + alpha)
    np.testing.assert_allclose(p, _numpy_adam(p0, grads, lrs), rtol=1e-5, atol=1e-6)
    assert list(s.hyperparams) == ["learning_rate"]
