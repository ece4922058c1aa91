"""Gaussian-process building blocks: kernels, jittered Cholesky, posteriors, Bayesian quadrature,
and online sparsification by approximate linear dependence (ALD).

References: Rasmussen & Williams (2006) ch. 2 (GP regression); O'Hagan (1991) and Ghavamzadeh,
Engel & Valko (JMLR 2016) Sec. 3 (Bayesian quadrature); Engel, Mannor & Meir (2002, 2005)
(ALD sparsification, GPTD).

Everything works in the dtype of its inputs: pass float64 arrays (under `jax.enable_x64(True)`)
for float64 GP algebra; `as_float(x, float64=True)` helps.

Bayesian quadrature (JMLR 2016 Sec. 3): for `rho = int f(x) g(x) dx`, `f ~ GP(0, k)`, noisy
observations `y = f(X) + N(0, Sigma)`, `C = (K + Sigma)^{-1}`:

    E[rho | D] = b^T C y,    Var[rho | D] = b_0 - b^T C b,
    b_i = int k(x, x_i) g(x) dx,    b_0 = int int g(x) k(x, x') g(x') dx dx'.

For a vector-valued `g` (`[n]`), `b` becomes the `[n, M]` matrix `B` and `b_0` the `[n, n]`
matrix `B_0`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

Kernel = Callable[[jax.Array, jax.Array], jax.Array]


class NotPositiveDefiniteError(np.linalg.LinAlgError):
    """A kernel matrix stayed non positive definite after the largest jitter."""


def as_float(x: jax.Array, float64: bool = False) -> jax.Array:
    """`x` as float32, or as float64 when `float64` (requires `jax.enable_x64(True)`)."""
    if float64 and not jax.config.jax_enable_x64:
        raise ValueError("float64=True needs x64 enabled: wrap the call in jax.enable_x64(True)")
    return jnp.asarray(x, jnp.float64 if float64 else jnp.float32)


# ---------------------------------------------------------------------------------------------
# Kernels. A kernel is k(x, x') -> scalar on single points; `gram` vmaps it.
# ---------------------------------------------------------------------------------------------


def rbf_kernel(x: jax.Array, y: jax.Array, lengthscale: float | jax.Array = 1.0,
               variance: float | jax.Array = 1.0) -> jax.Array:
    """Gaussian kernel `variance * exp(-|x - y|^2 / (2 lengthscale^2))`; x, y: `[d]`."""
    d = jnp.atleast_1d(x) - jnp.atleast_1d(y)
    return variance * jnp.exp(-0.5 * jnp.sum(d**2) / lengthscale**2)


def fisher_kernel(u: jax.Array, v: jax.Array, g_inv: jax.Array) -> jax.Array:
    """Fisher kernel `u^T G^{-1} v` on score vectors `u, v: [n]`, `g_inv: [n, n]`
    (JMLR 2016 Sec. 4.2, Model 2; Jaakkola & Haussler 1999)."""
    return u @ g_inv @ v


def quadratic_fisher_kernel(u: jax.Array, v: jax.Array, g_inv: jax.Array) -> jax.Array:
    """Quadratic Fisher kernel `(1 + u^T G^{-1} v)^2` (JMLR 2016 Sec. 4.1, Model 1)."""
    return (1.0 + fisher_kernel(u, v, g_inv)) ** 2


def gram(kernel: Kernel, xs: jax.Array, ys: jax.Array) -> jax.Array:
    """Kernel matrix `K[i, j] = kernel(xs[i], ys[j])`: xs `[N, ...]`, ys `[M, ...]` -> `[N, M]`."""
    return jax.vmap(lambda x: jax.vmap(lambda y: kernel(x, y))(ys))(xs)


def score_function(log_prob: Callable[..., jax.Array]) -> Callable[..., jax.Array]:
    """The score `u(theta; ...) = grad_theta log pi(...; theta)` of a log-density whose first
    argument is the flat parameter vector `theta: [n]`."""
    return jax.grad(log_prob, argnums=0)


# ---------------------------------------------------------------------------------------------
# Cholesky with jitter.
# ---------------------------------------------------------------------------------------------


def cholesky_lower(a: jax.Array) -> jax.Array:
    """Lower Cholesky factor by a column loop in plain JAX (NaN/inf if `a` is not PD).

    Used instead of `jnp.linalg.cholesky` because batched LAPACK calls under `vmap` deadlocked
    in jaxlib's CPU thread pool (jax 0.10.2, 2 cores, two batched calls running at once).
    """
    n = a.shape[-1]
    idx = jnp.arange(n)

    def body(j, lower):
        row = jnp.where(idx < j, lower[j], 0.0)
        ljj = jnp.sqrt(a[j, j] - row @ row)
        col = (a[:, j] - lower @ row) / ljj
        col = jnp.where(idx > j, col, 0.0).at[j].set(ljj)
        return lower.at[:, j].set(col)

    return jax.lax.fori_loop(0, n, body, jnp.zeros_like(a))


def solve_lower(lower: jax.Array, b: jax.Array, transpose: bool = False) -> jax.Array:
    """Solve `L x = b` (or `L^T x = b` when `transpose`) by substitution in plain JAX."""
    n = lower.shape[0]

    def fwd(i, x):
        return x.at[i].set((b[i] - lower[i] @ x) / lower[i, i])

    def bwd(k, x):
        i = n - 1 - k
        return x.at[i].set((b[i] - lower[:, i] @ x) / lower[i, i])

    return jax.lax.fori_loop(0, n, bwd if transpose else fwd, jnp.zeros_like(b))


def _is_tracer(x: jax.Array) -> bool:
    return isinstance(x, jax.core.Tracer)


def jittered_cholesky(
    a: jax.Array, jitters: tuple[float, ...] = (0.0, 1e-8, 1e-6, 1e-4)
) -> tuple[jax.Array, jax.Array]:
    """Lower Cholesky factor of a symmetric `a: [N, N]`, adding jitter on failure.

    Tries `a + j * mean(diag(a)) * I` for each relative jitter `j` in order and keeps the first
    finite factor. Returns `(L, jitter_added)` (absolute jitter, scalar).

    Outside `jit` a matrix that is still not positive definite with the largest jitter raises
    `NotPositiveDefiniteError` naming the jitter and the smallest eigenvalue. Under `jit` (where
    nothing can be raised) the factor is NaN in that case, which the sweep engine flags as a
    failed run.
    """
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"jittered_cholesky needs a square matrix, got shape {a.shape}")
    a = 0.5 * (a + a.T)
    n = a.shape[0]
    scale = jnp.maximum(jnp.mean(jnp.abs(jnp.diag(a))), jnp.finfo(a.dtype).tiny)
    eye = jnp.eye(n, dtype=a.dtype)
    chols = [cholesky_lower(a + (j * scale) * eye) for j in jitters]
    oks = jnp.stack([jnp.all(jnp.isfinite(c)) for c in chols])
    idx = jnp.argmax(oks)  # first success (0 if none)
    stacked = jnp.stack(chols)
    ok_any = jnp.any(oks)
    chol = jnp.where(ok_any, stacked[idx], jnp.nan)
    jit = jnp.asarray(jitters, a.dtype)[idx] * scale
    if not _is_tracer(a) and not bool(ok_any):
        min_eig = float(np.min(np.linalg.eigvalsh(np.asarray(a, np.float64))))
        raise NotPositiveDefiniteError(
            f"kernel matrix [{n}x{n}] is not positive definite even with jitter "
            f"{jitters[-1]:g} * mean diag = {jitters[-1] * float(scale):.3g} "
            f"(smallest eigenvalue {min_eig:.3g}); use float64, more observation noise, or "
            "check the kernel"
        )
    return chol, jit


def cho_solve(chol: jax.Array, b: jax.Array) -> jax.Array:
    """Solve `(L L^T) x = b` given the lower factor `L: [N, N]`; `b: [N]` or `[N, k]`."""
    return solve_lower(chol, solve_lower(chol, b), transpose=True)


# ---------------------------------------------------------------------------------------------
# GP regression and Bayesian quadrature posteriors.
# ---------------------------------------------------------------------------------------------


class GPPosterior(NamedTuple):
    """Posterior mean `[Q]` (or `[Q, ...]`) and covariance `[Q, Q]` at the query points."""

    mean: jax.Array
    cov: jax.Array


def gp_posterior(k_xx: jax.Array, k_qx: jax.Array, k_qq: jax.Array, y: jax.Array,
                 noise: jax.Array) -> GPPosterior:
    """GP regression posterior (R&W eq. 2.22-2.24), zero prior mean.

    Args:
      k_xx: `[N, N]` kernel matrix of the training inputs.
      k_qx: `[Q, N]` cross kernel between queries and training inputs.
      k_qq: `[Q, Q]` kernel matrix of the queries.
      y: `[N]` observations.
      noise: `[N, N]` observation-noise covariance `Sigma` (or a scalar variance).
    """
    n = k_xx.shape[0]
    sigma = noise * jnp.eye(n, dtype=k_xx.dtype) if jnp.ndim(noise) == 0 else noise
    chol, _ = jittered_cholesky(k_xx + sigma)
    mean = k_qx @ cho_solve(chol, y)
    cov = k_qq - k_qx @ cho_solve(chol, k_qx.T)
    return GPPosterior(mean, 0.5 * (cov + cov.T))


def bq_posterior(k_xx: jax.Array, b: jax.Array, b0: jax.Array, y: jax.Array,
                 noise: jax.Array) -> GPPosterior:
    """Bayesian-quadrature posterior of `rho = int f g` (JMLR 2016 eq. in Sec. 3).

    Args:
      k_xx: `[M, M]` kernel matrix of the sample points.
      b: `[n, M]` (vector-valued `g`) or `[M]` integrals `int k(x, x_i) g(x) dx`.
      b0: `[n, n]` or scalar `int int g k g`.
      y: `[M]` or `[M, n]` observations of `f` (a matrix for vector-valued `f`, Model 1).
      noise: `[M, M]` noise covariance or a scalar variance.

    Returns:
      `GPPosterior(mean = b C y, cov = b0 - b C b^T)`, `C = (K + Sigma)^{-1}`.
    """
    m = k_xx.shape[0]
    sigma = noise * jnp.eye(m, dtype=k_xx.dtype) if jnp.ndim(noise) == 0 else noise
    chol, _ = jittered_cholesky(k_xx + sigma)
    bm = jnp.atleast_2d(b)
    mean = bm @ cho_solve(chol, y)
    cov = b0 - bm @ cho_solve(chol, bm.T)
    cov = 0.5 * (cov + jnp.swapaxes(cov, -1, -2))
    if jnp.ndim(b) == 1:
        return GPPosterior(mean[0], jnp.reshape(cov, ()))
    return GPPosterior(mean, cov)


# ---------------------------------------------------------------------------------------------
# Online sparsification: approximate linear dependence (Engel, Mannor & Meir 2002).
# ---------------------------------------------------------------------------------------------


def partitioned_inverse_update(k_inv: jax.Array, a: jax.Array, delta: jax.Array,
                               m: jax.Array) -> jax.Array:
    """Grow `Ktilde^{-1}` by one point in place (fixed capacity).

    With `Ktilde` the `[m, m]` leading block of a `[cap, cap]` buffer, `a = Ktilde^{-1} k(x)` and
    `delta = k(x, x) - k(x)^T a`, the inverse of `[[Ktilde, k], [k^T, k(x, x)]]` is

        [[Ktilde^{-1} + a a^T / delta, -a / delta], [-a^T / delta, 1 / delta]].

    Args:
      k_inv: `[cap, cap]`, valid in the leading `[m, m]` block, zero elsewhere.
      a: `[cap]`, zero beyond `m`.  delta: scalar > 0.  m: int scalar, current size.
    """
    cap = k_inv.shape[0]
    e_m = jax.nn.one_hot(m, cap, dtype=k_inv.dtype)
    ext = a - e_m  # (a, -1) embedded at positions (0..m-1, m)
    return k_inv + jnp.outer(ext, ext) / delta


class ALDDictionary(NamedTuple):
    """Result of `ald_sparsify`.

    Attributes:
      points: `[cap, ...]` dictionary points (valid where `mask`).
      mask: `[cap]` bool.
      size: int scalar, number of dictionary points.
      k_inv: `[cap, cap]` inverse of the dictionary kernel matrix (leading block).
      coeffs: `[N, cap]` matrix `A` with `k(x_t, .) ~= sum_j A[t, j] k(d_j, .)`; rows of points
        added to the dictionary are unit vectors; rows of invalid inputs are zero.
      overflow: bool scalar, True when a point should have been added but the dictionary was
        full (then that point is only approximated; raise `capacity`).
    """

    points: jax.Array
    mask: jax.Array
    size: jax.Array
    k_inv: jax.Array
    coeffs: jax.Array
    overflow: jax.Array


def ald_sparsify(kernel: Kernel, xs: jax.Array, nu: float | jax.Array, capacity: int,
                 valid: jax.Array | None = None) -> ALDDictionary:
    """Online approximate-linear-dependence sparsification (one pass in the given order).

    For each new point `x`: `a = Ktilde^{-1} k(x)`, `delta = k(x, x) - k(x)^T a`; if
    `delta > nu` (and there is room), `x` joins the dictionary and `Ktilde^{-1}` grows by the
    partitioned update; otherwise `x` is represented by `a`. With `nu = 0` every point that is
    not exactly linearly dependent joins, so the sparse GP equals the full one.

    Args:
      kernel: `k(x, x')` on single points.
      xs: `[N, ...]` points in arrival order.
      nu: ALD threshold (>= 0).
      capacity: maximal dictionary size (static).
      valid: optional `[N]` bool; invalid points are skipped (zero rows of `A`).
    """
    n = xs.shape[0]
    dtype = jnp.result_type(kernel(xs[0], xs[0]))
    if valid is None:
        valid = jnp.ones((n,), bool)
    points0 = jnp.zeros((capacity,) + xs.shape[1:], xs.dtype)
    init = (points0, jnp.zeros((capacity,), bool), jnp.asarray(0, jnp.int32),
            jnp.zeros((capacity, capacity), dtype), jnp.asarray(False))

    def body(carry, inp):
        points, mask, m, k_inv, overflow = carry
        x, ok = inp
        kx = jnp.where(mask, jax.vmap(lambda d: kernel(d, x))(points), 0.0).astype(dtype)
        a = k_inv @ kx
        delta = kernel(x, x) - kx @ a
        want = ok & (delta > nu)
        add = want & (m < capacity)
        safe_delta = jnp.where(add, delta, 1.0)
        new_k_inv = jnp.where(add, partitioned_inverse_update(k_inv, a, safe_delta, m), k_inv)
        e_m = jax.nn.one_hot(m, capacity, dtype=dtype)
        row = jnp.where(add, e_m, jnp.where(ok, a, 0.0))
        points = jnp.where(add, points.at[jnp.minimum(m, capacity - 1)].set(x), points)
        mask = mask | (add & (jnp.arange(capacity) == m))
        return (points, mask, m + add.astype(jnp.int32), new_k_inv, overflow | (want & ~add)), row

    (points, mask, m, k_inv, overflow), coeffs = jax.lax.scan(body, init, (xs, valid))
    return ALDDictionary(points, mask, m, k_inv, coeffs, overflow)


# ---------------------------------------------------------------------------------------------
# Type-II maximum likelihood of the signal scale and the noise (Rasmussen & Williams, Sec. 5.4).
# ---------------------------------------------------------------------------------------------


class EvidenceFit(NamedTuple):
    """Evidence-maximizing hyperparameters of `y ~ N(0, scale * K + noise * I)`.

    Attributes:
      scale: signal variance `a` (multiplies the kernel), scalar.
      noise: observation-noise variance `b`, scalar.
      log_evidence: `log p(y | a, b)` at the fit (all output columns together), scalar.
      at_bound: bool scalar, True when the ratio `b / a` ended at an end of the search range.
    """

    scale: jax.Array
    noise: jax.Array
    log_evidence: jax.Array
    at_bound: jax.Array


QuadLogdet = Callable[[jax.Array], tuple[jax.Array, jax.Array]]


def profile_evidence_fit(quad_logdet: QuadLogdet, num_obs: jax.Array, num_out: int,
                         ratio_lo: jax.Array, ratio_hi: jax.Array, grid: int = 33,
                         golden: int = 20) -> EvidenceFit:
    """Maximize the GP log evidence over the signal scale `a` and the noise `b`.

    The model is `y_j ~ N(0, a K + b I)` for `num_out` independent columns `y_j: [N]` of `N =
    num_obs` observations. For a fixed ratio `r = b / a`, with `q(r) = sum_j y_j^T (K + r I)^{-1}
    y_j` and `l(r) = log det(K + r I)`, the best scale is `a = q / P` (`P = N num_out`), so
    the profile log evidence is

        pl(r) = -0.5 [P log(q / P) + P + num_out l(r) + P log(2 pi)],

    maximized over `log r` by a grid on `[ratio_lo, ratio_hi]` then golden-section search in the
    bracket around the best grid point (deterministic, jit/vmap friendly; the one-dimensional
    profile replaces a two-dimensional optimizer).

    Args:
      quad_logdet: `r -> (q(r), l(r))` (NaN/inf where `K + r I` is not positive definite).
      num_obs: number of (kept) observations `N` (scalar, may be traced).
      num_out: number of independent output columns (static).
      ratio_lo, ratio_hi: search range of `r = b / a`.
    """
    p = num_obs * num_out

    def profile(log_r):
        q, ld = quad_logdet(jnp.exp(log_r))
        val = -0.5 * (p * jnp.log(q / p) + p + num_out * ld + p * jnp.log(2.0 * jnp.pi))
        return jnp.where(jnp.isfinite(val), val, -jnp.inf)

    lo, hi = jnp.log(ratio_lo), jnp.log(ratio_hi)
    xs = lo + (hi - lo) * jnp.linspace(0.0, 1.0, grid, dtype=jnp.result_type(lo))
    vals = jax.lax.map(profile, xs)
    i = jnp.argmax(vals)
    a, b = xs[jnp.maximum(i - 1, 0)], xs[jnp.minimum(i + 1, grid - 1)]
    phi = (jnp.sqrt(5.0) - 1.0) / 2.0

    def step(_, ab):
        a, b = ab
        c, d = b - phi * (b - a), a + phi * (b - a)
        left = profile(c) >= profile(d)
        return jnp.where(left, a, c), jnp.where(left, d, b)

    a, b = jax.lax.fori_loop(0, golden, step, (a, b))
    x = 0.5 * (a + b)
    x = jnp.where(profile(x) >= vals[i], x, xs[i])
    r = jnp.exp(x)
    q, _ = quad_logdet(r)
    scale = q / p
    at_bound = (i == 0) | (i == grid - 1)
    return EvidenceFit(scale, scale * r, profile(x), at_bound)


def dense_quad_logdet(k: jax.Array, y: jax.Array, valid: jax.Array | None = None,
                      noise_diag: jax.Array | None = None, center: bool = False) -> QuadLogdet:
    """`r -> (sum_j y_j^T (K + r D)^{-1} y_j, log det(K + r D))` over the valid rows.

    k: `[N, N]`; y: `[N]` or `[N, p]`; valid: optional `[N]` bool (invalid rows and columns of
    `K` and rows of `y` are zeroed and their `log r` terms removed from the determinant).
    `noise_diag`: optional `[N]` positive `D` (heteroscedastic noise `b D`; default `D = I`).

    With `center` (one column `y` only) the model gets a constant prior mean `mu` with a flat
    prior, integrated out: the quadratic form is that of the generalized-least-squares residual
    `y - mu_hat 1`, `mu_hat = 1^T C y / 1^T C 1` (`C = (K + r D)^{-1}`), and `log(1^T C 1)`
    is added to the log determinant; pass `num_obs - 1` observations to
    `profile_evidence_fit` (the restricted / REML evidence, Rasmussen & Williams Sec. 2.7).
    """
    n = k.shape[0]
    if valid is None:
        valid = jnp.ones((n,), bool)
    vm = valid.astype(k.dtype)
    k = k * vm[:, None] * vm[None, :]
    y = y * (vm if y.ndim == 1 else vm[:, None])
    d = jnp.ones((n,), k.dtype) if noise_diag is None else jnp.where(valid, noise_diag, 1.0)
    n_invalid = n - jnp.sum(vm)
    if center and y.ndim != 1:
        raise ValueError("center needs a single output column")

    def f(r):
        chol = cholesky_lower(k + r * jnp.diag(d))
        z = solve_lower(chol, y)
        ld = 2.0 * jnp.sum(jnp.log(jnp.diag(chol))) - n_invalid * jnp.log(r)
        if not center:
            return jnp.sum(z**2), ld
        z1 = solve_lower(chol, vm)
        s11 = z1 @ z1
        return z @ z - (z1 @ z) ** 2 / s11, ld + jnp.log(s11)

    return f


def gls_mean(k: jax.Array, y: jax.Array, noise: jax.Array, valid: jax.Array | None = None
             ) -> jax.Array:
    """Generalized-least-squares constant mean `1^T C y / 1^T C 1`, `C = (K + Sigma)^{-1}` over
    the valid rows (`noise`: scalar variance or `[N, N]` covariance; `y: [N]`)."""
    n = k.shape[0]
    vm = jnp.ones((n,), k.dtype) if valid is None else valid.astype(k.dtype)
    sigma = noise * jnp.eye(n, dtype=k.dtype) if jnp.ndim(noise) == 0 else noise
    a = (k + sigma) * vm[:, None] * vm[None, :] + jnp.diag(1.0 - vm)
    chol, _ = jittered_cholesky(a)
    c1 = cho_solve(chol, vm)
    return (c1 @ (y * vm)) / (c1 @ vm)


def sparse_quad_logdet(k_dict: jax.Array, coeffs: jax.Array, y: jax.Array,
                       num_valid: jax.Array) -> QuadLogdet:
    """`quad_logdet` of the ALD-sparse kernel matrix `K = A Ktilde A^T` (`A = coeffs: [N, m]`,
    `Ktilde = k_dict: [m, m]`, `y: [N]`, zero rows of `A` and `y` for invalid points) with `m x m`
    algebra only: with `Ktilde = L L^T` and `W = I + L^T A^T A L / r`,

        y^T (K + r I)^{-1} y = (y^T y - v^T W^{-1} v / r) / r,  v = L^T A^T y,
        log det(K + r I) = N log r + log det W    (matrix determinant lemma).

    Unused dictionary slots (zero columns of `A`) contribute nothing.
    """
    m = k_dict.shape[0]
    used = jnp.any(coeffs != 0, axis=0)
    eye = jnp.eye(m, dtype=k_dict.dtype)
    kt = jnp.where(used[:, None] & used[None, :], k_dict, eye)
    lk, _ = jittered_cholesky(kt)
    mk = lk.T @ (coeffs.T @ coeffs) @ lk
    v = lk.T @ (coeffs.T @ y)
    yty = y @ y

    def f(r):
        chol = cholesky_lower(eye + mk / r)
        w = solve_lower(chol, v)
        q = (yty - (w @ w) / r) / r
        return q, num_valid * jnp.log(r) + 2.0 * jnp.sum(jnp.log(jnp.diag(chol)))

    return f


def fit_scale_noise(k: jax.Array, y: jax.Array, valid: jax.Array | None = None,
                    ratio_range: tuple[float, float] = (1e-4, 1e4),
                    noise_diag: jax.Array | None = None, center: bool = False) -> EvidenceFit:
    """Evidence-maximizing `(a, b)` of `y ~ N(0, a K + b D)`, `k: [N, N]`, `y: [N]` or `[N, p]`
    (columns independent), `valid: [N]` optional, `D = diag(noise_diag)` (default `I`). The
    ratio `b / a` is searched in `ratio_range` times the mean kernel diagonal over valid points.
    `center`: constant prior mean integrated out (restricted evidence, see
    `dense_quad_logdet`); then `a` is the restricted estimate `q / (N - 1)`."""
    vm = jnp.ones((k.shape[0],), bool) if valid is None else valid
    n_valid = jnp.sum(vm.astype(k.dtype))
    s0 = jnp.maximum(jnp.sum(jnp.diag(k) * vm) / n_valid, jnp.finfo(k.dtype).tiny)
    return profile_evidence_fit(dense_quad_logdet(k, y, vm, noise_diag, center),
                                n_valid - (1 if center else 0),
                                1 if y.ndim == 1 else y.shape[1],
                                ratio_range[0] * s0, ratio_range[1] * s0)


def student_t_dof(num_obs: jax.Array, num_out: int = 1, center: bool = False) -> jax.Array:
    """Degrees of freedom of the Student-t marginal posterior when the common scale `s^2` of
    signal and noise (`K + Sigma = s^2 (K0 + r D)`) has the Jeffreys prior `p(s^2) ~ 1 / s^2`
    and is integrated out: `s^2 | y, r ~ InvGamma(P / 2, q / 2)` with `P = num_obs num_out`
    (minus 1 with a flat-prior constant mean), so a quadrature posterior `N(m, s^2 V)` becomes
    `t_P(m, (q / P) V)`, i.e. the plug-in covariance `a V` (`a = q / P`, `EvidenceFit.scale`)
    with `P` degrees of freedom."""
    return num_obs * num_out - (1 if center else 0)
