"""Mountain car with a start spread over the whole state space and normalised observations.

The dynamics, the reward (-1 per step) and the goal (position >= 0.5) are gymnax's
`MountainCar-v0` (Sutton & Barto 1998, Example 8.2; Moore 1990), unchanged. Two things differ,
both for policy-gradient studies that start from a uniform random policy (Ghavamzadeh, Engel &
Valko, JMLR 2016, Sec. 8 learn BAC on mountain car from such a policy):

* **start**: `start="uniform"` (default) draws the position uniformly in `[-1.2, 0.5)` and the
  velocity uniformly in `[-0.07, 0.07]`; `start="valley"` is gymnax's (position in
  `[-0.6, -0.4]`, velocity 0). From the valley a uniform random policy reaches the goal in 0 of
  2000 episodes within 200 steps (0.05% within 1000 steps), so every episode's return is
  `-max_steps`, every Monte-Carlo gradient with a baseline is exactly zero and no estimator can
  learn; from the uniform start about 21% do (measured, 4000 episodes, 200 steps).
* **observation**: `[(position + 1.2) / 1.8, (velocity + 0.07) / 0.14]` in `[0, 1]^2`, so one
  length scale serves both coordinates of a state kernel or an RBF grid.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from gymnax.environments.classic_control import mountain_car as gmc


class MountainCarNormalized(gmc.MountainCar):
    """gymnax `MountainCar` with a chosen start distribution and observations in `[0, 1]^2`
    (see the module docstring). `obs: [2]` float32; actions 0 (left), 1 (none), 2 (right)."""

    def __init__(self, start: str = "uniform"):
        super().__init__()
        if start not in ("uniform", "valley"):
            raise ValueError(f"start must be uniform or valley, got {start!r}")
        self.start = start

    def reset_env(self, key: jax.Array, params: gmc.EnvParams) -> tuple[jax.Array, Any]:
        if self.start == "valley":
            return super().reset_env(key, params)
        k_pos, k_vel = jax.random.split(key)
        pos = jax.random.uniform(k_pos, (), minval=params.min_position,
                                 maxval=params.goal_position)
        vel = jax.random.uniform(k_vel, (), minval=-params.max_speed, maxval=params.max_speed)
        state = gmc.EnvState(position=pos, velocity=vel, time=0)
        return self.get_obs(state, params), state

    def get_obs(self, state: Any, params: gmc.EnvParams | None = None, key: Any = None
                ) -> jax.Array:
        p = self.default_params if params is None else params
        pos = (state.position - p.min_position) / (p.max_position - p.min_position)
        vel = (state.velocity + p.max_speed) / (2.0 * p.max_speed)
        return jnp.array([pos, vel], dtype=jnp.float32)

    @property
    def name(self) -> str:
        return "MountainCarNormalized-v0"

    def observation_space(self, params: gmc.EnvParams) -> Any:
        from gymnax.environments import spaces

        return spaces.Box(0.0, 1.0, (2,), jnp.float32)


def make_mountain_car(start: str = "uniform", max_steps_in_episode: int = 200
                      ) -> tuple[MountainCarNormalized, gmc.EnvParams]:
    """`(env, params)`: see `MountainCarNormalized`; `max_steps_in_episode` is the time limit."""
    env = MountainCarNormalized(start)
    return env, env.default_params.replace(max_steps_in_episode=int(max_steps_in_episode))
