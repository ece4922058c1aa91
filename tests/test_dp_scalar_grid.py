"""Scalar stock-augmented VI on a stock grid (`jaxrl.dp.scalar.scalar_grid_value_iteration`,
issue 21 item 3) against independent truths: the exact finite-horizon stock DP
(`solve_scalar`, exact stocks, no grid) and, for the discounted fixed point, the exact DP
truncated at a horizon whose tail is below the tolerance. The MDPs have gamma = 1/2 and integer
rewards on a grid of step 1/4 (or 1), so every next stock 2 (c + r) is a grid point or lies beyond
the grid where V is linear: the grid solution is then exact, and a scale, sign or index error
in the recursion shows at 1e-6."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl import dp
from jaxrl.distributions import utilities as U
from jaxrl.dp import grid
from jaxrl.dp.objectives import Objective
from jaxrl.dp.scalar import homogeneity_degree, scalar_grid_value_iteration


def _mdp(horizon, seed=0, S=3, A=2):
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.ones(S), size=(S, A))
    R = rng.choice([-1.0, 0.0, 1.0], size=(S, A, S))
    return dp.validate_mdp(P, R, np.ones(S) / S, 0.5, horizon)


def _uniform_mdp(seed, S, A, gamma, mu0=None):
    """Random P, real rewards uniform on [-1, 1], discounted."""
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.ones(S), size=(S, A))
    R = rng.uniform(-1.0, 1.0, size=(S, A, S))
    return dp.validate_mdp(P, R, np.ones(S) / S if mu0 is None else mu0, gamma, 0)


def _exact(mdp, objective, s):
    """E f(c0 + G) from state s, optimal over history-dependent policies (exact stocks)."""
    one = mdp._replace(mu0=np.eye(mdp.P.shape[0])[s])
    return dp.solve_scalar(one, objective).objective_value


@pytest.mark.parametrize("name,f", [("hinge", U.cvar_hinge), ("target", U.negative_abs),
                                    ("threshold", U.step)])
def test_finite_horizon_equals_exact_stock_dp(name, f):
    # H sweeps from V_0 = f are the H-step optimum; next stocks stay on the integer grid
    mdp = _mdp(3)
    stocks = np.arange(-40.0, 41.0)
    sol = scalar_grid_value_iteration(mdp, Objective(name, f), stocks, dtype=np.float32)
    assert sol.converged and sol.sweeps == 3
    for s in range(3):
        for c0 in (-3.0, -1.0, 0.0, 2.0):
            truth = _exact(mdp, Objective(name, f, c0), s)
            assert sol.values[s, int(c0) + 40] == pytest.approx(truth, abs=1e-6), (s, c0)


def test_discounted_fixed_point_equals_truncated_exact_dp():
    # |V_inf - V_H| <= gamma^H max|r| / (1 - gamma) = 2^-13 for H = 14 (f is 1-Lipschitz); the
    # grid [-4, 4] covers [-G_max, -G_min] = [-2, 2], so the linear extension beyond it is exact
    mdp = _mdp(0, seed=1, S=2)
    stocks = np.linspace(-4.0, 4.0, 33)
    with jax.enable_x64(True):
        sol = scalar_grid_value_iteration(mdp, dp.make_objective("cvar", alpha=0.3), stocks,
                                          tol=1e-9, dtype=np.float64)
    assert sol.converged and sol.sweeps < 60
    H = 14
    for s in range(2):
        for c0 in (-2.5, -1.0, -0.25, 0.5):
            truth = _exact(mdp._replace(horizon=H), Objective("hinge", U.cvar_hinge, c0), s)
            j = int(np.flatnonzero(stocks == c0)[0])
            assert sol.values[s, j] == pytest.approx(truth, abs=2.0**-13), (s, c0)
    # the CVaR outer search over b = -c_j: b + mu0 . V(., -b) / alpha at the best grid b
    v0 = mdp.mu0 @ sol.values
    assert sol.objective_value == pytest.approx(np.max(-stocks + v0 / 0.3), abs=1e-12)
    assert sol.b == pytest.approx(-stocks[np.argmax(-stocks + v0 / 0.3)])


def test_mean_is_stock_plus_classic_values_between_grid_points():
    # f(x) = x: V(s, c) = c + v*(s) (v*: classic optimal values), linear in c, so interpolation
    # between grid neighbours (weights != 0 here: gamma = 0.9, real rewards) and the extension
    # beyond the grid are exact
    mdp = _uniform_mdp(2, 4, 3, 0.9)
    stocks = np.linspace(-3.0, 3.0, 13)
    with jax.enable_x64(True):
        sol = scalar_grid_value_iteration(mdp, dp.make_objective("mean"), stocks, tol=1e-11,
                                          dtype=np.float64)
    v_star = dp.classic_value_iteration(mdp)[0]
    np.testing.assert_allclose(sol.values, stocks[None, :] + v_star[:, None], atol=1e-9)


def test_greedy_policy_agrees_with_the_distributional_grid_solver():
    # an independent implementation of the same control problem (return distributions on 121
    # atoms, the stock only choosing actions): the same greedy action on every (state, stock)
    # pair where the distributional solver's two actions are not near-tied (a gap > 1e-5 in
    # E f; on near-ties either action is optimal to that precision and the two solvers break
    # them differently: 35 of the 147 pairs here) and CVaR values within the grids' error
    mdp = _uniform_mdp(3, 4, 2, 0.8)
    obj = dp.make_objective("cvar", alpha=0.25)
    stocks, support = np.linspace(-6.0, 6.0, 49), np.linspace(-6.0, 6.0, 121)
    sol = scalar_grid_value_iteration(mdp, obj, stocks, tol=1e-7, dtype=np.float32)
    ref = dp.grid_value_iteration(mdp, obj, stocks, support, tol=1e-6)
    assert sol.converged and ref.converged
    dU = grid.utility_weights(obj.utility, jnp.asarray(stocks, jnp.float32),
                              jnp.asarray(support, jnp.float32))
    q = np.asarray(jnp.einsum("sjak,jk->sja", jnp.asarray(ref.F), dU))
    clear = np.abs(q[..., 0] - q[..., 1]) > 1e-5
    assert clear.sum() >= 100
    np.testing.assert_array_equal(sol.policy[clear], ref.policy[clear])
    assert sol.objective_value == pytest.approx(ref.objective_value, abs=0.02)


def test_refuses_what_the_recursion_cannot_solve():
    assert homogeneity_degree(U.cvar_hinge) == 1 and homogeneity_degree(U.step) == 0
    with pytest.raises(ValueError, match="positively homogeneous"):
        scalar_grid_value_iteration(_mdp(0), dp.make_objective("utility", risk=1.0),
                                    np.linspace(-2, 2, 9))
    with pytest.raises(ValueError, match="degree-0"):
        scalar_grid_value_iteration(_mdp(0), dp.make_objective("threshold", threshold=0.0),
                                    np.linspace(-2, 2, 9))


def test_grid_policy_evaluation_mean_equals_linear_solve():
    # a stock-free policy pi(s) on every stock: E[G] from mu0 is mu0 (I - gamma P_pi)^-1 r_pi;
    # |G| <= 5 and gamma z stays inside [-10, 10], so the C51 projection keeps the mean exactly
    S, mu0 = 4, np.array([0.1, 0.2, 0.3, 0.4])
    mdp = _uniform_mdp(4, S, 2, 0.8, mu0)
    P, R, pi = mdp.P, mdp.R, np.array([1, 0, 1, 1])
    stocks, support = np.linspace(-4.0, 4.0, 9), np.linspace(-10.0, 10.0, 81)
    Ppi, rpi = P[np.arange(S), pi], (P * R).sum(-1)[np.arange(S), pi]
    truth = mu0 @ np.linalg.solve(np.eye(S) - 0.8 * Ppi, rpi)
    ev = dp.grid_policy_evaluation(mdp, dp.make_objective("mean"), np.repeat(pi[:, None], 9, 1),
                                   stocks, support, tol=1e-7)
    assert ev.converged and ev.objective_value == pytest.approx(truth, abs=1e-4)
    assert ev.return_probs @ support == pytest.approx(truth, abs=1e-4)
