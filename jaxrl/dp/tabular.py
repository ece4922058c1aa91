"""Exact distributional DP with stock augmentation on finite-horizon finite MDPs (paper sec. 3-5).

With a finite horizon `H` and deterministic rewards `R[s, a, s']`, the stock takes finitely many
values. We index it by the discounted reward so far `g_t = sum_{u<t} gamma^u r_u` (the stock is
`c_t = gamma^{-t} (c_0 + g_t)`), enumerate the reachable sets `g_t` exactly (`exact_stocks`), and
represent every return distribution by its probabilities over the finite set of achievable total
returns `G` (so `c_0 + G` is what the objective scores): no projection error. Backward induction

    eta_t(s, g, a) = sum_{s'} P[s, a, s'] eta_{t+1}(s', g + gamma^t R[s, a, s'], a*_{t+1})
    a*_t(s, g)     = argmax_a  E_{G ~ eta_t(s, g, a)} f(c_0 + G)       (time-indexed greedy)

is vectorized over states x stocks x actions x atoms and jitted (float64). The CVaR objective
searches the stock start `c_0 = -b` over the achievable returns (one scalar `b` shared by all
initial states: the objective is a functional of the law of G under `mu0`), which is exact.

Public API: MDP, validate_mdp, mdp_from_params, ExactStocks, exact_stocks, ExactSolution,
solve_exact (value iteration), policy_iteration_exact, evaluate_exact (distributional policy
evaluation of a stock policy), classic_value_iteration (scalar, for the mean check).
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.dp.memory import check_memory, exact_memory_bytes
from jaxrl.dp.objectives import Objective, objective_value
from jaxrl.envs.finite_mdp import validate_finite_mdp

TOL = 1e-9  # two returns closer than this are the same atom


class MDP(NamedTuple):
    """A finite MDP (float64 NumPy): P, R `[S, A, S]`, mu0 `[S]`, gamma, horizon (0 = inf)."""

    P: np.ndarray
    R: np.ndarray
    mu0: np.ndarray
    gamma: float
    horizon: int


def validate_mdp(P, R, mu0, gamma, horizon, terminal=None) -> MDP:
    """Checks the arrays of a finite MDP for DP; raises ValueError naming the array and the problem.

    The checks are `jaxrl.envs.finite_mdp.validate_finite_mdp` (the one validator shared with the
    environments), plus DP's own condition that an infinite horizon (`horizon` 0) needs
    `gamma < 1`. `R` may be `[S, A, S]` or `[S, A]` (broadcast over s').
    `terminal` (optional `[S]` bool): entering such a state ends the episode, as in
    `jaxrl.envs.finite_mdp.FiniteMDP`. DP makes every terminal state absorbing with zero reward
    (`P[s, a] = e_s`, `R[s, a, :] = 0`), so the reward of the transition INTO a terminal state
    counts and nothing after it; `mu0` may not put mass on a terminal state (the environment
    would act from it once, DP would not).
    """
    m = validate_finite_mdp(P, R, mu0, gamma, horizon, terminal)
    if m.horizon == 0 and m.gamma >= 1.0:
        raise ValueError("gamma must be < 1 when horizon is 0 (infinite horizon)")
    P, R = m.P, m.R
    if m.terminal.any():
        P, R = P.copy(), R.copy()
        P[m.terminal] = np.eye(P.shape[0])[m.terminal][:, None, :]
        R[m.terminal] = 0.0
    return MDP(P, R, m.mu0, m.gamma, m.horizon)


def mdp_from_params(params) -> MDP:
    """`MDP` from `jaxrl.envs.finite_mdp.FiniteMDPParams` (horizon = max_steps_in_episode).

    `params.terminal` is honoured: terminal states become absorbing with zero reward
    (`validate_mdp`), so DP and the environment score the same returns.
    """
    h = int(params.max_steps_in_episode)
    term = getattr(params, "terminal", None)
    term = None if term is None else np.asarray(term)
    return validate_mdp(params.P, params.R, params.mu0, params.gamma,
                        0 if h >= 2**31 - 1 else h, term)


def _unique(x: np.ndarray) -> np.ndarray:
    x = np.sort(np.asarray(x, np.float64).ravel())
    if x.size == 0:
        return x
    return x[np.concatenate([[True], np.diff(x) > TOL])]


def _index(values: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.clip(np.searchsorted(values, x - TOL), 0, values.size - 1).astype(np.int32)


class ExactStocks(NamedTuple):
    """Exact stock sets of a finite-horizon MDP.

    Attributes:
      prefix: `H + 1` sorted arrays `g_t [N_t]` of reachable discounted rewards so far
        (union over states); `prefix[H]` is the set of achievable returns G.
      reachable: `H + 1` bool arrays `[S, N_t]`: (s, g) reachable at time t from supp(mu0).
      next_index: `H` int32 arrays `[S, A, S, N_t]`: index of `g + gamma^t R[s, a, s']` in
        `prefix[t + 1]` (clipped, meaningful where reachable and P > 0).
    """

    prefix: list
    reachable: list
    next_index: list


def exact_stocks(mdp: MDP, max_atoms: int = 200_000) -> ExactStocks:
    """Enumerates the reachable stock sets (see `ExactStocks`). Raises if they exceed max_atoms."""
    if mdp.horizon < 1:
        raise ValueError("exact stock sets need a finite horizon >= 1")
    S = mdp.P.shape[0]
    per_state = [np.zeros(1) if mdp.mu0[s] > 0 else np.zeros(0) for s in range(S)]
    prefix, reach, nxt = [], [], []
    for t in range(mdp.horizon):
        g = _unique(np.concatenate(per_state))
        prefix.append(g)
        reach.append(np.stack([_mask(g, per_state[s]) for s in range(S)]))
        new = [[] for _ in range(S)]
        for s in range(S):
            if per_state[s].size == 0:
                continue
            for a in range(mdp.P.shape[1]):
                for sp in np.nonzero(mdp.P[s, a] > 0)[0]:
                    new[sp].append(per_state[s] + mdp.gamma**t * mdp.R[s, a, sp])
        per_state = [_unique(np.concatenate(v)) if v else np.zeros(0) for v in new]
        if sum(v.size for v in per_state) > max_atoms:
            raise ValueError(f"exact stock sets exceed max_atoms={max_atoms} at t={t + 1}; use the "
                             "grid solver (jaxrl.dp.grid) or fewer distinct rewards")
    g_final = _unique(np.concatenate(per_state))
    prefix.append(g_final)
    reach.append(np.stack([_mask(g_final, per_state[s]) for s in range(S)]))
    for t in range(mdp.horizon):
        x = prefix[t][None, None, None, :] + mdp.gamma**t * mdp.R[..., None]
        nxt.append(_index(prefix[t + 1], x))
    return ExactStocks(prefix, reach, nxt)


def _mask(values: np.ndarray, subset: np.ndarray) -> np.ndarray:
    m = np.zeros(values.size, bool)
    if subset.size:
        m[_index(values, subset)] = True
    return m


def _bucket(n: int) -> int:
    return max(128, 1 << (int(n) - 1).bit_length())  # similar MDPs share one compile


class _Padded(NamedTuple):
    P: jax.Array  # [S, A, S]
    mu0: jax.Array  # [S]
    nxt: jax.Array  # [H, S, A, S, Nm] int32
    values: jax.Array  # [N] achievable returns (padded with the last one)
    n_valid: int


def _guard(mdp: MDP, st: ExactStocks, solver: str) -> None:
    S, A = mdp.P.shape[:2]
    n = max(g.size for g in st.prefix)
    check_memory(solver, exact_memory_bytes(S, A, mdp.horizon, n),
                 f"S={S}, A={A}, H={mdp.horizon}, {n} stock values, quadratic in them; "
                 "jaxrl.dp.scalar.solve_scalar is linear")


def _padded(mdp: MDP, st: ExactStocks, solver: str = "the exact solver") -> _Padded:
    _guard(mdp, st, solver)
    H = mdp.horizon
    nm = _bucket(max(g.size for g in st.prefix))
    nxt = np.zeros((H,) + mdp.P.shape + (nm,), np.int32)
    for t in range(H):
        n = st.prefix[t].size
        nxt[t, ..., :n] = st.next_index[t]
        nxt[t, ..., n:] = st.next_index[t][..., -1:]
    g = st.prefix[H]
    values = np.concatenate([g, np.full(nm - g.size, g[-1])])
    return _Padded(jnp.asarray(mdp.P), jnp.asarray(mdp.mu0), jnp.asarray(nxt),
                   jnp.asarray(values), g.size)


@partial(jax.jit, static_argnames=("score", "fixed"))
def _backward(P, mu0, nxt, x, policy, score, fixed):
    """Backward induction over exact stocks (scan over t, padded).

    P `[S, A, S]`, mu0 `[S]`, nxt `[H, S, A, S, Nm]`, x `[Nm]` = c_0 + achievable returns,
    policy `[H, S, Nm]` (used when `fixed`). Returns (law `[Nm]`, policies `[H, S, Nm]`).
    """
    S = P.shape[0]
    nm = nxt.shape[-1]
    V0 = jnp.broadcast_to(jnp.eye(nm, dtype=P.dtype), (S, nm, nm))  # eta_H: delta at the return
    sp = jnp.arange(S)[None, None, :, None]

    def step(V, xs):
        idx, pol = xs
        Q = jnp.einsum("sap,sapnk->snak", P, V[sp, idx])  # [S, Nm, A, Nm]
        a = pol if fixed else jnp.argmax(score(x, Q), axis=-1)
        return jnp.take_along_axis(Q, a[:, :, None, None], axis=2)[:, :, 0, :], a

    V, pols = jax.lax.scan(step, V0, (nxt, policy), reverse=True)
    return mu0 @ V[:, 0, :], pols


@partial(jax.jit, static_argnames=("score",))
def _cvar_search(P, mu0, nxt, values, policy, alpha, score):
    def value_of_b(b):
        law, _ = _backward(P, mu0, nxt, values - b, policy, score, False)
        return b + (law @ jnp.minimum(values - b, 0.0)) / alpha

    return jax.lax.map(value_of_b, values)


class ExactSolution(NamedTuple):
    """Result of the exact finite-horizon solvers.

    Attributes:
      objective_value: optimal value of the objective from mu0 (over history-dependent policies).
      c0: stock start of the optimal policy (cvar: -b).
      b: the CVaR threshold (alpha-VaR of the optimal return), None for other objectives.
      policy: `[H, S, Nmax]` int32 action at (time, state, stock index); -1 = padding.
      stocks: `[H, Nmax]` stock value `c_t = gamma^{-t}(c0 + g)` of each stock index; NaN padding.
      reachable: `[H, S, Nmax]` bool, the (t, s, stock) entries reachable from mu0.
      returns: `[N]` achievable returns G (sorted).
      return_probs: `[N]` law of G under the optimal policy from mu0.
    """

    objective_value: float
    c0: float
    b: float | None
    policy: np.ndarray
    stocks: np.ndarray
    reachable: np.ndarray
    returns: np.ndarray
    return_probs: np.ndarray


def _pack(mdp, st, c0, b, value, policies, law) -> ExactSolution:
    H, S = mdp.horizon, mdp.P.shape[0]
    nmax = max(g.size for g in st.prefix[:H])
    policy = -np.ones((H, S, nmax), np.int32)
    stocks = np.full((H, nmax), np.nan)
    reach = np.zeros((H, S, nmax), bool)
    for t in range(H):
        n = st.prefix[t].size
        policy[t, :, :n] = np.asarray(policies[t])[:, :n]
        stocks[t, :n] = (c0 + st.prefix[t]) / mdp.gamma**t
        reach[t, :, :n] = st.reachable[t]
    return ExactSolution(float(value), float(c0), b, policy, stocks, reach, st.prefix[H],
                         np.asarray(law, np.float64))


def solve_exact(mdp: MDP, objective: Objective, stocks: ExactStocks | None = None
                ) -> ExactSolution:
    """Optimal policy and value for a finite-horizon MDP by exact distributional VI.

    Args:
      mdp: a finite-horizon MDP (`horizon >= 1`).
      objective: from `jaxrl.dp.make_objective`. For 'cvar' the stock start `c_0 = -b` is
        searched over all achievable returns b (exact, one b shared by every initial state).
      stocks: precomputed `exact_stocks(mdp)` (optional).

    Returns:
      `ExactSolution` (float64 values).
    """
    if mdp.horizon < 1:
        raise ValueError("solve_exact needs a finite horizon; use jaxrl.dp.grid for horizon 0")
    st = exact_stocks(mdp) if stocks is None else stocks
    with jax.enable_x64(True):
        pd = _padded(mdp, st, "solve_exact")
        zero = jnp.zeros(pd.nxt.shape[:2] + pd.nxt.shape[-1:], jnp.int32)
        score = objective.score_fn()
        if objective.name == "cvar":
            vals = np.asarray(_cvar_search(pd.P, pd.mu0, pd.nxt, pd.values, zero,
                                           objective.alpha, score))[: pd.n_valid]
            i = int(np.argmax(vals))
            b = float(st.prefix[mdp.horizon][i])
            law, pols = _backward(pd.P, pd.mu0, pd.nxt, pd.values - b, zero, score, False)
            return _pack(mdp, st, -b, b, float(vals[i]), pols, law[: pd.n_valid])
        c0 = objective.c0
        law, pols = _backward(pd.P, pd.mu0, pd.nxt, pd.values + c0, zero, score, False)
        law = law[: pd.n_valid]
        value = float(objective_value(objective, jnp.asarray(st.prefix[mdp.horizon]), law))
        return _pack(mdp, st, c0, None, value, pols, law)


def _policy_to_padded(policy: np.ndarray, nm: int) -> jax.Array:
    H, S, n = policy.shape
    out = np.zeros((H, S, nm), np.int32)
    out[:, :, :n] = np.maximum(policy, 0)
    return jnp.asarray(out)


def evaluate_exact(mdp: MDP, policy: np.ndarray, *,
                   stocks: ExactStocks | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Distributional policy evaluation of a stock policy `[H, S, Nmax]` (as in ExactSolution;
    indexed by stock index, so no initial stock is needed). `stocks`: `exact_stocks(mdp)` if
    None. Returns `(returns [N], probs [N])`, the exact law of G from mu0.
    """
    st = exact_stocks(mdp) if stocks is None else stocks
    with jax.enable_x64(True):
        pd = _padded(mdp, st, "evaluate_exact")
        pol = _policy_to_padded(np.asarray(policy), pd.nxt.shape[-1])
        law, _ = _backward(pd.P, pd.mu0, pd.nxt, pd.values, pol, None, True)
    return st.prefix[mdp.horizon], np.asarray(law[: pd.n_valid])


@partial(jax.jit, static_argnames=("score",))
def _improve(P, mu0, nxt, x, policy, score):
    """One policy-iteration step: evaluate `policy` backwards and improve it at every (t,s,g)."""
    S = P.shape[0]
    nm = nxt.shape[-1]
    V0 = jnp.broadcast_to(jnp.eye(nm, dtype=P.dtype), (S, nm, nm))
    sp = jnp.arange(S)[None, None, :, None]

    def step(V, xs):
        idx, pol = xs
        Q = jnp.einsum("sap,sapnk->snak", P, V[sp, idx])
        sc = score(x, Q)
        old = jnp.take_along_axis(sc, pol[..., None], -1)[..., 0]
        new = jnp.where(old >= sc.max(-1) - 1e-12, pol, jnp.argmax(sc, -1))
        return jnp.take_along_axis(Q, pol[:, :, None, None], axis=2)[:, :, 0, :], new

    _, new = jax.lax.scan(step, V0, (nxt, policy), reverse=True)
    return new


@partial(jax.jit, static_argnames=("score", "max_iterations"))
def _pi_solve(P, mu0, nxt, x, score, max_iterations):
    """Policy iteration from the all-zeros policy until stable: (policy, law, iterations)."""
    pol0 = jnp.zeros(nxt.shape[:2] + nxt.shape[-1:], jnp.int32)

    def cond(c):
        _, done, it = c
        return (~done) & (it < max_iterations)

    def body(c):
        pol, _, it = c
        new = _improve(P, mu0, nxt, x, pol, score)
        return new.astype(jnp.int32), jnp.all(new == pol), it + 1

    pol, _, it = jax.lax.while_loop(cond, body, (pol0, jnp.asarray(False), 0))
    law, _ = _backward(P, mu0, nxt, x, pol, None, True)
    return pol, law, it


@partial(jax.jit, static_argnames=("n_valid", "score", "max_iterations"))
def _pi_cvar_search(P, mu0, nxt, values, returns, n_valid, alpha, score, max_iterations):
    """Policy iteration for every b in `returns`: (RU values, policies, laws, iterations)."""
    def one(b):
        pol, law, it = _pi_solve(P, mu0, nxt, values - b, score, max_iterations)
        return b + (law[:n_valid] @ jnp.minimum(returns - b, 0.0)) / alpha, pol, law, it

    return jax.lax.map(one, returns)


def policy_iteration_exact(mdp: MDP, objective: Objective, b: float | None = None,
                           max_iterations: int = 100) -> tuple[ExactSolution, int]:
    """Distributional policy iteration on the exact stock-augmented MDP (finite horizon).

    Evaluates the current time-indexed policy exactly, improves it greedily at every
    (t, s, stock) (keeping the old action on ties), until stable. For 'cvar' the outer search
    over b is its own: policy iteration is run for every achievable return b (c_0 = -b) and the
    b with the largest Rockafellar-Uryasev value `b + E[min(G - b, 0)] / alpha` of its policy's
    law is kept (independent of `solve_exact`); a given `b` solves that inner problem only.
    Returns (solution, iterations of the kept b).
    """
    st = exact_stocks(mdp)
    with jax.enable_x64(True):
        pd = _padded(mdp, st, "policy_iteration_exact")
        score = objective.score_fn()
        returns = jnp.asarray(st.prefix[mdp.horizon])
        if objective.name == "cvar" and b is None:
            ru, pols, laws, its = _pi_cvar_search(pd.P, pd.mu0, pd.nxt, pd.values, returns,
                                                  pd.n_valid, objective.alpha, score,
                                                  max_iterations)
            i = int(np.argmax(np.asarray(ru)))
            b, policy, law, it = float(returns[i]), pols[i], laws[i], int(its[i])
        else:
            c0 = -b if objective.name == "cvar" else objective.c0
            policy, law, it = _pi_solve(pd.P, pd.mu0, pd.nxt, pd.values + c0, score,
                                        max_iterations)
            it = int(it)
        c0 = -b if objective.name == "cvar" else objective.c0
        law = law[: pd.n_valid]
        value = float(objective_value(objective, returns, law))
    return _pack(mdp, st, c0, b, value, policy, law), it


def classic_value_iteration(mdp: MDP, tol: float = 1e-12, max_iterations: int = 100_000
                            ) -> tuple[np.ndarray, np.ndarray]:
    """Classic (scalar) VI: finite horizon by backward induction, else to convergence.

    Returns `(v0 [S], policy)` with `v0` the optimal expected return from each state at t=0 and
    `policy` `[H, S]` (finite) or `[S]` (discounted). Float64 NumPy.
    """
    P, R, g = mdp.P, mdp.R, mdp.gamma
    r = (P * R).sum(-1)  # [S, A]
    if mdp.horizon > 0:
        v = np.zeros(P.shape[0])
        pol = []
        for t in reversed(range(mdp.horizon)):
            q = g**t * r + P @ v
            pol.append(q.argmax(-1))
            v = q.max(-1)
        return v, np.stack(pol[::-1])
    v = np.zeros(P.shape[0])
    for _ in range(max_iterations):
        q = r + g * (P @ v)
        v_new = q.max(-1)
        if np.max(np.abs(v_new - v)) < tol:
            v = v_new
            break
        v = v_new
    return v, (r + g * (P @ v)).argmax(-1)
