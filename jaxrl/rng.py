"""Every random draw of one update from ONE threefry call.

On XLA:CPU each `jax.random` call (split, normal, randint, ...) is lowered to its own rolled
threefry loop, and a small update spends more time dispatching those loops than computing
(`experiments/benchmarks/RESULTS_stac.md`). `draw` makes one call of `jax.random.bits` for the
whole update: the next key and every named draw are slices of the same counter stream, so the
draws are as independent as the outputs of `jax.random.split` (threefry is a pseudo-random
function of (key, counter); `split` is the same call on counters 0..3).

The transforms from bits are written out here so they can be tested bit for bit against the
peer functions of `jax.random` that start from the same bits:
`normal_from_bits(jax.random.bits(k, s)) == jax.random.normal(k, s)` and the same for
`uniform_from_bits` and `jax.random.uniform`.

Example (one update of an off-policy agent):
    key, d = rng.draw(state.key, {"idx": (B,), "eps": (B, A), "k_drop": rng.KEY})
    batch = replay.replay_gather(buffer, rng.index_from_bits(d["idx"], buffer.size))
    eps = rng.normal_from_bits(d["eps"])
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

KEY = ("key",)  # the shape spec of a raw key (two words, `uint32[2]`) in `draw`


def _size(shape: tuple) -> int:
    return 2 if shape == KEY else math.prod(shape)


def draw(key: jax.Array, spec: Mapping[str, tuple]) -> tuple[jax.Array, dict[str, jax.Array]]:
    """One `jax.random.bits` call for the next key and every draw named in `spec`.

    Args: `key` a raw `uint32[2]` key (`jax.random.PRNGKey`) or a typed threefry key;
    `spec` maps a name to a shape tuple (`uint32` words of that shape) or to `KEY` (a fresh key,
    of the same kind as `key`). Returns `(next_key, {name: array})`, names in `spec` order.
    Words 0-1 of the stream are the next key, then each entry in order.
    """
    total = 2 + sum(_size(s) for s in spec.values())
    words = jax.random.bits(key, (total,), jnp.uint32)
    typed = jnp.issubdtype(key.dtype, jax.dtypes.prng_key)

    def as_key(w):
        return jax.random.wrap_key_data(w, impl=jax.random.key_impl(key)) if typed else w

    out, pos = {}, 2
    for name, shape in spec.items():
        n = _size(shape)
        chunk = words[pos:pos + n]
        out[name] = as_key(chunk) if shape == KEY else chunk.reshape(shape)
        pos += n
    return as_key(words[:2]), out


def uniform_from_bits(bits: jax.Array, minval: float = 0.0, maxval: float = 1.0) -> jax.Array:
    """`uint32` words -> float32 uniform on `[minval, maxval)`: the 23 high bits fill the
    mantissa of a float in [1, 2), minus 1, scaled (the transform of `jax.random.uniform`)."""
    mant = jnp.right_shift(bits, jnp.uint32(32 - 23))
    one = jnp.uint32(np.array(1.0, np.float32).view(np.uint32))
    floats = jax.lax.bitcast_convert_type(jnp.bitwise_or(mant, one), jnp.float32) - 1.0
    lo, hi = jnp.float32(minval), jnp.float32(maxval)
    return jnp.maximum(lo, floats * (hi - lo) + lo)


_NORMAL_LO = float(np.nextafter(np.float32(-1.0), np.float32(0.0)))


def normal_from_bits(bits: jax.Array) -> jax.Array:
    """`uint32` words -> float32 standard normal by the inverse CDF,
    `sqrt(2) erfinv(u)` with `u` uniform on `(-1, 1)` (the transform of `jax.random.normal`)."""
    u = uniform_from_bits(bits, _NORMAL_LO, 1.0)
    return jnp.float32(np.sqrt(2.0)) * jax.scipy.special.erfinv(u)


def index_from_bits(bits: jax.Array, n: jax.Array | int) -> jax.Array:
    """`uint32` words -> int32 indices in `[0, n)` by `bits mod n` (`n >= 1`, may be traced;
    `n = 0` gives 0). Not exactly uniform: an index below `2^32 mod n` is more likely by a
    factor `1 + 1 / floor(2^32 / n)` (`n = 10^4`: 2.3e-6; `n = 10^6`: 2.3e-4)."""
    n = jnp.maximum(jnp.asarray(n), 1).astype(jnp.uint32)
    return jnp.remainder(bits, n).astype(jnp.int32)
