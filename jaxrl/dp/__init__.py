"""Distributional dynamic programming with stock augmentation (paper: "Optimizing Return
Distributions with Distributional Dynamic Programming", 2025, sec. 3-5).

Objectives (`make_objective`): mean, cvar (outer search over one shared scalar b), target /
homeostatic, threshold, utility; refused with ValueError: mean-variance, variance, Sharpe,
per-step CVaR without the outer loop, non-homogeneous utilities with a stationary greedy policy
and gamma < 1 (see `jaxrl.dp.objectives`).

Solvers:
* exact, finite horizon (`jaxrl.dp.tabular`): `solve_exact` (distributional VI, time-indexed
  greedy, exact to float64 over history-dependent policies), `policy_iteration_exact`,
  `evaluate_exact`, `classic_value_iteration`, `exact_stocks`.
* categorical on a stock grid (`jaxrl.dp.grid`), finite horizon or discounted:
  `grid_value_iteration`, `grid_policy_iteration`, `grid_policy_evaluation` (the law of a given
  stock policy), `grid.batched_value_iteration` (many MDPs in one vmapped program),
  `make_grid_operator` + `grid_sweep` (one jitted sweep on CDFs, the benchmark operator).
* scalar on the exact stocks (`jaxrl.dp.scalar`, linear memory): `solve_scalar` (VI on
  (t, state, stock) with f at the horizon, CVaR outer search), `solve_var` (VaR optimization:
  threshold DP + binary search over tau), `forward_law` (exact law of a stock policy);
  `scalar_grid_value_iteration`: scalar VI on (state, stock grid) for discounted (or finite)
  problems with a positively homogeneous f, the fast CVaR control solver.
* memory (`jaxrl.dp.memory`): the byte estimates every solver checks first.
* quantile (`jaxrl.dp.quantile`): `quantile_policy_evaluation` (the distributional Bellman
  operator of a Markov policy on N quantile atoms, then the W1-optimal quantile projection;
  finite horizon or discounted), `quantile_bellman` (one jitted step).

Public API (the deep agent imports these):
    MDP, validate_mdp, mdp_from_params, Objective, make_objective, objective_value,
    check_stationary, REFUSED, ExactStocks, exact_stocks, ExactSolution, solve_exact,
    policy_iteration_exact, evaluate_exact, classic_value_iteration, GridOperator,
    make_grid_operator, grid_sweep, grid_sweep_probs, projection_stencil, GridSolution,
    grid_value_iteration, grid_policy_iteration, QuantileEvaluation, quantile_bellman,
    quantile_policy_evaluation, solve_scalar, solve_var, forward_law, grid_policy_evaluation,
    scalar_grid_value_iteration, ScalarGridSolution
"""

from jaxrl.dp.grid import (
    GridOperator,
    GridSolution,
    grid_policy_evaluation,
    grid_policy_iteration,
    grid_sweep,
    grid_sweep_probs,
    grid_value_iteration,
    make_grid_operator,
    projection_stencil,
)
from jaxrl.dp.objectives import (
    REFUSED,
    Objective,
    check_stationary,
    make_objective,
    objective_value,
)
from jaxrl.dp.quantile import QuantileEvaluation, quantile_bellman, quantile_policy_evaluation
from jaxrl.dp.scalar import (
    ScalarGridSolution,
    best_markov_value,
    forward_law,
    scalar_grid_value_iteration,
    solve_scalar,
    solve_var,
)
from jaxrl.dp.tabular import (
    MDP,
    ExactSolution,
    ExactStocks,
    classic_value_iteration,
    evaluate_exact,
    exact_stocks,
    mdp_from_params,
    policy_iteration_exact,
    solve_exact,
    validate_mdp,
)

__all__ = [
    "GridOperator",
    "GridSolution",
    "grid_policy_evaluation",
    "grid_policy_iteration",
    "grid_sweep",
    "grid_sweep_probs",
    "grid_value_iteration",
    "make_grid_operator",
    "projection_stencil",
    "MDP",
    "REFUSED",
    "ExactSolution",
    "ExactStocks",
    "Objective",
    "check_stationary",
    "classic_value_iteration",
    "evaluate_exact",
    "exact_stocks",
    "make_objective",
    "mdp_from_params",
    "objective_value",
    "QuantileEvaluation",
    "quantile_bellman",
    "quantile_policy_evaluation",
    "policy_iteration_exact",
    "solve_exact",
    "solve_scalar",
    "scalar_grid_value_iteration",
    "ScalarGridSolution",
    "solve_var",
    "best_markov_value",
    "forward_law",
    "validate_mdp",
]
