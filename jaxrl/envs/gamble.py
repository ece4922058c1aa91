"""Small finite-horizon tasks for the stock-augmented deep agent (DηN), with exact answers.

Both tasks are finite MDPs `(P [S,A,S'], R [S,A,S'], mu0 [S], horizon)` with deterministic
transition rewards, so the exact optimum of any stock-augmented objective is computable by the
tabular distributional DP (`jaxrl.dp.tabular`) or by brute force. The gymnax environment
`FiniteHorizonMDP` runs them in pure JAX; its observation is `concat(one_hot(s), one_hot(t))`,
so a network reading it is time-indexed (the greedy policy of finite-horizon distributional DP
is indexed by time; "Optimizing Return Distributions with Distributional Dynamic Programming",
sec. 3-4). The episode terminates after `horizon` steps (a true terminal: no bootstrapping).

The environments are plain (un-augmented): they know nothing of the stock. The deep agent
(`jaxrl.dp.deep`) wraps them, like any gymnax env, in `jaxrl.envs.stock.StockAugmentation`,
which carries the stock `c_{t+1} = (c_t + r_t) / gamma` and appends it to the observation.
`jaxrl.envs.make("Gamble-v0")` / `make("Homeostasis-v0")` return `(env, params)` of the plain env,
with `env.default_params == params` (so the wrapper can be built around it).

* `gamble`: every step choose `safe` (+1) or `risky` (+4 w.p. 0.6, -2 w.p. 0.4; mean +1.6).
  The risk-neutral optimum always gambles (E G = 1.6 H); for CVaR at level 0.2 the optimum
  never gambles (G = H surely). States record the last outcome (0 safe, 1 win, 2 loss); only
  `mu0 = [1, 0, 0]` and the rewards matter.
* `homeostasis`: a drifting quantity to regulate. Each step the agent pushes by `d in {-1, 0, +1}`
  (action `d + 1`) and a disturbance `e in {-1, 0, +1}` with probabilities `(0.5, 0.3, 0.2)` is
  added: `r = d + e`. A risk-neutral agent always pushes up (E G = 0.7 H); the homeostatic
  objective `-|c_0 + G|` with `c_0 = -set_point` keeps the running total near the set point.
  States record the last disturbance.
* `stock_necessity`: a task where the optimum of `P(G >= 1)` needs the stock (0.75 with it,
  at most 0.5 for any policy of (state, time)); the deep agent's test of whether it uses the
  stock (`jaxrl.envs.make("StockNecessity-v0")`).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces


@struct.dataclass
class EnvState(environment.EnvState):
    """`s`: int32 current state; `time`: int32 steps taken in the episode."""

    s: jax.Array
    time: jax.Array


@struct.dataclass
class EnvParams(environment.EnvParams):
    """Arrays of the finite MDP: `P [S,A,S']` transition probabilities, `R [S,A,S']` rewards,
    `mu0 [S]` initial distribution; `gamma` the discount (not used by `step`; read by the stock
    wrapper and the agents); `max_steps_in_episode` = horizon."""

    P: jax.Array = None  # type: ignore[assignment]
    R: jax.Array = None  # type: ignore[assignment]
    mu0: jax.Array = None  # type: ignore[assignment]
    gamma: float = 1.0
    max_steps_in_episode: int = 1


def check_mdp(P: np.ndarray, R: np.ndarray, mu0: np.ndarray, horizon: int) -> None:
    """Raise `ValueError` naming the array when a finite-horizon MDP is malformed."""
    P, R, mu0 = np.asarray(P), np.asarray(R), np.asarray(mu0)
    if P.ndim != 3 or P.shape[0] != P.shape[2]:
        raise ValueError(f"P must be [S, A, S], got shape {P.shape}")
    if R.shape != P.shape:
        raise ValueError(f"R must have the shape of P {P.shape}, got {R.shape}")
    if mu0.shape != (P.shape[0],):
        raise ValueError(f"mu0 must be [{P.shape[0]}], got shape {mu0.shape}")
    for name, x in (("P", P), ("R", R), ("mu0", mu0)):
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{name} contains NaN or inf")
    if np.any(P < 0) or not np.allclose(P.sum(-1), 1.0, atol=1e-6):
        raise ValueError("rows of P must be probabilities summing to 1")
    if np.any(mu0 < 0) or not np.isclose(mu0.sum(), 1.0, atol=1e-6):
        raise ValueError("mu0 must be a probability vector")
    if int(horizon) < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")


class FiniteHorizonMDP(environment.Environment):
    """A finite MDP with deterministic transition rewards and a fixed horizon, as a gymnax env.

    Observation: `[S + H]` float32, `concat(one_hot(s, S), one_hot(t, H))` (all-zero time part
    at the terminal step `t = H`). Reward `R[s, a, s']`. Terminates when `t = H`.
    """

    def __init__(self, num_states: int, num_actions: int, horizon: int,
                 default: EnvParams | None = None):
        super().__init__()
        self.num_states, self._num_actions, self.horizon = num_states, num_actions, horizon
        self._default = default

    @property
    def default_params(self) -> EnvParams:
        if self._default is None:
            raise ValueError("FiniteHorizonMDP has no default params: build it with a factory "
                             "(make_finite_horizon, gamble, homeostasis)")
        return self._default

    def get_obs(self, state: EnvState) -> jax.Array:
        return jnp.concatenate(
            [
                jax.nn.one_hot(state.s, self.num_states, dtype=jnp.float32),
                jax.nn.one_hot(state.time, self.horizon, dtype=jnp.float32),
            ]
        )

    def step_env(self, key: jax.Array, state: EnvState, action: Any, params: EnvParams):
        a = jnp.asarray(action, jnp.int32)
        s_next = jax.random.choice(key, self.num_states, p=params.P[state.s, a])
        reward = params.R[state.s, a, s_next].astype(jnp.float32)
        new = EnvState(s=s_next.astype(jnp.int32), time=state.time + 1)
        done = self.is_terminal(new, params)
        return jax.lax.stop_gradient(self.get_obs(new)), new, reward, done, {}

    def reset_env(self, key: jax.Array, params: EnvParams):
        s0 = jax.random.choice(key, self.num_states, p=params.mu0).astype(jnp.int32)
        state = EnvState(s=s0, time=jnp.zeros((), jnp.int32))
        return self.get_obs(state), state

    def is_terminal(self, state: EnvState, params: EnvParams) -> jax.Array:
        return state.time >= self.horizon

    @property
    def name(self) -> str:
        return "FiniteHorizonMDP"

    @property
    def num_actions(self) -> int:
        return self._num_actions

    def action_space(self, params: EnvParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(self.num_actions)

    def observation_space(self, params: EnvParams) -> spaces.Box:
        return spaces.Box(0.0, 1.0, (self.num_states + self.horizon,), jnp.float32)

    def state_space(self, params: EnvParams) -> spaces.Dict:
        return spaces.Dict(
            {
                "s": spaces.Discrete(self.num_states),
                "time": spaces.Discrete(self.horizon + 1),
            }
        )


def make_finite_horizon(mdp: dict[str, Any]) -> tuple[FiniteHorizonMDP, EnvParams]:
    """`(env, params)` for an MDP dict with `P`, `R`, `mu0`, `horizon` and optional `gamma`
    (default 1; see `gamble_mdp`). The env's `default_params` are these params."""
    check_mdp(mdp["P"], mdp["R"], mdp["mu0"], mdp["horizon"])
    gamma = float(mdp.get("gamma", 1.0))
    if not 0.0 < gamma <= 1.0:
        raise ValueError(f"gamma must be in (0, 1], got {gamma}")
    S, A, _ = np.shape(mdp["P"])
    params = EnvParams(
        P=jnp.asarray(mdp["P"], jnp.float32),
        R=jnp.asarray(mdp["R"], jnp.float32),
        mu0=jnp.asarray(mdp["mu0"], jnp.float32),
        gamma=gamma,
        max_steps_in_episode=int(mdp["horizon"]),
    )
    return FiniteHorizonMDP(S, A, int(mdp["horizon"]), params), params


