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

Discounted problems on a stock grid (`scalar_grid_value_iteration`): for a positively homogeneous
f of degree k (f(lambda x) = lambda^k f(x), lambda > 0: k = 1 for x, min(x, 0), -|x|; k = 0 for
1{x >= 0}) the stock recursion c' = (c + r) / gamma (paper sec. 3; the reduction of Bäuerle &
Ott 2011 for CVaR) gives E f(c + r + gamma G') = gamma^k E f(c' + G'), so the value
V(s, c) = sup_pi E f(c + G) solves the scalar Bellman equation on (state, stock)

    V(s, c) = max_a sum_{s'} P[s, a, s'] gamma^k V(s', (c + R[s, a, s']) / gamma),

a gamma^k-contraction (k = 1; for k = 0 only the finite-n iterates are exact), iterated from
V_0 = f: n sweeps give the n-step optimum sup E f(c + sum_{u<n} gamma^u r_u) exactly wherever the
stocks stay on the grid. Inside the grid the next stock is read by linear interpolation between
its two grid neighbours (`jaxrl.dp.grid.stock_interpolation`, as the distributional grid solver).
Outside it, V is extended linearly with the asymptotic slopes of f (k = 1: -f(-1) below the grid,
f(1) above; k = 0: flat): for c <= -G_max (c >= -G_min) the sign of c + G is sure, so
V(s, c) = -f(-1) (c + v*(s)) (f(1) (c + v*(s)), v* the optimal mean value) is linear in c and
the extension is exact when the grid covers [-G_max, -G_min]. Clipping the stock instead (what
the distributional solver does, where the stock only chooses actions) is wrong here: at c_0 it
gives V(s, c_0) = gamma max_a sum P V(s', c_0), i.e. V -> 0 for CVaR (the value of a sure
non-negative return). The grid solution is an approximation like the distributional one; the
distributional solvers evaluate the law of the chosen policy.

Every solver checks its memory estimate in bytes first (`jaxrl.dp.memory`).

