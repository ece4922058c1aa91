"""Bayesian policy gradient (BPG), both models, and Monte Carlo policy gradient (REINFORCE).

Ghavamzadeh & Engel (NIPS 2006); Ghavamzadeh, Engel & Valko (JMLR 17, 2016), Sec. 4.

The gradient `grad eta = int R(xi) u(xi) Pr(xi; theta) d xi` over trajectories `xi`, with the
trajectory score `u(xi) = sum_t grad log pi(a_t | x_t)`. Inputs below are per batch of `M`
episodes: returns `R: [M]`, scores `U: [M, n]` (row i is `u(xi_i)`; the papers' `U` is its
transpose), Fisher information `G: [n, n]` and the GP observation-noise variance `noise`
(`Sigma = noise * I`).

* Model 1 (Sec. 4.1): the vector `R(xi) u(xi)` is a GP with the quadratic Fisher kernel
  `k = (1 + u^T G^{-1} u')^2` and `g = Pr`: `b_i = 1 + u_i^T G^{-1} u_i`, `b_0 = 1 + n`,
  `E[grad | D] = Y C b` with `Y = [R_i u_i]`, `Cov = (b_0 - b^T C b) I`.
* Model 2 (Sec. 4.2): the scalar `R` is a GP with the Fisher kernel `k = u^T G^{-1} u'` and
  `g = grad Pr = u Pr`: `B = U`, `B_0 = G`, `E[grad | D] = U C y`, `Cov = G - U C U^T`.
* Natural gradient: `G^{-1} E[grad | D]`, covariance `G^{-1} Cov G^{-1}`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp

from jaxrl.bayes_pg import gp


class GradientPosterior(NamedTuple):
    """Posterior over the policy gradient: `mean: [n]`, `cov: [n, n]`."""

    mean: jax.Array
    cov: jax.Array


def _check(returns: jax.Array, scores: jax.Array) -> None:
    chex.assert_rank(returns, 1)
    chex.assert_rank(scores, 2)
    if returns.shape[0] != scores.shape[0]:
        raise ValueError(
            f"returns [{returns.shape[0]}] and scores {scores.shape} disagree on the number of "
            "episodes")


def inv_psd(g: jax.Array) -> jax.Array:
    chol, _ = gp.jittered_cholesky(g)
    return gp.cho_solve(chol, jnp.eye(g.shape[0], dtype=g.dtype))


def _weights(returns: jax.Array, mask: jax.Array | None) -> jax.Array:
    if mask is None:
        return jnp.ones_like(returns)
    chex.assert_equal_shape([returns, mask])
    return mask.astype(returns.dtype)


def mc_gradient(returns: jax.Array, scores: jax.Array, baseline: bool = False,
                mask: jax.Array | None = None) -> jax.Array:
    """REINFORCE (Williams 1992): `(1/M) sum_i (R_i - b_i) u_i`: `[n]`.

    With `baseline`, `b_i` is the leave-one-out mean return of the other episodes, which keeps
    the estimate unbiased (needs `M >= 2`). `mask: [M]` (0/1) keeps only some episodes
    (`M` = their number), so one compiled program serves every batch size.
    """
    _check(returns, scores)
    w = _weights(returns, mask)
    m = jnp.sum(w)
    if baseline:
        if mask is None and returns.shape[0] < 2:
            raise ValueError(f"mc_gradient with baseline needs >= 2 episodes, got "
                             f"{returns.shape[0]}")
        b = (jnp.sum(w * returns) - returns) / (m - 1)
        returns = returns - b
    return scores.T @ (w * returns) / m


def fisher_from_trajectories(scores: jax.Array, mask: jax.Array | None = None) -> jax.Array:
    """`G ~= (1/M) sum_i u(xi_i) u(xi_i)^T`, scores `[M, n]` -> `[n, n]` (kept episodes)."""
    w = jnp.ones(scores.shape[0], scores.dtype) if mask is None else mask.astype(scores.dtype)
    return (scores * w[:, None]).T @ scores / jnp.sum(w)


def fisher_from_steps(step_scores: jax.Array, mask: jax.Array | None = None) -> jax.Array:
    """`G ~= (1/M) sum_i sum_t u_t u_t^T` (unbiased: cross-time terms have mean zero).

    step_scores: `[M, T, n]` (zero on padding); mask: optional `[M]` kept episodes.
    """
    chex.assert_rank(step_scores, 3)
    m = step_scores.shape[0]
    w = jnp.ones(m, step_scores.dtype) if mask is None else mask.astype(step_scores.dtype)
    return jnp.einsum("m,mti,mtj->ij", w, step_scores, step_scores) / jnp.sum(w)


def fisher_per_episode(step_scores: jax.Array) -> jax.Array:
    """Each episode's contribution `sum_t u_t u_t^T` to the per-step Fisher estimate:
    `[M, T, n] -> [M, n, n]` (their mean is `fisher_from_steps`)."""
    chex.assert_rank(step_scores, 3)
    return jnp.einsum("mti,mtj->mij", step_scores, step_scores)


def fisher_error_cov(mean_fn: Callable[[jax.Array], jax.Array], fisher: jax.Array,
                     per_episode: jax.Array, mask: jax.Array | None = None) -> jax.Array:
    """The covariance the sampling error of an estimated Fisher matrix adds to a posterior
    mean, to first order (delta method): `J V J^T`, `[n, n]`.

    `fisher: [n, n]` is the mean of the iid per-episode contributions `per_episode: [M, n, n]`
    (`fisher_per_episode` or `policies.fisher_per_episode_states`), so `V = Cov(vec G_i) / M`
    (sample covariance, `M - 1` denominator, over the kept episodes); `J = d mean_fn(G) /
    d vec(G)` at `fisher` (`jax.jacfwd`; `mean_fn` holds the GP hyperparameters fixed). The
    posterior treats the kernels' `G` as known; adding this term to its covariance accounts
    for `G` having been estimated from `M` episodes."""
    n = fisher.shape[0]
    m_all = per_episode.shape[0]
    w = jnp.ones(m_all, fisher.dtype) if mask is None else mask.astype(fisher.dtype)
    m = jnp.sum(w)
    jac = jax.jacfwd(mean_fn)(fisher).reshape(-1, n * n)
    dev = ((per_episode - fisher) * w[:, None, None]).reshape(m_all, n * n)
    v = dev.T @ dev / ((m - 1.0) * m)
    return jac @ v @ jac.T


def bq_model1_integrals(scores: jax.Array, g_inv: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Model 1 BQ integrals for the quadratic Fisher kernel: `b: [M]`, `b_0` scalar.

    `b_i = E_xi[(1 + u(xi)^T G^{-1} u_i)^2] = 1 + u_i^T G^{-1} u_i` and `b_0 = 1 + n`, using
    `E[u] = 0`, `E[u u^T] = G`.
    """
    b = 1.0 + jnp.einsum("mi,ij,mj->m", scores, g_inv, scores)
    return b, jnp.asarray(1.0 + scores.shape[1], scores.dtype)


