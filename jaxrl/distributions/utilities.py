"""Utility functions `f` of the paper's objectives (sec. 5): maximize E[f(c_0 + G)].

`positively_homogeneous(f)` (ranking unchanged by x -> gamma x) is what allows a stationary
greedy policy with gamma < 1; see `jaxrl.dp`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import jax
import jax.numpy as jnp


def identity(x: jax.Array) -> jax.Array:
    """f(x) = x: expected return."""
    return x


def cvar_hinge(x: jax.Array) -> jax.Array:
    """f(x) = min(x, 0): the inner problem of CVaR with stock start c_0 = -b."""
    return jnp.minimum(x, 0.0)


def negative_abs(x: jax.Array) -> jax.Array:
    """f(x) = -|x|: target / homeostatic regulation with c_0 = -target."""
    return -jnp.abs(x)


def step(x: jax.Array, tol: float = 1e-9) -> jax.Array:
    """f(x) = 1{x >= -tol}: threshold P(G >= tau) with c_0 = -tau (tol absorbs rounding)."""
    return (x >= -tol).astype(jnp.result_type(x, jnp.float32))


@lru_cache(maxsize=256)
def exponential(beta: float) -> Callable[[jax.Array], jax.Array]:
    """Exponential utility u(x) = (1 - exp(-beta x)) / beta (risk-averse for beta > 0; x at 0)."""
    beta = float(beta)
    if beta == 0.0:
        return identity
    return lambda x: (1.0 - jnp.exp(-beta * x)) / beta  # cached: one object per beta (jit key)
