"""A uniform replay buffer held in JAX arrays inside the (vmappable) training state.

The buffer is a ring of `capacity` transitions; `add` writes a batch of `n` transitions (one per
parallel environment) at the write pointer, `sample` draws `batch` indices uniformly from the
filled part. Everything is pure and shape-static, so the buffer lives in the scanned, vmapped
training state with no host round trip (paper's Algorithm 1 uses a standard uniform buffer).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class Transition(NamedTuple):
    """One transition (or a batch of them, with leading axes).

    Attributes:
      obs: `[..., obs_dim]` observation `s_t`.
      action: `[..., A]` action in the normalised box `[-1, 1]^A`.
      reward: `[...]` reward `r_t`.
      next_obs: `[..., obs_dim]` the true next observation `s_{t+1}` (before any auto-reset).
      terminated: `[...]` 1.0 if `s_{t+1}` is terminal (no bootstrap); truncation is NOT terminal.
    """

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    next_obs: jax.Array
    terminated: jax.Array


class Buffer(NamedTuple):
    """Ring buffer: `data` leaves are `[capacity, ...]`; `pos` next write slot; `size` filled."""

    data: Transition
    pos: jax.Array
    size: jax.Array


def init(capacity: int, obs_dim: int, action_dim: int) -> Buffer:
    """An empty buffer for `capacity` transitions."""
    if capacity < 1:
        raise ValueError(f"buffer capacity must be >= 1, got {capacity}")
    z = jnp.zeros
    data = Transition(
        z((capacity, obs_dim)), z((capacity, action_dim)), z((capacity,)),
        z((capacity, obs_dim)), z((capacity,)),
    )
    return Buffer(data, jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))


def add(buf: Buffer, batch: Transition) -> Buffer:
    """Write `n` transitions (leaves `[n, ...]`, `n <= capacity`) at the write pointer."""
    capacity = buf.data.reward.shape[0]
    n = batch.reward.shape[0]
    idx = (buf.pos + jnp.arange(n)) % capacity
    data = jax.tree.map(lambda d, x: d.at[idx].set(x.astype(d.dtype)), buf.data, batch)
    return Buffer(data, (buf.pos + n) % capacity, jnp.minimum(buf.size + n, capacity))


def sample(buf: Buffer, key: jax.Array, batch_size: int) -> Transition:
    """`batch_size` transitions drawn uniformly with replacement from the filled part."""
    idx = jax.random.randint(key, (batch_size,), 0, jnp.maximum(buf.size, 1))
    return jax.tree.map(lambda d: d[idx], buf.data)
