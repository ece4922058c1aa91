"""Sample-quality metrics: sliced Wasserstein distance and maximum mean discrepancy.

* Sliced Wasserstein-2 (Rabin et al. 2011; Bonneel et al. 2015): average over random unit
  directions `theta` of the 1-D W2 distance between the projections, computed by sorting (exact in
  1-D for equal sample sizes). Returned as `sqrt(mean_theta W2^2)`.
* MMD^2 with a Gaussian kernel `k(x, y) = exp(-|x - y|^2 / (2 h^2))` (Gretton et al. 2012),
  unbiased U-statistic; the bandwidth `h` defaults to the median pairwise distance of the pooled
  samples (median heuristic). Returned as `sqrt(max(MMD^2, 0))`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def sliced_wasserstein(
    key: jax.Array, x: jax.Array, y: jax.Array, num_projections: int = 128
) -> jax.Array:
    """Sliced W2 between samples `x: [N, D]` and `y: [N, D]` (same `N`). Scalar."""
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape, got {x.shape} and {y.shape}")
    theta = jax.random.normal(key, (x.shape[1], num_projections))
    theta = theta / jnp.linalg.norm(theta, axis=0, keepdims=True)
    px = jnp.sort(x @ theta, axis=0)
    py = jnp.sort(y @ theta, axis=0)
    return jnp.sqrt(jnp.mean((px - py) ** 2))


def _sqdist(a: jax.Array, b: jax.Array) -> jax.Array:
    return jnp.maximum(
        jnp.sum(a**2, 1)[:, None] + jnp.sum(b**2, 1)[None, :] - 2.0 * a @ b.T, 0.0)


def mmd(x: jax.Array, y: jax.Array, bandwidth: jax.Array | float | None = None) -> jax.Array:
    """Unbiased Gaussian-kernel MMD between `x: [N, D]` and `y: [M, D]`; returns `sqrt(max(MMD^2,
    0))`. `bandwidth=None` uses the median pairwise distance of the pooled samples."""
    n, m = x.shape[0], y.shape[0]
    dxx, dyy, dxy = _sqdist(x, x), _sqdist(y, y), _sqdist(x, y)
    if bandwidth is None:
        bandwidth = jnp.sqrt(jnp.median(jnp.concatenate([dxx.ravel(), dyy.ravel(),
                                                          dxy.ravel()])) + 1e-12)
    g = lambda d: jnp.exp(-d / (2.0 * bandwidth**2))
    kxx = (jnp.sum(g(dxx)) - n) / (n * (n - 1))
    kyy = (jnp.sum(g(dyy)) - m) / (m * (m - 1))
    kxy = jnp.mean(g(dxy))
    return jnp.sqrt(jnp.maximum(kxx + kyy - 2.0 * kxy, 0.0))