def gamble_mdp(
    horizon: int = 3, safe: float = 1.0, win: float = 4.0, loss: float = -2.0, p_win: float = 0.6
) -> dict[str, Any]:
    """The repeated gamble as arrays: `P, R [3, 2, 3]`, `mu0 [3]`, `gamma = 1`, `horizon`.

    Action 0 (safe) pays `safe` and goes to state 0; action 1 (risky) pays `win` (state 1) with
    probability `p_win`, else `loss` (state 2).
    """
    if not 0.0 < p_win < 1.0:
        raise ValueError(f"p_win must be in (0, 1), got {p_win}")
    P = np.zeros((3, 2, 3))
    R = np.zeros((3, 2, 3))
    P[:, 0, 0] = 1.0
    R[:, 0, :] = safe
    P[:, 1, 1], P[:, 1, 2] = p_win, 1.0 - p_win
    R[:, 1, 1], R[:, 1, 2] = win, loss
    R[:, 1, 0] = 0.0
    mu0 = np.array([1.0, 0.0, 0.0])
    return {"P": P, "R": R, "mu0": mu0, "gamma": 1.0, "horizon": int(horizon)}


def homeostasis_mdp(
    horizon: int = 6, disturbance_probs: tuple[float, float, float] = (0.5, 0.3, 0.2)
) -> dict[str, Any]:
    """The regulation task as arrays: `P, R [3, 3, 3]`, `mu0 [3]`, `gamma = 1`, `horizon`.

    Action `a` pushes by `a - 1`; next state `e' + 1` records the disturbance `e'` drawn with
    `disturbance_probs` over `(-1, 0, +1)`; reward `R[s, a, s'] = (a - 1) + (s' - 1)`.
    """
    q = np.asarray(disturbance_probs, np.float64)
    if q.shape != (3,) or np.any(q < 0) or not np.isclose(q.sum(), 1.0):
        raise ValueError(f"disturbance_probs must be 3 probabilities, got {disturbance_probs}")
    P = np.broadcast_to(q, (3, 3, 3)).copy()
    d = np.arange(3)[None, :, None] - 1.0
    e = np.arange(3)[None, None, :] - 1.0
    R = np.broadcast_to(d + e, (3, 3, 3)).copy()
    mu0 = np.array([0.0, 1.0, 0.0])
    return {"P": P, "R": R, "mu0": mu0, "gamma": 1.0, "horizon": int(horizon)}


