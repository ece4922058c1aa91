"""Finite MDPs as gymnax environments, built from arrays, plus a seeded random-MDP generator.

`FiniteMDP` samples `s_0 ~ mu0`, `s_{t+1} ~ P[s_t, a_t, :]`, reward `R[s_t, a_t, s_{t+1}]`
(a `[S, A]` reward table is broadcast over `s'`). Observations are one-hot `[S]` float32
(`obs="onehot"`, default) or the state index (`obs="index"`, int32 scalar). Time is kept in the
state; by default an episode is truncated (not terminated) at `params.max_steps_in_episode` (the
horizon), a time limit of an infinite-horizon task. States listed in `params.terminal` terminate
the episode when entered (the reward of that transition counts; `jaxrl.dp.mdp_from_params` makes
them absorbing with zero reward, the same returns).

Finite-horizon tasks (`time_indexed=True`, needs a horizon H and `obs="onehot"`): the observation
is `concat(one_hot(s, S), one_hot(t, H))` (all-zero time part at t = H) and the episode
TERMINATES at t = H (no bootstrapping past the horizon). This is the MDP that finite-horizon DP
solves: its optimal policy is indexed by time, so a deep agent needs the time in its input to
represent it (and a true end at H, not a truncation it would bootstrap through).

The same `FiniteMDPParams` arrays are what the tabular solvers in `jaxrl.dp` read (`P`, `R`,
`mu0`, `gamma`, `horizon`), so a DP solution and a deep agent can run on one MDP.

Public API: FiniteMDP, FiniteMDPParams, FiniteMDPState, FiniteMDPArrays, validate_finite_mdp,
make_finite_mdp, random_mdp, random_mdp_env (factory for `jaxrl.envs.make`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

INFINITE_HORIZON_STEPS = 2**31 - 1


@struct.dataclass
class FiniteMDPState(environment.EnvState):
    """`state`: current state index (int32 scalar); `time`: steps taken in the episode."""

    state: jax.Array
    time: jax.Array


@struct.dataclass
class FiniteMDPParams(environment.EnvParams):
    """Arrays of a finite MDP.

    Attributes:
      P: `[S, A, S]` transition probabilities (rows sum to one).
      R: `[S, A, S]` deterministic rewards of the transition `(s, a, s')`.
      mu0: `[S]` initial-state distribution.
      terminal: `[S]` bool, entering such a state terminates the episode.
      gamma: discount in (0, 1] (not used by `step`; read by agents and DP).
      max_steps_in_episode: horizon `H` (truncation); `INFINITE_HORIZON_STEPS` for none.
    """

    P: jax.Array = None
    R: jax.Array = None
    mu0: jax.Array = None
    terminal: jax.Array = None
    gamma: float = 1.0
    max_steps_in_episode: int = INFINITE_HORIZON_STEPS


class FiniteMDPArrays(NamedTuple):
    """Checked arrays of a finite MDP (float64 NumPy): `P, R [S, A, S]` (rows of `P` renormalised
    to sum to one exactly), `mu0 [S]` (normalised), `terminal [S]` bool, `gamma`, `horizon`
    (0 = infinite)."""

    P: np.ndarray
    R: np.ndarray
    mu0: np.ndarray
    terminal: np.ndarray
    gamma: float
    horizon: int


def validate_finite_mdp(P, R, mu0, gamma: float = 1.0, horizon: int = 0, terminal=None
                        ) -> FiniteMDPArrays:
    """The one validator of finite-MDP arrays (used by `make_finite_mdp`, the tasks in
    `jaxrl.envs.gamble` and `jaxrl.dp.validate_mdp`).

    `R` may be `[S, A, S]` or `[S, A]` (broadcast over s'); `horizon` 0 means infinite;
    `terminal` optional `[S]` bool (0/1), `mu0` may not put mass on a terminal state.

    Raises:
      ValueError: one line naming the array, the index and the problem (shape, NaN/inf, negative
        or non-normalised rows of P or mu0, gamma outside (0, 1], a non-integer or negative
        horizon, mu0 on a terminal state).
    """
    P = np.asarray(P, dtype=np.float64)
    R = np.asarray(R, dtype=np.float64)
    mu0 = np.asarray(mu0, dtype=np.float64)
    if P.ndim != 3 or P.shape[0] != P.shape[2] or P.shape[0] < 1 or P.shape[1] < 1:
        raise ValueError(f"P must have shape [S, A, S] with S, A >= 1, got shape {P.shape}")
    S, A, _ = P.shape
    if R.shape == (S, A):
        R = np.broadcast_to(R[:, :, None], (S, A, S))
    if R.shape != (S, A, S):
        raise ValueError(f"R must have shape {(S, A, S)} (or {(S, A)}) to match P, got {R.shape}")
    R = R.copy()
    if mu0.shape != (S,):
        raise ValueError(f"mu0 must have shape {(S,)} to match P, got {mu0.shape}")
    for name, arr in (("P", P), ("R", R), ("mu0", mu0)):
        bad = ~np.isfinite(arr)
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(f"{name} contains NaN/inf (first at index {where})")
    if (P < 0).any():
        where = tuple(int(i) for i in np.argwhere(P < 0)[0])
        raise ValueError(f"P has a negative entry at index {where}")
    rows = P.sum(-1)
    if not np.allclose(rows, 1.0, atol=1e-6):
        s, a = (int(i) for i in np.argwhere(~np.isclose(rows, 1.0, atol=1e-6))[0])
        raise ValueError(f"P rows must sum to 1: P[{s}, {a}, :] sums to {rows[s, a]:.6g}")
    if (mu0 < 0).any() or abs(mu0.sum() - 1.0) > 1e-6:
        raise ValueError(f"mu0 must be non-negative and sum to 1, sums to {mu0.sum():.6g}")
    g = float(np.asarray(gamma))
    if not np.isfinite(g) or not 0.0 < g <= 1.0:
        raise ValueError(f"gamma must be in (0, 1], got {gamma}")
    h = np.asarray(horizon)
    if h.ndim != 0 or not np.isfinite(h) or float(h) != int(h) or int(h) < 0:
        raise ValueError(f"horizon must be an integer >= 0 (0 = infinite), got {horizon}")
    if terminal is None:
        term = np.zeros(S, bool)
    else:
        term = np.asarray(terminal)
        if term.shape != (S,):
            raise ValueError(f"terminal must have shape {(S,)} to match P, got {term.shape}")
        if term.dtype.kind not in "biu" or not np.isin(term, (0, 1)).all():
            raise ValueError(f"terminal must be a bool (0/1) array, got dtype {term.dtype}")
        term = term.astype(bool)
        if (mu0[term] > 0).any():
            s = int(np.nonzero(term & (mu0 > 0))[0][0])
            raise ValueError(f"mu0 puts mass {mu0[s]:.6g} on terminal state {s}; an episode "
                             "cannot start in a terminal state")
    return FiniteMDPArrays(P / rows[..., None], R, mu0 / mu0.sum(), term, g, int(h))


def make_finite_mdp(P, R, mu0, gamma: float = 1.0, horizon: int = 0, terminal=None,
                    obs: str = "onehot", time_indexed: bool = False
                    ) -> tuple[FiniteMDP, FiniteMDPParams]:
    """Builds `(env, params)` from arrays; `R` may be `[S, A, S]` or `[S, A]`; horizon 0 = none.

    `terminal`: optional `[S]` bool; `mu0` may not put mass on a terminal state.
    `time_indexed`: time in the observation and termination at the horizon (module docstring).

    Raises:
      ValueError: from `validate_finite_mdp` (naming the array and the problem), or for
        time_indexed without a horizon or with obs="index".
    """
    m = validate_finite_mdp(P, R, mu0, gamma, horizon, terminal)
    if time_indexed and (m.horizon < 1 or obs != "onehot"):
        raise ValueError(f"time_indexed needs a horizon >= 1 and obs='onehot', got horizon "
                         f"{horizon}, obs {obs!r}")
    S, A, _ = m.P.shape
    params = FiniteMDPParams(
        P=jnp.asarray(m.P, jnp.float32), R=jnp.asarray(m.R, jnp.float32),
        mu0=jnp.asarray(m.mu0, jnp.float32), terminal=jnp.asarray(m.terminal), gamma=m.gamma,
        max_steps_in_episode=m.horizon if m.horizon > 0 else INFINITE_HORIZON_STEPS)
    env = FiniteMDP(S, A, obs=obs, default=params, horizon=m.horizon if time_indexed else 0)
    return env, params


class FiniteMDP(environment.Environment[FiniteMDPState, FiniteMDPParams]):
    """A finite MDP given by arrays (see module docstring). `horizon > 0`: time-indexed (the
    time one-hot in the observation, termination at t = horizon); 0: plain."""

    def __init__(self, num_states: int, num_actions: int, obs: str = "onehot",
                 default: FiniteMDPParams | None = None, horizon: int = 0):
        super().__init__()
        if obs not in ("onehot", "index"):
            raise ValueError(f"obs must be 'onehot' or 'index', got {obs!r}")
        if horizon and obs != "onehot":
            raise ValueError("a time-indexed FiniteMDP needs obs='onehot'")
        self.num_states, self._num_actions, self.obs_mode = num_states, num_actions, obs
        self.horizon = int(horizon)
        self._default = default

    @property
    def default_params(self) -> FiniteMDPParams:
        if self._default is None:
            raise ValueError("FiniteMDP has no default params: build it with make_finite_mdp")
        return self._default

    def _obs(self, s: jax.Array, t: jax.Array) -> jax.Array:
        if self.obs_mode == "onehot":
            o = jax.nn.one_hot(s, self.num_states, dtype=jnp.float32)
            if self.horizon:
                o = jnp.concatenate([o, jax.nn.one_hot(t, self.horizon, dtype=jnp.float32)])
            return o
        return s.astype(jnp.int32)

    def step_env(self, key: jax.Array, state: FiniteMDPState, action, params: FiniteMDPParams
                 ) -> tuple[jax.Array, FiniteMDPState, jax.Array, jax.Array, dict[str, Any]]:
        probs = params.P[state.state, action]
        s_next = jax.random.choice(key, self.num_states, p=probs).astype(jnp.int32)
        reward = params.R[state.state, action, s_next].astype(jnp.float32)
        new = FiniteMDPState(state=s_next, time=state.time + 1)
        terminated = self.is_terminated(new, params)
        return self._obs(s_next, new.time), new, reward, terminated, {"discount": 1.0 - terminated}

    def reset_env(self, key: jax.Array, params: FiniteMDPParams
                  ) -> tuple[jax.Array, FiniteMDPState]:
        s0 = jax.random.choice(key, self.num_states, p=params.mu0).astype(jnp.int32)
        return self._obs(s0, jnp.int32(0)), FiniteMDPState(state=s0, time=jnp.int32(0))

    def get_obs(self, state: FiniteMDPState, params=None, key=None) -> jax.Array:
        return self._obs(state.state, state.time)

    def is_terminated(self, state: FiniteMDPState, params: FiniteMDPParams) -> jax.Array:
        done = params.terminal[state.state]
        if self.horizon:
            done = jnp.logical_or(done, state.time >= self.horizon)
        return done

    @property
    def name(self) -> str:
        return "FiniteMDP"

    @property
    def num_actions(self) -> int:
        return self._num_actions

    def action_space(self, params: FiniteMDPParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(self._num_actions)

    def observation_space(self, params: FiniteMDPParams | None = None):
        if self.obs_mode == "onehot":
            return spaces.Box(0.0, 1.0, (self.num_states + self.horizon,), jnp.float32)
        return spaces.Discrete(self.num_states)

    def state_space(self, params: FiniteMDPParams | None = None):
        return spaces.Dict({"state": spaces.Discrete(self.num_states),
                            "time": spaces.Discrete(INFINITE_HORIZON_STEPS)})


def random_mdp(key: jax.Array, num_states: int, num_actions: int, *, gamma: float = 0.9,
               horizon: int = 0, reward_values=None, reward_scale: float = 1.0,
               concentration: float = 1.0, branching: int | None = None, obs: str = "onehot",
               time_indexed: bool = False) -> tuple[FiniteMDP, FiniteMDPParams]:
    """Seeded random finite MDP.

    P[s, a] ~ Dirichlet(concentration) over `branching` random successors (all states if None);
    rewards R[s, a, s'] ~ U[-reward_scale, reward_scale], or drawn uniformly from the finite set
    `reward_values` if given (keeps the exact stock set small for finite-horizon DP);
    mu0 ~ Dirichlet(1). Same key -> same MDP. `time_indexed` as in `make_finite_mdp`.
    """
    if num_states < 1 or num_actions < 1:
        raise ValueError(f"need num_states, num_actions >= 1, got {num_states}, {num_actions}")
    k_p, k_succ, k_r, k_mu = jax.random.split(key, 4)
    S, A = num_states, num_actions
    P = jax.random.dirichlet(k_p, jnp.full((S,), concentration), (S, A))
    if branching is not None and branching < S:
        scores = jax.random.uniform(k_succ, (S, A, S))
        kth = jnp.sort(scores, axis=-1)[..., S - branching][..., None]
        P = jnp.where(scores >= kth, P, 0.0)
        P = P / P.sum(-1, keepdims=True)
    if reward_values is None:
        R = jax.random.uniform(k_r, (S, A, S), minval=-reward_scale, maxval=reward_scale)
    else:
        vals = jnp.asarray(reward_values, jnp.float32)
        R = vals[jax.random.randint(k_r, (S, A, S), 0, vals.shape[0])]
    mu0 = jax.random.dirichlet(k_mu, jnp.ones((S,)))
    P = np.asarray(P, np.float64)
    P = P / P.sum(-1, keepdims=True)
    mu0 = np.asarray(mu0, np.float64)
    return make_finite_mdp(P, np.asarray(R, np.float64), mu0 / mu0.sum(), gamma, horizon, obs=obs,
                           time_indexed=time_indexed)


def random_mdp_env(seed: int = 0, num_states: int = 4, num_actions: int = 2, **kwargs
                   ) -> tuple[FiniteMDP, FiniteMDPParams]:
    """`random_mdp(PRNGKey(seed), ...)`: a factory for `jaxrl.envs.make` (kwargs as random_mdp)."""
    return random_mdp(jax.random.PRNGKey(seed), num_states, num_actions, **kwargs)
