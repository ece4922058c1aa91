"""Exact stock-augmented distributional DP vs brute-force enumeration of history-dependent policies.

The brute force below is plain NumPy written independently of `jaxrl`: it enumerates every
deterministic history-dependent policy (restricted to the histories it reaches) as the set of
return laws it induces, then scores each law.
"""

import itertools

import jax
import numpy as np
import pytest

from jaxrl import dp
from jaxrl.dp.objectives import Objective
from jaxrl.envs.finite_mdp import random_mdp

# --------------------------------------------------------------------------- brute force (NumPy)


def all_policy_laws(P, R, mu0, gamma, H):
    """Return laws (atoms [n_pol, M], probs [n_pol, M]) of all deterministic history policies."""
    S, A, _ = P.shape
    memo = {}

    def subtree(s, t):  # laws of sum_{u>=t} gamma^u r_u from state s at time t
        if t == H:
            return [(np.zeros(1), np.ones(1))]
        if (s, t) in memo:
            return memo[(s, t)]
        laws = []
        for a in range(A):
            succ = [sp for sp in range(S) if P[s, a, sp] > 0]
            for combo in itertools.product(*[subtree(sp, t + 1) for sp in succ]):
                atoms = np.concatenate([gamma**t * R[s, a, sp] + c[0]
                                        for sp, c in zip(succ, combo, strict=True)])
                probs = np.concatenate([P[s, a, sp] * c[1]
                                        for sp, c in zip(succ, combo, strict=True)])
                laws.append((atoms, probs))
        memo[(s, t)] = laws
        return laws

    starts = [s for s in range(S) if mu0[s] > 0]
    out_a, out_p = [], []
    for combo in itertools.product(*[subtree(s, 0) for s in starts]):
        out_a.append(np.concatenate([c[0] for c in combo]))
        out_p.append(np.concatenate([mu0[s] * c[1] for s, c in zip(starts, combo, strict=True)]))
    width = max(a.size for a in out_a)  # pad with zero-probability atoms
    pad = lambda x: np.pad(x, (0, width - x.size))
    return np.array([pad(a) for a in out_a]), np.array([pad(p) for p in out_p])


def np_cvar(atoms, probs, alpha):
    order = np.argsort(atoms, axis=-1)
    x = np.take_along_axis(atoms, order, -1)
    p = np.take_along_axis(probs, order, -1)
    before = np.cumsum(p, -1) - p
    return (np.clip(alpha - before, 0, p) * x).sum(-1) / alpha


_LAWS = {}


def brute_force(P, R, mu0, gamma, H, kind, param):
    key = (P.tobytes(), R.tobytes(), mu0.tobytes(), gamma, H)
    if key not in _LAWS:
        _LAWS[key] = all_policy_laws(P, R, mu0, gamma, H)
    atoms, probs = _LAWS[key]
    if kind == "cvar":
        scores = np_cvar(atoms, probs, param)
    elif kind == "threshold":
        scores = (probs * (atoms >= param - 1e-9)).sum(-1)
    elif kind == "target":
        scores = -(probs * np.abs(atoms - param)).sum(-1)
    elif kind == "exp":
        scores = (probs * (1 - np.exp(-param * atoms)) / param).sum(-1)
    elif kind == "mean":
        scores = (probs * atoms).sum(-1)
    return scores.max(), atoms.shape[0]


def small_mdp(seed, S, A, H, gamma, reward_values=None):
    _, params = random_mdp(jax.random.PRNGKey(seed), S, A, gamma=gamma, horizon=H,
                           reward_values=reward_values)
    return dp.mdp_from_params(params)


CASES = [  # (seed, S, A, H, gamma, reward_values)
    (0, 2, 2, 3, 1.0, [-1.0, 0.0, 1.0, 2.0]),
    (1, 2, 2, 3, 0.9, None),
    (2, 3, 2, 2, 0.8, None),
    (3, 3, 2, 2, 1.0, [-2.0, -1.0, 0.5, 1.0]),
]
RISK = 1.5  # one exponential-utility parameter for all tests (one compiled score)