Public API: solve_scalar, solve_var, forward_law, best_markov_value (the stock-free bound),
ScalarGridSolution, scalar_grid_value_iteration, homogeneity_degree.
"""

from __future__ import annotations

import warnings
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.dp.grid import _check_grid, stock_interpolation, tie_argmax
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


def homogeneity_degree(f, name: str = "f") -> int:
    """k in {0, 1} with f(lambda x) = lambda^k f(x) for lambda > 0 (checked at lambda = 2 and
    1/gamma-like 1.25 on points of [-4, 4] in float64); ValueError naming `name` otherwise."""
    x = np.linspace(-4.0, 4.0, 33)
    with jax.enable_x64(True):
        fx = np.asarray(f(jnp.asarray(x)), np.float64)
        for k in (1, 0):
            if all(np.allclose(np.asarray(f(jnp.asarray(lam * x)), np.float64), lam**k * fx,
                               rtol=1e-9, atol=1e-12) for lam in (2.0, 1.25)):
                return k
    raise ValueError(f"scalar_grid_value_iteration needs a positively homogeneous utility "
                     f"(f(lambda x) = lambda^k f(x), k = 0 or 1); {name} is not")


class ScalarGridSolution(NamedTuple):
    """Result of `scalar_grid_value_iteration` (NumPy, the solver's dtype).

    Attributes:
      values: `[S, NC]` V(s, c_j) = max_a E f(c_j + G) from state s with stock c_j (grid approx.).
      policy: `[S, NC]` int32 greedy action (stationary; finite horizon: the first step's).
      stocks: `[NC]` the stock grid. objective_value: from mu0 (cvar: max over b = -c_j of
        b + mu0 . V(., -b) / alpha, the grid search of `jaxrl.dp.grid`; else mu0 . V(., c0) read by
        linear interpolation). c0: the stock start used; b: the CVaR threshold (else None).
      sweeps: sweeps done; converged: sup |V_new - V| < tol (finite horizon: always True);
      residual: the last sup-norm change.
    """

    values: np.ndarray
    policy: np.ndarray
    stocks: np.ndarray
    objective_value: float
    c0: float
    b: float | None
    sweeps: int
    converged: bool
    residual: float


def _scalar_q(V: jax.Array, idx: jax.Array, w0: jax.Array, w1: jax.Array, bias: jax.Array
              ) -> jax.Array:
    """Q `[S, A, NC]` = bias + sum_s' w0 V[s', lo] + w1 V[s', lo + 1] (idx = s' NC + lo, flat)."""
    Vf = V.reshape(-1)
    return bias + (w0 * Vf[idx] + w1 * Vf[idx + 1]).sum(2)


@partial(jax.jit, static_argnames=("max_sweeps",))
def _scalar_iterate(V0, idx, w0, w1, bias, tol, max_sweeps):
    def cond(c):
        _, err, n = c
        return (err >= tol) & (n < max_sweeps)

    def body(c):
        V, _, n = c
        V_new = _scalar_q(V, idx, w0, w1, bias).max(1)
        return V_new, jnp.max(jnp.abs(V_new - V)), n + 1

    V, err, n = jax.lax.while_loop(cond, body, (V0, jnp.asarray(jnp.inf, V0.dtype), 0))
    policy = tie_argmax(jnp.swapaxes(_scalar_q(V, idx, w0, w1, bias), 1, 2))  # [S, NC]
    return V, policy, n, err


def scalar_grid_value_iteration(mdp: MDP, objective: Objective, stocks, *, tol: float = 1e-6,
                                max_sweeps: int = 1000, dtype=jnp.float32
                                ) -> ScalarGridSolution:
    """Scalar stock-augmented VI on (state, stock grid) for `E f(c_0 + G)`, f positively
    homogeneous (module docstring): the optimal CVaR policy without return distributions.

    Args:
      mdp: discounted (horizon 0: sweeps until sup |V_new - V| < tol, at most max_sweeps; a
        one-line RuntimeWarning at the cap) or finite horizon H (exactly H sweeps from V_0 = f:
        the H-step optimum on the grid, policy of the first step).
      objective: expected utility with a homogeneous f (`homogeneity_degree`); cvar uses
        f = min(x, 0) for every b = -c_j at once (one solve serves the whole outer search).
      stocks: `[NC]` uniform grid (the distributional grid solver's `stocks`).
      dtype: float32 or float64 (float64 needs `jax.enable_x64`).

    Cost per sweep: 2 S A S' NC multiply-adds (the distributional sweep: about 2 K T times more).
    """
    if objective.score is not None or objective.utility is None:
        raise ValueError("scalar_grid_value_iteration needs an expected-utility objective")
    k = homogeneity_degree(objective.utility, f"objective {objective.name!r}'s utility")
    if mdp.horizon == 0 and k == 0:
        raise ValueError("a degree-0 utility (e.g. threshold) gives no contraction when "
                         "discounted; use a finite horizon")
    c = np.asarray(stocks, np.float64)
    _check_grid(c, "stocks")
    S, A, _ = mdp.P.shape
    check_memory("scalar_grid_value_iteration", 4 * 8 * S * A * S * c.size + 8 * S * A * c.size,
                 f"S={S}, A={A}, {c.size} stocks")
    lo, w = stock_interpolation(mdp.R, c, mdp.gamma)  # [S, A, S', NC]
    scale = mdp.gamma**k * mdp.P[..., None]
    idx = jnp.asarray(np.arange(S)[None, None, :, None] * c.size + lo, jnp.int32)
    w0, w1 = (jnp.asarray(scale * x, dtype) for x in (1.0 - w, w))
    # linear extension beyond the grid (module docstring): slope -f(-1) below, f(1) above
    with jax.enable_x64(True):
        f_pm = np.asarray(objective.utility(jnp.asarray([-1.0, 1.0])), np.float64)
    slope_lo, slope_hi = (-f_pm[0], f_pm[1]) if k == 1 else (0.0, 0.0)
    cn = (c + mdp.R[..., None]) / mdp.gamma  # unclipped next stocks [S, A, S', NC]
    excess = slope_lo * np.minimum(cn - c[0], 0.0) + slope_hi * np.maximum(cn - c[-1], 0.0)
    bias = jnp.asarray((scale * excess).sum(2), dtype)  # [S, A, NC]
    V0 = jnp.broadcast_to(objective.utility(jnp.asarray(c, dtype)), (S, c.size)).astype(dtype)
    finite = mdp.horizon > 0
    n_max = mdp.horizon if finite else int(max_sweeps)
    V, policy, n, err = _scalar_iterate(V0, idx, w0, w1, bias, 0.0 if finite else tol, n_max)
    V, policy, res = np.asarray(V), np.asarray(policy), float(err)
    converged = finite or res < tol
    if not converged:
        warnings.warn(f"scalar_grid_value_iteration did not converge: value change {res:.3g} >= "
                      f"tol {tol:g} after max_sweeps={max_sweeps}", RuntimeWarning, stacklevel=2)
    v0 = mdp.mu0 @ np.asarray(V, np.float64)  # [NC]
    if objective.name == "cvar":
        vals = -c + v0 / objective.alpha
        j = int(np.argmax(vals))
        value, c0, b = float(vals[j]), float(c[j]), float(-c[j])
    else:
        c0, b = float(objective.c0), None
        value = float(np.interp(c0, c, v0))
    return ScalarGridSolution(V, policy, c, value, c0, b, int(n), bool(converged),
                              0.0 if finite else res)
