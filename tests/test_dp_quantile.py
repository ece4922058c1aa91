"""Quantile distributional policy evaluation against the exact finite-support law (finite
horizon) and classic policy evaluation (discounted), with the W1 error bound sum_t gamma^t
spread_t / N derived in `jaxrl.dp.quantile`."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl import distributions as D
from jaxrl.dp import (
    evaluate_exact,
    exact_stocks,
    quantile_bellman,
    quantile_policy_evaluation,
    validate_mdp,
)


def small_mdp(seed, horizon, gamma, S=3, A=2):
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.ones(S), size=(S, A))
    R = rng.choice([-1.0, 0.0, 0.5, 2.0], size=(S, A, S))
    mu0 = rng.dirichlet(np.ones(S))
    return validate_mdp(P, R, mu0, gamma, horizon), rng


def np_mean_return(mdp, pol):
    """Classic policy evaluation in NumPy: time-indexed [H, S] or stationary [S]."""
    S = mdp.P.shape[0]
    s = np.arange(S)
    if mdp.horizon > 0:
        v = np.zeros(S)
        for t in reversed(range(mdp.horizon)):
            P, R = mdp.P[s, pol[t]], mdp.R[s, pol[t]]
            v = (P * (R + mdp.gamma * v[None])).sum(-1)
        return mdp.mu0 @ v
    P, R = mdp.P[s, pol], mdp.R[s, pol]
    v = np.linalg.solve(np.eye(S) - mdp.gamma * P, (P * R).sum(-1))
    return mdp.mu0 @ v


def test_finite_horizon_converges_to_the_exact_law():
    H, gamma = 4, 0.9
    mdp, rng = small_mdp(0, H, gamma)
    pol = rng.integers(0, 2, size=(H, 3))
    # exact law of G under the same Markov policy: a stock policy constant over the stock
    st = exact_stocks(mdp)
    nmax = max(g.size for g in st.prefix[:H])
    returns, probs = evaluate_exact(mdp, np.broadcast_to(pol[:, :, None], (H, 3, nmax)),
                                    stocks=st)
    exact = D.FiniteSupport(returns, probs)
    assert abs(returns @ probs - np_mean_return(mdp, pol)) < 1e-9
    # W1 bound: sum_t gamma^t spread_t / N, spread_t <= sum_{u >= t} gamma^(u-t) (Rmax - Rmin)
    span = mdp.R.max() - mdp.R.min()
    spread = [sum(gamma ** (u - t) * span for u in range(t, H)) for t in range(H)]
    c = sum(gamma**t * spread[t] for t in range(H))
    w1 = {}
    for n in (1, 4, 16, 64):
        ev = quantile_policy_evaluation(mdp, pol, n)
        assert ev.locs.shape == (3, n) and ev.sweeps == H
        assert np.all(np.diff(ev.locs, axis=-1) >= 0)
        with jax.enable_x64(True):
            w1[n] = float(D.wasserstein_1(ev.law, exact))
        assert w1[n] <= c / n + 1e-9, (n, w1[n], c / n)
        # |mean error| <= W1
        assert abs(ev.law.atoms @ ev.law.probs - returns @ probs) <= w1[n] + 1e-9
    assert w1[64] < w1[16] < w1[4] < w1[1]
    assert w1[64] < 0.05 * w1[1]


def test_discounted_fixed_point_and_mean():
    gamma = 0.6
    mdp, rng = small_mdp(1, 0, gamma)
    pol = rng.integers(0, 2, size=3)
    v = np_mean_return(mdp, pol)
    span = mdp.R.max() - mdp.R.min()
    errs = {}
    for n in (2, 32):
        ev = quantile_policy_evaluation(mdp, pol, n)
        assert 1 < ev.sweeps < 10_000
        # a fixed point of the projected operator Pi_N T_pi
        s = np.arange(3)
        again = quantile_bellman(jnp.asarray(ev.locs), jnp.asarray(mdp.P[s, pol]),
                                 jnp.asarray(mdp.R[s, pol]), gamma, n)
        np.testing.assert_allclose(np.asarray(again), ev.locs, atol=1e-6)
        errs[n] = abs(ev.law.atoms @ ev.law.probs - v)
        # |mean error| <= W1 error <= span / ((1 - gamma)^2 N)
        assert errs[n] <= span / ((1 - gamma) ** 2 * n) + 1e-9
    assert errs[32] < 0.1


def test_bad_policy_is_refused():
    mdp, _ = small_mdp(2, 3, 1.0)
    with pytest.raises(ValueError, match="policy must have shape"):
        quantile_policy_evaluation(mdp, np.zeros((2, 3), int), 4)
    with pytest.raises(ValueError, match="integer actions"):
        quantile_policy_evaluation(mdp, np.full(3, 5), 4)
    with pytest.raises(ValueError, match="num_quantiles"):
        quantile_policy_evaluation(mdp, np.zeros(3, int), 0)
