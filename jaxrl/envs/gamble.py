"""Small finite-horizon tasks for the stock-augmented deep agent (DηN), with exact answers.

Both tasks are finite MDPs `(P [S,A,S'], R [S,A,S'], mu0 [S], horizon)` with deterministic
transition rewards, so the exact optimum of any stock-augmented objective is computable by the
tabular distributional DP (`jaxrl.dp.tabular`) or by brute force. The library's one finite-MDP
environment, `jaxrl.envs.finite_mdp.FiniteMDP` with `time_indexed=True`, runs them in pure JAX;
its observation is `concat(one_hot(s), one_hot(t))`,
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

import numpy as np

from jaxrl.envs.finite_mdp import FiniteMDP, FiniteMDPParams, make_finite_mdp


def make_finite_horizon(mdp: dict[str, Any]) -> tuple[FiniteMDP, FiniteMDPParams]:
    """`(env, params)` for an MDP dict with `P`, `R`, `mu0`, `horizon` and optional `gamma`
    (default 1; see `gamble_mdp`): the time-indexed `jaxrl.envs.finite_mdp.FiniteMDP`
    (observation `concat(one_hot(s), one_hot(t))`, termination at `t = horizon`), checked by the
    one validator `validate_finite_mdp`. The env's `default_params` are these params."""
    return make_finite_mdp(mdp["P"], mdp["R"], mdp["mu0"], mdp.get("gamma", 1.0),
                           mdp["horizon"], time_indexed=True)


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


def gamble(**kwargs: Any) -> tuple[FiniteMDP, FiniteMDPParams]:
    """Factory for `jaxrl.envs.make("Gamble-v0")`; kwargs go to `gamble_mdp`."""
    return make_finite_horizon(gamble_mdp(**kwargs))


def homeostasis(**kwargs: Any) -> tuple[FiniteMDP, FiniteMDPParams]:
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


def stock_necessity() -> tuple[FiniteMDP, FiniteMDPParams]:
    """Factory for `jaxrl.envs.make("StockNecessity-v0")` (see `stock_necessity_mdp`)."""
    return make_finite_horizon(stock_necessity_mdp())
