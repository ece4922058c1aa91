"""Ergodic (long-run average) policy evaluation on the scalar linear-quadratic control problem of
Jia & Zhou, "Policy gradient and actor-critic learning in continuous time and space", Sec. 5.2
and Appendix B2 (arXiv:2111.11232v2).

Model: `dX = (A X + B a) dt + (C X + D a) dW`, reward rate
`r(x, a) = -(M/2 x^2 + R x a + N/2 a^2 + P x + Q a)`, Gaussian policy
`a ~ N(phi1 x + phi2, s2)`. Policy evaluation of an ergodic task is the pair `(J, V)` that makes
`J(X_t) + int_0^t (r - V) ds` a martingale (`J` up to a constant); with `J = th0 x^2/2 + th1 x`
it is exact for this model.

* `policy_value`: `(th0, th1, V)` of a given policy in closed form, in continuous time
  (`dt = 0`) or for the Euler-Maruyama chain with sampled actions at mesh `dt` (what a
  consistent estimator on data at that mesh targets).
* `optimal_policy`: the paper's Appendix B2 (the HJB with `phi = k2 x^2/2 + k1 x`): `k2, k1`, the
  omniscient optimal average reward `V*`, the entropy-regularised optimal policy
  `N(a*(x), gamma / (N - k2 D^2))` and its average reward `V* - gamma / 2` (the paper's "optimal
  level less exploration cost"). `policy_value` of that policy is an independent check.
* `simulate_pe`: one long path under a fixed policy with, accumulated on the fly (no path is
  stored; the estimates are recorded at the end of every chunk of steps), the online TD(0) of
  the paper's Algorithm 3 critic (`xi = dJ/dtheta`, step `lr * l(t)`,
  `l(t) = 1 / max(1, log t)`) and the closed-form solution of the ergodic
  martingale orthogonality conditions with test functions `(x^2/2, x, 1)` (ergodic CLSTD).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax


class LQModel(NamedTuple):
    A: float = -1.0
    B: float = 0.0
    C: float = 0.0
    D: float = 1.0
    M: float = 2.0
    R: float = 1.0
    N: float = 2.0
    P: float = 1.0
    Q: float = 2.0


class GaussianPolicy(NamedTuple):
    phi1: float  # mean slope
    phi2: float  # mean intercept
    var: float  # variance (the paper's e^{phi3})


def policy_value(m: LQModel, pi: GaussianPolicy, dt: float = 0.0) -> tuple[float, float, float]:
    """`(th0, th1, V)` with `J = th0 x^2/2 + th1 x` for policy `pi`; `dt > 0`: the Euler chain.

    Matches coefficients of `E[J(X') | x] - J(x) + (E_a r(x, a) - V) dt = 0` (divided by `dt`;
    its `dt -> 0` limit is the ergodic Feynman-Kac equation `L J + r_bar = V`)."""
    a1, a0 = m.A + m.B * pi.phi1, m.B * pi.phi2  # drift u = a1 x + a0
    b1, b0 = m.C + m.D * pi.phi1, m.D * pi.phi2  # diffusion mean v = b1 x + b0
    s2 = pi.var
    r2 = m.M / 2 + m.R * pi.phi1 + m.N / 2 * pi.phi1**2  # -E r = r2 x^2 + r1 x + r0
    r1 = m.R * pi.phi2 + m.N * pi.phi1 * pi.phi2 + m.P + m.Q * pi.phi1
    r0 = m.N / 2 * (pi.phi2**2 + s2) + m.Q * pi.phi2
    denom = 2 * a1 + a1**2 * dt + b1**2
    if not denom < 0:
        raise ValueError(f"second moment not stable under this policy (2 a1 + b1^2 = {denom})")
    th0 = 2 * r2 / denom
    th1 = (r1 - th0 * (a0 + a1 * a0 * dt + b1 * b0)) / a1
    v = th0 / 2 * (a0**2 * dt + m.B**2 * s2 * dt + b0**2 + m.D**2 * s2) + th1 * a0 - r0
    return float(th0), float(th1), float(v)


class Optimum(NamedTuple):
    k2: float
    k1: float
    value: float  # omniscient optimal average reward (deterministic policy, no exploration)
    policy: GaussianPolicy  # entropy-regularised optimal policy
    value_explore: float  # its average reward: value - gamma / 2


def optimal_policy(m: LQModel, gamma: float) -> Optimum:
    """Appendix B2: first-order condition `a* = ([k2 (B + C D) - R] x + k1 B - Q) / (N - k2 D^2)`;
    the `x^2` coefficient of the HJB is a quadratic in `k2`, the root kept is the one with
    `N - k2 D^2 > 0` whose policy has a stable second moment."""
    e = m.B + m.C * m.D
    c2 = e**2 - (2 * m.A + m.C**2) * m.D**2
    c1 = m.M * m.D**2 + (2 * m.A + m.C**2) * m.N - 2 * e * m.R
    c0 = m.R**2 - m.M * m.N
    roots = [-c0 / c1] if c2 == 0 else [
        (-c1 + s * math.sqrt(c1**2 - 4 * c2 * c0)) / (2 * c2) for s in (1.0, -1.0)
        if c1**2 - 4 * c2 * c0 >= 0]
    for k2 in sorted(roots):
        den = m.N - k2 * m.D**2
        if den <= 0:
            continue
        g1 = k2 * e - m.R
        k1 = (m.P + g1 * m.Q / den) / (m.A + g1 * m.B / den)
        g0 = k1 * m.B - m.Q
        pi = GaussianPolicy(g1 / den, g0 / den, gamma / den)
        a1, b1 = m.A + m.B * pi.phi1, m.C + m.D * pi.phi1
        if 2 * a1 + b1**2 < 0:
            v = g0**2 / (2 * den)
            return Optimum(float(k2), float(k1), float(v), pi, float(v - gamma / 2))
    raise ValueError("no root of the HJB with N - k2 D^2 > 0 and a stable policy")


class PEResult(NamedTuple):
    td: jax.Array  # [num_chunks, 3] online TD(0) (th0, th1, V) at the end of each chunk
    lstd: jax.Array  # [num_chunks, 3] ergodic CLSTD on the path up to the end of each chunk
    avg_reward: jax.Array  # [num_chunks] average sampled reward rate up to each chunk's end


def _features(x):
    return jnp.stack([0.5 * x * x, x])


def simulate_pe(key: jax.Array, m: LQModel, pi: GaussianPolicy, dt: float, num_chunks: int,
                chunk: int, lr: float, lr_v: float, x0: float = 0.0) -> PEResult:
    """One path of `num_chunks * chunk` Euler steps from `x0` under `pi` (action sampled each
    step, `X' = X + (A X + B a) dt + (C X + D a) sqrt(dt) Z`), evaluated online.

    TD(0) (Algorithm 3's critic, parameters initialised at 0): with
    `delta = J(X') - J(X) + (r - V) dt`, `theta += lr l(t) dJ/dtheta delta`,
    `V += lr_v l(t) delta`, `l(t) = 1 / max(1, log t)`, `t` the time at the step.
    CLSTD: `sum_i xi_i delta_i(theta, V) = 0` with `xi_i = (x_i^2/2, x_i, 1)`, solved at the end.
    """
    dtype = jnp.result_type(float)
    dt = jnp.asarray(dt, dtype)
    sq = jnp.sqrt(dt)

    def step(carry, inp):
        x, th, v, amat, bvec, rsum, k = carry
        z_a, z_w = inp
        a = pi.phi1 * x + pi.phi2 + jnp.sqrt(pi.var) * z_a
        r = -(m.M / 2 * x * x + m.R * x * a + m.N / 2 * a * a + m.P * x + m.Q * a)
        x1 = x + (m.A * x + m.B * a) * dt + (m.C * x + m.D * a) * sq * z_w
        f0, f1 = _features(x), _features(x1)
        delta = th @ (f1 - f0) + (r - v) * dt
        t = k.astype(dtype) * dt
        lt = 1.0 / jnp.maximum(1.0, jnp.log(jnp.maximum(t, 1.0)))
        th = th + lr * lt * f0 * delta
        v = v + lr_v * lt * delta
        xi = jnp.concatenate([f0, jnp.ones((1,), dtype)])
        c = jnp.concatenate([f1 - f0, -dt[None]])  # delta = c . (th, V) + r dt
        amat = amat + jnp.outer(xi, c)
        bvec = bvec + xi * r * dt
        return (x1, th, v, amat, bvec, rsum + r, k + 1), None

    def run_chunk(carry, key):
        z = jax.random.normal(key, (chunk, 2), dtype)
        carry, _ = lax.scan(step, carry, (z[:, 0], z[:, 1]))
        _, th, v, amat, bvec, rsum, k = carry
        snap = (jnp.concatenate([th, v[None]]), jnp.linalg.solve(amat, -bvec),
                rsum / k.astype(dtype))
        return carry, snap

    init = (jnp.asarray(x0, dtype), jnp.zeros(2, dtype), jnp.zeros((), dtype),
            jnp.zeros((3, 3), dtype), jnp.zeros(3, dtype), jnp.zeros((), dtype),
            jnp.zeros((), jnp.int32))
    _, (td, lstd, avg) = lax.scan(run_chunk, init, jax.random.split(key, num_chunks))
    return PEResult(td, lstd, avg)
