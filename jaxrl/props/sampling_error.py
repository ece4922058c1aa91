"""Sampling error `KL(pi_D || pi_theta)` (Corrado & Hanna, PROPS, Sec. "sampling error").

The sampling error of a data set `D = {(s_i, a_i)}` with respect to a policy `pi_theta` is

    SE = E_{s ~ D, a ~ pi_D(.|s)} [log pi_D(a|s) - log pi_theta(a|s)],

where `pi_D` is the empirical (maximum-likelihood) policy of the data. Three estimators:

* `count_sampling_error`: tabular states and actions, `pi_D(a|s) = n(s, a) / n(s)` exactly.
* `fitted_sampling_error`: continuous states. `pi_D` is approximated by a maximum-likelihood fit
  of the policy's output layer (hidden "feature" layers frozen, initialised at `theta`'s head,
  full-batch Adam), and `SE ~ mean_D [log pi_MLE(a|s) - log pi_theta(a|s)]`. With one-hot
  features and a linear softmax head the fit converges to the count frequencies, so the two
  estimators agree in the tabular case (tested).
* `approx_kl`: `mean((r - 1) - log r)` with `r = pi_phi / pi_theta` on samples from `pi_theta`, an
  unbiased, non-negative estimate of `KL(pi_theta || pi_phi)` (used by the PROPS KL early stop).

All functions are pure and jittable; `mask` arguments mark valid rows of padded buffers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import chex
import jax
import jax.numpy as jnp
import optax


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


def fitted_sampling_error(
    head: Any,
    features: jax.Array,
    actions: jax.Array,
    log_prob_fn: Callable[[Any, jax.Array, jax.Array], jax.Array],
    steps: int,
    lr: jax.Array | float,
    mask: jax.Array | None = None,
) -> jax.Array:
    """Sampling error by a maximum-likelihood fit of the policy head (continuous states).

    Args:
      head: parameters of the output layer of `pi_theta` (the fit starts here).
      features: `[N, F]` frozen features `h(s_i)` of the visited states.
      actions: `[N, ...]` actions.
      log_prob_fn: `log_prob_fn(head, features, actions) -> [N]` log-likelihoods.
      steps: number of full-batch Adam steps (static).
      lr: Adam learning rate.
      mask: optional `[N]` bool.

    Returns:
      `mean_D [log pi_MLE(a|s) - log pi_theta(a|s)]` (nats), with `pi_MLE` the fitted head.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    features = jax.lax.stop_gradient(features)
    logp_theta = jax.lax.stop_gradient(log_prob_fn(head, features, actions))
    tx = optax.adam(lr)

    def nll(h):
        return -masked_mean(log_prob_fn(h, features, actions), mask)

    def body(carry, _):
        h, opt = carry
        g = jax.grad(nll)(h)
        upd, opt = tx.update(g, opt, h)
        return (optax.apply_updates(h, upd), opt), None

    (fitted, _), _ = jax.lax.scan(body, (head, tx.init(head)), None, length=steps)
    return masked_mean(log_prob_fn(fitted, features, actions) - logp_theta, mask)
