"""The LAPACK-free orthogonal initializer equals jax's (up to rounding) and is orthonormal."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl import networks


@pytest.mark.parametrize("shape", [(4, 64), (64, 64), (64, 2), (3, 5, 7)])
def test_orthogonal_init_matches_jax_and_is_orthonormal(shape):
    key = jax.random.PRNGKey(7)
    ours = networks.orthogonal(np.sqrt(2))(key, shape)
    ref = jax.nn.initializers.orthogonal(np.sqrt(2))(key, shape)
    np.testing.assert_allclose(ours, ref, atol=5e-6)
    m = np.asarray(ours).reshape(-1, shape[-1]) / np.sqrt(2)
    gram = m.T @ m if m.shape[0] >= m.shape[1] else m @ m.T
    np.testing.assert_allclose(gram, np.eye(gram.shape[0]), atol=1e-5)


def test_orthogonal_init_vmapped_over_seeds_equals_single():
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    batched = jax.vmap(lambda k: networks.orthogonal(1.0)(k, (16, 8)))(keys)
    single = networks.orthogonal(1.0)(keys[1], (16, 8))
    np.testing.assert_allclose(batched[1], single, atol=1e-6)
    assert jnp.all(jnp.isfinite(batched))


def test_mlp_run_time_dropout_rate_and_init_choice():
    """The MLP's dropout rate is a run-time value (one compiled function, several rates): rate 0
    or deterministic is the identity network, rate r zeroes about a fraction r of the hidden
    units and rescales the rest by 1/(1-r); `kernel_init` picks the hidden init."""
    x = jnp.ones((1, 4))
    mlp = networks.MLP((2000,), None, "relu", kernel_init="lecun_normal", dropout=True)
    params = mlp.init(jax.random.PRNGKey(0), x)
    plain = networks.MLP((2000,), None, "relu", kernel_init="lecun_normal")
    base = plain.apply(params, x)

    @jax.jit
    def f(rate):
        return mlp.apply(params, x, False, rate, rngs={"dropout": jax.random.PRNGKey(1)})

    np.testing.assert_array_equal(f(0.0), base)
    np.testing.assert_array_equal(mlp.apply(params, x, True, 0.5), base)
    out = np.asarray(f(0.25))
    alive = np.asarray(base) > 0
    dropped = (out == 0) & alive
    assert abs(dropped.sum() / alive.sum() - 0.25) < 0.05
    np.testing.assert_allclose(out[~dropped & alive], np.asarray(base)[~dropped & alive] / 0.75,
                               rtol=1e-6)
    assert f._cache_size() == 1  # both rates ran in one compiled program
    k = params["params"]["Dense_0"]["kernel"]
    assert np.std(k) == pytest.approx(1 / np.sqrt(4), rel=0.05)  # LeCun: variance 1/fan_in
    ortho = networks.MLP((4,), None, "relu").init(jax.random.PRNGKey(0), x)
    q = np.asarray(ortho["params"]["Dense_0"]["kernel"]) / np.sqrt(2)
    np.testing.assert_allclose(q.T @ q, np.eye(4), atol=1e-5)
    with pytest.raises(ValueError, match="kernel_init"):
        networks.MLP((4,), kernel_init="nope").init(jax.random.PRNGKey(0), x)
