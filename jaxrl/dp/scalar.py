"""Scalar stock-augmented dynamic programming for control (paper sec. 4-5, the reduction).

For an objective `E f(c_0 + G)` the optimal policy of a finite-horizon MDP is found by ordinary
(scalar) backward induction on the stock-augmented state `(s, g)`, `g = sum_{u<t} gamma^u r_u`
(the exact stock sets of `jaxrl.dp.tabular.exact_stocks`), with the value `f` at the horizon:

    V_H(s, g) = f(c_0 + g),
    V_t(s, g) = max_a sum_{s'} P[s, a, s'] V_{t+1}(s', g + gamma^t R[s, a, s'])

Memory and time grow linearly with the number of stock values (the distributional solver of
`jaxrl.dp.tabular` carries a law over all returns per stock: quadratic, and cubic with the CVaR
search). CVaR: for every achievable b the inner problem (f = min(x, 0), c_0 = -b) is solved
(vectorized over chunks of b) and the b of the largest `b + V_0(b) / alpha` kept. The law of G
of the chosen policy is computed exactly by pushing the mass of (s, g) forward (`forward_law`;
distributional policy evaluation, linear memory). Ties between actions: the lowest action within
`1e-12 (1 + |max|)` of the best.

VaR optimization (`solve_var`): `VaR_alpha(G) >= tau` iff `P(G >= tau) > 1 - alpha`, and
`max_pi P(G >= tau)` (threshold DP, `f = 1{x >= 0}`, `c_0 = -tau`) is non-increasing in tau, so
the optimal VaR is the largest achievable return tau passing that test: a binary search over the
sorted achievable returns (the outer search), exact over history-dependent policies.

Every solver checks its memory estimate in bytes first (`jaxrl.dp.memory`).

Public API: solve_scalar, solve_var, forward_law, best_markov_value (the stock-free bound).
"""

from __future__ import annotations

import jax
import numpy as np

from jaxrl.dp.memory import check_memory, scalar_memory_bytes
from jaxrl.dp.objectives import Objective
from jaxrl.dp.tabular import MDP, ExactSolution, ExactStocks, _pack, exact_stocks

TIE = 1e-12


def _backward(mdp: MDP, st: ExactStocks, vH: np.ndarray):
    """vH `[B, N_H]` terminal values (B problems at once). Returns (V_0 `[B, S, N_0]`, policies
    list of `[B, S, N_t]`)."""
    S = mdp.P.shape[0]
    V = np.broadcast_to(vH[:, None, :], (vH.shape[0], S, vH.shape[1]))
    sp = np.arange(S)[None, None, :, None]
    pols = []
    for t in reversed(range(mdp.horizon)):
        idx = st.next_index[t]  # [S, A, S', N_t]
        Q = np.einsum("sap,bsapn->bsan", mdp.P, V[:, sp, idx])  # [B, S, A, N_t]
        m = Q.max(2, keepdims=True)
        a = np.argmax(Q >= m - TIE * (1.0 + np.abs(m)), axis=2).astype(np.int32)
        pols.append(a)
        V = m[:, :, 0, :]
    return V, pols[::-1]


def forward_law(mdp: MDP, st: ExactStocks, policies) -> np.ndarray:
    """Exact law `[N_H]` of G from mu0 under a stock policy (`policies[t]`: `[S, N_t]` int)."""
    S = mdp.P.shape[0]
    mass = np.zeros((S, st.prefix[0].size))
    mass[:, 0] = mdp.mu0
    for t in range(mdp.horizon):
        pol = np.asarray(policies[t])[:, : st.prefix[t].size]
        new = np.zeros((S, st.prefix[t + 1].size))
        s, n = np.nonzero(mass > 0)
        a = pol[s, n]
        for sp in range(S):
            p = mdp.P[s, a, sp] * mass[s, n]
            keep = p > 0
            np.add.at(new[sp], st.next_index[t][s[keep], a[keep], sp, n[keep]], p[keep])
        mass = new
    return mass.sum(0)


def _checked_stocks(mdp: MDP, stocks: ExactStocks | None, nb: int, solver: str,
                    limit: int | None) -> ExactStocks:
    if mdp.horizon < 1:
        raise ValueError(f"{solver} needs a finite horizon >= 1")
    st = exact_stocks(mdp) if stocks is None else stocks
    S, A = mdp.P.shape[:2]
    n = max(g.size for g in st.prefix)
    check_memory(solver, scalar_memory_bytes(S, A, mdp.horizon, n, nb),
                 f"S={S}, A={A}, H={mdp.horizon}, {n} stock values, {nb} problems at once",
                 limit)
    return st


