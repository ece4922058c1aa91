"""flax.linen networks shared by the agents.

All modules are pure (`init`/`apply`), so parameters are pytrees that vmap over seeds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

_ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "tanh": jnp.tanh,
    "relu": nn.relu,
    "swish": nn.swish,
    "gelu": nn.gelu,
}


def activation(name: str) -> Callable[[jax.Array], jax.Array]:
    """Activation function by name (tanh, relu, swish, gelu)."""
    if name not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; valid: {sorted(_ACTIVATIONS)}")
    return _ACTIVATIONS[name]


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


class MLP(nn.Module):
    """Dense layers with orthogonal init; optional dropout and LayerNorm after each hidden layer.

    Hidden layer order: Dense -> Dropout (if rate > 0) -> LayerNorm (if enabled) -> activation.
    Input `x: [..., in]`, output `[..., out_dim]` (or `[..., hidden[-1]]` if `out_dim` is None).
    """

    hidden: Sequence[int] = (64, 64)
    out_dim: int | None = None
    act: str = "tanh"
    dropout_rate: float = 0.0
    layer_norm: bool = False
    out_scale: float = 1.0

    @nn.compact
    def __call__(self, x: jax.Array, deterministic: bool = True) -> jax.Array:
        act = activation(self.act)
        for width in self.hidden:
            x = nn.Dense(width, kernel_init=orthogonal(np.sqrt(2)))(x)
            if self.dropout_rate > 0:
                x = nn.Dropout(self.dropout_rate)(x, deterministic=deterministic)
            if self.layer_norm:
                x = nn.LayerNorm()(x)
            x = act(x)
        if self.out_dim is not None:
            x = nn.Dense(self.out_dim, kernel_init=orthogonal(self.out_scale))(x)
        return x


class ActorCritic(nn.Module):
    """Separate actor and critic MLPs on the same observation (the PPO default).

    Discrete: the actor gives logits `[..., num_actions]` -> `distrax.Categorical`.
    Continuous: the actor gives means `[..., action_dim]`, with a state-independent learned
    log-std -> `distrax.MultivariateNormalDiag`. The critic gives values `[...]`.
    """

    action_dim: int
    discrete: bool
    hidden: Sequence[int] = (64, 64)
    act: str = "tanh"

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[distrax.Distribution, jax.Array]:
        out = MLP(self.hidden, self.action_dim, self.act, out_scale=0.01, name="actor")(obs)
        if self.discrete:
            pi = distrax.Categorical(logits=out)
        else:
            log_std = self.param("log_std", nn.initializers.zeros, (self.action_dim,))
            pi = distrax.MultivariateNormalDiag(out, jnp.exp(log_std))
        value = MLP(self.hidden, 1, self.act, out_scale=1.0, name="critic")(obs)
        return pi, jnp.squeeze(value, -1)
