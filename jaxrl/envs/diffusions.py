"""Controlled diffusions under fixed policies, as gymnax environments with closed-form values.

Setting of Jia & Zhou, "Policy Evaluation and Temporal-Difference Learning in Continuous Time and
Space: A Martingale Approach" (JMLR 23, 2022), Sec. 2: a state (scalar, or `[d]` below) follows

    dX_t = b(t, X_t, u_t) dt + s(t, X_t, u_t) dW_t,   u_t ~ pi(. | t, X_t)   (a fixed policy),

with running reward rate `r(t, x)`, terminal reward `h(x)` at a finite horizon `T` (finite
horizon) or none (infinite horizon), and discount rate `rho >= 0`. The value

    J(t, x) = E[ int_t^T e^{-rho (s - t)} r(s, X_s) ds + e^{-rho (T - t)} h(X_T) | X_t = x ]

is known in closed form for every environment here (`env.value(t, x, params)`). Time is
discretised by Euler-Maruyama with mesh `params.dt`; a stochastic policy draws its action at each
mesh point and holds it over the step (so its effect on the value vanishes as `dt -> 0` when the
reward does not depend on the action, as here).

Environments (all with state `x`, continuous time `t` and the gymnax step counter `time`):

* `BrownianTerminal`: `dX = mu dt + sigma dW` on `[0, T]`, no running reward, `h(x) = x`;
  `J(t, x) = x + mu (T - t)`. With `mu = 0, sigma = 1, T = 1` this is the paper's example in
  which the mean-square TD error is biased (see `jaxrl.martingale`).
* `ControlledOU`: `dX = (a (b - X) + u) dt + sigma dW`, policy `u ~ N(k (X - b), s_u^2)`, reward
  `r(x) = x^2/2 + q x`, discount `rho > 0`, infinite horizon. With `a' = a - k`,
  `J(x) = A x^2/2 + B x + C`, `A = 1/(rho + 2a')`, `B = (a' b A + q)/(rho + a')`,
  `C = (a' b B + sigma^2 A / 2)/rho` (solve `rho J = r + a'(b - x) J' + sigma^2 J''/2`).
* `BlackScholesCall`: `dS = mu S dt + vol S dW` on `[0, T]`, terminal `h(s) = (s - K)^+`,
  discount `rho`; `J(t, s) = e^{-rho tau} (s e^{mu tau} N(d1) - K N(d2))`, `tau = T - t`,
  `d1 = (log(s/K) + (mu + vol^2/2) tau) / (vol sqrt(tau))`, `d2 = d1 - vol sqrt(tau)` (the
  Black-Scholes price when `mu = rho` is the risk-free rate).

* `LinearQuadraticOU(d)`: the d-dimensional case `dX = (M (b - X) + u) dt + S dW`,
  `u ~ N(K (X - b), s_u^2 I)`, reward `x^T Q x / 2 + q . x`; `J = x^T P x / 2 + p . x + c` from a
  Lyapunov equation (`lq_value_params`). The state has shape `(d,)` (`state_shape`); the
  trajectories then carry `x: [N, K+1, d]`.

At a fixed mesh the estimators target the value of the Euler-Maruyama CHAIN, not `J`; for the
OU and linear-quadratic cases it is in closed form too (`ou_em_value_params`,
`lq_em_value_params`, a Stein equation), `J` plus an O(dt) term.

The step reward is `r(t_i, X_i) dt` plus `h(X_T)` on the step that reaches `T`; the per-step
discount `exp(-rho dt)` is in `info["discount"]`. `simulate` draws whole trajectories without
auto-reset for the estimators of `jaxrl.martingale`.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces
from jax.scipy.stats import norm

from jaxrl import linalg


@struct.dataclass
class DiffusionState(environment.EnvState):
    """`x`: scalar state; `t`: continuous time; `time`: steps taken in the episode."""

    x: jax.Array
    t: jax.Array
    time: int


class ControlledDiffusion(environment.Environment):
    """Base class: a scalar controlled diffusion discretised by Euler-Maruyama.

    Subclasses define `drift`, `vol`, `running_reward`, `terminal_reward`, `policy`, `value`,
    `initial_state` and the class attribute `finite_horizon`. Params must carry `dt` (mesh,
    time units), `horizon` (T; `inf` for infinite horizon), `rho` (discount rate per unit time)
    and `max_steps_in_episode`. Observation `[x, t]`, action `[1]` (a control added to the drift
    where the model has one, ignored otherwise).
    """

    finite_horizon: bool = False
    state_shape: tuple[int, ...] = ()  # `()`: scalar state; `(d,)`: d-dimensional

    # --- model ------------------------------------------------------------------------------
    def drift(self, t: jax.Array, x: jax.Array, u: jax.Array, params: Any) -> jax.Array:
        raise NotImplementedError

    def vol(self, t: jax.Array, x: jax.Array, u: jax.Array, params: Any) -> jax.Array:
        raise NotImplementedError

    def running_reward(self, t: jax.Array, x: jax.Array, params: Any) -> jax.Array:
        """Reward RATE `r(t, x)` (per unit time)."""
        return jnp.zeros_like(x)

    def terminal_reward(self, x: jax.Array, params: Any) -> jax.Array:
        """`h(x)` paid at the horizon (finite horizon only)."""
        return jnp.zeros_like(x)

    def policy(self, key: jax.Array, t: jax.Array, x: jax.Array, params: Any) -> jax.Array:
        """Sample the fixed policy's scalar action at `(t, x)`; default: no control (0)."""
        return jnp.zeros_like(x)

    def value(self, t: jax.Array, x: jax.Array, params: Any) -> jax.Array:
        """Closed-form value `J(t, x)` of the fixed policy (continuous time, `dt -> 0`)."""
        raise NotImplementedError

    def initial_state(self, key: jax.Array, params: Any) -> jax.Array:
        """`X_0 ~ N(x0_mean, x0_std^2)`."""
        return params.x0_mean + params.x0_std * jax.random.normal(key, ())

    # --- one Euler-Maruyama step -------------------------------------------------------------
    def em_step(
        self, key: jax.Array, t: jax.Array, x: jax.Array, u: jax.Array, params: Any
    ) -> jax.Array:
        """`X_{i+1} = X_i + b dt + s sqrt(dt) Z`, `Z ~ N(0, 1)`."""
        z = jax.random.normal(key, jnp.shape(x), dtype=jnp.result_type(x))
        return (
            x
            + self.drift(t, x, u, params) * params.dt
            + self.vol(t, x, u, params) * jnp.sqrt(params.dt) * z
        )

    # --- gymnax protocol ---------------------------------------------------------------------
    def step_env(
        self, key: jax.Array, state: DiffusionState, action: Any, params: Any
    ) -> tuple[jax.Array, DiffusionState, jax.Array, jax.Array, dict[Any, Any]]:
        u = jnp.reshape(jnp.asarray(action, jnp.result_type(float)), self.state_shape)
        x_new = self.em_step(key, state.t, state.x, u, params)
        t_new = state.t + params.dt
        new_state = DiffusionState(x=x_new, t=t_new, time=state.time + 1)
        terminated = self.is_terminated(new_state, params)
        reward = self.running_reward(state.t, state.x, params) * params.dt
        reward = reward + jnp.where(terminated, self.terminal_reward(x_new, params), 0.0)
        info = {"discount": jnp.exp(-params.rho * params.dt)}
        return self.get_obs(new_state), new_state, reward, terminated, info

    def reset_env(self, key: jax.Array, params: Any) -> tuple[jax.Array, DiffusionState]:
        x0 = self.initial_state(key, params)
        state = DiffusionState(x=x0, t=jnp.zeros((), jnp.result_type(x0)), time=0)
        return self.get_obs(state), state

    def get_obs(self, state: DiffusionState, params: Any = None, key: Any = None) -> jax.Array:
        return jnp.concatenate([jnp.reshape(state.x, (-1,)), jnp.reshape(state.t, (1,))])

    def is_terminated(self, state: DiffusionState, params: Any) -> jax.Array:
        if not self.finite_horizon:
            return jnp.asarray(False)
        return state.t >= params.horizon - 0.5 * params.dt

    def action_space(self, params: Any = None) -> spaces.Box:
        return spaces.Box(-jnp.inf, jnp.inf, (math.prod(self.state_shape),), jnp.float32)

    def observation_space(self, params: Any = None) -> spaces.Box:
        return spaces.Box(-jnp.inf, jnp.inf, (math.prod(self.state_shape) + 1,), jnp.float32)


