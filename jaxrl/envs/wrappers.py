"""The one place where gymnax environments are adapted for our agents.

gymnax >= 1.0 `step(key, state, action, params)` returns `(obs, state, reward, terminated,
truncated, info)` and auto-resets inside `step` (the returned `obs`/`state` are the reset ones when
the episode ended; the last observation of the ended episode is `info["final_observation"]`). We
keep `terminated` (a true terminal state: bootstrap with 0) apart from `truncated` (time limit:
bootstrap with V(final_observation)).

Wrappers here keep that protocol, so they stack:
* `LogWrapper`: episode return/length carried in the state; `info["returned_episode_returns"]`,
  `info["returned_episode_lengths"]`, `info["returned_episode"]` (bool) at episode ends; with
  `gamma` given, also the discounted return, `info["returned_discounted_episode_returns"]`.
* `NormalizeObservation`: running mean/variance (Welford) of one environment copy's observations
  (under `vmap`, each copy keeps its own statistics).
* `ClipAction`: clips continuous actions to the action-space box.
* `VecEnv`: `num_envs` copies under `vmap` (keys split inside; `get_obs` of a batch of states).
* `NormalizeVecObservation` (wraps a `VecEnv`): one running mean/variance shared by all copies,
  updated with every step's batch `[E, d]` (Chan et al.'s parallel update), as PPO's usual
  observation normalization (CleanRL/PureJaxRL `NormalizeVecObservation`).
* `NormalizeVecReward` (wraps a `VecEnv`): rewards divided by the running standard deviation of
  the discounted return `G <- gamma G + r` (reset at episode ends), statistics shared by all
  copies (the usual PPO reward scaling, Engstrom et al. 2020, "Implementation Matters").
`LogWrapper` sits inside all of them, so logged returns stay raw.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import chex
import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import spaces
from jax.typing import ArrayLike


class GymnaxWrapper:
    """Forwards attribute access to the wrapped environment."""

    def __init__(self, env: Any):
        self._env = env

    def __getattr__(self, name: str) -> Any:
        return getattr(self._env, name)

    @property
    def unwrapped(self) -> Any:
        env = self._env
        while isinstance(env, GymnaxWrapper):
            env = env._env
        return env


@struct.dataclass
class LogEnvState:
    """`LogWrapper`'s state (one env copy; every field gets a leading `[num_envs]` under
    `VecEnv`): the running undiscounted return (float32, reward units) and length (int32 steps)
    of the current episode, and those of the last episode that ended (0 before any)."""

    env_state: Any
    episode_return: jax.Array
    episode_length: jax.Array
    returned_episode_return: jax.Array
    returned_episode_length: jax.Array


@struct.dataclass
class DiscountedLogEnvState(LogEnvState):
    """`LogEnvState` plus the discounted return, for `LogWrapper(env, gamma=...)` (float32,
    reward units): `discounted_return = sum_{k<t} gamma^k r_k` of the current episode after its
    `t` steps, `discount = gamma^t` (the weight of the next reward; 1 at an episode start), and
    `returned_discounted_episode_return`, the discounted return of the last episode that ended
    (0 before any)."""

    discounted_return: jax.Array
    discount: jax.Array
    returned_discounted_episode_return: jax.Array


class LogWrapper(GymnaxWrapper):
    """Carries the running episode return and length in the state (no host callbacks).

    `gamma`: None (default) logs only the undiscounted return (state `LogEnvState`). Otherwise
    also the discounted return `G = sum_{t=0}^{T-1} gamma^t r_t` of each episode (`t = 0` the
    first step after a reset; state `DiscountedLogEnvState`, and
    `info["returned_discounted_episode_returns"]`, float32, like the undiscounted one). `gamma` is
    a number, or a callable `gamma(params) -> scalar` of the env params passed to `step` (so a
    run-time, possibly traced discount, e.g. a swept hyperparameter carried in the params), read
    at every step. The arithmetic per step is `G <- G + discount * r`, `discount <- discount *
    gamma`, both reset (to 0 and 1) where the episode ended.
    """

    def __init__(self, env: Any, gamma: float | Callable[[Any], ArrayLike] | None = None):
        super().__init__(env)
        self._gamma = gamma

    def reset(self, key: jax.Array, params: Any = None) -> tuple[jax.Array, LogEnvState]:
        obs, env_state = self._env.reset(key, params)
        z = jnp.zeros((), jnp.float32)
        fields = (env_state, z, jnp.zeros((), jnp.int32), z, jnp.zeros((), jnp.int32))
        if self._gamma is None:
            return obs, LogEnvState(*fields)
        return obs, DiscountedLogEnvState(*fields, z, jnp.ones((), jnp.float32), z)

    def step(self, key, state: LogEnvState, action, params=None):
        obs, env_state, reward, terminated, truncated, info = self._env.step(
            key, state.env_state, action, params
        )
        done = jnp.logical_or(terminated, truncated)
        reward32 = reward.astype(jnp.float32)
        ret = state.episode_return + reward32
        length = state.episode_length + 1
        fields = dict(
            env_state=env_state,
            episode_return=ret * (1 - done),
            episode_length=length * (1 - done),
            returned_episode_return=jnp.where(done, ret, state.returned_episode_return),
            returned_episode_length=jnp.where(done, length, state.returned_episode_length),
        )
        if self._gamma is None:
            new_state = LogEnvState(**fields)
        else:
            g = self._gamma(params) if callable(self._gamma) else self._gamma
            g = jnp.asarray(g, jnp.float32)
            dret = state.discounted_return + state.discount * reward32
            new_state = DiscountedLogEnvState(
                **fields,
                discounted_return=jnp.where(done, 0.0, dret),
                discount=jnp.where(done, 1.0, state.discount * g),
                returned_discounted_episode_return=jnp.where(
                    done, dret, state.returned_discounted_episode_return),
            )
        info = {
            **info,
            "returned_episode_returns": new_state.returned_episode_return,
            "returned_episode_lengths": new_state.returned_episode_length,
            "returned_episode": done,
        }
        if self._gamma is not None:
            info["returned_discounted_episode_returns"] = (
                new_state.returned_discounted_episode_return)
        return obs, new_state, reward, terminated, truncated, info


@struct.dataclass
class NormState:
    env_state: Any
    mean: jax.Array
    var: jax.Array
    count: jax.Array


class NormalizeObservation(GymnaxWrapper):
    """Normalizes observations by a running mean and variance, updated on every step.

    Statistics live in the state, so each vmapped environment copy has its own; for statistics
    shared by all copies use `NormalizeVecObservation` around the `VecEnv`.
    `final_observation` is normalized with the same statistics as the step's observation.
    """

    def __init__(self, env: Any, eps: float = 1e-8, clip: float = 10.0):
        super().__init__(env)
        self.eps, self.clip = eps, clip

    def _norm(self, obs, mean, var):
        return jnp.clip((obs - mean) / jnp.sqrt(var + self.eps), -self.clip, self.clip)

    def _update(self, state: NormState, obs):
        count = state.count + 1.0
        delta = obs - state.mean
        mean = state.mean + delta / count
        m2 = state.var * state.count + delta * (obs - mean)
        return mean, m2 / count, count

    def reset(self, key, params=None):
        obs, env_state = self._env.reset(key, params)
        state = NormState(env_state, jnp.zeros_like(obs, jnp.float32),
                          jnp.ones_like(obs, jnp.float32), jnp.zeros((), jnp.float32))
        mean, var, count = self._update(state, obs)
        state = NormState(env_state, mean, var, count)
        return self._norm(obs, mean, var), state

    def step(self, key, state: NormState, action, params=None):
        obs, env_state, reward, terminated, truncated, info = self._env.step(
            key, state.env_state, action, params
        )
        mean, var, count = self._update(state, obs)
        info = dict(info)
        if "final_observation" in info:
            info["final_observation"] = self._norm(info["final_observation"], mean, var)
        return (self._norm(obs, mean, var), NormState(env_state, mean, var, count), reward,
                terminated, truncated, info)


class ClipAction(GymnaxWrapper):
    """Clips continuous actions into the action box before stepping."""

    def step(self, key, state, action, params=None):
        space = self._env.action_space(params)
        action = jnp.clip(action, space.low, space.high)
        return self._env.step(key, state, action, params)


class VecEnv(GymnaxWrapper):
    """`num_envs` independent copies: `reset(key)`/`step(key, ...)` split the key inside; a
    `[num_envs]` batch of keys (raw `[num_envs, 2]` or typed `[num_envs]`) is used as given."""

    def __init__(self, env: Any, num_envs: int):
        super().__init__(env)
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.num_envs = num_envs
        self._reset = jax.vmap(env.reset, in_axes=(0, None))
        self._step = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def _keys(self, key):
        one = 0 if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else 1
        return jax.random.split(key, self.num_envs) if key.ndim == one else key

    def reset(self, key, params=None):
        return self._reset(self._keys(key), params)

    def step(self, key, state, action, params=None):
        chex.assert_axis_dimension(action, 0, self.num_envs)
        return self._step(self._keys(key), state, action, params)

    def get_obs(self, state, params=None):
        """Observations `[num_envs, ...]` of a batch of env states (leaves `[num_envs, ...]`), e.g.
        to restart episodes from stored states."""
        chex.assert_tree_shape_prefix(state, (self.num_envs,))
        return jax.vmap(self._env.get_obs, in_axes=(0, None))(state, params)


@struct.dataclass
class RunningMoments:
    """Running mean and (population) variance of `count` samples, one per feature."""

    mean: jax.Array
    var: jax.Array
    count: jax.Array


def init_moments(shape: tuple[int, ...], count: float = 1e-4) -> RunningMoments:
    """Prior moments (mean 0, var 1) of weight `count` (as gym's `RunningMeanStd`)."""
    return RunningMoments(jnp.zeros(shape, jnp.float32), jnp.ones(shape, jnp.float32),
                          jnp.asarray(count, jnp.float32))


def update_moments(m: RunningMoments, batch: jax.Array) -> RunningMoments:
    """Merge a batch `[B, ...]` into `m` (Chan, Golub & LeVeque's parallel variance update)."""
    b_mean, b_var = batch.mean(0), batch.var(0)
    b_count = jnp.asarray(batch.shape[0], jnp.float32)
    total = m.count + b_count
    delta = b_mean - m.mean
    mean = m.mean + delta * b_count / total
    m2 = m.var * m.count + b_var * b_count + delta ** 2 * m.count * b_count / total
    return RunningMoments(mean, m2 / total, total)


@struct.dataclass
class NormVecState:
    env_state: Any
    moments: RunningMoments


class NormalizeVecObservation(GymnaxWrapper):
    """Normalizes a `VecEnv`'s observations `[E, d]` by running moments shared by all copies.

    The moments are updated with the reset batch and with every step's batch of returned
    observations (after auto-reset, as gym/CleanRL); `(obs - mean) / sqrt(var + eps)` is clipped
    to `[-clip, clip]`, and `info["final_observation"]` is normalized with the same moments.
    """

    def __init__(self, env: Any, eps: float = 1e-8, clip: float = 10.0):
        super().__init__(env)
        self.eps, self.clip = eps, clip

    def _norm(self, obs, m: RunningMoments):
        return jnp.clip((obs - m.mean) / jnp.sqrt(m.var + self.eps), -self.clip, self.clip)

    def reset(self, key, params=None):
        obs, env_state = self._env.reset(key, params)
        m = update_moments(init_moments(obs.shape[1:]), obs)
        return self._norm(obs, m), NormVecState(env_state, m)

    def step(self, key, state: NormVecState, action, params=None):
        obs, env_state, reward, terminated, truncated, info = self._env.step(
            key, state.env_state, action, params)
        m = update_moments(state.moments, obs)
        info = dict(info)
        if "final_observation" in info:
            info["final_observation"] = self._norm(info["final_observation"], m)
        return self._norm(obs, m), NormVecState(env_state, m), reward, terminated, truncated, info


@struct.dataclass
class RewardNormState:
    env_state: Any
    moments: RunningMoments  # of the discounted return, scalar
    ret: jax.Array  # [E] running discounted return of each copy


class NormalizeVecReward(GymnaxWrapper):
    """Scales a `VecEnv`'s rewards by the running std of the discounted return (shared).

    Per step: `G_i <- gamma G_i + r_i` for each copy, the moments are updated with the batch
    `G`, the returned reward is `r_i / sqrt(var + eps)`, and `G_i` is reset to 0 where the
    episode ended (terminated or truncated). `gamma` is fixed when the wrapper is built.
    """

    def __init__(self, env: Any, gamma: float, eps: float = 1e-8):
        super().__init__(env)
        self.gamma, self.eps = float(gamma), eps

    def reset(self, key, params=None):
        obs, env_state = self._env.reset(key, params)
        ret = jnp.zeros(obs.shape[:1], jnp.float32)
        return obs, RewardNormState(env_state, init_moments(()), ret)

    def step(self, key, state: RewardNormState, action, params=None):
        obs, env_state, reward, terminated, truncated, info = self._env.step(
            key, state.env_state, action, params)
        ret = state.ret * self.gamma + reward.astype(jnp.float32)
        m = update_moments(state.moments, ret)
        done = jnp.logical_or(terminated, truncated)
        scaled = reward.astype(jnp.float32) / jnp.sqrt(m.var + self.eps)
        return (obs, RewardNormState(env_state, m, jnp.where(done, 0.0, ret)), scaled,
                terminated, truncated, info)


def is_discrete(env: Any, params: Any) -> bool:
    """Whether the environment's action space is `Discrete`."""
    return isinstance(env.action_space(params), spaces.Discrete)


def action_dim(env: Any, params: Any) -> int:
    """Number of discrete actions, or the dimension of a continuous action box."""
    space = env.action_space(params)
    if isinstance(space, spaces.Discrete):
        return int(space.n)
    return int(jnp.prod(jnp.asarray(space.shape)))
