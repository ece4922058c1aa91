"""Quantile distributional dynamic programming: policy evaluation with the quantile projection.

Each state's return distribution is `N` equally weighted atoms `theta[s, :]` (the quantile
representation, `jaxrl.distributions.Quantile`). One step of quantile DP applies the
distributional Bellman operator of a fixed policy to the atoms and projects back
(Dabney et al. 2018, sec. 3; Rowland et al. 2019 "Statistics and Samples in Distributional RL"):

    target(s)  = sum_{s'} P_pi[s, s'] * law(R_pi[s, s'] + gamma * theta[s', :])   (S' * N atoms)
    theta'(s)  = Pi_N target(s)      (W1-optimal quantile projection, levels (2i - 1) / (2N))

Finite horizon `H`: backward induction from `theta_H = 0` with a time-indexed policy; each step's
projection moves each law by at most `(spread of its support) / N` in W1 and the operator is a
`gamma`-contraction in sup-W1, so `W1(theta_0(s), eta_0(s)) <= sum_t gamma^t spread_t / N`: the
error shrinks like `1 / N` (tested against the exact finite-support law of
`jaxrl.dp.tabular.evaluate_exact`). Discounted (horizon 0): `Pi_N T_pi` is a gamma-contraction in
W-infinity (Dabney et al. 2018, Prop. 2), iterated to its fixed point. The projection keeps
mass but not the mean, so the mean of quantile DP is only close to classic policy evaluation.

This evaluates policies on the plain MDP; the stock-augmented (history-dependent) policies of
the exact solvers are evaluated exactly by `jaxrl.dp.tabular.evaluate_exact`.

Public API: QuantileEvaluation, quantile_bellman, quantile_policy_evaluation.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.distributions import FiniteSupport, quantile_projection
from jaxrl.dp.tabular import MDP


class QuantileEvaluation(NamedTuple):
    """Result of `quantile_policy_evaluation` (float64 NumPy).

    Attributes:
      locs: `[S, N]` sorted quantile atoms of the return distribution of each state (at t = 0
        for a finite horizon; the fixed point for horizon 0).
      law: `FiniteSupport` `[S * N]` law of G from mu0: the mu0-mixture of the state laws.
      sweeps: Bellman steps applied (H for a finite horizon).
    """

    locs: np.ndarray
    law: FiniteSupport
    sweeps: int


@partial(jax.jit, static_argnames=("num_quantiles",))
def quantile_bellman(locs: jax.Array, P_pi: jax.Array, R_pi: jax.Array, gamma: jax.Array,
                     num_quantiles: int) -> jax.Array:
    """One projected distributional Bellman step of a fixed policy.

    Args:
      locs: `[S', N]` quantile atoms of the next-state return distributions.
      P_pi: `[S, S']` transition matrix under the policy. R_pi: `[S, S']` its rewards.
      gamma: discount. num_quantiles: `N` of the output (static).

    Returns:
      `[S, num_quantiles]` projected atoms of `R_pi[s, s'] + gamma * Z(s')`, `s' ~ P_pi[s]`.
    """
    S, n_in = P_pi.shape[0], locs.shape[-1]
    atoms = R_pi[:, :, None] + gamma * locs[None, :, :]  # [S, S', N]
    probs = jnp.broadcast_to(P_pi[:, :, None] / n_in, atoms.shape)
    return quantile_projection(atoms.reshape(S, -1), probs.reshape(S, -1), num_quantiles)


@partial(jax.jit, static_argnames=("num_quantiles",))
def _backward(P_pi, R_pi, gamma, num_quantiles):
    """Finite horizon: P_pi, R_pi `[H, S, S']` -> atoms `[S, N]` at t = 0."""
    S = P_pi.shape[1]

    def step(locs, xs):
        return quantile_bellman(locs, xs[0], xs[1], gamma, num_quantiles), None

    locs0 = jnp.zeros((S, num_quantiles), P_pi.dtype)
    locs, _ = jax.lax.scan(step, locs0, (P_pi, R_pi), reverse=True)
    return locs


@partial(jax.jit, static_argnames=("num_quantiles", "max_sweeps"))
def _fixed_point(P_pi, R_pi, gamma, num_quantiles, tol, max_sweeps):
    """Discounted: iterate `Pi_N T_pi` until max |theta' - theta| < tol (or max_sweeps)."""
    S = P_pi.shape[0]

    def cond(c):
        _, err, n = c
        return (err >= tol) & (n < max_sweeps)

    def body(c):
        locs, _, n = c
        new = quantile_bellman(locs, P_pi, R_pi, gamma, num_quantiles)
        return new, jnp.max(jnp.abs(new - locs)), n + 1

    init = (jnp.zeros((S, num_quantiles), P_pi.dtype), jnp.asarray(jnp.inf, P_pi.dtype), 0)
    locs, _, n = jax.lax.while_loop(cond, body, init)
    return locs, n


def quantile_policy_evaluation(mdp: MDP, policy, num_quantiles: int, *, tol: float = 1e-10,
                               max_sweeps: int = 10_000) -> QuantileEvaluation:
    """Quantile distributional policy evaluation of a deterministic Markov policy (float64).

    Args:
      mdp: from `jaxrl.dp.validate_mdp` (finite horizon, or horizon 0 with gamma < 1).
      policy: int `[S]` (stationary) or `[H, S]` (time-indexed; finite horizon only).
      num_quantiles: `N >= 1` atoms per state.
      tol, max_sweeps: stopping rule of the discounted fixed-point iteration.

    Returns:
      `QuantileEvaluation`.

    Raises:
      ValueError: a policy of the wrong shape or with an action out of range.
    """
    if int(num_quantiles) < 1:
        raise ValueError(f"num_quantiles must be >= 1, got {num_quantiles}")
    S, A, _ = mdp.P.shape
    pol = np.asarray(policy)
    H = mdp.horizon
    if pol.shape == (S,) and H > 0:
        pol = np.broadcast_to(pol, (H, S))
    expected = (H, S) if H > 0 else (S,)
    if pol.shape != expected:
        raise ValueError(f"policy must have shape {expected} (or [S]), got {pol.shape}")
    if not np.issubdtype(pol.dtype, np.integer) or pol.min() < 0 or pol.max() >= A:
        raise ValueError(f"policy must hold integer actions in [0, {A}), got values "
                         f"in [{pol.min()}, {pol.max()}]")
    s = np.arange(S)
    P_pi = mdp.P[s, pol]  # [H, S, S'] or [S, S']
    R_pi = mdp.R[s, pol]
    with jax.enable_x64(True):
        args = (jnp.asarray(P_pi), jnp.asarray(R_pi), jnp.float64(mdp.gamma))
        if H > 0:
            locs, sweeps = _backward(*args, int(num_quantiles)), H
        else:
            locs, n = _fixed_point(*args, int(num_quantiles), tol, int(max_sweeps))
            sweeps = int(n)
        locs = np.asarray(locs, np.float64)
    probs = np.repeat(mdp.mu0 / num_quantiles, num_quantiles)
    law = FiniteSupport(locs.reshape(-1), probs)
    return QuantileEvaluation(locs, law, sweeps)