# ---------------------------------------------------------------------------------------------
# Brownian motion with terminal reward h(x) = x (finite horizon).
# ---------------------------------------------------------------------------------------------


@struct.dataclass
class BrownianParams(environment.EnvParams):
    mu: float = 0.0
    sigma: float = 1.0
    horizon: float = 1.0
    rho: float = 0.0
    dt: float = 0.01
    x0_mean: float = 0.0
    x0_std: float = 1.0
    max_steps_in_episode: int = 100


class BrownianTerminal(ControlledDiffusion):
    """`dX = mu dt + sigma dW` on `[0, T]`, `h(x) = x`, no running reward, `rho = 0`.

    `J(t, x) = x + mu (T - t)` (needs `rho = 0`; `value` includes the discount otherwise).
    """

    finite_horizon = True

    @property
    def default_params(self) -> BrownianParams:
        return BrownianParams()

    def drift(self, t, x, u, params):
        return params.mu + 0.0 * x

    def vol(self, t, x, u, params):
        return params.sigma + 0.0 * x

    def terminal_reward(self, x, params):
        return x

    def value(self, t, x, params):
        tau = params.horizon - t
        return jnp.exp(-params.rho * tau) * (x + params.mu * tau)

    def moments(self, t: jax.Array, params: BrownianParams) -> tuple[jax.Array, jax.Array]:
        """Exact `(E X_t, Var X_t)`."""
        return params.x0_mean + params.mu * t, params.x0_std**2 + params.sigma**2 * t


