"""Networks of STAC and its SAC-family baselines (Özalp 2026, "Stochastic Actor-Critic", Sec. 4).

* Bodies: `jaxrl.networks.MLP` with LayerNorm, run-time-rate dropout and flax's default
  (LeCun normal) kernel init: hidden layers `Dense -> Dropout -> LayerNorm -> activation` (the
  paper's Sec. 4.3 body). Dropout is applied only when `train=True` and draws its mask from the
  flax `"dropout"` RNG stream. The body keeps the module name `Body_0`, so parameters and
  dropout masks are the same as before the MLP was shared (flax derives both from the path).
* `Critic`: `concat(s, a) -> body -> Dense(out)`; `out` is the critic family's output width
  (`jaxrl.stac.families`: 2 Gaussian, 1 plain Q, `N` quantiles, 3 generalized Gaussian). Twin
  critics are two parameter sets stacked on axis 0 (see `init_stacked` / `apply_stacked`).
* `Actor`: `s -> body -> Dense(2 |A|)` giving the mean and raw scale of a tanh-squashed Gaussian.
* Pure head functions: `gaussian_head` (clamped softplus scale), `tanh_gaussian_sample`,
  `tanh_gaussian_log_prob` with the stable log-determinant
  `log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2 u))`.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxrl import networks
from jaxrl.networks import dropout  # noqa: F401  (re-exported: the dropout of STAC's bodies)

LOG_STD_FLOOR = -5.0  # raw scale clamp before softplus, as in the paper's code


def check_activation(name: str) -> None:
    """Raise `ValueError` unless `name` is in `jaxrl.networks.ACTIVATIONS`."""
    networks.activation(name)


def body(hidden: Sequence[int], activation: str, layer_norm: bool,
         use_dropout: bool) -> networks.MLP:
    """The hidden layers of STAC's critic and actor: `jaxrl.networks.MLP` (no output layer,
    LeCun-normal init), named `Body_0` (see the module docstring)."""
    return networks.MLP(tuple(hidden), None, activation, layer_norm=layer_norm,
                        kernel_init="lecun_normal", dropout=use_dropout, name="Body_0")


class Critic(nn.Module):
    """`(obs [..., obs_dim], act [..., A]) -> [..., out]`; output bias initialised to 0."""

    hidden: Sequence[int]
    out: int
    activation: str = "relu"
    layer_norm: bool = True
    use_dropout: bool = True

    @nn.compact
    def __call__(self, obs, act, rate, train: bool):
        x = jnp.concatenate([obs, act], axis=-1)
        x = body(self.hidden, self.activation, self.layer_norm, self.use_dropout)(
            x, deterministic=not train, rate=rate)
        return nn.Dense(self.out, bias_init=nn.initializers.zeros)(x)


class Actor(nn.Module):
    """`obs [..., obs_dim] -> (mean [..., A], std [..., A])` of the pre-tanh Gaussian."""

    hidden: Sequence[int]
    action_dim: int
    activation: str = "relu"
    layer_norm: bool = True
    use_dropout: bool = True

    @nn.compact
    def __call__(self, obs, rate, train: bool):
        x = body(self.hidden, self.activation, self.layer_norm, self.use_dropout)(
            obs, deterministic=not train, rate=rate)
        x = nn.Dense(2 * self.action_dim, bias_init=nn.initializers.zeros)(x)
        mean, raw = jnp.split(x, 2, axis=-1)
        return mean, clamped_softplus(raw)


def clamped_softplus(raw: jax.Array) -> jax.Array:
    """`softplus(max(raw, -5))`: a positive scale bounded below by `softplus(-5) ~ 6.7e-3`."""
    return jax.nn.softplus(jnp.maximum(raw, LOG_STD_FLOOR))


def gaussian_head(out: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Gaussian critic head (paper Sec. 3): `out [..., 2] -> (mu [...], sigma [...])`."""
    return out[..., 0], clamped_softplus(out[..., 1])


def log_one_minus_tanh_sq(u: jax.Array) -> jax.Array:
    """`log(1 - tanh(u)^2)` computed stably as `2 (log 2 - u - softplus(-2 u))`."""
    return 2.0 * (jnp.log(2.0) - u - jax.nn.softplus(-2.0 * u))


def tanh_gaussian_log_prob(u: jax.Array, mean: jax.Array, std: jax.Array) -> jax.Array:
    """Log-density of `a = tanh(u)`, `u ~ N(mean, std^2)`, at the pre-tanh point `u`.

    Args: `u, mean, std: [..., A]`. Returns `[...]`, summed over the action dimensions (density
    with respect to Lebesgue measure on `(-1, 1)^A`; the affine rescaling to the environment's
    bounds adds a constant that is left out, as in SAC).
    """
    z = (u - mean) / std
    normal = -0.5 * z**2 - jnp.log(std) - 0.5 * jnp.log(2.0 * jnp.pi)
    return jnp.sum(normal - log_one_minus_tanh_sq(u), axis=-1)


def tanh_gaussian_sample(
    key: jax.Array | None, mean: jax.Array, std: jax.Array, eps: jax.Array | None = None
) -> tuple[jax.Array, jax.Array]:
    """Reparameterised sample `a = tanh(mean + std * eps)` in `(-1, 1)^A`, and its log-prob
    `[...]`; `eps ~ N(0, I)` of `mean`'s shape is drawn from `key` unless given."""
    if eps is None:
        eps = jax.random.normal(key, mean.shape, mean.dtype)
    u = mean + std * eps
    return jnp.tanh(u), tanh_gaussian_log_prob(u, mean, std)


def init_stacked(module: nn.Module, key: jax.Array, n: int, *args) -> dict:
    """`n` independent parameter sets of `module`, stacked on a leading axis of size `n`."""
    keys = jax.random.split(key, n)
    return jax.vmap(lambda k: module.init({"params": k, "dropout": k}, *args))(keys)


def apply_stacked(module: nn.Module, params: dict, key: jax.Array, *args, train: bool):
    """Apply the `n` stacked parameter sets, each with its own dropout key: `[n, ...]` outputs.
    `key`: one key (split into `n`) or `n` raw keys `[n, 2]`."""
    n = jax.tree.leaves(params)[0].shape[0]
    keys = key if key.ndim == 2 else jax.random.split(key, n)
    return jax.vmap(
        lambda p, k: module.apply(p, *args, train=train, rngs={"dropout": k})
    )(params, keys)
