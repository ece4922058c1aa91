"""flax.linen networks shared by the agents: the one MLP, its activation table and initializers.

All modules are pure (`init`/`apply`), so parameters are pytrees that vmap over seeds.

* `ACTIVATIONS` / `activation(name)`: the one activation table (tanh, relu, swish, gelu, elu).
* `MLP`: hidden layers `Dense -> Dropout -> LayerNorm -> activation` (dropout and LayerNorm
  optional), an optional output layer; kernel init by name (`KERNEL_INITS`): `"orthogonal"`
  (gain sqrt 2 on hidden layers, `out_scale` on the output; PPO's choice) or `"lecun_normal"`
  (flax's `Dense` default, scaled by `out_scale` on the output; STAC's networks). The dropout
  rate is a RUN-TIME argument (a float or traced scalar), so it can be swept inside one compiled
  program; see `dropout`.
* `ActorCritic`: PPO's separate actor and critic MLPs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.action_dists import Categorical, DiagGaussian

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "tanh": jnp.tanh,
    "relu": nn.relu,
    "swish": nn.swish,
    "gelu": nn.gelu,
    "elu": nn.elu,
}
_ACTIVATIONS = ACTIVATIONS  # the name the PPO and PROPS configs import
KERNEL_INITS = ("orthogonal", "lecun_normal")


def activation(name: str) -> Callable[[jax.Array], jax.Array]:
    """Activation function by name (`ACTIVATIONS`: tanh, relu, swish, gelu, elu); an unknown name
    is a `ValueError` listing the valid ones."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; valid: {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def dropout(key: jax.Array, x: jax.Array, rate: jax.Array | float) -> jax.Array:
    """Inverted dropout with a run-time `rate` in [0, 1): zero each unit of `x [...]` with
    probability `rate`, scale the survivors by `1 / (1 - rate)` (Srivastava et al. 2014).
    `rate = 0` is the identity (uniform draws are `< 1`)."""
    keep = 1.0 - rate
    mask = jax.random.bernoulli(key, keep, x.shape)
    return jnp.where(mask, x / keep, 0.0)


def _gram_schmidt_q(a: jax.Array) -> jax.Array:
    """Q of the thin QR of `a: [m, n]` (m >= n) with a positive diagonal of R, in plain JAX.

    Classical Gram-Schmidt with re-orthogonalisation (CGS2) in a `fori_loop`. It replaces
    `jnp.linalg.qr` at initialisation: vmapped over seeds, that is a batched LAPACK call, and two
    of them running at once deadlocked jaxlib's CPU thread pool on a 2-core machine (jax 0.10.2,
    seen as a hang of the main job in PPO's init).
    """
    n = a.shape[1]
    idx = jnp.arange(n)

    def body(j, q):
        qm = jnp.where(idx < j, q, 0.0)
        v = a[:, j]
        v = v - qm @ (qm.T @ v)
        v = v - qm @ (qm.T @ v)
        return q.at[:, j].set(v / jnp.linalg.norm(v))

    return jax.lax.fori_loop(0, n, body, jnp.zeros_like(a))


def orthogonal(scale: float = 1.0) -> Callable[..., jax.Array]:
    """Orthogonal initializer with the semantics of `jax.nn.initializers.orthogonal(scale)`
    (column axis -1, same random draw, Q with sign(diag R) > 0) but without LAPACK (see
    `_gram_schmidt_q`); equal to it up to float rounding."""

    def init(key: jax.Array, shape: Sequence[int], dtype=jnp.float32) -> jax.Array:
        n_cols = shape[-1]
        n_rows = int(np.prod(shape)) // n_cols
        transpose = n_rows < n_cols
        a = jax.random.normal(key, (n_cols, n_rows) if transpose else (n_rows, n_cols), dtype)
        q = _gram_schmidt_q(a)
        if transpose:
            q = q.T
        return scale * q.reshape(tuple(shape[:-1]) + (n_cols,))

    return init


def _kernel_init(name: str, gain: float) -> Callable[..., jax.Array]:
    if name == "orthogonal":
        return orthogonal(gain)
    if name == "lecun_normal":
        if gain == 1.0:
            return nn.initializers.lecun_normal()
        return nn.initializers.variance_scaling(gain**2, "fan_in", "truncated_normal")
    raise ValueError(f"unknown kernel_init {name!r}; valid: {list(KERNEL_INITS)}")


class MLP(nn.Module):
    """The library's MLP: `x [..., in] -> [..., out_dim]` (`[..., hidden[-1]]` if `out_dim` is
    None).

    Hidden layer order: `Dense -> Dropout -> LayerNorm -> activation` (Dropout only with
    `dropout=True` and `deterministic=False`, LayerNorm only with `layer_norm=True`); this is
    the body of STAC's networks (Özalp 2026, Sec. 4.3) and, without dropout and LayerNorm, PPO's.

    Attributes:
      hidden: widths of the hidden layers.
      out_dim: width of the output layer (no activation), None for none.
      act: activation name (`ACTIVATIONS`).
      layer_norm: insert LayerNorm after each hidden Dense (and dropout).
      out_scale: gain of the output layer's kernel init.
      kernel_init: `"orthogonal"` (hidden gain sqrt 2) or `"lecun_normal"` (`KERNEL_INITS`).
      dropout: include the dropout op at all (False removes it from the graph). Its rate is the
        call's `rate`; the mask comes from the flax `"dropout"` RNG stream.
    """

    hidden: Sequence[int] = (64, 64)
    out_dim: int | None = None
    act: str = "tanh"
    layer_norm: bool = False
    out_scale: float = 1.0
    kernel_init: str = "orthogonal"
    dropout: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, deterministic: bool = True,
                 rate: jax.Array | float = 0.0) -> jax.Array:
        """`x [..., in]`; `deterministic=False` applies dropout at run-time rate `rate`."""
        act = activation(self.act)
        hidden_gain = float(np.sqrt(2)) if self.kernel_init == "orthogonal" else 1.0
        for width in self.hidden:
            x = nn.Dense(width, kernel_init=_kernel_init(self.kernel_init, hidden_gain))(x)
            if self.dropout and not deterministic:
                x = dropout(self.make_rng("dropout"), x, rate)
            if self.layer_norm:
                x = nn.LayerNorm()(x)
            x = act(x)
        if self.out_dim is not None:
            x = nn.Dense(self.out_dim, kernel_init=_kernel_init(self.kernel_init,
                                                                self.out_scale))(x)
        return x


class ActorCritic(nn.Module):
    """Separate actor and critic MLPs on the same observation (the PPO default).

    Discrete: the actor gives logits `[..., num_actions]` -> `jaxrl.action_dists.Categorical`.
    Continuous: the actor gives means `[..., action_dim]`, with a state-independent learned
    log-std -> `jaxrl.action_dists.DiagGaussian`. The critic gives values `[...]`.
    """

    action_dim: int
    discrete: bool
    hidden: Sequence[int] = (64, 64)
    act: str = "tanh"

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[Categorical | DiagGaussian, jax.Array]:
        out = MLP(self.hidden, self.action_dim, self.act, out_scale=0.01, name="actor")(obs)
        if self.discrete:
            pi = Categorical(out)
        else:
            log_std = self.param("log_std", nn.initializers.zeros, (self.action_dim,))
            pi = DiagGaussian(out, jnp.exp(log_std))
        value = MLP(self.hidden, 1, self.act, out_scale=1.0, name="critic")(obs)
        return pi, jnp.squeeze(value, -1)
