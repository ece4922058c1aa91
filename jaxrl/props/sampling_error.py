"""Sampling error `KL(pi_D || pi_theta)` (Corrado & Hanna, PROPS, Sec. "sampling error").

The sampling error of a data set `D = {(s_i, a_i)}` with respect to a policy `pi_theta` is

    SE = E_{s ~ D, a ~ pi_D(.|s)} [log pi_D(a|s) - log pi_theta(a|s)],

where `pi_D` is the empirical (maximum-likelihood) policy of the data. Three estimators:

* `count_sampling_error`: tabular states and actions, `pi_D(a|s) = n(s, a) / n(s)` exactly.
* `softmax_sampling_error`, `gaussian_sampling_error`: continuous states. `pi_D` is the
  maximum-likelihood fit of the policy's output layer (hidden "feature" layers of `theta`
  frozen), and `SE = mean_D [log pi_MLE(a|s) - log pi_theta(a|s)]`. The fit is converged:
  damped Newton on the concave softmax log-likelihood, with its final gradient norm returned,
  and the closed-form least-squares MLE for a Gaussian head. With one-hot features the softmax
  fit reproduces the count frequencies (tested), and with MLP features both agree with a
  float64 SciPy optimizer (tested). (An earlier fixed-budget Adam fit was not converged: its
  value doubled between 100 and 3000 steps.)
* `approx_kl`: `mean((r - 1) - log r)` with `r = pi_phi / pi_theta` on samples from `pi_theta`, an
  unbiased, non-negative estimate of `KL(pi_theta || pi_phi)` (used by the PROPS KL early stop).

All functions are pure and jittable; `mask` arguments mark valid rows of padded buffers.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

from jaxrl import linalg


def masked_mean(x: jax.Array, mask: jax.Array | None) -> jax.Array:
    """Mean of `x` over rows with `mask` (all rows when `mask` is None); 0 when none is valid."""
    if mask is None:
        return x.mean()
    w = mask.astype(x.dtype)
    return (w * x).sum() / jnp.maximum(w.sum(), 1.0)


def approx_kl(log_ratio: jax.Array, mask: jax.Array | None = None) -> jax.Array:
    """`mean((r - 1) - log r)`, `r = exp(log_ratio)`: estimates `KL(pi_theta || pi_phi)` when the
    actions were drawn from `pi_theta` and `log_ratio = log pi_phi - log pi_theta`. Shape `[N]`."""
    return masked_mean(jnp.expm1(log_ratio) - log_ratio, mask)


def count_sampling_error(
    states: jax.Array, actions: jax.Array, probs: jax.Array, mask: jax.Array | None = None
) -> jax.Array:
    """Exact tabular sampling error.

    Args:
      states: `[N]` int state indices in `[0, S)`.
      actions: `[N]` int action indices in `[0, K)`.
      probs: `[S, K]` the policy `pi_theta(a|s)` (rows sum to 1).
      mask: optional `[N]` bool, rows to count.

    Returns:
      `sum_{s,a} n(s,a)/N * log(pi_D(a|s) / pi(a|s))` in nats (`0 log 0 = 0`).
    """
    chex.assert_rank([states, actions, probs], [1, 1, 2])
    n_s, n_a = probs.shape
    w = jnp.ones(states.shape, jnp.float32) if mask is None else mask.astype(jnp.float32)
    counts = jnp.zeros((n_s, n_a), jnp.float32).at[states, actions].add(w)
    n_state = counts.sum(axis=1, keepdims=True)
    pi_d = counts / jnp.maximum(n_state, 1.0)
    total = jnp.maximum(counts.sum(), 1.0)
    safe_pd = jnp.where(counts > 0, pi_d, 1.0)
    safe_p = jnp.where(counts > 0, probs, 1.0)
    return jnp.sum(counts / total * (jnp.log(safe_pd) - jnp.log(safe_p)))


def _flatten_head(w: jax.Array, b: jax.Array) -> jax.Array:
    return jnp.concatenate([w, b[None]], axis=0).reshape(-1)


def softmax_sampling_error(
    kernel: jax.Array,
    bias: jax.Array,
    features: jax.Array,
    actions: jax.Array,
    mask: jax.Array | None = None,
    *,
    max_iter: int = 30,
    tol: float = 1e-5,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Sampling error of a softmax policy `pi(a|s) = softmax(h(s) W + c)` by a converged MLE.

    `pi_D` is the maximum-likelihood softmax head on the frozen features `h(s)` (the paper's
    estimator: the empirical policy in the policy's own class, features from `theta`); its
    log-likelihood is concave in `(W, c)`, so damped Newton steps (Levenberg-Marquardt on the
    full Hessian, best of 7 halvings, never increasing the NLL) converge; they run until the
    gradient norm of the mean NLL is below `tol` or `max_iter` steps were taken.

    Args:
      kernel, bias: `[F, K]`, `[K]`: `theta`'s head (the fit starts here).
      features: `[N, F]`; actions: `[N]` int; mask: optional `[N]` bool.

    Returns:
      `(se, grad_norm, iterations)`: `mean_D [log pi_MLE(a|s) - log pi_theta(a|s)]` in nats,
      the final gradient norm of the mean NLL (report it: near-separable data, e.g. one action
      per state, has its supremum at infinite logits and converges slowly), the steps taken.
    """
    f_dim, k = kernel.shape
    x = jnp.concatenate([jax.lax.stop_gradient(features), jnp.ones(features.shape[:1] + (1,))],
                        axis=1)

    def logp(theta):
        logits = x @ theta.reshape(f_dim + 1, k)
        return jnp.take_along_axis(jax.nn.log_softmax(logits), actions[:, None], 1)[:, 0]

    def nll(theta):
        return -masked_mean(logp(theta), mask)

    theta0 = jax.lax.stop_gradient(_flatten_head(kernel, bias))
    n_par = theta0.shape[0]
    halvings = 0.5 ** jnp.arange(7.0)

    def body(c):
        theta, _, it = c
        g = jax.grad(nll)(theta)
        h = jax.hessian(nll)(theta)
        mu = 1e-6 * jnp.trace(h) / n_par + 1e-10
        d = -linalg.solve(h + mu * jnp.eye(n_par), g)
        cands = theta[None] + halvings[:, None] * d[None]
        vals = jax.vmap(nll)(cands)
        best = jnp.argmin(vals)
        theta = jnp.where(vals[best] < nll(theta), cands[best], theta)
        return theta, jnp.linalg.norm(jax.grad(nll)(theta)), it + 1

    def cond(c):
        return (c[1] > tol) & (c[2] < max_iter)

    g0 = jnp.linalg.norm(jax.grad(nll)(theta0))
    theta, gnorm, it = jax.lax.while_loop(cond, body, (theta0, g0, jnp.zeros((), jnp.int32)))
    return masked_mean(logp(theta) - logp(theta0), mask), gnorm, it