@pytest.mark.parametrize("case", CASES)
def test_optima_equal_brute_force(case):
    seed, S, A, H, gamma, rv = case
    mdp = small_mdp(seed, S, A, H, gamma, rv)
    P, R, mu0 = mdp.P, mdp.R, mdp.mu0
    st = dp.exact_stocks(mdp)
    returns = st.prefix[H]
    tau = float(np.median(returns))
    objectives = [
        ("cvar", 0.1, dp.make_objective("cvar", alpha=0.1)),
        ("cvar", 0.37, dp.make_objective("cvar", alpha=0.37)),
        ("threshold", tau, dp.make_objective("threshold", threshold=tau)),
        ("target", 0.3, dp.make_objective("target", target=0.3)),
        ("exp", RISK, dp.make_objective("utility", utility="exp", risk=RISK)),
        ("mean", None, dp.make_objective("mean")),
    ]
    for kind, param, obj in objectives:
        expected, n_policies = brute_force(P, R, mu0, gamma, H, kind, param)
        assert n_policies >= 16
        sol = dp.solve_exact(mdp, obj, st)
        assert abs(sol.objective_value - expected) < 1e-5, (kind, sol.objective_value, expected)
        # the reported law is the law of the returned policy and reproduces the value
        ret, law = dp.evaluate_exact(mdp, sol.policy, stocks=st)
        np.testing.assert_allclose(law, sol.return_probs, atol=1e-12)
        if kind == "cvar":
            assert abs(np_cvar(ret[None], law[None], param)[0] - expected) < 1e-5
            # b is one achievable return (the optimal law's VaR), searched exactly
            assert np.min(np.abs(returns - sol.b)) < 1e-12


def test_cvar_b_is_shared_across_initial_states():
    # choosing b per initial state (a per-state CVaR) over-estimates the joint optimum
    found = False
    for seed in range(6):
        mdp = small_mdp(seed, 2, 2, 3, 1.0, [-1.0, 0.0, 1.0, 3.0])
        alpha = 0.25
        expected, _ = brute_force(mdp.P, mdp.R, mdp.mu0, 1.0, 3, "cvar", alpha)
        sol = dp.solve_exact(mdp, dp.make_objective("cvar", alpha=alpha))
        assert abs(sol.objective_value - expected) < 1e-9
        assert np.isscalar(sol.b)
        per_state = 0.0
        for s in range(2):
            mu = np.eye(2)[s]
            per_state += mdp.mu0[s] * brute_force(mdp.P, mdp.R, mu, 1.0, 3, "cvar", alpha)[0]
        found |= per_state > expected + 1e-6
    assert found


def stock_necessity_mdp():
    # s0 -> sU (+1) / sD (-1) w.p. 1/2; sU, sD -> s3 (0); s3: safe 0 or risky +-2; then sink.
    S, A = 5, 2
    s0, sU, sD, s3, sink = range(5)
    P = np.zeros((S, A, S))
    R = np.zeros((S, A, S))
    for a in range(A):
        P[s0, a, sU] = P[s0, a, sD] = 0.5
        R[s0, a, sU], R[s0, a, sD] = 1.0, -1.0
        P[sU, a, s3] = P[sD, a, s3] = 1.0
        P[sink, a, sink] = 1.0
    P[s3, 0, sink] = 1.0  # safe: reward 0
    # risky: +2 or -2 w.p. 1/2 (two distinct next states carry the two rewards; the horizon
    # ends right after, so which states they are does not matter)
    P[s3, 1, s0] = P[s3, 1, sU] = 0.5
    R[s3, 1, s0], R[s3, 1, sU] = 2.0, -2.0
    mu0 = np.eye(S)[s0]
    return dp.validate_mdp(P, R, mu0, 1.0, 3)


