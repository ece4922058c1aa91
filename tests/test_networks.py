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
