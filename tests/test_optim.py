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