# ---------------------------------------------------------------------------------------------
# Ornstein-Uhlenbeck with quadratic reward (discounted, infinite horizon).
# ---------------------------------------------------------------------------------------------


@struct.dataclass
class OUParams(environment.EnvParams):
    a: float = 1.0
    b: float = 1.0
    sigma: float = 0.5
    q: float = 1.0
    rho: float = 1.5
    policy_gain: float = 0.0
    policy_std: float = 0.0
    horizon: float = math.inf
    dt: float = 0.01
    x0_mean: float = 1.0
    x0_std: float = 1.0
    max_steps_in_episode: int = 1000


def ou_value_params(a: Any, b: Any, sigma: Any, q: Any, rho: Any) -> jax.Array:
    """Closed-form `(A, B, C)` of `J(x) = A x^2/2 + B x + C` for the discounted OU process.

    `dX = a (b - X) dt + sigma dW`, reward rate `x^2/2 + q x`, discount `rho`. Needs `rho > 0`
    and `rho + 2 a > 0` (otherwise the discounted second moment, hence J, is infinite).
    Returns: `[3]` array.
    """
    A = 1.0 / (rho + 2.0 * a)
    B = (a * b * A + q) / (rho + a)
    C = (a * b * B + 0.5 * sigma**2 * A) / rho
    return jnp.stack(jnp.broadcast_arrays(*map(jnp.asarray, (A, B, C))), axis=-1)


