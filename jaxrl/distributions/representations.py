"""Return-distribution representations as pytrees, with their projections.

See the package docstring for the overview. Shapes: a leading batch `[...]`, atoms last.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class Categorical(NamedTuple):
    """Categorical distribution on a fixed sorted support (C51).

    Attributes:
      support: `[K]` sorted atom locations `z_1 < ... < z_K`.
      probs: `[..., K]` probabilities (sum to one on the last axis).
    """

    support: jax.Array
    probs: jax.Array


class Quantile(NamedTuple):
    """Quantile representation: `K` equally weighted atoms `locs[..., i]` at levels `tau_i`.

    Attributes:
      locs: `[..., K]` atom locations (the quantile estimates, `tau_i = (2i - 1) / (2K)`).
    """

    locs: jax.Array


class FiniteSupport(NamedTuple):
    """Exact finite-support distribution.

    Attributes:
      atoms: `[..., N]` atom locations (any order, repeats allowed).
      probs: `[..., N]` probabilities (sum to one on the last axis).
    """

    atoms: jax.Array
    probs: jax.Array


Distribution = Categorical | Quantile | FiniteSupport


def as_atoms(dist: Distribution) -> tuple[jax.Array, jax.Array]:
    """Returns `(atoms [..., N], probs [..., N])` for any representation (atoms broadcast)."""
    if isinstance(dist, Categorical):
        probs = jnp.asarray(dist.probs)
        return jnp.broadcast_to(jnp.asarray(dist.support), probs.shape), probs
    if isinstance(dist, Quantile):
        locs = jnp.asarray(dist.locs)
        return locs, jnp.full(locs.shape, 1.0 / locs.shape[-1], locs.dtype)
    if isinstance(dist, FiniteSupport):
        atoms, probs = jnp.asarray(dist.atoms), jnp.asarray(dist.probs)
        return jnp.broadcast_to(atoms, jnp.broadcast_shapes(atoms.shape, probs.shape)), probs
    raise TypeError(f"expected Categorical, Quantile or FiniteSupport, got {type(dist).__name__}")


def categorical_projection(support: jax.Array, atoms: jax.Array, probs: jax.Array) -> jax.Array:
    """Cramér (C51) projection of a finite distribution onto a fixed support.

    Each atom is clipped to `[z_1, z_K]` and its mass split linearly between the two neighbouring
    support points (Bellemare et al. 2017, Alg. 1; Rowland et al. 2018). The support may be
    non-uniform. Mass is preserved exactly; the mean is preserved when all atoms lie inside the
    support.

    Args:
      support: `[K]` sorted support, K >= 2.
      atoms: `[..., N]` atom locations.
      probs: `[..., N]` their probabilities.

    Returns:
      `[..., K]` projected probabilities.
    """
    support = jnp.asarray(support)
    if support.ndim != 1 or support.shape[0] < 2:
        raise ValueError(f"support must have shape [K] with K >= 2, got {support.shape}")
    atoms, probs = jnp.broadcast_arrays(jnp.asarray(atoms), jnp.asarray(probs))
    k = support.shape[0]
    x = jnp.clip(atoms, support[0], support[-1])
    hi = jnp.clip(jnp.searchsorted(support, x, side="right"), 1, k - 1)
    lo = hi - 1
    frac = (x - support[lo]) / (support[hi] - support[lo])
    one_hot_lo = jax.nn.one_hot(lo, k, dtype=probs.dtype)
    one_hot_hi = jax.nn.one_hot(hi, k, dtype=probs.dtype)
    weights = ((probs * (1.0 - frac))[..., None] * one_hot_lo
               + (probs * frac)[..., None] * one_hot_hi)
    return weights.sum(axis=-2)


def project_to_categorical(dist: Distribution, support: jax.Array) -> Categorical:
    """Projects any representation onto `support` with `categorical_projection`."""
    atoms, probs = as_atoms(dist)
    return Categorical(jnp.asarray(support), categorical_projection(support, atoms, probs))


def quantile_projection(atoms: jax.Array, probs: jax.Array, num_quantiles: int,
                        tol: float | None = None) -> jax.Array:
    """W1-optimal projection of a finite distribution onto `N` equally weighted atoms.

    Returns the quantiles `theta_i = F^{-1}(tau_i)` at the midpoint levels
    `tau_i = (2i - 1) / (2N)`, with `F^{-1}(tau) = inf{x : F(x) >= tau}`. Among all
    distributions with `N` atoms of mass `1/N` this minimizes the Wasserstein-1 distance to the
    input (Dabney et al. 2018, Lemma 2; Rowland et al. 2019): the W1 cost splits into one term
    per quantile interval `((i-1)/N, i/N]`, each minimized by the median `F^{-1}(tau_i)` of that
    slice of the quantile function. Each `theta_i` is an atom of the input, so the projection keeps
    the support and the total mass (1), but in general NOT the mean (e.g. {0: 0.9, 10: 0.1} -> two
    atoms at 0). An input with `N` equal-mass atoms is a fixed point. Pure and jittable;
    leading batch dimensions are mapped over (or `vmap` it).

    Args:
      atoms: `[..., M]` atom locations (any order, repeats allowed).
      probs: `[..., M]` probabilities (summing to one on the last axis).
      num_quantiles: `N >= 1` (static).
      tol: cumulative probabilities within `tol` below a level count as reaching it (absorbs
        round-off when a level coincides with a jump of the CDF); default `1e-6` in float32,
        `1e-12` in float64.

    Returns:
      `[..., N]` sorted quantile locations.
    """
    if int(num_quantiles) < 1:
        raise ValueError(f"num_quantiles must be >= 1, got {num_quantiles}")
    atoms, probs = jnp.broadcast_arrays(jnp.asarray(atoms), jnp.asarray(probs))
    if atoms.ndim < 1 or atoms.shape[-1] < 1:
        raise ValueError(f"atoms must have shape [..., M] with M >= 1, got {atoms.shape}")
    dtype = jnp.result_type(atoms.dtype, probs.dtype, jnp.float32)
    if tol is None:
        tol = 1e-12 if dtype == jnp.float64 else 1e-6
    order = jnp.argsort(atoms, axis=-1)
    xs = jnp.take_along_axis(atoms, order, -1).astype(dtype)
    cum = jnp.cumsum(jnp.take_along_axis(probs, order, -1).astype(dtype), -1)
    tau = quantile_levels(int(num_quantiles), dtype)
    # index of the first atom whose cumulative probability reaches tau_i
    idx = jnp.sum(cum[..., None, :] < tau[:, None] - tol, axis=-1)  # [..., N]
    return jnp.take_along_axis(xs, jnp.minimum(idx, xs.shape[-1] - 1), -1)


def project_to_quantile(dist: Distribution, num_quantiles: int) -> Quantile:
    """Projects any representation onto `num_quantiles` quantiles (`quantile_projection`)."""
    atoms, probs = as_atoms(dist)
    return Quantile(quantile_projection(atoms, probs, num_quantiles))


def quantile_levels(num_quantiles: int, dtype=jnp.float32) -> jax.Array:
    """Quantile midpoints `tau_i = (2i - 1) / (2K)`, `i = 1..K` (QR-DQN). Returns `[K]`."""
    if num_quantiles < 1:
        raise ValueError(f"num_quantiles must be >= 1, got {num_quantiles}")
    return (2.0 * jnp.arange(num_quantiles, dtype=dtype) + 1.0) / (2.0 * num_quantiles)


def quantile_huber_loss(locs: jax.Array, targets: jax.Array, kappa: float | jax.Array = 1.0,
                        taus: jax.Array | None = None) -> jax.Array:
    """Quantile-regression Huber loss of predictions against target samples (QR-DQN, eq. 10).

    Args:
      locs: `[..., K]` predicted quantiles at levels `taus` (default `quantile_levels(K)`).
      targets: `[..., M]` target samples (e.g. `r + gamma * target_locs`; stop the gradient
        yourself); leading axes broadcast against `locs`'.
      kappa: Huber threshold, may be traced; `0` gives the plain pinball loss.
      taus: optional `[K]` quantile levels.

    Returns:
      `[...]`: mean over targets, sum over quantiles, of
      `|tau_i - 1{u_ij < 0}| H_kappa(u_ij) / kappa` with `u_ij = target_j - loc_i`.
    """
    if locs.ndim < 1 or targets.ndim < 1:
        raise ValueError(f"locs and targets need a last axis, got {locs.shape} and {targets.shape}")
    tau = quantile_levels(locs.shape[-1], locs.dtype) if taus is None else taus
    u = targets[..., None, :] - locs[..., :, None]  # [..., K, M]
    abs_u = jnp.abs(u)
    k = jnp.where(kappa > 0, kappa, 1.0)  # keeps the unused branch finite (and its gradient)
    huber = jnp.where(abs_u <= k, 0.5 * u**2, k * (abs_u - 0.5 * k)) / k
    huber = jnp.where(kappa > 0, huber, abs_u)
    weight = jnp.abs(tau[:, None] - (u < 0).astype(locs.dtype))
    return (weight * huber).mean(axis=-1).sum(axis=-1)
