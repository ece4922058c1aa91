"""Monte-Carlo GPTD critic (full and ALD-sparse) and the Bayesian actor-critic gradient.

Engel, Mannor & Meir (ICML 2005, "Reinforcement learning with Gaussian processes"); Ghavamzadeh
& Engel (ICML 2007); Ghavamzadeh, Engel & Valko (JMLR 2016), Sec. 7.

GPTD models the action values `Q(z)`, `z = (x, a)`, as a GP with kernel `k` and relates rewards
to `Q` through `r = H Q + N`, with `H` (per episode of length `T`, ending in a terminal state)
having 1 on the diagonal and `-gamma` on the superdiagonal. The posterior is

    alpha = H^T (H K H^T + Sigma)^{-1} r,     C = H^T (H K H^T + Sigma)^{-1} H,

(`E[Q(z)|D] = k(z)^T alpha`, `Cov = k(z, z') - k(z)^T C k(z')`). Monte-Carlo GPTD uses
`Sigma = sigma^2 H H^T`, whence `alpha = (K + sigma^2 I)^{-1} y` and `C = (K + sigma^2 I)^{-1}`
with `y = H^{-1} r` the discounted returns-to-go.

Bayesian actor-critic (BAC): with `k(z, z') = c_x k_x(x, x') + c_F u(z)^T G^{-1} u(z')` the state
part integrates to zero against `grad pi` (since `E_a[u] = 0`), so `E[grad | D] = c_F U alpha`
and `Cov = c_F G - c_F^2 U C U^T`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxrl.bayes_pg import gp


class GPTDPosterior(NamedTuple):
    """`alpha: [N]` and `C: [N, N]` (or on the dictionary, `[cap]`, `[cap, cap]`)."""

    alpha: jax.Array
    c: jax.Array


def gptd_h_matrix(length: int, gamma: float | jax.Array, dtype=jnp.float32) -> jax.Array:
    """`H: [T, T]` for one episode ending in a terminal state: `H[t, t] = 1`,
    `H[t, t+1] = -gamma`."""
    return jnp.eye(length, dtype=dtype) - gamma * jnp.eye(length, k=1, dtype=dtype)


def discounted_returns_to_go(rewards: jax.Array, valid: jax.Array,
                             gamma: float | jax.Array) -> jax.Array:
    """`y_t = sum_{s >= t} gamma^{s-t} r_s` over valid steps; rewards, valid: `[T]` -> `[T]`."""
    def body(acc, inp):
        r, v = inp
        acc = jnp.where(v, r + gamma * acc, 0.0)
        return acc, acc

    _, y = jax.lax.scan(body, jnp.zeros((), rewards.dtype), (rewards, valid), reverse=True)
    return y


def gptd_posterior(k: jax.Array, h: jax.Array, r: jax.Array, sigma: jax.Array) -> GPTDPosterior:
    """General GPTD posterior with a given `H: [T, N]`, rewards `r: [T]`, noise `Sigma: [T, T]`."""
    s = h @ k @ h.T + sigma
    chol, _ = gp.jittered_cholesky(s)
    alpha = h.T @ gp.cho_solve(chol, r)
    c = h.T @ gp.cho_solve(chol, h)
    return GPTDPosterior(alpha, 0.5 * (c + c.T))


def mc_gptd(k: jax.Array, returns_to_go: jax.Array, noise: float | jax.Array,
            valid: jax.Array | None = None) -> GPTDPosterior:
    """Monte-Carlo GPTD posterior in closed form: `alpha = (K + s I)^{-1} y`,
    `C = (K + s I)^{-1}`; k: `[N, N]`, returns_to_go: `[N]`; invalid points are decoupled
    (their rows/columns of `K` zeroed, `y = 0`) and get `alpha = 0`, `C = 0`."""
    n = k.shape[0]
    if valid is not None:
        vm = valid.astype(k.dtype)
        k = k * vm[:, None] * vm[None, :]
        returns_to_go = returns_to_go * vm
    chol, _ = gp.jittered_cholesky(k + noise * jnp.eye(n, dtype=k.dtype))
    alpha = gp.cho_solve(chol, returns_to_go)
    c = gp.cho_solve(chol, jnp.eye(n, dtype=k.dtype))
    if valid is not None:
        c = c * vm[:, None] * vm[None, :]
    return GPTDPosterior(alpha, 0.5 * (c + c.T))


def sparse_mc_gptd(k_dict: jax.Array, coeffs: jax.Array, returns_to_go: jax.Array,
                   noise: float | jax.Array) -> GPTDPosterior:
    """Monte-Carlo GPTD on an ALD dictionary (batch form of Engel's sparse GPTD).

    With `K ~= A Ktilde A^T` (`A = coeffs: [N, m]`, `Ktilde = k_dict: [m, m]`) and `H~ = H A`:
    `alpha~ = A^T (A Ktilde A^T + s I)^{-1} y = (A^T A Ktilde + s I)^{-1} A^T y` and
    `C~ = (A^T A Ktilde + s I)^{-1} A^T A`, an `[m, m]` solve. `E[Q(z)] = ktilde(z)^T alpha~`.
    Unused dictionary slots (zero columns of `A`) get `alpha~ = 0`, `C~ = 0`.
    """
    m = k_dict.shape[0]
    used = jnp.any(coeffs != 0, axis=0)
    # (P Kt + s I)^{-1} = Kt^{-1} (P + s Kt^{-1})^{-1} with P = A^T A; unused slots get Kt = I.
    kt = jnp.where(used[:, None] & used[None, :], k_dict, jnp.eye(m, dtype=k_dict.dtype))
    chol_k, _ = gp.jittered_cholesky(kt)
    eye = jnp.eye(m, dtype=k_dict.dtype)
    kt_inv = gp.cho_solve(chol_k, eye)
    ata = coeffs.T @ coeffs
    chol_s, _ = gp.jittered_cholesky(ata + noise * kt_inv)
    alpha = kt_inv @ gp.cho_solve(chol_s, coeffs.T @ returns_to_go)
    c = kt_inv @ gp.cho_solve(chol_s, ata)
    return GPTDPosterior(alpha, 0.5 * (c + c.T))


def bac_gradient(post: GPTDPosterior, scores: jax.Array, fisher: jax.Array,
                 c_f: float | jax.Array = 1.0):
    """BAC gradient posterior: mean `c_F U alpha: [n]`, cov `c_F G - c_F^2 U C U^T: [n, n]`.

    scores: `[N, n]` state-action scores `u(z_i)` (rows; zero for unused points),
    fisher: `[n, n]` (the occupancy Fisher `E[u u^T]`).
    """
    from jaxrl.bayes_pg.bpg import GradientPosterior

    mean = c_f * scores.T @ post.alpha
    cov = c_f * fisher - c_f**2 * scores.T @ post.c @ scores
    return GradientPosterior(mean, 0.5 * (cov + cov.T))


def bac_kernel(c_x: float | jax.Array, c_f: float | jax.Array, lengthscale: float | jax.Array,
               g_inv: jax.Array, obs_dim: int):
    """BAC kernel on `z = concat(x, u(z))`: `c_x exp(-|x-x'|^2 / 2 l^2) + c_F u^T G^{-1} u'`."""
    def kernel(z1, z2):
        x1, u1 = z1[:obs_dim], z1[obs_dim:]
        x2, u2 = z2[:obs_dim], z2[obs_dim:]
        return c_x * gp.rbf_kernel(x1, x2, lengthscale) + c_f * gp.fisher_kernel(u1, u2, g_inv)

    return kernel
