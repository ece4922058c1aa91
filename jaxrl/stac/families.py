"""Critic families of STAC and its SAC-family baselines: each a small record of pure functions.

A critic family says what one critic network outputs and how that output is read, bootstrapped
and trained; a variant (`jaxrl.stac.variants.VARIANTS`) is a family plus the number of critics,
the value rule and the reference temperature rule. Adding a critic family is one module holding
its `CriticFamily` and one entry in that table (see `jaxrl.stac.ggd`).

Shapes: critics are stacked on axis 0 (`n`), the batch is axis 1 (`B`), the raw output width
is the last axis (`k = out_dim(cfg)`).

* `out_dim(cfg) -> k`: the critic network's output width.
* `heads(out [n, B, k]) -> (mean [n, B], spread [n, B])`: the critic's estimate of Q and its
  spread (the aleatoric std of the one-step return, 0 for plain Q critics), read by the value
  rule of the target and the actor and by the bias measurements.
* `target(out [n, B, k], value, discount [B], cfg, hp) -> (stat, aux)`: the target critic's
  statistic at `(s', a')` that the soft TD target bootstraps: `y = r + discount (stat - alpha
  log pi(a'|s'))` with `discount = gamma (1 - terminated)`; `stat` is `[B]` (scalar families:
  `value(*heads(out), hp["beta"])`, the variant's value rule) or `[B, N]` (quantile sets);
  `aux` is whatever the family's loss needs from the target side (None if nothing).
* `loss(out [n, B, k], y, aux, hp) -> (loss, metrics)`: the critic loss summed over critics
  (each critic's batch mean, or a weighted batch mean) and `{"q_mean", "sigma_mean", ...}`.
* `config_fields`: the `STACConfig` fields the family reads beyond the common ones (an
  experiment passes them through where its config sets them).

Families here: `GAUSSIAN` (STAC, ESTAC: `N(mu, sigma^2)` by NLL, paper Sec. 3), `Q` (SAC:
`0.5 (q - y)^2`), `QUANTILE` (DSAC: `N` quantiles by the quantile Huber loss, QR-DQN); the
generalized Gaussian family is `jaxrl.stac.ggd.GGD`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxrl import distributions
from jaxrl.stac import networks as nets

ValueRule = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]


class CriticFamily(NamedTuple):
    """A critic family as pure functions (see the module docstring for the signatures)."""

    name: str
    out_dim: Callable[[Any], int]
    heads: Callable[[jax.Array], tuple[jax.Array, jax.Array]]
    target: Callable[..., tuple[jax.Array, Any]]
    loss: Callable[..., tuple[jax.Array, dict[str, jax.Array]]]
    config_fields: tuple[str, ...] = ()


# ---- value rules (`(mean [n, B], spread [n, B], beta) -> [B]`) ------------------------------


def pessimistic_value(mean: jax.Array, spread: jax.Array, beta: jax.Array) -> jax.Array:
    """STAC's pessimistic value `mu - beta sigma` of its one critic (paper Sec. 4.1-4.2;
    `rlwarehouse/algos/stac.py`: `mean - beta * stddev`): `[B]`."""
    return mean[0] - beta * spread[0]


def min_value(mean: jax.Array, spread: jax.Array, beta: jax.Array) -> jax.Array:
    """The min over critics of the means (SAC's and ESTAC's clipped double Q; one critic: its
    mean): `[B]`; `spread` and `beta` are not used."""
    del spread, beta
    return jnp.min(mean, axis=0)


def value_target(out: jax.Array, heads, value: ValueRule, hp) -> jax.Array:
    """The bootstrap statistic of a scalar family: `value(*heads(out), hp["beta"])`, `[B]`."""
    mean, spread = heads(out)
    return value(mean, spread, hp["beta"])


# ---- Gaussian (STAC, ESTAC) -----------------------------------------------------------------


def gaussian_nll(y: jax.Array, mu: jax.Array, sigma: jax.Array) -> jax.Array:
    """Elementwise `-log N(y; mu, sigma^2) = log sigma + (y - mu)^2 / (2 sigma^2) + log(2 pi)/2`."""
    return jnp.log(sigma) + 0.5 * ((y - mu) / sigma) ** 2 + 0.5 * jnp.log(2.0 * jnp.pi)


def _gaussian_target(out, value, discount, cfg, hp):
    del discount, cfg
    return value_target(out, nets.gaussian_head, value, hp), None


def _gaussian_loss(out, y, aux, hp):
    """Sum over critics of the batch-mean Gaussian NLL (paper Sec. 3)."""
    del aux, hp
    mu, sigma = nets.gaussian_head(out)
    per = gaussian_nll(y[None], mu, sigma)
    return jnp.sum(jnp.mean(per, axis=1)), {"q_mean": jnp.mean(mu), "sigma_mean": jnp.mean(sigma)}


GAUSSIAN = CriticFamily("gaussian", lambda cfg: 2, nets.gaussian_head, _gaussian_target,
                        _gaussian_loss)


# ---- plain Q (SAC) --------------------------------------------------------------------------


def _q_heads(out):
    return out[..., 0], jnp.zeros_like(out[..., 0])


def _q_target(out, value, discount, cfg, hp):
    del discount, cfg
    return value_target(out, _q_heads, value, hp), None


def _q_loss(out, y, aux, hp):
    """Sum over critics of the batch mean of `0.5 (q - y)^2` (Haarnoja et al. 2018)."""
    del aux, hp
    mu, sigma = _q_heads(out)
    per = 0.5 * (mu - y[None]) ** 2
    return jnp.sum(jnp.mean(per, axis=1)), {"q_mean": jnp.mean(mu), "sigma_mean": jnp.mean(sigma)}


Q = CriticFamily("q", lambda cfg: 1, _q_heads, _q_target, _q_loss)


# ---- quantiles (DSAC) -----------------------------------------------------------------------


def quantile_midpoints(n: int) -> jax.Array:
    """Fixed quantile levels `tau_i = (2 i - 1) / (2 n)`, `i = 1..n`: `[n]` (QR-DQN, Sec. 3)."""
    return distributions.quantile_levels(n)


def quantile_huber_loss(
    pred: jax.Array, target: jax.Array, taus: jax.Array, kappa: jax.Array | float
) -> jax.Array:
    """Quantile Huber loss (Dabney et al. 2018, QR-DQN, Eq. 10), all pairs of quantiles:
    `pred [..., N]` at levels `taus [N]` against `target [..., M]` -> `[...]`, i.e.
    `sum_i mean_j |tau_i - 1{u_ij < 0}| H_kappa(u_ij) / kappa`
    (see `distributions.quantile_huber_loss`)."""
    return distributions.quantile_huber_loss(pred, target, kappa, taus)


def _quantile_heads(out):
    """`(quantile mean, quantile std)`: the Q estimate and the spread of the quantile set."""
    return jnp.mean(out, axis=-1), jnp.std(out, axis=-1)


def _quantile_target(out, value, discount, cfg, hp):
    """Target quantiles `[B, N]` from the twin target critics' sets by `cfg.dsac_target`:
    `"elementwise_min"`: `min_i z_ij` per quantile (the reference code); `"min_mean"`: per
    sample, all quantiles of the critic with the smaller quantile mean."""
    del value, discount, hp
    if cfg.dsac_target == "elementwise_min":
        return jnp.min(out, axis=0), None  # [B, N]
    pick = jnp.argmin(jnp.mean(out, axis=-1), axis=0)  # [B]
    return jnp.take_along_axis(out, pick[None, :, None], axis=0)[0], None  # [B, N]


def _quantile_loss(out, y, aux, hp):
    """Sum over critics of the batch-mean quantile Huber loss against the target quantiles
    `y [B, N]` (all pairs)."""
    del aux
    taus = quantile_midpoints(out.shape[-1])
    per = quantile_huber_loss(out, y[None], taus, hp["kappa"])  # [n, B]
    aux = {"q_mean": jnp.mean(out), "sigma_mean": jnp.mean(jnp.std(out, axis=-1))}
    return jnp.sum(jnp.mean(per, axis=1)), aux


QUANTILE = CriticFamily("quantile", lambda cfg: int(cfg.num_quantiles), _quantile_heads,
                        _quantile_target, _quantile_loss,
                        config_fields=("num_quantiles", "kappa", "dsac_target"))
