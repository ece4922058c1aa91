"""Brax environments as gymnax environments (optional extra: `pip install "jaxrl[brax]"`).

`jaxrl.envs.make("brax/NAME", backend=..., max_steps=...)` wraps the raw (unwrapped) Brax
environment `brax.envs.get_environment(NAME, backend=...)` in the gymnax protocol every agent of
this library speaks: `reset(key, params) -> (obs, state)`, `step(key, state, action, params) ->
(obs, state, reward, terminated, truncated, info)` with gymnax's auto-reset and
`info["final_observation"]`. Brax's `done` is termination (e.g. an ant that fell over); the
episode-length limit is gymnax truncation (`params.max_steps_in_episode`, Brax's usual 1000),
so a time-out is never treated as a terminal state by the TD targets. Actions are the Brax box
`[-1, 1]^A`.

Brax steps are deterministic; the gymnax step key is unused (reset keys are used). All Brax
pipelines work (`mjx`, `generalized`, `positional`, `spring`); the physics pipelines are for
accelerators: on a CPU, compiling one step of `inverted_pendulum` takes 10-50 s depending on the
pipeline, and `fast` (Brax's own trivial test environment) is what the CPU smoke tests run.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces


@struct.dataclass
class EnvState(environment.EnvState):
    brax_state: Any  # brax.envs.base.State with info/metrics padded to the step's structure
    time: int


@struct.dataclass
class EnvParams(environment.EnvParams):
    max_steps_in_episode: int = 1000


def _import_brax_envs():
    try:
        from brax import envs
    except ImportError as e:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "Brax environments need the optional extra: pip install 'jaxrl[brax]' "
            f"(import failed: {e})"
        ) from e
    return envs


class BraxEnv(environment.Environment):
    """A raw Brax environment behind the gymnax interface.

    Args:
      name: a Brax environment name (`brax.envs.get_environment`), e.g. `"ant"`, `"fast"`.
      backend: Brax physics pipeline (`"mjx"`, `"generalized"`, `"positional"`, `"spring"`);
        `None` takes Brax's default. Ignored by `fast`.
      **kwargs: passed to the Brax environment's constructor.
    """

    def __init__(self, name: str, backend: str | None = None, **kwargs: Any):
        super().__init__()
        envs = _import_brax_envs()
        if backend is not None:
            kwargs["backend"] = backend
        try:
            self._env = envs.get_environment(name, **kwargs)
        except KeyError as e:
            raise ValueError(
                f"unknown Brax environment {name!r}; Brax has: {', '.join(sorted(envs._envs))}"
            ) from e
        self.brax_name = name
        # Reset and step states must have one pytree structure for gymnax's auto-reset select:
        # Brax adds some info/metrics keys only in `step`, so resets are padded with zeros.
        key = jax.random.PRNGKey(0)
        zero_action = jnp.zeros((self._env.action_size,))
        self._step_shape = jax.eval_shape(
            lambda k: self._env.step(self._env.reset(k), zero_action), key
        )

    @property
    def name(self) -> str:
        return f"brax/{self.brax_name}"

    @property
    def default_params(self) -> EnvParams:
        return EnvParams()

    def _pad(self, s: Any) -> Any:
        def fill(have: dict, want: dict) -> dict:
            out = dict(have)
            for k, v in want.items():
                if k not in out:
                    out[k] = jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), v)
            return out

        return s.replace(
            info=fill(s.info, self._step_shape.info),
            metrics=fill(s.metrics, self._step_shape.metrics),
            reward=jnp.asarray(s.reward, self._step_shape.reward.dtype),
            done=jnp.asarray(s.done, self._step_shape.done.dtype),
        )

    def step_env(
        self, key: jax.Array, state: EnvState, action: jax.Array, params: EnvParams
    ) -> tuple[jax.Array, EnvState, jax.Array, jax.Array, dict]:
        del key  # Brax dynamics are deterministic
        s = self._env.step(state.brax_state, jnp.asarray(action, jnp.float32))
        terminated = s.done > 0.5
        new = EnvState(brax_state=s, time=state.time + 1)
        return s.obs, new, s.reward, terminated, {}

    def reset_env(self, key: jax.Array, params: EnvParams) -> tuple[jax.Array, EnvState]:
        s = self._pad(self._env.reset(key))
        return s.obs, EnvState(brax_state=s, time=0)

    def action_space(self, params: EnvParams | None = None) -> spaces.Box:
        return spaces.Box(-1.0, 1.0, (self._env.action_size,), jnp.float32)

    def observation_space(self, params: EnvParams) -> spaces.Box:
        return spaces.Box(-jnp.inf, jnp.inf, (self._env.observation_size,), jnp.float32)


def make_brax(name: str, backend: str | None = None, max_steps: int = 1000,
              **kwargs: Any) -> tuple[BraxEnv, EnvParams]:
    """`(env, params)` for the Brax environment `name` (see `BraxEnv`); `max_steps` is the
    truncation limit (must be >= 1)."""
    if max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")
    env = BraxEnv(name, backend, **kwargs)
    return env, EnvParams(max_steps_in_episode=int(max_steps))
