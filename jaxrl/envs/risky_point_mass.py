"""RiskyPointMass: the risk demonstration of STAC (Özalp 2026, Sec. 5.4), as a gymnax environment.

A point in the unit square moves by `v_scale * (a + slip)` per step, `a in [-1, 1]^2`, slip
uniform in `[-0.02, 0.02]^2`, position clipped to `[0, 1]^2`. The goal is the origin. Each step
pays `-||x - goal|| - 0.1`; inside the danger disc (centre (0.5, 0.5), radius `r0 = 0.3`) an extra
`-10` hits with probability `0.1 exp(-4 r^2 / r0^2)` (`r` the distance to the disc centre). The
episode terminates when the point is within 0.05 of the goal and is truncated after 200 steps.
Reward, risk and termination are evaluated at the position before the move, as in the
reference implementation (`ugurcanozalp/rl-warehouse`, `envs/risky_pointmass.py`, itself adapted
from CODAC). Start positions are uniform in `[0.3, 1]^2` outside the disc: the reference code
meant to reject starts inside the disc, but its check always passes (it tests a tuple); we do the
rejection it intended (first safe one of 16 candidates, else the corner (1, 1)).

`info["danger"]` is 1.0 when the pre-move position lies in the disc and `info["penalty"]` is 1.0
when the -10 hit: the experiments count episodes that enter the disc.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces


@struct.dataclass
class EnvState(environment.EnvState):
    pos: jax.Array  # [2]
    time: int


@struct.dataclass
class EnvParams(environment.EnvParams):
    v_scale: float = 0.1
    slip: float = 0.02
    goal_radius: float = 0.05
    step_cost: float = 0.1
    risk_prob: float = 0.1
    risk_penalty: float = 10.0
    disc_x: float = 0.5
    disc_y: float = 0.5
    disc_radius: float = 0.3
    start_low: float = 0.3
    start_high: float = 1.0
    max_steps_in_episode: int = 200


class RiskyPointMass(environment.Environment[EnvState, EnvParams]):
    """Pure-JAX RiskyPointMass (see the module docstring). Observation `[2]` = position."""

    def __init__(self):
        super().__init__()
        self.obs_shape = (2,)

    @property
    def default_params(self) -> EnvParams:
        return EnvParams()

    def disc_dist_sq(self, pos: jax.Array, params: EnvParams) -> jax.Array:
        """Squared distance `[...]` from `pos [..., 2]` to the danger disc's centre."""
        return (pos[..., 0] - params.disc_x) ** 2 + (pos[..., 1] - params.disc_y) ** 2

    def step_env(
        self, key: jax.Array, state: EnvState, action: jax.Array, params: EnvParams
    ) -> tuple[jax.Array, EnvState, jax.Array, jax.Array, dict[str, Any]]:
        k_risk, k_slip = jax.random.split(key)
        a = jnp.clip(jnp.reshape(action, (2,)), -1.0, 1.0)
        d_goal = jnp.linalg.norm(state.pos)
        d2 = self.disc_dist_sq(state.pos, params)
        inside = d2 <= params.disc_radius**2
        risk = params.risk_prob * jnp.exp(-4.0 * d2 / params.disc_radius**2)
        p_hit = jnp.where(inside, risk, 0.0)
        hit = jax.random.uniform(k_risk) < p_hit
        reward = -d_goal - params.step_cost - params.risk_penalty * hit
        terminated = d_goal < params.goal_radius
        slip = jax.random.uniform(k_slip, (2,), minval=-params.slip, maxval=params.slip)
        pos = jnp.clip(state.pos + params.v_scale * (a + slip), 0.0, 1.0)
        state = EnvState(pos=pos, time=state.time + 1)
        info = {"danger": inside.astype(jnp.float32), "penalty": hit.astype(jnp.float32)}
        return pos, state, reward.astype(jnp.float32), terminated, info

    def reset_env(self, key: jax.Array, params: EnvParams) -> tuple[jax.Array, EnvState]:
        cand = jax.random.uniform(
            key, (16, 2), minval=params.start_low, maxval=params.start_high
        )
        safe = self.disc_dist_sq(cand, params) > params.disc_radius**2
        pos = jnp.where(jnp.any(safe), cand[jnp.argmax(safe)], jnp.ones(2))
        return pos, EnvState(pos=pos, time=0)

    def get_obs(self, state: EnvState, params: EnvParams | None = None, key=None) -> jax.Array:
        return state.pos

    def is_terminated(self, state: EnvState, params: EnvParams) -> jax.Array:
        return jnp.linalg.norm(state.pos) < params.goal_radius

    @property
    def name(self) -> str:
        return "RiskyPointMass-v0"

    @property
    def num_actions(self) -> int:
        return 2

    def action_space(self, params: EnvParams | None = None) -> spaces.Box:
        return spaces.Box(-1.0, 1.0, (2,), jnp.float32)

    def observation_space(self, params: EnvParams) -> spaces.Box:
        return spaces.Box(0.0, 1.0, (2,), jnp.float32)

    def state_space(self, params: EnvParams) -> spaces.Dict:
        return spaces.Dict(
            {
                "pos": spaces.Box(0.0, 1.0, (2,), jnp.float32),
                "time": spaces.Discrete(params.max_steps_in_episode),
            }
        )


def make_risky_point_mass() -> tuple[RiskyPointMass, EnvParams]:
    """`(env, default_params)`, the factory to register as `RiskyPointMass-v0`."""
    env = RiskyPointMass()
    return env, env.default_params
