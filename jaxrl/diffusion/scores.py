"""Closed-form scores of Gaussian and Gaussian-mixture data at every noise level.

Convention (EDM, Karras et al. 2022 Sec. 2): `p_sigma = p_data * N(0, sigma^2 I)`; the score is
`grad_x log p_sigma(x)` and the ideal denoiser is `D(x; sigma) = x + sigma^2 grad log p_sigma(x)`
(Tweedie). For a Gaussian `N(mu, S)`: `p_sigma = N(mu, S + sigma^2 I)`, score
`(S + sigma^2 I)^{-1} (mu - x)`. For a mixture the score is the responsibility-weighted sum of
component scores, responsibilities computed with `logsumexp` (stable in high dimension).
Wang & Vastola ("The Unreasonable Effectiveness of Gaussian Score Approximation for Diffusion
Models and its Applications") show that at high noise the score of the data is close to the
Gaussian score with the data's mean and covariance; `gaussian_moments_of_gmm` gives those moments.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl import linalg

Denoiser = Callable[[jax.Array, jax.Array], jax.Array]  # (x [D], sigma []) -> D(x; sigma) [D]


class GMM(NamedTuple):
    """A Gaussian mixture: `weights: [M]`, `means: [M, D]`, `covs: [M, D, D]`."""

    weights: jax.Array
    means: jax.Array
    covs: jax.Array


def validate_gmm(weights, means, covs, atol: float = 1e-5) -> GMM:
    """Checks a mixture on the host and returns it as float32 arrays; raises ValueError naming the
    problem (shapes, D >= 1, NaN / inf, means or covariances beyond the float32 range that
    sampling needs: |means| <= sqrt(float32 max / (64 D)), |covs| <= float32 max / (64 D);
    weights not summing to 1 or negative, covariances not symmetric positive definite)."""
    w, m, c = (np.asarray(a, np.float64) for a in (weights, means, covs))
    if w.ndim != 1 or w.shape[0] < 1:
        raise ValueError(f"weights must have shape [M] with M >= 1, got shape {w.shape}")
    n = w.shape[0]
    if m.ndim != 2 or m.shape[0] != n:
        raise ValueError(f"means must have shape [M, D] = [{n}, D], got shape {m.shape}")
    d = m.shape[1]
    if d < 1:
        raise ValueError(f"means must have shape [M, D] with D >= 1, got {m.shape}")
    if c.shape != (n, d, d):
        raise ValueError(f"covs must have shape [M, D, D] = [{n}, {d}, {d}], got shape {c.shape}")
    for name, a in (("weights", w), ("means", m), ("covs", c)):
        if not np.all(np.isfinite(a)):
            where = tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0])
            raise ValueError(f"{name} contain NaN or inf (first at index {where}: {a[where]})")
    # float32 range: squared distances summed over D (with room for the noise) must stay finite
    limit = float(np.sqrt(np.finfo(np.float32).max / (64.0 * d)))
    for name, a, bound, rule in (("means", m, limit, "sqrt(float32 max / (64 D))"),
                                 ("covs", c, limit**2, "float32 max / (64 D)")):
        big = float(np.max(np.abs(a)))
        if big > bound:
            raise ValueError(f"{name} too large for float32 sampling: max |{name}| = {big:.3g} > "
                             f"{bound:.3g} = {rule} with D = {d} (squares would overflow)")
    if np.any(w < 0):
        raise ValueError(f"weights must be non-negative, got min {w.min():.6g}")
    if abs(w.sum() - 1.0) > atol:
        raise ValueError(f"weights must sum to 1, got sum {w.sum():.6g}")
    for k in range(n):
        asym = np.max(np.abs(c[k] - c[k].T))
        if asym > atol * max(1.0, np.max(np.abs(c[k]))):
            raise ValueError(f"covs[{k}] is not symmetric (max |C - C^T| = {asym:.3g})")
        lam_min = np.linalg.eigvalsh(0.5 * (c[k] + c[k].T)).min()
        if lam_min <= 0:
            raise ValueError(
                f"covs[{k}] is not positive definite (smallest eigenvalue {lam_min:.3g})"
            )
    return GMM(jnp.asarray(w, jnp.float32), jnp.asarray(m, jnp.float32),
               jnp.asarray(c, jnp.float32))


def gaussian_score(x: jax.Array, sigma: jax.Array, mean: jax.Array, cov: jax.Array) -> jax.Array:
    """Score of `N(mean, cov) * N(0, sigma^2 I)` at `x`. Shapes: `x, mean: [D]`, `cov: [D, D]`."""
    d = x.shape[-1]
    return linalg.solve(cov + sigma**2 * jnp.eye(d, dtype=x.dtype), mean - x)


def gaussian_logpdf(x: jax.Array, mean: jax.Array, cov: jax.Array) -> jax.Array:
    """Log density of `N(mean, cov)` at `x: [D]` (Cholesky)."""
    d = x.shape[-1]
    chol = jnp.linalg.cholesky(cov)
    z = jax.scipy.linalg.solve_triangular(chol, x - mean, lower=True)
    logdet = 2.0 * jnp.sum(jnp.log(jnp.diag(chol)))
    return -0.5 * (jnp.sum(z**2) + logdet + d * jnp.log(2.0 * jnp.pi))


def gmm_logpdf(x: jax.Array, sigma: jax.Array, gmm: GMM) -> jax.Array:
    """`log p_sigma(x)` for the mixture smoothed by `N(0, sigma^2 I)`; `x: [D]` -> scalar."""
    d = x.shape[-1]
    covs = gmm.covs + sigma**2 * jnp.eye(d, dtype=x.dtype)
    logp = jax.vmap(gaussian_logpdf, in_axes=(None, 0, 0))(x, gmm.means, covs)
    return jax.scipy.special.logsumexp(logp + jnp.log(gmm.weights))


def gmm_score(x: jax.Array, sigma: jax.Array, gmm: GMM) -> jax.Array:
    """Closed-form score of the smoothed mixture at `x: [D]`:
    `sum_m r_m(x) (S_m + sigma^2 I)^{-1} (mu_m - x)`, `r = softmax(log w_m + log N_m(x))`."""
    d = x.shape[-1]
    covs = gmm.covs + sigma**2 * jnp.eye(d, dtype=x.dtype)
    logp = jax.vmap(gaussian_logpdf, in_axes=(None, 0, 0))(x, gmm.means, covs)
    resp = jax.nn.softmax(logp + jnp.log(gmm.weights))
    comp = jax.vmap(lambda m, c: linalg.solve(c, m - x))(gmm.means, covs)
    return resp @ comp


def gaussian_moments_of_gmm(gmm: GMM) -> tuple[jax.Array, jax.Array]:
    """Mean `[D]` and covariance `[D, D]` of a mixture (law of total covariance)."""
    mean = gmm.weights @ gmm.means
    dm = gmm.means - mean
    cov = jnp.einsum("m,mij->ij", gmm.weights, gmm.covs) + jnp.einsum(
        "m,mi,mj->ij", gmm.weights, dm, dm)
    return mean, cov


def sample_gmm(key: jax.Array, gmm: GMM, num: int) -> jax.Array:
    """Exact samples `[num, D]` from the mixture."""
    k_comp, k_noise = jax.random.split(key)
    comp = jax.random.categorical(k_comp, jnp.log(gmm.weights), shape=(num,))
    chol = jnp.linalg.cholesky(gmm.covs)
    z = jax.random.normal(k_noise, (num, gmm.means.shape[1]))
    return gmm.means[comp] + jnp.einsum("nij,nj->ni", chol[comp], z)


def denoiser_from_score(score_fn: Callable[[jax.Array, jax.Array], jax.Array]) -> Denoiser:
    """`D(x; sigma) = x + sigma^2 score(x, sigma)` (Tweedie's formula)."""
    return lambda x, sigma: x + sigma**2 * score_fn(x, sigma)


def gmm_denoiser(gmm: GMM) -> Denoiser:
    """Exact denoiser of a mixture: `x: [D], sigma: [] -> [D]`.

    Same maths as `gmm_score`, but the eigendecompositions `S_m = U_m diag(lam_m) U_m^T` are
    computed once, so each evaluation is matrix-vector products only:
    `(S_m + sigma^2 I)^{-1} = U_m diag(1 / (lam_m + sigma^2)) U_m^T`."""
    lam, u = jnp.linalg.eigh(gmm.covs)  # [M, D], [M, D, D]
    log_w = jnp.log(gmm.weights)
    d = gmm.means.shape[1]

    def den(x: jax.Array, sigma: jax.Array) -> jax.Array:
        v = lam + sigma**2                                       # [M, D]
        c = jnp.einsum("mdk,md->mk", u, gmm.means - x)           # coordinates of mu_m - x
        logp = -0.5 * (jnp.sum(c**2 / v, 1) + jnp.sum(jnp.log(v), 1) + d * jnp.log(2 * jnp.pi))
        resp = jax.nn.softmax(logp + log_w)
        comp = jnp.einsum("mdk,mk->md", u, c / v)                # (S_m + s^2 I)^{-1} (mu_m - x)
        return x + sigma**2 * (resp @ comp)

    return den


def gaussian_denoiser(mean: jax.Array, cov: jax.Array) -> Denoiser:
    """Exact denoiser of `N(mean, cov)`."""
    return denoiser_from_score(lambda x, s: gaussian_score(x, s, mean, cov))
