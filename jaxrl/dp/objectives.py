"""Objectives of stock-augmented return-distribution optimization (paper sec. 4-5).

An objective maximizes a functional of the law of `G` (the discounted return from `mu0`). The
ones distributional DP on the stock-augmented MDP optimizes are expected utilities
`E[f(c_0 + G)]` (indifference to mixtures, sec. 4), solved with a time-indexed greedy policy for
finite horizons; a stationary greedy policy (discounted, infinite horizon) additionally needs the
ranking of `f` to be unchanged by `x -> gamma x` (positively homogeneous `f`).

| name | f(x) | stock start c_0 | value reported |
|---|---|---|---|
| mean | x | 0 | E[G] (equals classic VI) |
| cvar | min(x, 0) | -b, outer max over one scalar b | max_b b + E[min(G-b, 0)]/alpha |
| target | -abs(x) | -target | -E|G - target| (homeostatic regulation) |
| threshold | 1{x >= 0} | -tau | P(G >= tau) |
| utility | u(x) given (exp: (1-exp(-beta x))/beta) | 0 | E[u(G)] |

Refused with ValueError (not optimizable by this DP): mean-variance / variance / Sharpe (not
expected utilities: they violate indifference to mixtures), per-step greedy CVaR without the outer
search over b, and non-homogeneous utilities with a stationary greedy policy and gamma < 1.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import NamedTuple

import jax

from jaxrl.distributions import utilities as U

# A score maps (values [N], probs [..., N]) -> [...] (higher is better).
Score = Callable[[jax.Array, jax.Array], jax.Array]

REFUSED = {
    "mean_variance": "mean-variance is not an expected utility (it is not indifferent to "
    "mixtures: Var of a mixture is not the mixture of Vars), so greedy distributional DP does "
    "not optimize it (paper sec. 4)",
    "variance": "variance is not an expected utility (not indifferent to mixtures, paper sec. 4)",
    "sharpe": "the Sharpe ratio is not an expected utility (not indifferent to mixtures)",
    "per_step_cvar": "greedy CVaR of law(c + Z) at every step without the outer search over the "
    "stock start b is not indifferent to mixtures and is suboptimal; use objective='cvar', which "
    "does the outer search over one shared scalar b (paper sec. 5)",
    "cvar_greedy": "see 'per_step_cvar': use objective='cvar' (outer search over b)",
}


class Objective(NamedTuple):
    """An objective for the stock-augmented DP.

    Attributes:
      name: 'mean', 'cvar', 'target', 'threshold', 'utility' (or a custom name).
      utility: f, applied elementwise to `c_0 + G` (scores are E[f]); None if `score` is given.
      c0: stock start (for 'cvar' the outer search sets c_0 = -b and this is ignored).
      homogeneous: ranking of f unchanged by positive scaling (allows a stationary greedy).
      alpha: CVaR level (cvar only).
      param: the threshold / target / risk parameter, for reporting.
      score: optional generic functional `score(values [N], probs [..., N]) -> [...]` replacing
        E[f]; constructing an Objective with it directly bypasses the safety checks of
        `make_objective` (used by tests for negative controls).
    """

    name: str
    utility: Callable[[jax.Array], jax.Array] | None
    c0: float = 0.0
    homogeneous: bool = True
    alpha: float | None = None
    param: float | None = None
    score: Score | None = None

    def score_fn(self) -> Score:
        """Greedy score of the law of `c_0 + G` given as (values [N], probs [..., N])."""
        if self.score is not None:
            return self.score
        return _expected_utility_score(self.utility)


@lru_cache(maxsize=256)
def _expected_utility_score(f):  # cached so that jit sees one static object per utility
    return lambda values, probs: probs @ f(values)


def make_objective(name: str, *, alpha: float | None = None, threshold: float | None = None,
                   target: float | None = None, utility: str | Callable | None = None,
                   risk: float | None = None, homogeneous: bool | None = None) -> Objective:
    """Builds an objective by name (see the module table); refuses what DP cannot optimize.

    Args:
      name: 'mean' | 'cvar' (needs alpha in (0, 1]) | 'threshold' (needs threshold) |
        'target' or 'homeostatic' (needs target) | 'utility' (utility='exp' with risk=beta, or a
        callable with `homogeneous` given).

    Raises:
      ValueError: unknown or refused objective, or a missing/out-of-range parameter.
    """
    key = name.lower().replace("-", "_")
    if key in REFUSED:
        raise ValueError(f"objective {name!r} is refused: {REFUSED[key]}")
    if key == "mean":
        return Objective("mean", U.identity, 0.0, True)
    if key == "cvar":
        if alpha is None or not 0.0 < float(alpha) <= 1.0:
            raise ValueError(f"cvar needs alpha in (0, 1], got {alpha}")
        return Objective("cvar", U.cvar_hinge, 0.0, True, alpha=float(alpha))
    if key == "threshold":
        if threshold is None:
            raise ValueError("threshold objective needs --threshold=T (maximizes P(G >= T))")
        return Objective("threshold", U.step, -float(threshold), True, param=float(threshold))
    if key in ("target", "homeostatic"):
        if target is None:
            raise ValueError(f"{name} objective needs target (minimizes E|G - target|)")
        return Objective("target", U.negative_abs, -float(target), True, param=float(target))
    if key == "utility":
        if utility == "exp" or utility is None:
            if risk is None:
                raise ValueError("utility='exp' needs risk=beta (u(x) = (1 - exp(-beta x))/beta)")
            beta = float(risk)
            return Objective("utility", U.exponential(beta), 0.0, beta == 0.0, param=beta)
        if callable(utility):
            if homogeneous is None:
                raise ValueError("a callable utility needs homogeneous=True/False declared")
            return Objective("utility", utility, 0.0, bool(homogeneous))
        raise ValueError(f"unknown utility {utility!r}; known: 'exp' or a callable")
    raise ValueError(f"unknown objective {name!r}; known: mean, cvar, threshold, target, utility; "
                     f"refused: {sorted(REFUSED)}")


def check_stationary(objective: Objective, gamma: float) -> None:
    """Refuses a stationary greedy policy for a non-homogeneous f when gamma < 1 (sec. 4)."""
    if gamma < 1.0 and not objective.homogeneous:
        raise ValueError(
            f"objective {objective.name!r} has a utility whose ranking changes under x -> gamma x; "
            f"with gamma={gamma} < 1 a stationary greedy policy on the stock-augmented MDP is not "
            "optimal (paper sec. 4). Use a finite horizon (time-indexed greedy) instead.")


def objective_value(objective: Objective, returns: jax.Array, probs: jax.Array) -> jax.Array:
    """The reported value of the objective for the law of G given as (returns [N], probs [N])."""
    if objective.name == "cvar":
        from jaxrl.distributions import FiniteSupport, cvar
        return cvar(FiniteSupport(returns, probs), objective.alpha)
    return objective.score_fn()(objective.c0 + returns, probs)
