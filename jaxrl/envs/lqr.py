"""The 1-D linear-quadratic regulator of the Bayesian policy gradient papers, as a gymnax env.

Ghavamzadeh & Engel (NIPS 2006) and Ghavamzadeh, Engel & Valko (JMLR 17, 2016), Sec. 6
(BPG experiments): the system

    x_{t+1} = x_t + a_t + n_t,   n_t ~ N(0, noise_var),   x_0 ~ N(init_mean, init_var),
    r_t = -(x_t^2 + action_cost * a_t^2),   t = 0 .. T-1,

controlled by the linear Gaussian policy `a ~ N(lambda x, sigma^2)`, `theta = (lambda, sigma)`.

Because everything is linear-Gaussian, the expected return, its exact gradient and the exact
trajectory Fisher information are closed form (see `jaxrl/envs/lqr.py` functions
`lqr_expected_return`, `lqr_exact_gradient`, `lqr_trajectory_fisher`). With `s_t = E[x_t^2]`:

    s_0 = init_mean^2 + init_var,   s_{t+1} = (1 + lambda)^2 s_t + sigma^2 + noise_var,
    E[r_t] = -[(1 + action_cost lambda^2) s_t + action_cost sigma^2],
    G(theta) = diag(sum_t s_t / sigma^2, 2 T / sigma^2).

Episodes last exactly `max_steps_in_episode` steps (truncation; there is no terminal state).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces


@struct.dataclass
class LQRState(environment.EnvState):
    """`x`: scalar state; `time`: steps taken in the episode."""

    x: jax.Array
    time: int


@struct.dataclass
class LQRParams(environment.EnvParams):
    """Constants of the paper's LQR (defaults as in the digest, Part B, ground truth 1)."""

    noise_var: float = 0.01
    init_mean: float = 0.3
    init_var: float = 0.001
    action_cost: float = 0.1
    max_steps_in_episode: int = 20


class LQR(environment.Environment[LQRState, LQRParams]):
    """1-D LQR `x' = x + a + n` with reward `-(x^2 + c a^2)`; obs `[1]`, action a float."""

    def __init__(self):
        super().__init__()
        self.obs_shape = (1,)

    @property
    def default_params(self) -> LQRParams:
        return LQRParams()

    def step_env(
        self, key: jax.Array, state: LQRState, action: Any, params: LQRParams
    ) -> tuple[jax.Array, LQRState, jax.Array, jax.Array, dict[Any, Any]]:
        a = jnp.reshape(jnp.asarray(action, jnp.result_type(float)), ())
        reward = -(state.x**2 + params.action_cost * a**2)
        noise = jnp.sqrt(params.noise_var) * jax.random.normal(key, (), dtype=reward.dtype)
        new_state = LQRState(x=state.x + a + noise, time=state.time + 1)
        terminated = self.is_terminated(new_state, params)
        return self.get_obs(new_state), new_state, reward, terminated, {}

    def reset_env(self, key: jax.Array, params: LQRParams) -> tuple[jax.Array, LQRState]:
        x0 = params.init_mean + jnp.sqrt(params.init_var) * jax.random.normal(key, ())
        state = LQRState(x=x0, time=0)
        return self.get_obs(state), state

    def get_obs(self, state: LQRState, params: LQRParams | None = None, key=None) -> jax.Array:
        return jnp.reshape(state.x, (1,))

    def is_terminated(self, state: LQRState, params: LQRParams) -> jax.Array:
        return jnp.array(False)

    def is_truncated(self, state: LQRState, params: LQRParams) -> jax.Array:
        return state.time >= params.max_steps_in_episode

    @property
    def name(self) -> str:
        return "LQR-v0"

    @property
    def num_actions(self) -> int:
        return 1

    def action_space(self, params: LQRParams | None = None) -> spaces.Box:
        return spaces.Box(-jnp.inf, jnp.inf, (), jnp.float32)

    def observation_space(self, params: LQRParams) -> spaces.Box:
        return spaces.Box(-jnp.inf, jnp.inf, (1,), jnp.float32)

    def state_space(self, params: LQRParams) -> spaces.Dict:
        return spaces.Dict(
            {
                "x": spaces.Box(-jnp.inf, jnp.inf, (), jnp.float32),
                "time": spaces.Discrete(params.max_steps_in_episode + 1),
            }
        )