def test_stock_necessity_example():
    mdp = stock_necessity_mdp()
    sol = dp.solve_exact(mdp, dp.make_objective("threshold", threshold=1.0))
    assert abs(sol.objective_value - 0.75) < 1e-12
    assert abs(brute_force(mdp.P, mdp.R, mdp.mu0, 1.0, 3, "threshold", 1.0)[0] - 0.75) < 1e-12
    # best Markov policy (action a function of the state only): enumerate all 2^5
    best = 0.0
    for pol in itertools.product(range(2), repeat=5):
        dist = {(0, 0.0): 1.0}
        for _t in range(3):
            nxt = {}
            for (s, g), p in dist.items():
                for sp in range(5):
                    q = mdp.P[s, pol[s], sp]
                    if q > 0:
                        key = (sp, g + mdp.R[s, pol[s], sp])
                        nxt[key] = nxt.get(key, 0.0) + p * q
            dist = nxt
        best = max(best, sum(p for (_, g), p in dist.items() if g >= 1.0))
    assert abs(best - 0.5) < 1e-12
    # the optimal policy at s3 depends on the stock: safe after +1 (stock 0), risky after -1
    t, s3 = 2, 3
    stocks = sol.stocks[t]
    i_up = int(np.nanargmin(np.abs(stocks - 0.0)))  # c = -1 + 1
    i_dn = int(np.nanargmin(np.abs(stocks + 2.0)))  # c = -1 - 1
    assert sol.policy[t, s3, i_up] == 0 and sol.policy[t, s3, i_dn] == 1


def test_greedy_policy_is_indexed_by_time():
    # one state; actions: 0 wait (0), 1 sure (+0.5), 2 gamble (+1 / -1). Maximize P(G >= 1), H=3.
    # At stock c = -1 with two steps left: sure twice (P = 1); with one step left: gamble (1/2).
    P = np.zeros((3, 3, 3))
    R = np.zeros((3, 3, 3))
    P[:, 0, 0] = P[:, 1, 0] = 1.0
    R[:, 1, 0] = 0.5
    P[:, 2, 1] = P[:, 2, 2] = 0.5
    R[:, 2, 1], R[:, 2, 2] = 1.0, -1.0
    mdp = dp.validate_mdp(P, R, np.eye(3)[0], 1.0, 3)
    sol = dp.solve_exact(mdp, dp.make_objective("threshold", threshold=1.0))
    assert abs(sol.objective_value - 1.0) < 1e-12
    assert sol.policy.shape[0] == 3  # a time axis
    i1 = int(np.nanargmin(np.abs(sol.stocks[1] + 1.0)))
    i2 = int(np.nanargmin(np.abs(sol.stocks[2] + 1.0)))
    assert sol.policy[1, 0, i1] == 1  # two steps left: sure
    assert sol.policy[2, 0, i2] == 2  # one step left: gamble


def test_mean_objective_equals_classic_value_iteration():
    for seed, gamma in ((0, 0.9), (1, 1.0), (2, 0.5)):
        mdp = small_mdp(seed, 2, 2, 3, gamma, [-1.0, 0.0, 0.5, 2.0])
        v, _ = dp.classic_value_iteration(mdp)
        sol = dp.solve_exact(mdp, dp.make_objective("mean"))
        assert abs(sol.objective_value - mdp.mu0 @ v) < 1e-9


def test_policy_iteration_reaches_the_brute_force_optimum():
    # PI does its own outer search over b for CVaR (it is not handed solve_exact's b): compare
    # with the brute-force optimum over all history-dependent policies
    mdp = small_mdp(5, 2, 2, 3, 0.9, [-1.0, 0.0, 1.0])
    for kind, param, obj in (
            ("cvar", 0.2, dp.make_objective("cvar", alpha=0.2)),
            ("threshold", 0.5, dp.make_objective("threshold", threshold=0.5)),
            ("exp", RISK, dp.make_objective("utility", utility="exp", risk=RISK))):
        expected, _ = brute_force(mdp.P, mdp.R, mdp.mu0, 0.9, 3, kind, param)
        pi, iters = dp.policy_iteration_exact(mdp, obj)
        assert abs(pi.objective_value - expected) < 1e-9, (kind, pi.objective_value, expected)
        assert iters <= mdp.horizon + 2


