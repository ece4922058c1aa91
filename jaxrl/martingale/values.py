"""Value-function approximators `J^theta(t, x)` for martingale policy evaluation.

Jia & Zhou (JMLR 2022), Sec. 3-4 parametrise the value by `J^theta(t, x)`; every estimator in
`jaxrl.martingale` takes a `value_fn(params, t, x) -> scalar` for ONE scalar state and time
(callers `vmap`), and the closed-form (linear) estimators take a `LinearValue`.

* `LinearValue(features, base)`: `J = theta . phi(t, x) + base(t, x)`; `base` is a known offset
  (e.g. the paper's Brownian-motion family `J = (theta (1 - t) + 1) x` has `phi = (1 - t) x`,
  `base = x`).
* `MLPValue`: a small flax MLP on `(x, t)` (or on `x` alone for infinite horizon).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

FeatureFn = Callable[[jax.Array, jax.Array], jax.Array]


def quadratic_features(t: jax.Array, x: jax.Array) -> jax.Array:
    """`(x^2/2, x, 1)`: `[3]`; the OU value is exactly linear in these."""
    x = jnp.asarray(x)
    return jnp.stack([0.5 * x**2, x, jnp.ones_like(x)])


def polynomial_features(
    degree: int, time_degree: int = 0, horizon: float = 1.0, center: float = 0.0
) -> FeatureFn:
    """Features `(x - center)^k (T - t)^m`, `k <= degree`, `m <= time_degree`:
    `[(degree+1)(time_degree+1)]`.

    `time_degree > 0` gives the time dependence a finite-horizon value needs; `center` improves
    conditioning when `x` lives far from 0.
    """
    if degree < 0 or time_degree < 0:
        raise ValueError(f"degree and time_degree must be >= 0, got {degree}, {time_degree}")

    def phi(t: jax.Array, x: jax.Array) -> jax.Array:
        tau = horizon - jnp.asarray(t)
        x = jnp.asarray(x) - center
        cols = [x**k * tau**m for m in range(time_degree + 1) for k in range(degree + 1)]
        return jnp.stack(jnp.broadcast_arrays(*cols))

    return phi


def zero_base(t: jax.Array, x: jax.Array) -> jax.Array:
    """The zero offset."""
    return jnp.zeros_like(jnp.asarray(x, jnp.result_type(float)))


class LinearValue(NamedTuple):
    """`J(theta; t, x) = theta . features(t, x) + base(t, x)`.

    Attributes:
      features: `phi(t, x) -> [p]` for scalar `t, x`.
      base: known offset `base(t, x) -> scalar` (default 0).
    """

    features: FeatureFn
    base: Callable[[jax.Array, jax.Array], jax.Array] = zero_base

    def __call__(self, theta: jax.Array, t: jax.Array, x: jax.Array) -> jax.Array:
        return jnp.dot(theta, self.features(t, x)) + self.base(t, x)

    def num_params(self) -> int:
        return int(jnp.shape(self.features(jnp.zeros(()), jnp.zeros(())))[0])


class MLPValue(nn.Module):
    """Small MLP value `J(t, x)`; with `time_dependent` the input is `(x, t)`, else `x`.

    Input: scalar `t`, `x`; output: scalar.
    """

    hidden: Sequence[int] = (32, 32)
    time_dependent: bool = True

    @nn.compact
    def __call__(self, t: jax.Array, x: jax.Array) -> jax.Array:
        inp = [jnp.asarray(x, jnp.float32)]
        if self.time_dependent:
            inp.append(jnp.asarray(t, jnp.float32))
        h = jnp.stack(inp)
        for width in self.hidden:
            h = nn.tanh(nn.Dense(width)(h))
        return nn.Dense(1)(h)[0]


def mlp_value(
    key: jax.Array, hidden: Sequence[int] = (32, 32), time_dependent: bool = True
) -> tuple[Any, Callable[[Any, jax.Array, jax.Array], jax.Array]]:
    """Initialise an `MLPValue`: returns `(params, value_fn)` with `value_fn(params, t, x)`."""
    module = MLPValue(hidden=tuple(hidden), time_dependent=time_dependent)
    params = module.init(key, jnp.zeros(()), jnp.zeros(()))

    def value_fn(p: Any, t: jax.Array, x: jax.Array) -> jax.Array:
        return module.apply(p, t, x)

    return params, value_fn