def gamble(**kwargs: Any) -> tuple[FiniteHorizonMDP, EnvParams]:
    """Factory for `jaxrl.envs.make("Gamble-v0")`; kwargs go to `gamble_mdp`."""
    return make_finite_horizon(gamble_mdp(**kwargs))


def homeostasis(**kwargs: Any) -> tuple[FiniteHorizonMDP, EnvParams]:
    """Factory for `jaxrl.envs.make("Homeostasis-v0")`; kwargs go to `homeostasis_mdp`."""
    return make_finite_horizon(homeostasis_mdp(**kwargs))


def stock_necessity_mdp() -> dict[str, Any]:
    """A task where the optimum needs the stock: `P, R [5, 2, 5]`, `mu0`, `gamma = 1`, H = 3.

    From state 0 the first step pays +1 (state 1) or -1 (state 2) w.p. 1/2 whatever the action;
    both go to state 3 (reward 0); there action 0 (safe) pays 0 and action 1 (risky) pays +2 or
    -2 w.p. 1/2. Objective `P(G >= 1)`: with the stock the optimum is 0.75 (safe after +1, risky
    after -1); state 3 at t = 2 is the same for both histories, so every Markov policy of
    (state, time) reaches at most 0.5 (the stock-necessity example of "Optimizing Return
    Distributions with Distributional Dynamic Programming", sec. 3).
    """
    P = np.zeros((5, 2, 5))
    R = np.zeros((5, 2, 5))
    P[0, :, 1] = P[0, :, 2] = 0.5
    R[0, :, 1], R[0, :, 2] = 1.0, -1.0
    P[1, :, 3] = P[2, :, 3] = 1.0
    P[4, :, 4] = 1.0
    P[3, 0, 4] = 1.0  # safe: 0
    P[3, 1, 0] = P[3, 1, 1] = 0.5  # risky: +2 / -2 (the episode ends right after)
    R[3, 1, 0], R[3, 1, 1] = 2.0, -2.0
    return {"P": P, "R": R, "mu0": np.eye(5)[0], "gamma": 1.0, "horizon": 3}


def stock_necessity() -> tuple[FiniteHorizonMDP, EnvParams]:
    """Factory for `jaxrl.envs.make("StockNecessity-v0")` (see `stock_necessity_mdp`)."""
    return make_finite_horizon(stock_necessity_mdp())
