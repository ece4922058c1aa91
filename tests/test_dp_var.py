"""VaR: the order statistic in float32 (issue 18, item 4) and VaR optimization by threshold DP
with an outer search (item 8), against brute-force enumeration of history-dependent policies."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.distributions import FiniteSupport, value_at_risk


def test_empirical_var_is_the_order_statistic_in_float32():
    # alpha * n integer: the lower alpha-quantile of n equally weighted samples is the
    # (alpha n)-th smallest; a fixed 1e-12 tolerance returned the next one in float32
    rng = np.random.default_rng(0)
    bad = 0
    for n in (10, 30, 97):
        x = rng.normal(size=n).astype(np.float32)
        law = FiniteSupport(jnp.asarray(x), jnp.full((n,), 1.0 / n, jnp.float32))
        k = np.arange(1, n + 1)
        var = jax.jit(jax.vmap(lambda a, law=law: value_at_risk(law, a)))(jnp.asarray(k / n))
        bad += int((np.asarray(var) != np.sort(x)[k - 1]).sum())
    assert bad == 0
    # a genuine gap is not swallowed: alpha just above a cumulative probability
    law = FiniteSupport(jnp.asarray([0.0, 1.0], jnp.float32), jnp.asarray([0.5, 0.5], jnp.float32))
    assert float(value_at_risk(law, 0.51)) == 1.0 and float(value_at_risk(law, 0.5)) == 0.0
