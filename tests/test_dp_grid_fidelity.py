"""Grid DP against independent truths (issue 18, items 2, 3, 6): the start law Proj(delta_0),
the gamma^t rescaling of the finite-horizon greedy (a non-homogeneous utility on grids that
are exact, vs the exact solver, itself tested against brute force), and the converged flag."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl import dp
from jaxrl.dp import grid


def test_start_is_the_c51_projection_of_delta_0():
    # one state, reward 0.3, H = 1; 4 atoms on [-1, 1]: E[G] = 0.3 (C51 keeps the mean inside
    # the support); a delta at the first atom >= 0 (1/3) gave 0.633
    mdp = dp.validate_mdp(np.ones((1, 1, 1)), np.full((1, 1, 1), 0.3), np.ones(1), 1.0, 1)
    with jax.enable_x64(True):
        sol = grid.grid_value_iteration(mdp, dp.make_objective("mean"), np.linspace(-1, 1, 3),
                                        np.linspace(-1, 1, 4), dtype=jnp.float64)
    assert abs(sol.support @ sol.return_probs - 0.3) < 1e-12
    np.testing.assert_allclose(np.diff(grid.delta0_cdf(np.linspace(-1, 1, 4)), prepend=0),
                               [0, 0.5, 0.5, 0])


def test_finite_horizon_greedy_rescales_by_gamma_t():
    # every step: safe (0) or gamble (+1 w.p. 0.6, -1 w.p. 0.4); gamma = 0.5, H = 3; exp
    # utility beta = 1 (constant absolute risk aversion: the choice ignores wealth). The gamble
    # at time t pays gamma^t (+-1), so it is taken iff 0.6 e^{-x} + 0.4 e^{x} < 1, x = gamma^t,
    # i.e. x < ln 1.5 = 0.405: only at t = 2 (x = 0.25). Without the gamma^t rescaling of the
    # greedy the agent would see x = 1 at every step and never gamble. The grids are exact
    # (stocks 2^t g_t are integers, returns multiples of 0.25).
    from jaxrl.envs.gamble import gamble_mdp

    m = gamble_mdp(horizon=3, safe=0.0, win=1.0, loss=-1.0, p_win=0.6)
    mdp = dp.validate_mdp(m["P"], m["R"], m["mu0"], 0.5, 3)
    obj = dp.make_objective("utility", utility="exp", risk=1.0)
    with jax.enable_x64(True):
        g = grid.grid_value_iteration(mdp, obj, np.arange(-8.0, 9.0), np.arange(-2, 2.25, 0.25),
                                      dtype=jnp.float64)
    truth = (1 - (0.6 * np.exp(-0.25) + 0.4 * np.exp(0.25))) / 1.0  # E u(G), gamble at t=2 only
    assert abs(g.objective_value - truth) < 1e-9, (g.objective_value, truth)
    assert g.policy[0, 0, 8] == 0 and g.policy[2, 0, 8] == 1  # stock 0: safe at t=0, gamble t=2


def _cvar_mdp(i):
    rng = np.random.default_rng(0)
    for _ in range(i + 1):
        P = rng.dirichlet(np.ones(4), size=(4, 2))
        R = rng.uniform(-1.5, 1.5, size=(4, 2, 4))
    return dp.validate_mdp(P, R, np.ones(4) / 4, 0.9, 0)


def test_value_iteration_reports_convergence():
    obj = dp.make_objective("cvar", alpha=0.25)
    c, z = np.linspace(-10, 10, 16), np.linspace(-10, 10, 21)
    # near-tied greedy actions: converges with the sticky tie tolerance (plain argmax: cycled
    # to the cap with a value change of 3e-5 in float32)
    sol = grid.grid_value_iteration(_cvar_mdp(5), obj, c, z, tol=1e-6, max_sweeps=400)
    assert sol.converged and sol.residual < 1e-6 and sol.sweeps < 400
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        sol = grid.grid_value_iteration(_cvar_mdp(5), obj, c, z, tol=1e-6, max_sweeps=5)
    assert not sol.converged and sol.residual >= 1e-6 and sol.sweeps == 5
    msgs = [str(x.message) for x in w if issubclass(x.category, RuntimeWarning)]
    assert len(msgs) == 1 and "did not converge" in msgs[0] and "\n" not in msgs[0]


@pytest.mark.parametrize("dtype", [jnp.float32])
def test_tie_argmax_is_lowest_within_tolerance(dtype):
    q = jnp.asarray([[1.0, 1.0 + 1e-7, 0.5], [0.0, 0.1, 0.1]], dtype)
    np.testing.assert_array_equal(np.asarray(grid.tie_argmax(q)), [0, 1])