def ou_em_value_params(
    a: Any, b: Any, sigma: Any, q: Any, rho: Any, dt: Any, policy_std: Any = 0.0
) -> jax.Array:
    """Exact `(A, B, C)` of the Euler-Maruyama CHAIN's value `V(x) = A x^2/2 + B x + C`.

    The chain `X' = alpha X + a b dt + eps`, `alpha = 1 - a dt`,
    `Var eps = v = sigma^2 dt + policy_std^2 dt^2` (the held action's noise), with step reward
    `r(x) dt = (x^2/2 + q x) dt` and per-step discount `gamma = exp(-rho dt)`, has the value
    `V(x) = sum_i gamma^i E[r(X_i) dt | X_0 = x]`; matching powers of `x` in the Bellman
    equation `V(x) = r(x) dt + gamma E V(X')` gives

        A = dt / (1 - gamma alpha^2),   B = (q dt + gamma A alpha c) / (1 - gamma alpha),
        C = gamma (A (c^2 + v) / 2 + B c) / (1 - gamma),   c = a b dt.

    This is what the consistent estimators (ML, CLSTD, CTD) target at a fixed mesh `dt`;
    `ou_value_params` is its `dt -> 0` limit. `a` is the closed-loop rate (`a - policy_gain`).
    Needs `gamma alpha^2 < 1`. Returns: `[3]`.
    """
    gamma = jnp.exp(-rho * dt)
    alpha = 1.0 - a * dt
    c = a * b * dt
    v = sigma**2 * dt + policy_std**2 * dt**2
    A = dt / (1.0 - gamma * alpha**2)
    B = (q * dt + gamma * A * alpha * c) / (1.0 - gamma * alpha)
    C = gamma * (0.5 * A * (c**2 + v) + B * c) / (1.0 - gamma)
    return jnp.stack(jnp.broadcast_arrays(*map(jnp.asarray, (A, B, C))), axis=-1)


def check_ou_params(a: float, sigma: float, rho: float, policy_gain: float = 0.0) -> None:
    """Raise `ValueError` naming the value when the OU value is not finite."""
    if not rho > 0:
        raise ValueError(f"rho must be > 0 for the infinite-horizon OU value, got {rho}")
    if not rho + 2 * (a - policy_gain) > 0:
        raise ValueError(
            f"rho + 2 (a - policy_gain) must be > 0 for a finite OU value, got "
            f"rho={rho}, a={a}, policy_gain={policy_gain}"
        )
    if not sigma >= 0:
        raise ValueError(f"sigma must be >= 0, got {sigma}")


class ControlledOU(ControlledDiffusion):
    """`dX = (a (b - X) + u) dt + sigma dW`, `u ~ N(k (X - b), s_u^2)`, reward `x^2/2 + q x`."""

    finite_horizon = False

    @property
    def default_params(self) -> OUParams:
        return OUParams()

    def drift(self, t, x, u, params):
        return params.a * (params.b - x) + u

    def vol(self, t, x, u, params):
        return params.sigma + 0.0 * x

    def policy(self, key, t, x, params):
        z = jax.random.normal(key, jnp.shape(x), dtype=jnp.result_type(x))
        return params.policy_gain * (x - params.b) + params.policy_std * z

    def running_reward(self, t, x, params):
        return 0.5 * x**2 + params.q * x

    def value_params(self, params: OUParams) -> jax.Array:
        """`(A, B, C)`: `[3]`, for features `(x^2/2, x, 1)`."""
        return ou_value_params(
            params.a - params.policy_gain, params.b, params.sigma, params.q, params.rho
        )

    def em_value_params(self, params: OUParams) -> jax.Array:
        """`(A, B, C)` of the Euler-Maruyama chain at mesh `params.dt` (`ou_em_value_params`)."""
        return ou_em_value_params(params.a - params.policy_gain, params.b, params.sigma,
                                  params.q, params.rho, params.dt, params.policy_std)

    def value(self, t, x, params):
        A, B, C = jnp.moveaxis(self.value_params(params), -1, 0)
        return 0.5 * A * x**2 + B * x + C

    def moments(self, t: jax.Array, params: OUParams) -> tuple[jax.Array, jax.Array]:
        """Exact `(E X_t, Var X_t)` of the continuous OU process under the policy."""
        a = params.a - params.policy_gain
        e = jnp.exp(-a * t)
        mean = params.b + (params.x0_mean - params.b) * e
        var = params.x0_std**2 * e**2 + params.sigma**2 * (1 - e**2) / (2 * a)
        return mean, var


