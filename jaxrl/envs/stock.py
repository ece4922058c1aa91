"""Stock augmentation as a gymnax wrapper (paper sec. 3 and 6).

The stock `c` is carried with the environment state and updated after every step by
`c_{t+1} = (c_t + r_t) / gamma`, so that `c_t + G_t = gamma^{-t} (c_0 + G_0)`. It is appended to
the observation (`obs' = concat(ravel(obs) as float32, [c])`). At reset `c_0` is the fixed
`params.c0_low` when `c0_low == c0_high`, else drawn from `U[c0_low, c0_high]` (so one network
sees all stock levels). `StockParams` is a pytree: `c0_low`, `c0_high` and `gamma` may be
traced arrays (e.g. swept hyperparameters of `jaxrl.dp.deep`). `params.carry` (default 1) switches
the update off where it is 0: the stock then stays at `c_0` for the whole episode, which makes
an agent reading it a stock-free (Markov) agent with the same network, objective and `c_0` (the
baseline that shows whether the stock is needed, paper sec. 3). After gymnax's auto-reset the
stock is re-drawn; `info["final_stock"]` holds the stock of the transition's true next state,
and `info["final_observation"]` is augmented with it.

Public API: StockAugmentation, StockParams, StockState.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import spaces


@struct.dataclass
class StockParams:
    """`env_params`: the wrapped env's params; stock start range and the discount of the stock;
    `carry`: 1 updates the stock, 0 keeps it at `c_0` (may be traced; read as `carry > 0.5`)."""

    env_params: Any
    c0_low: float = 0.0
    c0_high: float = 0.0
    gamma: float = 1.0
    max_steps_in_episode: int = 2**31 - 1
    carry: float = 1.0


@struct.dataclass
class StockState:
    env_state: Any
    stock: jax.Array
    time: jax.Array


class StockAugmentation:
    """Wraps any gymnax env; carries and observes the stock (see module docstring)."""

    def __init__(self, env, c0: float | tuple[float, float] = 0.0, gamma: float | None = None):
        self._env = env
        low, high = (c0, c0) if isinstance(c0, (int, float)) else tuple(c0)
        if not low <= high:
            raise ValueError(f"c0 range must satisfy low <= high, got {c0}")
        inner = env.default_params
        if gamma is None:
            gamma = float(getattr(inner, "gamma", 1.0))
        if not 0.0 < gamma <= 1.0:
            raise ValueError(f"gamma must be in (0, 1], got {gamma}")
        self._default = StockParams(inner, float(low), float(high), float(gamma),
                                    getattr(inner, "max_steps_in_episode", 2**31 - 1))

    def __getattr__(self, name):
        return getattr(self._env, name)

    @property
    def default_params(self) -> StockParams:
        return self._default

    def _draw_stock(self, key: jax.Array, params: StockParams) -> jax.Array:
        # c0_low / c0_high / gamma may be traced (agents read them from swept hyperparameters)
        low = jnp.asarray(params.c0_low, jnp.float32)
        high = jnp.asarray(params.c0_high, jnp.float32)
        return low + jax.random.uniform(key, (), jnp.float32) * (high - low)

    @staticmethod
    def _augment(obs: jax.Array, stock: jax.Array) -> jax.Array:
        return jnp.concatenate([jnp.ravel(obs).astype(jnp.float32), stock[None]])

    @partial(jax.jit, static_argnames=("self",))
    def reset(self, key: jax.Array, params: StockParams | None = None
              ) -> tuple[jax.Array, StockState]:
        params = self._default if params is None else params
        k_env, k_c = jax.random.split(key)
        obs, env_state = self._env.reset(k_env, params.env_params)
        stock = self._draw_stock(k_c, params)
        return self._augment(obs, stock), StockState(env_state, stock, jnp.int32(0))

    @partial(jax.jit, static_argnames=("self",))
    def step(self, key: jax.Array, state: StockState, action, params: StockParams | None = None
             ) -> tuple[jax.Array, StockState, jax.Array, jax.Array, jax.Array, dict[str, Any]]:
        params = self._default if params is None else params
        k_env, k_c = jax.random.split(key)
        obs, env_state, reward, terminated, truncated, info = self._env.step(
            k_env, state.env_state, action, params.env_params)
        next_stock = jnp.where(jnp.asarray(params.carry) > 0.5,
                               (state.stock + reward.astype(jnp.float32)) / params.gamma,
                               state.stock)
        done = jnp.logical_or(terminated, truncated)
        stock = jnp.where(done, self._draw_stock(k_c, params), next_stock)
        time = jnp.where(done, 0, state.time + 1)
        info = dict(info)
        if "final_observation" in info:
            info["final_observation"] = self._augment(info["final_observation"], next_stock)
        info["final_stock"] = next_stock
        return (self._augment(obs, stock), StockState(env_state, stock, time), reward,
                terminated, truncated, info)

    def observation_space(self, params: StockParams | None = None) -> spaces.Box:
        params = self._default if params is None else params
        inner = self._env.observation_space(params.env_params)
        size = 1 if isinstance(inner, spaces.Discrete) else int(jnp.prod(jnp.array(inner.shape)))
        return spaces.Box(-jnp.inf, jnp.inf, (size + 1,), jnp.float32)

    def action_space(self, params: StockParams | None = None):
        params = self._default if params is None else params
        return self._env.action_space(params.env_params)

    @property
    def name(self) -> str:
        return f"Stock({self._env.name})"
