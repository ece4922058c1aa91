"""Ergodic LQ policy evaluation (`jaxrl.martingale.ergodic`) against independent closed forms.

The follow-up's example (arXiv:2111.11232v2 Sec. 5.2): A = -1, B = C = 0, D = 1, M = N = Q = 2,
R = P = 1, gamma = 0.1. By hand: the x^2 coefficient of the HJB gives 2 k2^2 - 2 k2 - 3 = 0,
k2 = (1 - sqrt 7) / 2 (the root with a stable policy), then k1 = Q / (N - k2) - P and
V* = Q^2 / (2 (N - k2)); the exploratory optimum has mean -(x + 2) / (N - k2), variance
gamma / (N - k2) and average reward V* - gamma / 2.
"""

import math
import os
import tempfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.martingale import ergodic as eg

PAPER = eg.LQModel()  # the defaults are the paper's coefficients
GAMMA = 0.1
K2 = (1 - math.sqrt(7)) / 2
DEN = 2 - K2
K1 = 2 / DEN - 1
V_STAR = 4 / (2 * DEN)


def test_paper_optimum_by_hand():
    o = eg.optimal_policy(PAPER, GAMMA)
    np.testing.assert_allclose([o.k2, o.k1, o.value, o.value_explore],
                               [K2, K1, V_STAR, V_STAR - GAMMA / 2], rtol=1e-12)
    np.testing.assert_allclose(o.policy, [-1 / DEN, -2 / DEN, GAMMA / DEN], rtol=1e-12)
    np.testing.assert_allclose([K2, K1, V_STAR], [-0.8228757, -0.2915026, 0.7084974], atol=1e-7)


def test_policy_value_of_optimum_is_the_hjb_solution():
    """Fixed-policy evaluation (linear Feynman-Kac) of the exploratory optimum reproduces the
    paper's statement: J has the HJB's coefficients (k2, k1) and V = V* - gamma / 2."""
    for m in (PAPER, eg.LQModel(A=-0.7, B=0.4, C=0.2, D=0.8, M=1.5, R=0.3, N=2.5, P=-0.4,
                                Q=0.6)):
        o = eg.optimal_policy(m, GAMMA)
        np.testing.assert_allclose(eg.policy_value(m, o.policy), [o.k2, o.k1, o.value_explore],
                                   rtol=1e-10, atol=1e-12)


def _gh(n=20):
    z, w = np.polynomial.hermite_e.hermegauss(n)
    return z, w / w.sum()


def _rbar(m, pi, x, za, wa):
    a = pi.phi1 * x + pi.phi2 + math.sqrt(pi.var) * za
    return np.sum(wa * -(m.M / 2 * x * x + m.R * x * a + m.N / 2 * a * a + m.P * x + m.Q * a))


@pytest.mark.parametrize("dt", [0.0, 0.1])
def test_policy_value_solves_the_equation_pointwise(dt):
    """Quadrature over the action (and, for the chain, the noise) at arbitrary states: the
    residual of `L J + r_bar - V` (dt = 0) or of the Euler chain's average-reward Bellman
    equation (dt > 0) vanishes."""
    m = eg.LQModel(A=-0.9, B=0.5, C=0.3, D=0.7, M=1.2, R=0.4, N=1.8, P=0.5, Q=-0.3)
    pi = eg.GaussianPolicy(-0.6, 0.2, 0.3)
    th0, th1, v = eg.policy_value(m, pi, dt)
    z, w = _gh()
    for x in (-2.0, -0.3, 0.0, 1.1, 3.0):
        rbar = _rbar(m, pi, x, z, w)
        if dt == 0.0:
            a = pi.phi1 * x + pi.phi2 + math.sqrt(pi.var) * z
            drift = np.sum(w * (m.A * x + m.B * a))
            diff2 = np.sum(w * (m.C * x + m.D * a) ** 2)
            res = drift * (th0 * x + th1) + 0.5 * diff2 * th0 + rbar - v
        else:
            a = (pi.phi1 * x + pi.phi2 + math.sqrt(pi.var) * z)[:, None]
            x1 = x + (m.A * x + m.B * a) * dt + (m.C * x + m.D * a) * math.sqrt(dt) * z[None]
            ej = np.sum(w[:, None] * w[None] * (0.5 * th0 * x1**2 + th1 * x1))
            res = (ej - (0.5 * th0 * x * x + th1 * x)) / dt + rbar - v
        assert abs(res) < 1e-10, (x, res)


def test_chain_value_tends_to_continuous():
    pi = eg.optimal_policy(PAPER, GAMMA).policy
    cont = np.array(eg.policy_value(PAPER, pi))
    gaps = [np.linalg.norm(np.array(eg.policy_value(PAPER, pi, dt)) - cont)
            for dt in (0.04, 0.02, 0.01)]
    assert gaps[0] > gaps[1] > gaps[2] > 0
    np.testing.assert_allclose(gaps[0] / gaps[1], 2.0, rtol=0.05)  # first order in dt


def test_unstable_policy_rejected():
    with pytest.raises(ValueError, match="not stable"):
        eg.policy_value(PAPER, eg.GaussianPolicy(1.5, 0.0, 0.1))


def test_estimators_recover_the_chain_value():
    """Ergodic CLSTD on 4 paths of T = 5000 (dt = 0.01) is within Monte-Carlo error (about 4
    sd of the 4-seed mean) of the chain's (th0, th1, V); TD(0) with a larger step than the
    paper's moves onto it from 0."""
    o = eg.optimal_policy(PAPER, GAMMA)
    chain = np.array(eg.policy_value(PAPER, o.policy, 0.01))
    with jax.enable_x64(True):
        keys = jax.random.split(jax.random.PRNGKey(3), 4)
        res = jax.jit(jax.vmap(lambda k: eg.simulate_pe(k, PAPER, o.policy, 0.01, 50, 10_000,
                                                        0.05, 0.05)))(keys)
        lstd, td = np.asarray(res.lstd[:, -1]), np.asarray(res.td[:, -1])
        avg = np.asarray(res.avg_reward[:, -1])
    assert np.all(np.abs(lstd.mean(0) - chain) < [0.2, 0.06, 0.02]), (lstd, chain)
    assert np.all(np.abs(td.mean(0) - chain) < [0.25, 0.15, 0.03]), (td, chain)
    np.testing.assert_allclose(avg.mean(), chain[2], atol=0.02)


def test_experiment_tiny_writes_table():
    from experiments import martingale as exp
    from experiments.configs import martingale as cfg

    c = cfg.get_config("ergodic_lq_tiny")
    with tempfile.TemporaryDirectory() as d:
        s = exp.run(c, d)["ergodic_lq"]
        rows = open(os.path.join(d, "ergodic_lq", "metrics.csv")).read().splitlines()
        assert len(rows) == 1 + 2 * 2  # header + seeds x horizons
        assert "clstd_th0" in rows[0] and "td_V" in rows[0]
        np.testing.assert_allclose(s["truth_cont"], [K2, K1, V_STAR - GAMMA / 2], rtol=1e-9)
        assert s["horizons"] == [100.0, 200.0]
        assert "| 200 | clstd |" in exp.report_ergodic(s)
    bad = cfg.get_config("ergodic_lq_tiny")
    bad.erg_report_chunks = (0,)
    with pytest.raises(ValueError, match="erg_report_chunks"):
        exp.validate(bad)
    assert jnp.asarray(0.0).dtype == jnp.float32  # x64 stayed local to the run