def test_per_step_greedy_cvar_is_suboptimal():
    # negative control: greedy CVaR of law(c + Z) at every step, without the outer search over b
    alpha = 0.3

    def per_step(values, probs):
        return np_cvar_jax(values, probs, alpha)

    worse = 0
    for seed in range(4):
        mdp = small_mdp(seed, 2, 2, 3, 1.0, [-1.0, 0.0, 1.0, 2.0])
        expected, _ = brute_force(mdp.P, mdp.R, mdp.mu0, 1.0, 3, "cvar", alpha)
        obj = Objective("per_step_cvar", None, 0.0, True, alpha, None, per_step)
        sol = dp.solve_exact(mdp, obj)
        ret, law = dp.evaluate_exact(mdp, sol.policy)
        achieved = np_cvar(ret[None], law[None], alpha)[0]
        assert achieved <= expected + 1e-9
        worse += achieved < expected - 1e-6
    assert worse >= 1
    with pytest.raises(ValueError, match="outer search"):
        dp.make_objective("per_step_cvar", alpha=alpha)


def np_cvar_jax(values, probs, alpha):
    from jaxrl.distributions import FiniteSupport, cvar
    return cvar(FiniteSupport(values, probs), alpha)


@pytest.mark.parametrize("name", ["mean_variance", "variance", "sharpe"])
def test_refuses_objectives_dp_cannot_optimize(name):
    with pytest.raises(ValueError, match="not an expected utility"):
        dp.make_objective(name)


def test_refuses_stationary_non_homogeneous_utility():
    obj = dp.make_objective("utility", utility="exp", risk=1.0)
    with pytest.raises(ValueError, match="stationary greedy"):
        dp.check_stationary(obj, 0.9)
    dp.check_stationary(dp.make_objective("cvar", alpha=0.5), 0.9)  # homogeneous: fine


@pytest.mark.parametrize("mutate, match", [
    (lambda d: d.update(P=d["P"] * 0.9), "P rows must sum to 1"),
    (lambda d: d.update(R=d["R"][:, :, :1]), "R must have shape"),
    (lambda d: d.update(mu0=np.array([np.nan, 1.0])), "mu0 contains NaN"),
    (lambda d: d.update(P=d["P"][:1]), "P must have shape"),
    (lambda d: d.update(gamma=1.5), "gamma must be in"),
    (lambda d: d.update(horizon=-1), "horizon must be"),
])
def test_malformed_mdp_is_rejected(mutate, match):
    d = dict(P=np.full((2, 2, 2), 0.5), R=np.zeros((2, 2, 2)), mu0=np.array([0.5, 0.5]),
             gamma=0.9, horizon=2)
    mutate(d)
    with pytest.raises(ValueError, match=match):
        dp.validate_mdp(**d)


def test_best_markov_value_against_closed_forms_and_vi():
    # stock-necessity task: the best Markov policy reaches 0.5 (enumerated above), the stock 0.75
    mdp = stock_necessity_mdp()
    value, pol = dp.best_markov_value(mdp, dp.make_objective("threshold", threshold=1.0))
    assert abs(value - 0.5) < 1e-12 and pol.shape == (3, 5)
    # gamble, CVaR_0.2: never gambling is Markov and optimal (G = 3 surely)
    from jaxrl.envs.gamble import gamble_mdp

    g = gamble_mdp()
    mg = dp.validate_mdp(g["P"], g["R"], g["mu0"], 1.0, 3)
    value, pol = dp.best_markov_value(mg, dp.make_objective("cvar", alpha=0.2))
    assert abs(value - 3.0) < 1e-9 and np.all(pol[pol >= 0] == 0)
    # the mean: Markov policies are optimal, so the value is classic value iteration's
    rng = np.random.default_rng(0)
    for _ in range(3):
        P = rng.dirichlet(np.ones(3), size=(3, 2))
        R = rng.integers(-2, 3, size=(3, 2, 3)).astype(float)
        m = dp.validate_mdp(P, R, np.array([1.0, 0.0, 0.0]), 0.9, 3)
        v0, _ = dp.classic_value_iteration(m)
        value, _ = dp.best_markov_value(m, dp.make_objective("mean"))
        assert abs(value - v0[0]) < 1e-9
        # and no Markov policy beats the stock-augmented optimum of a threshold objective
        thr = dp.make_objective("threshold", threshold=0.5)
        assert dp.best_markov_value(m, thr)[0] <= dp.solve_exact(m, thr).objective_value + 1e-12
    with pytest.raises(ValueError, match="max_policies"):
        dp.best_markov_value(mg, dp.make_objective("mean"), max_policies=4)