def gaussian_sampling_error(
    kernel: jax.Array,
    bias: jax.Array,
    log_std: jax.Array,
    features: jax.Array,
    actions: jax.Array,
    mask: jax.Array | None = None,
) -> jax.Array:
    """Sampling error of a Gaussian policy `N(h(s) W + c, diag(exp(log_std))^2)`, closed form.

    The MLE in the policy's class (linear mean head on the frozen features, state-independent
    standard deviation) is least squares for `(W, c)` per action dimension and the root mean
    squared residual for the standard deviation, so no iteration is needed.

    Args:
      kernel, bias, log_std: `[F, A]`, `[A]`, `[A]`: `theta`'s head.
      features: `[N, F]`; actions: `[N, A]`; mask: optional `[N]` bool.

    Returns:
      `mean_D [log pi_MLE(a|s) - log pi_theta(a|s)]` in nats.
    """
    x = jnp.concatenate([jax.lax.stop_gradient(features), jnp.ones(features.shape[:1] + (1,))],
                        axis=1)
    w = jnp.ones(x.shape[:1]) if mask is None else mask.astype(x.dtype)
    sw = jnp.sqrt(w)[:, None]
    coef = linalg.lstsq(x * sw, actions * sw)
    resid = actions - x @ coef
    var = jnp.maximum((w[:, None] * resid ** 2).sum(0) / jnp.maximum(w.sum(), 1.0), 1e-12)

    def logn(mean, log_sd):
        z = (actions - mean) / jnp.exp(log_sd)
        return (-0.5 * z ** 2 - log_sd - 0.5 * jnp.log(2 * jnp.pi)).sum(-1)

    ll_fit = logn(x @ coef, 0.5 * jnp.log(var))
    ll_theta = logn(features @ kernel + bias, log_std)
    return masked_mean(ll_fit - ll_theta, mask)
