"""Action distributions of the stochastic policies (PPO, PROPS): pytrees with the methods the
losses use.

* `Categorical(logits [..., K])`: discrete actions in `{0, ..., K-1}` (int32 samples).
* `DiagGaussian(loc [..., D], scale [..., D])`: a Gaussian with diagonal covariance over a
  D-dimensional action (the event is the last axis; `log_prob` / `entropy` sum over it).

Methods: `sample(seed=key)`, `log_prob(a)`, `entropy()`, `kl_divergence(other)` (= KL(self ||
other), analytic), `mode()`. Batch dimensions lead and broadcast as in NumPy. Both are
`flax.struct` dataclasses, so they pass through `jit` / `vmap` and can be returned by them.

The interface is distrax's (`sample(seed=...)`, `kl_divergence`), whose two classes these replace
(distrax with its TensorFlow Probability backend took ~0.7 s of every process's import for four
formulas); `tests/test_action_dists.py` checks every method against scipy / NumPy and distrax.
The random draws are distrax's (`Categorical.sample` is `jax.random.categorical` on the
normalized logits, `DiagGaussian.sample` is `loc + scale * normal` from the same key), so a
policy's action stream does not change with the swap.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import struct

__all__ = ["Categorical", "DiagGaussian"]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


@struct.dataclass
class Categorical:
    """Softmax distribution over `K` actions; `logits [..., K]` (any real numbers, -inf allowed
    for impossible actions; `log_probs` is their `log_softmax`)."""

    logits: jax.Array

    @property
    def log_probs(self) -> jax.Array:
        """`[..., K]` normalized log-probabilities."""
        return jax.nn.log_softmax(self.logits, axis=-1)

    @property
    def probs(self) -> jax.Array:
        """`[..., K]` action probabilities."""
        return jax.nn.softmax(self.logits, axis=-1)

    def sample(self, *, seed: jax.Array) -> jax.Array:
        """One action per batch element: `[...]` int32."""
        return jax.random.categorical(seed, self.log_probs, axis=-1).astype(jnp.int32)

    def log_prob(self, value: jax.Array) -> jax.Array:
        """`log pi(value)`, `[...]`; `value [...]` integer actions in `{0, ..., K-1}`."""
        idx = jnp.asarray(value, jnp.int32)[..., None]
        return jnp.take_along_axis(self.log_probs, idx, axis=-1)[..., 0]

    def entropy(self) -> jax.Array:
        """`-sum_a pi(a) log pi(a)`, `[...]` (nats; actions with pi(a) = 0 add 0)."""
        lp = self.log_probs
        p = jnp.exp(lp)
        return -jnp.sum(p * jnp.where(p > 0, lp, 0.0), axis=-1)

    def kl_divergence(self, other: Categorical) -> jax.Array:
        """`KL(self || other) = sum_a p(a) (log p(a) - log q(a))`, `[...]`; actions with p(a) = 0
        add 0 (inf where q(a) = 0 < p(a))."""
        lp = self.log_probs
        p = jnp.exp(lp)
        return jnp.sum(p * jnp.where(p > 0, lp - other.log_probs, 0.0), axis=-1)

    def mode(self) -> jax.Array:
        """The most probable action, `[...]` int32."""
        return jnp.argmax(self.logits, axis=-1).astype(jnp.int32)


@struct.dataclass
class DiagGaussian:
    """`N(loc, diag(scale^2))` over the last axis: `loc`, `scale` `[..., D]` (scale > 0)."""

    loc: jax.Array
    scale: jax.Array

    @property
    def _shape(self) -> tuple[int, ...]:
        """`[..., D]`: `loc` and `scale` broadcast (a shared `scale [D]` is PPO's log-std)."""
        return jnp.broadcast_shapes(jnp.shape(self.loc), jnp.shape(self.scale))

    def sample(self, *, seed: jax.Array) -> jax.Array:
        """One action per batch element, `[..., D]`."""
        noise = jax.random.normal(seed, self._shape, jnp.result_type(self.loc))
        return self.loc + self.scale * noise

    def log_prob(self, value: jax.Array) -> jax.Array:
        """`log N(value; loc, diag(scale^2))`, `[...]` (summed over the D action dimensions)."""
        z = (value - self.loc) / self.scale
        return jnp.sum(-0.5 * z * z - _HALF_LOG_2PI, axis=-1) - jnp.sum(
            jnp.broadcast_to(jnp.log(self.scale), z.shape), axis=-1)

    def entropy(self) -> jax.Array:
        """`sum_d (1/2 log(2 pi e) + log scale_d)`, `[...]` (nats)."""
        log_scale = jnp.broadcast_to(jnp.log(self.scale), self._shape)
        return jnp.sum(jnp.full_like(log_scale, 0.5 + _HALF_LOG_2PI), axis=-1) + jnp.sum(
            log_scale, axis=-1)

    def kl_divergence(self, other: DiagGaussian) -> jax.Array:
        """`KL(self || other) = sum_d [log(s2/s1) + (s1^2 + (m1 - m2)^2) / (2 s2^2) - 1/2]`,
        `[...]`."""
        ratio = self.scale / other.scale
        diff = (self.loc - other.loc) / other.scale
        return jnp.sum(0.5 * (ratio * ratio + diff * diff) - 0.5 - jnp.log(ratio), axis=-1)

    def mode(self) -> jax.Array:
        """The mean, `[..., D]`."""
        return jnp.broadcast_to(self.loc, self._shape)