# ---------------------------------------------------------------------------------------------
# d-dimensional Ornstein-Uhlenbeck with quadratic reward (linear-quadratic, infinite horizon).
# ---------------------------------------------------------------------------------------------


@struct.dataclass
class LQParams(environment.EnvParams):
    """`dX = (M (b - X) + u) dt + S dW` in `R^d`, `u ~ N(K (X - b), policy_std^2 I)`, reward
    rate `x^T Q x / 2 + q . x`. Arrays: `drift` (M) `[d, d]`, `b` `[d]`, `vol` (S) `[d, d]`,
    `reward_q` (Q, symmetric) `[d, d]`, `q` `[d]`, `policy_gain` (K) `[d, d]`, `x0_mean` `[d]`
    (no usable defaults: build with `lq_params`)."""

    drift: Any = None
    b: Any = None
    vol: Any = None
    reward_q: Any = None
    q: Any = None
    policy_gain: Any = None
    x0_mean: Any = None
    rho: float = 1.5
    policy_std: float = 0.0
    x0_std: float = 1.0
    horizon: float = math.inf
    dt: float = 0.01
    max_steps_in_episode: int = 1000


def _kron_solve(lhs: jax.Array, rhs: jax.Array) -> jax.Array:
    """Solve the `[d^2, d^2]` vectorised (row-major) matrix equation `lhs vec(P) = vec(rhs)`."""
    d = rhs.shape[0]
    return linalg.solve(lhs, rhs.reshape(-1)).reshape(d, d)


def lq_value_params(p: LQParams) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Continuous-time `(P, p, c)` of `J(x) = x^T P x / 2 + p . x + c` for `LQParams`.

    With the closed-loop drift `M' = M - K` (generator `M'(b - x) . grad + tr(S S^T hess)/2`):
    `(rho I + M'^T) P + P M' = Q` (Lyapunov), `(rho I + M'^T) p = q + P M' b`,
    `rho c = (M' b) . p + tr(S S^T P) / 2`. Needs `rho/2 + Re eig(M') > 0`.
    Shapes: `[d, d]`, `[d]`, `[]`.
    """
    m = p.drift - p.policy_gain
    d = m.shape[0]
    eye = jnp.eye(d, dtype=m.dtype)
    g = 0.5 * p.rho * eye + m
    big = jnp.kron(g.T, eye) + jnp.kron(eye, g.T)
    pm = _kron_solve(big, p.reward_q)
    pm = 0.5 * (pm + pm.T)
    pv = linalg.solve(p.rho * eye + m.T, p.q + pm @ m @ p.b)
    c = ((m @ p.b) @ pv + 0.5 * jnp.trace(p.vol @ p.vol.T @ pm)) / p.rho
    return pm, pv, c


def lq_em_value_params(p: LQParams) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Exact `(P, p, c)` of the Euler-Maruyama chain's value at mesh `p.dt` (cf.
    `ou_em_value_params`, its `d = 1` case).

    Chain `X' = F X + g + eps`, `F = I - M' dt`, `g = M' b dt`,
    `Cov eps = W = S S^T dt + policy_std^2 dt^2 I`; Bellman `V = r dt + gamma E V(X')` gives
    `P = Q dt + gamma F^T P F` (Stein equation), `(I - gamma F^T) p = q dt + gamma F^T P g`,
    `(1 - gamma) c = gamma (g^T P g / 2 + tr(P W) / 2 + p . g)`. Shapes: `[d, d]`, `[d]`, `[]`.
    """
    m = p.drift - p.policy_gain
    d = m.shape[0]
    eye = jnp.eye(d, dtype=m.dtype)
    gamma = jnp.exp(-p.rho * p.dt)
    f = eye - m * p.dt
    g = m @ p.b * p.dt
    w = p.vol @ p.vol.T * p.dt + p.policy_std**2 * p.dt**2 * eye
    pm = _kron_solve(jnp.eye(d * d, dtype=m.dtype) - gamma * jnp.kron(f.T, f.T),
                     p.reward_q * p.dt)
    pm = 0.5 * (pm + pm.T)
    pv = linalg.solve(eye - gamma * f.T, p.q * p.dt + gamma * f.T @ pm @ g)
    c = gamma * (0.5 * g @ pm @ g + 0.5 * jnp.trace(pm @ w) + pv @ g) / (1.0 - gamma)
    return pm, pv, c


