"""Value-function approximators `J^theta(t, x)` for martingale policy evaluation.

Jia & Zhou (JMLR 2022), Sec. 3-4 parametrise the value by `J^theta(t, x)`; every estimator in
`jaxrl.martingale` takes a `value_fn(params, t, x) -> scalar` for ONE state (scalar or `[d]`)
and time (callers `vmap`), and the closed-form (linear) estimators take a `LinearValue`.

* `LinearValue(features, base)`: `J = theta . phi(t, x) + base(t, x)`; `base` is a known offset
  (e.g. the paper's Brownian-motion family `J = (theta (1 - t) + 1) x` has `phi = (1 - t) x`,
  `base = x`).
* `MLPValue`: `jaxrl.networks.MLP` on `(x, t)` (or on `x` alone for infinite horizon).
* `quadratic_features_nd(d)` / `quadratic_theta`: the exact family of the d-dimensional
  linear-quadratic OU value (`jaxrl.envs.diffusions.LinearQuadraticOU`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxrl.networks import MLP

FeatureFn = Callable[[jax.Array, jax.Array], jax.Array]


def quadratic_features(t: jax.Array, x: jax.Array) -> jax.Array:
    """`(x^2/2, x, 1)`: `[3]`; the OU value is exactly linear in these."""
    x = jnp.asarray(x)
    return jnp.stack([0.5 * x**2, x, jnp.ones_like(x)])


def quadratic_features_nd(dim: int) -> FeatureFn:
    """Features of a quadratic in `x in R^dim`: `(x_i^2/2)_i, (x_i x_j)_{i<j}, x, 1`:
    `[dim (dim + 1) / 2 + dim + 1]`. `J = x^T P x / 2 + p . x + c` has the parameters
    `quadratic_theta(P, p, c)`; `dim = 1` is `quadratic_features`."""
    if dim < 1:
        raise ValueError(f"dim must be >= 1, got {dim}")
    iu, ju = (jnp.asarray(v, jnp.int32) for v in _upper(dim))

    def phi(t: jax.Array, x: jax.Array) -> jax.Array:
        x = jnp.reshape(jnp.asarray(x), (dim,))
        diag = 0.5 * x**2
        return jnp.concatenate([diag, x[iu] * x[ju], x, jnp.ones((1,), x.dtype)])

    return phi


def _upper(dim: int) -> tuple[list[int], list[int]]:
    pairs = [(i, j) for i in range(dim) for j in range(i + 1, dim)]
    return [i for i, _ in pairs], [j for _, j in pairs]


def quadratic_theta(pm: jax.Array, pv: jax.Array, c: jax.Array) -> jax.Array:
    """Parameters of `quadratic_features_nd` for `J = x^T P x / 2 + p . x + c`:
    `(P_ii)_i, (P_ij)_{i<j}, p, c` -> `[dim (dim + 1) / 2 + dim + 1]` (P symmetric `[d, d]`)."""
    pm = jnp.atleast_2d(pm)
    iu, ju = _upper(pm.shape[0])
    return jnp.concatenate([jnp.diagonal(pm), pm[jnp.asarray(iu, int), jnp.asarray(ju, int)],
                            jnp.atleast_1d(pv), jnp.atleast_1d(c)])


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
    """The zero offset (a scalar for one state, scalar or `[d]`)."""
    return jnp.zeros((), jnp.result_type(jnp.asarray(x), float))


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

    def num_params(self, state_shape: tuple[int, ...] = ()) -> int:
        """Length of `theta` for a state of shape `state_shape`."""
        return int(jnp.shape(self.features(jnp.zeros(()), jnp.zeros(state_shape)))[0])


class MLPValue(nn.Module):
    """MLP value `J(t, x)` (the project's `jaxrl.networks.MLP`, tanh, orthogonal init); with
    `time_dependent` the input is `(x, t)`, else `x`.

    Input: scalar `t`, state `x` (scalar or `[d]`); output: scalar.
    """

    hidden: Sequence[int] = (32, 32)
    time_dependent: bool = True

    @nn.compact
    def __call__(self, t: jax.Array, x: jax.Array) -> jax.Array:
        inp = [jnp.reshape(jnp.asarray(x, jnp.float32), (-1,))]
        if self.time_dependent:
            inp.append(jnp.reshape(jnp.asarray(t, jnp.float32), (1,)))
        return MLP(hidden=tuple(self.hidden), out_dim=1, act="tanh")(jnp.concatenate(inp))[0]


def mlp_value(
    key: jax.Array,
    hidden: Sequence[int] = (32, 32),
    time_dependent: bool = True,
    state_shape: tuple[int, ...] = (),
) -> tuple[Any, Callable[[Any, jax.Array, jax.Array], jax.Array]]:
    """Initialise an `MLPValue` for states of shape `state_shape`: returns
    `(params, value_fn)` with `value_fn(params, t, x)`."""
    module = MLPValue(hidden=tuple(hidden), time_dependent=time_dependent)
    params = module.init(key, jnp.zeros(()), jnp.zeros(state_shape))

    def value_fn(p: Any, t: jax.Array, x: jax.Array) -> jax.Array:
        return module.apply(p, t, x)

    return params, value_fn
