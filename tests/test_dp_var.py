"""VaR: the order statistic in float32 (issue 18, item 4) and VaR optimization by threshold DP
with an outer search (item 8), against brute-force enumeration of history-dependent policies."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.distributions import FiniteSupport, value_at_risk


def test_empirical_var_is_the_order_statistic_in_float32():
    # alpha * n integer: the lower alpha-quantile of n equally weighted samples is the
    # (alpha n)-th smallest; a fixed 1e-12 tolerance returned the next one in float32
    rng = np.random.default_rng(0)
    bad = 0
    for n in (10, 30, 97):
        x = rng.normal(size=n).astype(np.float32)
        law = FiniteSupport(jnp.asarray(x), jnp.full((n,), 1.0 / n, jnp.float32))
        k = np.arange(1, n + 1)
        var = jax.jit(jax.vmap(lambda a, law=law: value_at_risk(law, a)))(jnp.asarray(k / n))
        bad += int((np.asarray(var) != np.sort(x)[k - 1]).sum())
    assert bad == 0
    # a genuine gap is not swallowed: alpha just above a cumulative probability
    law = FiniteSupport(jnp.asarray([0.0, 1.0], jnp.float32), jnp.asarray([0.5, 0.5], jnp.float32))
    assert float(value_at_risk(law, 0.51)) == 1.0 and float(value_at_risk(law, 0.5)) == 0.0


_LAWS = {}


def _brute(mdp, kind, param):
    import os
    import sys
    sys.path.insert(0, os.path.dirname(__file__))
    from test_dp_exact import all_policy_laws, brute_force
    if kind != "var":
        return brute_force(mdp.P, mdp.R, mdp.mu0, mdp.gamma, mdp.horizon, kind, param)[0]
    key = mdp.P.tobytes() + mdp.R.tobytes() + bytes(str(mdp.gamma), "ascii")
    if key not in _LAWS:
        _LAWS[key] = all_policy_laws(mdp.P, mdp.R, mdp.mu0, mdp.gamma, mdp.horizon)
    atoms, probs = _LAWS[key]
    best = -np.inf
    for x, p in zip(atoms, probs, strict=True):  # lower quantile of each law, NumPy
        o = np.argsort(x)
        k = np.searchsorted(np.cumsum(p[o]), param - 1e-12)
        best = max(best, x[o][min(k, x.size - 1)])
    return best


def _mdps():
    from jaxrl import dp
    rng = np.random.default_rng(7)
    out = []
    for gamma in (1.0, 0.9):
        P = rng.dirichlet(np.ones(2), size=(2, 2))
        R = rng.choice([-1.0, 0.0, 1.0, 2.0], size=(2, 2, 2))
        out.append(dp.validate_mdp(P, R, np.array([0.6, 0.4]), gamma, 3))
    return out


def test_scalar_stock_vi_equals_brute_force():
    from jaxrl import dp
    from jaxrl.dp.scalar import solve_scalar
    for mdp in _mdps():
        G = dp.exact_stocks(mdp).prefix[3]
        tau = float(np.median(G))
        for kind, param, obj in (("cvar", 0.3, dp.make_objective("cvar", alpha=0.3)),
                                 ("threshold", tau, dp.make_objective("threshold", threshold=tau)),
                                 ("target", 0.5, dp.make_objective("target", target=0.5))):
            sol = solve_scalar(mdp, obj)
            assert abs(sol.objective_value - _brute(mdp, kind, param)) < 1e-9, kind
            # the reported law is the policy's own (distributional evaluation, independent path)
            ret, law = dp.evaluate_exact(mdp, sol.policy)
            np.testing.assert_allclose(law, sol.return_probs, atol=1e-12)


def test_var_optimization_equals_brute_force():
    from jaxrl.dp.scalar import solve_var
    for mdp in _mdps():
        for alpha in (0.1, 0.4, 0.75):
            sol = solve_var(mdp, alpha)
            assert abs(sol.objective_value - _brute(mdp, "var", alpha)) < 1e-12, alpha
            x, p = sol.returns, sol.return_probs  # the policy's own law attains it
            assert abs(x[np.searchsorted(np.cumsum(p), alpha - 1e-12)] - sol.objective_value
                       ) < 1e-12
    # P(G >= tau) exactly 1 - alpha must fail the test: one step, safe +1 or a fair coin
    # +4 / -2; VaR_0.5 is 1 (safe), the coin's lower median is -2, not 4
    from jaxrl import dp
    from jaxrl.envs.gamble import gamble_mdp
    m = gamble_mdp(horizon=1, p_win=0.5)
    mdp = dp.validate_mdp(m["P"], m["R"], m["mu0"], 1.0, 1)
    assert solve_var(mdp, 0.5).objective_value == 1.0 == _brute(mdp, "var", 0.5)


def test_every_solver_checks_its_memory_estimate(monkeypatch):
    import pytest

    import jaxrl.dp.memory as M
    from jaxrl import dp
    from jaxrl.dp import grid
    from jaxrl.dp.scalar import solve_scalar, solve_var
    mdp = _mdps()[0]
    obj = dp.make_objective("mean")
    monkeypatch.setattr(M, "MEMORY_FRACTION", 1e-15)  # a limit of a few bytes
    g = np.linspace(-1, 1, 3)
    for name, call in (
            ("solve_exact", lambda: dp.solve_exact(mdp, obj)),
            ("evaluate_exact", lambda: dp.evaluate_exact(mdp, np.zeros((3, 2, 8), np.int32))),
            ("policy_iteration_exact", lambda: dp.policy_iteration_exact(mdp, obj)),
            ("solve_scalar", lambda: solve_scalar(mdp, obj)),
            ("solve_var", lambda: solve_var(mdp, 0.5)),
            ("the grid solver", lambda: grid.grid_value_iteration(mdp, obj, g, g))):
        with pytest.raises(ValueError, match=f"{name} needs ~.* bytes.*the limit is"):
            call()