class LinearQuadraticOU(ControlledDiffusion):
    """d-dimensional OU under a linear Gaussian policy with quadratic reward (see `LQParams`);
    `J(x) = x^T P x / 2 + p . x + c` from `lq_value_params` (the chain's own value at mesh
    `dt`: `lq_em_value_params`). Observation `[x_1..x_d, t]`, action `[d]`."""

    finite_horizon = False

    def __init__(self, dim: int = 2):
        super().__init__()
        if dim < 1:
            raise ValueError(f"dim must be >= 1, got {dim}")
        self.dim = dim
        self.state_shape = (dim,)

    @property
    def default_params(self) -> LQParams:
        return lq_params(self.dim)

    def drift(self, t, x, u, params):
        return params.drift @ (params.b - x) + u

    def vol(self, t, x, u, params):
        return params.vol

    def em_step(self, key, t, x, u, params):
        z = jax.random.normal(key, jnp.shape(x), dtype=jnp.result_type(x))
        return (x + self.drift(t, x, u, params) * params.dt
                + params.vol @ z * jnp.sqrt(params.dt))

    def policy(self, key, t, x, params):
        z = jax.random.normal(key, jnp.shape(x), dtype=jnp.result_type(x))
        return params.policy_gain @ (x - params.b) + params.policy_std * z

    def running_reward(self, t, x, params):
        return 0.5 * x @ params.reward_q @ x + params.q @ x

    def terminal_reward(self, x, params):
        return jnp.zeros((), jnp.result_type(x))

    def initial_state(self, key, params):
        return params.x0_mean + params.x0_std * jax.random.normal(key, (self.dim,))

    def value(self, t, x, params):
        pm, pv, c = lq_value_params(params)
        return 0.5 * x @ pm @ x + pv @ x + c


def lq_params(
    dim: int,
    a: float = 1.0,
    coupling: float = 0.3,
    sigma: float = 0.5,
    b: float = 1.0,
    q: float = 1.0,
    rho: float = 1.5,
    reward_coupling: float = 0.25,
    **kwargs: Any,
) -> LQParams:
    """The d-dim family of the study: `M = a I + coupling (N - N^T)` (N the shift matrix: a
    skew coupling of neighbours, eigenvalues `a + i y`), `S = sigma I`,
    `Q = I + reward_coupling (N + N^T)`, `b = b 1`, `q = q 1`, `x0_mean = b 1`, no control.
    `dim = 1` is `ControlledOU`'s default case. kwargs override `LQParams` fields."""
    shift = np.eye(dim, k=1, dtype=np.float32)  # NumPy: no device work at construction
    eye = np.eye(dim, dtype=np.float32)
    ones = np.ones(dim, np.float32)
    base = dict(
        drift=a * eye + coupling * (shift - shift.T),
        b=b * ones,
        vol=sigma * eye,
        reward_q=eye + reward_coupling * (shift + shift.T),
        q=q * ones,
        policy_gain=np.zeros((dim, dim), np.float32),
        x0_mean=b * ones,
        rho=rho,
    )
    return LQParams(**{**base, **kwargs})


# ---------------------------------------------------------------------------------------------
# Black-Scholes call (finite horizon, discounted terminal payoff).
# ---------------------------------------------------------------------------------------------


@struct.dataclass
class BlackScholesParams(environment.EnvParams):
    mu: float = 0.05
    vol: float = 0.2
    strike: float = 1.0
    rho: float = 0.05
    horizon: float = 1.0
    dt: float = 0.01
    x0_mean: float = 1.0
    x0_std: float = 0.2
    max_steps_in_episode: int = 100


