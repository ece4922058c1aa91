"""Functionals of return distributions (reduce the last axis).

All accept a `Categorical`, `Quantile` or `FiniteSupport` (see `representations`).
CVaR is the lower-tail value at level alpha in Rockafellar-Uryasev form
`CVaR_alpha(G) = sup_b { b - E[(b - G)^+] / alpha }`, i.e. the mean of the worst alpha fraction
of outcomes with the atom straddling the alpha-quantile split exactly.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from jaxrl.distributions.representations import Distribution, as_atoms


def _sorted(dist: Distribution) -> tuple[jax.Array, jax.Array]:
    atoms, probs = as_atoms(dist)
    order = jnp.argsort(atoms, axis=-1)
    return jnp.take_along_axis(atoms, order, -1), jnp.take_along_axis(probs, order, -1)


def _check_alpha(alpha) -> None:
    if isinstance(alpha, (int, float)) and not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")


def mean(dist: Distribution) -> jax.Array:
    """E[G]. Returns `[...]`."""
    atoms, probs = as_atoms(dist)
    return (atoms * probs).sum(-1)


def variance(dist: Distribution) -> jax.Array:
    """Var[G]. Returns `[...]`."""
    atoms, probs = as_atoms(dist)
    m = (atoms * probs).sum(-1, keepdims=True)
    return (probs * (atoms - m) ** 2).sum(-1)


def cdf(dist: Distribution, x: jax.Array) -> jax.Array:
    """P(G <= x) for a scalar or `[...]`-shaped x. Returns `[...]`."""
    atoms, probs = as_atoms(dist)
    return (probs * (atoms <= jnp.asarray(x)[..., None])).sum(-1)


def value_at_risk(dist: Distribution, alpha) -> jax.Array:
    """Lower alpha-quantile VaR_alpha = inf{x : P(G <= x) >= alpha}. Returns `[...]`.

    A cumulative probability within `tol` of alpha counts as reaching it, so that alpha == a
    cumulative probability up to rounding picks that atom: `tol = 8 eps(dtype) sqrt(n)` (the
    round-off of a cumulative sum of n terms; 1.3e-5 for float32, 2.4e-14 for float64 at
    n = 30), capped at a quarter of the smallest positive probability so that no genuine atom
    is skipped.
    """
    _check_alpha(alpha)
    atoms, probs = _sorted(dist)
    cum = jnp.cumsum(probs, -1)
    n = probs.shape[-1]
    pmin = jnp.min(jnp.where(probs > 0, probs, jnp.inf), axis=-1, keepdims=True)
    tol = jnp.minimum(8.0 * jnp.finfo(cum.dtype).eps * n**0.5, 0.25 * pmin)
    idx = jnp.sum(cum < alpha - tol, axis=-1, keepdims=True)
    idx = jnp.minimum(idx, atoms.shape[-1] - 1)
    return jnp.take_along_axis(atoms, idx, -1)[..., 0]


def cvar(dist: Distribution, alpha) -> jax.Array:
    """Lower-tail CVaR_alpha: mean of the worst alpha fraction, boundary atom split exactly.

    Equals `max_b { b - E[(b - G)^+] / alpha }` (Rockafellar & Uryasev 2000), the maximum being
    attained at `b = VaR_alpha`. Returns `[...]`.
    """
    _check_alpha(alpha)
    atoms, probs = _sorted(dist)
    cum_before = jnp.cumsum(probs, -1) - probs
    taken = jnp.clip(alpha - cum_before, 0.0, probs)
    return (taken * atoms).sum(-1) / alpha


def expected_utility(dist: Distribution, f: Callable[[jax.Array], jax.Array]) -> jax.Array:
    """E[f(G)]. Returns `[...]`."""
    atoms, probs = as_atoms(dist)
    return (probs * f(atoms)).sum(-1)


def threshold_probability(dist: Distribution, threshold, tol: float = 0.0) -> jax.Array:
    """P(G >= threshold - tol). Returns `[...]`."""
    atoms, probs = as_atoms(dist)
    return (probs * (atoms >= jnp.asarray(threshold)[..., None] - tol)).sum(-1)


def wasserstein_1(p: Distribution, q: Distribution) -> jax.Array:
    """Wasserstein-1 distance `int |F_p(x) - F_q(x)| dx` between two finite distributions.

    Exact for finite supports: the CDFs are step functions, evaluated at the merged sorted
    atoms and integrated piecewise. Batch dimensions `[...]` broadcast. Returns `[...]`.
    """
    xa, pa = as_atoms(p)
    xb, pb = as_atoms(q)
    batch = jnp.broadcast_shapes(xa.shape[:-1], xb.shape[:-1])
    xa, pa = (jnp.broadcast_to(v, batch + v.shape[-1:]) for v in (xa, pa))
    xb, pb = (jnp.broadcast_to(v, batch + v.shape[-1:]) for v in (xb, pb))
    # merged atoms with signed masses: CDF difference = cumsum of signed masses in sorted order
    x = jnp.concatenate([xa, xb], -1)
    w = jnp.concatenate([pa, -pb], -1)
    order = jnp.argsort(x, axis=-1)
    x = jnp.take_along_axis(x, order, -1)
    diff = jnp.cumsum(jnp.take_along_axis(w, order, -1), -1)
    return (jnp.abs(diff[..., :-1]) * jnp.diff(x, axis=-1)).sum(-1)