def bq_model2_integrals(scores: jax.Array, g: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Model 2 BQ integrals for the Fisher kernel and `g = u Pr`: `B = U^T: [n, M]`, `B_0 = G`."""
    return scores.T, g


def _model1_gram(scores: jax.Array, fisher: jax.Array) -> tuple[jax.Array, jax.Array]:
    g_inv = inv_psd(fisher)
    return gp.gram(lambda u, v: gp.quadratic_fisher_kernel(u, v, g_inv), scores, scores), g_inv


def _model2_gram(scores: jax.Array, fisher: jax.Array) -> jax.Array:
    g_inv = inv_psd(fisher)
    return gp.gram(lambda u, v: gp.fisher_kernel(u, v, g_inv), scores, scores)


def bpg_model1(returns: jax.Array, scores: jax.Array, fisher: jax.Array,
               noise: float | jax.Array = 1.0, mask: jax.Array | None = None,
               signal_scale: float | jax.Array = 1.0,
               noise_diag: jax.Array | None = None) -> GradientPosterior:
    """BPG Model 1 posterior of the gradient (JMLR 2016 Sec. 4.1, Table 1).

    Args:
      returns: `[M]`, scores: `[M, n]`, fisher: `[n, n]` (exact or estimated `G`),
      noise: GP observation-noise variance `b` (`Sigma = b I`, scalar),
      mask: optional `[M]` 0/1; masked episodes are decoupled from the GP (zero kernel rows,
        observations and `b`), which is exactly the posterior of the kept episodes.
      signal_scale: `a`, the prior is `GP(0, a k)`: the mean is that of noise `b / a` and the
        covariance is `a (b_0 - b^T (K + (b / a) I)^{-1} b) I` (`evidence_fit` fits `a`, `b`).
        `noise` and `signal_scale` may also be `[n]`: one GP per component of `R u` with its
        own scale and noise (then the covariance is diagonal, component `j` with `a_j`, `b_j`).
      noise_diag: optional `[M]` positive `d`: heteroscedastic noise `Sigma = b diag(d)`.
    """
    _check(returns, scores)
    n = scores.shape[1]
    d = jnp.ones_like(returns) if noise_diag is None else noise_diag
    w = _weights(returns, mask)
    k, g_inv = _model1_gram(scores, fisher)
    b, b0 = bq_model1_integrals(scores, g_inv)
    y = (w * returns)[:, None] * scores
    kw = k * w[:, None] * w[None, :]
    ratio = jnp.broadcast_to(jnp.asarray(noise / signal_scale, scores.dtype), (n,))
    scale = jnp.broadcast_to(jnp.asarray(signal_scale, scores.dtype), (n,))

    def component(r, yj):
        post = gp.bq_posterior(kw, w * b, b0, yj, jnp.diag(r * d))
        return post.mean, post.cov

    mean, var = jax.vmap(component)(ratio, y.T)
    return GradientPosterior(mean, jnp.diag(scale * var))


def bpg_model2(returns: jax.Array, scores: jax.Array, fisher: jax.Array,
               noise: float | jax.Array = 1.0, mask: jax.Array | None = None,
               signal_scale: float | jax.Array = 1.0, noise_diag: jax.Array | None = None,
               center: bool = False) -> GradientPosterior:
    """BPG Model 2 posterior of the gradient (JMLR 2016 Sec. 4.2, Table 1).

    Args as in `bpg_model1`; covariance `a (G - U^T (K + (b / a) D)^{-1} U)` (`D` =
    `diag(noise_diag)`, default `I`).

    `center`: the GP on `R` gets a constant prior mean `mu` with a flat prior, integrated out.
    Since `int mu grad Pr = 0` the target is unchanged; the posterior is `mean = U^T C (R - mu_hat
    1)` (`mu_hat` the GLS mean `1^T C R / 1^T C 1`, `C = (K + (b / a) D)^{-1}`) and the
    covariance gains `a w w^T / (1^T C 1)`, `w = U^T C 1` (the uncertainty of `mu`).
    """
    _check(returns, scores)
    w = _weights(returns, mask)
    k = _model2_gram(scores, fisher)
    bmat, b0 = bq_model2_integrals(scores, fisher)
    d = jnp.ones_like(returns) if noise_diag is None else noise_diag
    kw = k * w[:, None] * w[None, :]
    sigma = jnp.diag((noise / signal_scale) * d)
    if not center:
        post = gp.bq_posterior(kw, bmat * w, b0, w * returns, sigma)
        return GradientPosterior(post.mean, signal_scale * post.cov)
    a = (kw + sigma) * w[:, None] * w[None, :] + jnp.diag(1.0 - w)
    chol, _ = gp.jittered_cholesky(a)
    c1 = gp.cho_solve(chol, w)
    mu = (c1 @ (w * returns)) / (c1 @ w)
    bw = bmat * w
    mean = bw @ gp.cho_solve(chol, w * (returns - mu))
    wv = bw @ c1
    cov = b0 - bw @ gp.cho_solve(chol, bw.T) + jnp.outer(wv, wv) / (c1 @ w)
    return GradientPosterior(mean, signal_scale * 0.5 * (cov + cov.T))


def noise_profile(model: int, scores: jax.Array, fisher: jax.Array,
                  mask: jax.Array | None = None) -> jax.Array:
    """Heteroscedastic noise shape `d: [M]` for `Sigma = b diag(d)`: the prior signal variance
    at each trajectory, `d_i = k(u_i, u_i)` (Model 1: `(1 + u_i^T G^{-1} u_i)^2`, Model 2:
    `u_i^T G^{-1} u_i`), normalized to mean 1 over the kept episodes (noise proportional to
    signal: the return's spread grows with the trajectory's score norm)."""
    g_inv = inv_psd(fisher)
    q = jnp.einsum("mi,ij,mj->m", scores, g_inv, scores)
    d = (1.0 + q) ** 2 if model == 1 else q
    w = jnp.ones_like(d) if mask is None else mask.astype(d.dtype)
    d = jnp.maximum(d, 1e-6 * jnp.max(d))
    return jnp.where(w > 0, d / (jnp.sum(w * d) / jnp.sum(w)), 1.0)


def evidence_fit(model: int, returns: jax.Array, scores: jax.Array, fisher: jax.Array,
                 mask: jax.Array | None = None, noise_diag: jax.Array | None = None,
                 center: bool = False) -> gp.EvidenceFit:
    """Type-II maximum likelihood of BPG's signal scale `a` and noise `b` on one batch.

    Model 1 observes `Y = [R_i u_i]: [M, n]`, each column `~ N(0, a K + b I)` (`K` the quadratic
    Fisher kernel matrix; the `n` components are independent GPs sharing the kernel, scale and
    noise, the papers' model; a per-component fit measured no better coverage). Model 2
    observes `y = R: [M] ~ N(0, a K + b I)` (`K` the Fisher kernel matrix).
    Masked episodes are left out. `noise_diag`: heteroscedastic noise `b diag(d)` (see
    `noise_profile`); `center` (Model 2 only): constant prior mean integrated out (restricted
    evidence; `bpg_model2(..., center=True)`).
    """
    _check(returns, scores)
    valid = None if mask is None else mask.astype(bool)
    if model == 1:
        if center:
            raise ValueError("center is a Model 2 option")
        k, _ = _model1_gram(scores, fisher)
        return gp.fit_scale_noise(k, returns[:, None] * scores, valid, noise_diag=noise_diag)
    if model == 2:
        return gp.fit_scale_noise(_model2_gram(scores, fisher), returns, valid,
                                  noise_diag=noise_diag, center=center)
    raise ValueError(f"model must be 1 or 2, got {model!r}")


def natural_gradient(post: GradientPosterior, fisher: jax.Array) -> GradientPosterior:
    """Natural-gradient posterior: mean `G^{-1} m`, covariance `G^{-1} S G^{-1}`."""
    g_inv = inv_psd(fisher)
    cov = g_inv @ post.cov @ g_inv
    return GradientPosterior(g_inv @ post.mean, 0.5 * (cov + cov.T))


def angle_deg(estimate: jax.Array, truth: jax.Array) -> jax.Array:
    """Angle between two vectors in degrees (`[..., n]` -> `[...]`)."""
    cos = jnp.sum(estimate * truth, -1) / (
        jnp.linalg.norm(estimate, axis=-1) * jnp.linalg.norm(truth, axis=-1) + 1e-30)
    return jnp.degrees(jnp.arccos(jnp.clip(cos, -1.0, 1.0)))


def relative_error(estimate: jax.Array, truth: jax.Array) -> jax.Array:
    """`|estimate - truth| / |truth|` (`[..., n]` -> `[...]`)."""
    return jnp.linalg.norm(estimate - truth, axis=-1) / jnp.linalg.norm(truth, axis=-1)