def solve_scalar(mdp: MDP, objective: Objective, stocks: ExactStocks | None = None, *,
                 chunk: int = 64, memory_limit: int | None = None) -> ExactSolution:
    """Optimal policy of `E f(c_0 + G)` by scalar VI on (t, s, stock); CVaR by the outer search.

    Args:
      mdp: finite horizon >= 1. objective: an expected-utility objective (`objective.utility`;
        a custom `score` is refused). stocks: precomputed `exact_stocks(mdp)`.
      chunk: CVaR thresholds b solved at once. memory_limit: bytes (default: half the RAM).

    Returns:
      `ExactSolution` (as `jaxrl.dp.solve_exact`; float64): value, c0, b, policy, the exact law.
    """
    if objective.score is not None or objective.utility is None:
        raise ValueError("solve_scalar needs an expected-utility objective E f(c0 + G) "
                         f"(objective {objective.name!r} has a custom score)")
    def f(x):
        with jax.enable_x64(True):
            return np.asarray(objective.utility(np.asarray(x, np.float64)), np.float64)

    cvar = objective.name == "cvar"
    st = _checked_stocks(mdp, stocks, chunk if cvar else 1, "solve_scalar", memory_limit)
    G = st.prefix[mdp.horizon]
    if cvar:
        best = (-np.inf, None)
        for i in range(0, G.size, chunk):
            b = G[i:i + chunk]
            V0, _ = _backward(mdp, st, np.minimum(G[None, :] - b[:, None], 0.0))
            ru = b + (V0[:, :, 0] @ mdp.mu0) / objective.alpha
            j = int(np.argmax(ru))
            if ru[j] > best[0] + 1e-12:
                best = (float(ru[j]), float(b[j]))
        b = best[1]
        c0 = -b
    else:
        b, c0 = None, objective.c0
    _, pols = _backward(mdp, st, f(c0 + G)[None, :])
    pols = [p[0] for p in pols]
    law = forward_law(mdp, st, pols)
    from jaxrl.distributions import FiniteSupport
    from jaxrl.distributions import cvar as cvar_fn
    if cvar:
        with jax.enable_x64(True):
            value = float(cvar_fn(FiniteSupport(G, law), objective.alpha))
    else:
        value = float(law @ f(c0 + G))
    return _pack(mdp, st, c0, b, value, pols, law)


def solve_var(mdp: MDP, alpha: float, stocks: ExactStocks | None = None, *,
              memory_limit: int | None = None) -> ExactSolution:
    """Maximizes the lower alpha-quantile VaR_alpha(G) over history-dependent policies (exact).

    Binary search over the sorted achievable returns tau for the largest with
    `max_pi P(G >= tau) > 1 - alpha` (threshold DP on the stock, module docstring). Returns an
    `ExactSolution` with `objective_value` = `b` = tau, the optimal VaR (`c0 = -tau`), the policy of
    the threshold problem at tau and its law.
    """
    if not 0.0 < float(alpha) <= 1.0:
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    st = _checked_stocks(mdp, stocks, 1, "solve_var", memory_limit)
    G = st.prefix[mdp.horizon]
    step = lambda x: (x >= -1e-9).astype(np.float64)

    def best_prob(tau):
        V0, pols = _backward(mdp, st, step(G - tau)[None, :])
        return float(mdp.mu0 @ V0[0, :, 0]), [p[0] for p in pols]

    lo, hi = 0, G.size - 1  # P(G >= G[0]) = 1 > 1 - alpha always: lo passes
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if best_prob(G[mid])[0] > 1.0 - alpha + 1e-12:
            lo = mid
        else:
            hi = mid - 1
    tau = float(G[lo])
    _, pols = best_prob(tau)
    law = forward_law(mdp, st, pols)
    return _pack(mdp, st, -tau, tau, tau, pols, law)


def best_markov_value(mdp: MDP, objective: Objective, stocks: ExactStocks | None = None,
                      max_policies: int = 1 << 16) -> tuple[float, np.ndarray]:
    """The best objective value over deterministic Markov policies `a = pi(t, s)` (no stock),
    by brute-force enumeration: the bound that a stock-free agent cannot beat.

    Finite horizon only. Enumerates every action assignment on the (t, s) pairs reachable from
    `mu0` (at most `max_policies`, else a ValueError naming the count) and evaluates each
    policy's exact law of `G` with `forward_law`. For an expected-utility objective
    (`threshold`, `target`, `utility`, `mean`) the value is multilinear in the per-(t, s) action
    probabilities, so a deterministic policy attains the best randomized Markov value too; for
    CVaR the result is the best deterministic Markov policy. Returns `(value, policy [H, S])`
    (-1 where (t, s) is unreachable).
    """
    import itertools

    from jaxrl.dp.objectives import objective_value

    st = _checked_stocks(mdp, stocks, 1, "best_markov_value", None)
    H, (S, A) = mdp.horizon, mdp.P.shape[:2]
    reach = [mdp.mu0 > 0]
    for _ in range(H - 1):
        reach.append(mdp.P[reach[-1]].sum(axis=(0, 1)) > 0)
    pairs = [(t, s) for t in range(H) for s in np.flatnonzero(reach[t])]
    if A ** len(pairs) > max_policies:
        raise ValueError(f"best_markov_value: {A ** len(pairs)} Markov policies over "
                         f"{len(pairs)} reachable (t, s) pairs exceed max_policies={max_policies}")
    best, best_pol = -np.inf, np.full((H, S), -1)
    returns = st.prefix[H]
    for actions in itertools.product(range(A), repeat=len(pairs)):
        pol = np.full((H, S), -1)
        for (t, s), a in zip(pairs, actions, strict=True):
            pol[t, s] = a
        law = forward_law(mdp, st, [np.repeat(np.maximum(pol[t], 0)[:, None], st.prefix[t].size,
                                              axis=1) for t in range(H)])
        with jax.enable_x64(True):
            value = float(objective_value(objective, returns, law))
        if value > best + TIE:
            best, best_pol = value, pol
    return best, best_pol
