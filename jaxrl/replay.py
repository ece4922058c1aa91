"""A uniform experience-replay ring buffer held entirely in JAX arrays.

The buffer is a pytree (`ReplayState`), so it lives inside an agent's state, is carried through
`lax.scan`, and is `vmap`ped over seeds like any other array. Items are arbitrary pytrees of
arrays with a fixed per-item shape; the buffer stores them with a leading `[capacity]` axis.

* `replay_init(example, capacity)`: an empty buffer for items shaped like `example`.
* `replay_add(state, batch)`: append `n` items (leaves `[n, ...]`), overwriting the oldest ones
  once full (first in, first out).
* `replay_sample(state, key, batch_size)`: `batch_size` items drawn uniformly, with replacement,
  among the items currently stored.

This is the DQN replay memory (Mnih et al., 2015) in its simplest uniform form, the one buffer of
the library: the deep distributional agent of `jaxrl.dp.deep` stores `(obs, action, reward,
next_obs, done)` tuples in it, STAC and its SAC-family baselines (`jaxrl.stac`) their
`Transition`s (Algorithm 1 of Özalp 2026 uses a standard uniform buffer).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp


class ReplayState(NamedTuple):
    """Ring-buffer state.

    Attributes:
      data: pytree whose leaves have shape `[capacity, *item_shape]`.
      pos: int32 scalar, index where the next item is written.
      size: int32 scalar, number of valid items (`<= capacity`).
    """

    data: Any
    pos: jax.Array
    size: jax.Array


def capacity_of(state: ReplayState) -> int:
    """Static capacity of the buffer (leading axis of its leaves)."""
    return int(jax.tree.leaves(state.data)[0].shape[0])


def replay_init(example: Any, capacity: int) -> ReplayState:
    """An empty buffer for items shaped like `example` (a pytree of arrays, no batch axis).

    Args:
      example: one item; only shapes and dtypes are used.
      capacity: number of items the buffer holds (>= 1).
    """
    if int(capacity) < 1:
        raise ValueError(f"replay capacity must be >= 1, got {capacity}")
    data = jax.tree.map(
        lambda x: jnp.zeros((int(capacity), *jnp.shape(x)), jnp.asarray(x).dtype), example
    )
    return ReplayState(data, jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))


def replay_add(state: ReplayState, batch: Any) -> ReplayState:
    """Append a batch of items; leaves of `batch` are `[n, *item_shape]` with `n <= capacity`.

    Item `i` of the batch goes to slot `(pos + i) % capacity`; the oldest items are overwritten.
    """
    cap = capacity_of(state)
    leaves = jax.tree.leaves(batch)
    n = int(leaves[0].shape[0])
    if n > cap:
        raise ValueError(f"replay_add batch of {n} items exceeds the capacity {cap}")
    for leaf in leaves:
        if leaf.shape[0] != n:
            raise ValueError(f"replay_add batch leaves disagree on the batch size: {leaf.shape}")
    idx = (state.pos + jnp.arange(n, dtype=jnp.int32)) % cap
    data = jax.tree.map(lambda buf, x: buf.at[idx].set(x.astype(buf.dtype)), state.data, batch)
    pos = (state.pos + n) % cap
    size = jnp.minimum(state.size + n, cap)
    return ReplayState(data, pos.astype(jnp.int32), size.astype(jnp.int32))


def replay_sample(state: ReplayState, key: jax.Array, batch_size: int) -> Any:
    """`batch_size` items drawn uniformly with replacement from the `size` stored items.

    On an empty buffer it returns slot 0 (zeros); callers gate learning on `state.size`.
    Returns a pytree with leaves `[batch_size, *item_shape]`.
    """
    idx = jax.random.randint(key, (int(batch_size),), 0, jnp.maximum(state.size, 1))
    return replay_gather(state, idx)


def replay_gather(state: ReplayState, idx: jax.Array) -> Any:
    """The stored items at slots `idx [B]` (int32 in `[0, size)`, e.g. from
    `jaxrl.rng.index_from_bits(bits, state.size)`): a pytree with leaves `[B, *item_shape]`."""
    return jax.tree.map(lambda buf: buf[idx], state.data)