class BlackScholesCall(ControlledDiffusion):
    """`dS = mu S dt + vol S dW`, `h(s) = (s - K)^+`, discount `rho`; `J` = Black-Scholes."""

    finite_horizon = True

    @property
    def default_params(self) -> BlackScholesParams:
        return BlackScholesParams()

    def drift(self, t, x, u, params):
        return params.mu * x

    def vol(self, t, x, u, params):
        return params.vol * x

    def terminal_reward(self, x, params):
        return jnp.maximum(x - params.strike, 0.0)

    def initial_state(self, key, params):
        # Log-normal start so that S stays positive: S_0 = m exp(s Z - s^2/2).
        z = jax.random.normal(key, ())
        s = params.x0_std
        return params.x0_mean * jnp.exp(s * z - 0.5 * s**2)

    def value(self, t, x, params):
        tau = jnp.maximum(params.horizon - t, 0.0)
        sq = params.vol * jnp.sqrt(tau)
        safe_sq = jnp.where(sq > 0, sq, 1.0)
        xs = jnp.maximum(x, 1e-30)
        d1 = (jnp.log(xs / params.strike) + (params.mu + 0.5 * params.vol**2) * tau) / safe_sq
        d2 = d1 - sq
        price = xs * jnp.exp(params.mu * tau) * norm.cdf(d1) - params.strike * norm.cdf(d2)
        price = jnp.where(sq > 0, price, jnp.maximum(x - params.strike, 0.0))
        return jnp.exp(-params.rho * tau) * price

    def moments(self, t: jax.Array, params: BlackScholesParams) -> tuple[jax.Array, jax.Array]:
        """Exact `(E S_t, Var S_t)` (with the log-normal start, `E S_0 = x0_mean`)."""
        m2_0 = params.x0_mean**2 * jnp.exp(params.x0_std**2)
        mean = params.x0_mean * jnp.exp(params.mu * t)
        m2 = m2_0 * jnp.exp((2 * params.mu + params.vol**2) * t)
        return mean, m2 - mean**2


# ---------------------------------------------------------------------------------------------
# Whole trajectories.
# ---------------------------------------------------------------------------------------------


@struct.dataclass
class Trajectory:
    """A batch of discretised paths on the mesh `t_i = i dt`, `i = 0..K`.

    Attributes:
      t: `[K+1]` mesh times.
      x: `[N, K+1]` states (`[N, K+1, d]` for a d-dimensional state); frozen after the horizon.
      u: `[N, K]` actions (`[N, K, d]`).
      r: `[N, K]` running reward RATES `r(t_i, X_i)` (multiply by `dt` for the step reward).
      mask: `[K]` 1.0 where transition `i -> i+1` lies inside the horizon.
      last: `[K]` 1.0 on the transition that reaches the finite horizon `T` (else 0).
      terminal: `[N]` terminal reward `h(X_T)` (0 for infinite horizon).
      dt: mesh size; rho: discount rate.
    """

    t: jax.Array
    x: jax.Array
    u: jax.Array
    r: jax.Array
    mask: jax.Array
    last: jax.Array
    terminal: jax.Array
    dt: jax.Array
    rho: jax.Array


def num_valid_steps(env: ControlledDiffusion, params: Any, num_steps: int) -> jax.Array:
    """Number of mesh steps inside the horizon: `round(T / dt)` capped at `num_steps`."""
    if not env.finite_horizon:
        horizon = jnp.asarray(params.horizon, jnp.float32)
        n = jnp.where(
            jnp.isfinite(horizon),
            jnp.round(jnp.where(jnp.isfinite(horizon), horizon, 0.0) / params.dt),
            num_steps,
        )
    else:
        n = jnp.round(params.horizon / params.dt)
    return jnp.minimum(n, num_steps).astype(jnp.int32)