def make_lqr(**kwargs: Any) -> tuple[LQR, LQRParams]:
    """Factory for `jaxrl.envs.make("LQR-v0", **param_overrides)`."""
    return LQR(), LQRParams(**kwargs)


DEFAULT_PARAMS = LQRParams()

# ---------------------------------------------------------------------------------------------
# Closed forms (digest Part B, "Ground truth" 1 and 2). theta = (lambda, sigma).
# ---------------------------------------------------------------------------------------------


def lqr_second_moments(theta: jax.Array, params: LQRParams = DEFAULT_PARAMS) -> jax.Array:
    """`s_t = E[x_t^2]` for `t = 0..T-1` under `a ~ N(lambda x, sigma^2)`: `[T]`."""
    lam, sig = theta[0], theta[1]
    s0 = jnp.asarray(params.init_mean**2 + params.init_var, theta.dtype)

    def body(s, _):
        return (1.0 + lam) ** 2 * s + sig**2 + params.noise_var, s

    _, s = jax.lax.scan(body, s0, None, length=params.max_steps_in_episode)
    return s


def lqr_expected_return(theta: jax.Array, params: LQRParams = DEFAULT_PARAMS) -> jax.Array:
    """Exact `eta(theta) = E[sum_t r_t]` (undiscounted, horizon T): scalar."""
    lam, sig = theta[0], theta[1]
    s = lqr_second_moments(theta, params)
    c = params.action_cost
    return -jnp.sum((1.0 + c * lam**2) * s + c * sig**2)


def lqr_exact_gradient(theta: jax.Array, params: LQRParams = DEFAULT_PARAMS) -> jax.Array:
    """Exact `grad eta(theta)`: `[2]` = (d/dlambda, d/dsigma), by differentiating the moment
    recursion by hand (forward sensitivities `ds_t/dlambda`, `ds_t/dsigma`)."""
    lam, sig = theta[0], theta[1]
    c = params.action_cost
    s0 = jnp.asarray(params.init_mean**2 + params.init_var, theta.dtype)
    zero = jnp.zeros_like(s0)

    def body(carry, _):
        s, ds_l, ds_s = carry
        # E[r_t] = -[(1 + c lam^2) s_t + c sig^2]
        g_l = -(2.0 * c * lam * s + (1.0 + c * lam**2) * ds_l)
        g_s = -((1.0 + c * lam**2) * ds_s + 2.0 * c * sig)
        a2 = (1.0 + lam) ** 2
        new = (
            a2 * s + sig**2 + params.noise_var,
            2.0 * (1.0 + lam) * s + a2 * ds_l,
            a2 * ds_s + 2.0 * sig,
        )
        return new, jnp.stack([g_l, g_s])

    _, g = jax.lax.scan(body, (s0, zero, zero), None, length=params.max_steps_in_episode)
    return jnp.sum(g, axis=0)


def lqr_trajectory_fisher(theta: jax.Array, params: LQRParams = DEFAULT_PARAMS) -> jax.Array:
    """Exact trajectory Fisher information `G = E[u u^T]`, `u = sum_t grad log pi`: `[2, 2]`.

    Per step `d/dlambda log pi = eps x / sigma`, `d/dsigma log pi = (eps^2 - 1) / sigma` with
    `eps ~ N(0, 1)` independent of `x`; cross-time terms vanish (martingale differences).
    """
    sig = theta[1]
    s = lqr_second_moments(theta, params)
    T = params.max_steps_in_episode
    return jnp.diag(jnp.stack([jnp.sum(s) / sig**2, 2.0 * T / sig**2 * jnp.ones_like(sig)]))