def simulate(
    key: jax.Array, env: ControlledDiffusion, params: Any, num_paths: int, num_steps: int
) -> Trajectory:
    """Simulate `num_paths` independent paths of `num_steps` Euler-Maruyama steps (pure JAX).

    Steps beyond the horizon `round(T / dt)` are masked out and the state is frozen there, so a
    fixed `num_steps` serves every `dt` and the function can be `vmap`ped over `params.dt`. For a
    finite horizon, `num_steps >= T / dt` is required (checked when `params` is concrete).

    Returns: a `Trajectory` (`x: [num_paths, num_steps + 1, *env.state_shape]`).
    """
    if num_paths < 1 or num_steps < 1:
        raise ValueError(f"num_paths and num_steps must be >= 1, got {num_paths}, {num_steps}")
    if env.finite_horizon:
        try:
            need = round(float(params.horizon) / float(params.dt))
        except (TypeError, jax.errors.ConcretizationTypeError):
            need = None
        if need is not None and need > num_steps:
            raise ValueError(
                f"num_steps={num_steps} does not reach the horizon T={float(params.horizon)} "
                f"at dt={float(params.dt)}: need {need}"
            )
    n_valid = num_valid_steps(env, params, num_steps)
    key0, key_steps = jax.random.split(key)
    x0 = jax.vmap(env.initial_state, in_axes=(0, None))(
        jax.random.split(key0, num_paths), params
    )
    idx = jnp.arange(num_steps)
    ts = idx.astype(x0.dtype) * params.dt

    def body(x, inp):
        i, t, k = inp
        k_pol, k_noise = jax.random.split(k)
        u = jax.vmap(env.policy, in_axes=(0, None, 0, None))(
            jax.random.split(k_pol, num_paths), t, x, params
        )
        r = jax.vmap(env.running_reward, in_axes=(None, 0, None))(t, x, params)
        x_new = jax.vmap(env.em_step, in_axes=(0, None, 0, 0, None))(
            jax.random.split(k_noise, num_paths), t, x, u, params
        )
        x_new = jnp.where(i < n_valid, x_new, x)
        return x_new, (x_new, u, r)

    _, (xs, us, rs) = jax.lax.scan(body, x0, (idx, ts, jax.random.split(key_steps, num_steps)))
    x = jnp.moveaxis(jnp.concatenate([x0[None], xs], axis=0), 0, 1)
    mask = (idx < n_valid).astype(x.dtype)
    if env.finite_horizon:
        last = (idx == n_valid - 1).astype(x.dtype)
        terminal = jax.vmap(env.terminal_reward, in_axes=(0, None))(x[:, -1], params)
    else:
        last = jnp.zeros_like(mask)
        terminal = jnp.zeros(num_paths, x.dtype)
    t_all = jnp.arange(num_steps + 1).astype(x.dtype) * params.dt
    return Trajectory(
        t=t_all,
        x=x,
        u=jnp.moveaxis(us, 0, 1),
        r=rs.T,
        mask=mask,
        last=last,
        terminal=terminal,
        dt=jnp.asarray(params.dt, x.dtype),
        rho=jnp.asarray(params.rho, x.dtype),
    )


def make_brownian(**kwargs: Any) -> tuple[BrownianTerminal, BrownianParams]:
    """Factory for `jaxrl.envs.make("BrownianTerminal")`; kwargs override params."""
    env = BrownianTerminal()
    return env, env.default_params.replace(**kwargs)


def make_ou(**kwargs: Any) -> tuple[ControlledOU, OUParams]:
    """Factory for `jaxrl.envs.make("ControlledOU")`; kwargs override params."""
    env = ControlledOU()
    return env, env.default_params.replace(**kwargs)


def make_lq_ou(dim: int = 2, **kwargs: Any) -> tuple[LinearQuadraticOU, LQParams]:
    """Factory for `jaxrl.envs.make("LinearQuadraticOU", dim=d)`: a d-dimensional
    `LinearQuadraticOU` with `lq_params(dim, **kwargs)`."""
    env = LinearQuadraticOU(dim)
    return env, lq_params(dim, **kwargs)


def make_black_scholes(**kwargs: Any) -> tuple[BlackScholesCall, BlackScholesParams]:
    """Factory for `jaxrl.envs.make("BlackScholesCall")`; kwargs override params."""
    env = BlackScholesCall()
    return env, env.default_params.replace(**kwargs)
