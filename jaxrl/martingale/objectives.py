"""Martingale loss, TD increments and test-function traces for a general `J^theta`.

Jia & Zhou (JMLR 2022): policy evaluation <=> the process
`M_t = e^{-rho t} J(t, X_t) + int_0^t e^{-rho s} r(s, X_s) ds` is a martingale (Sec. 3, with
`J(T, .) = h` at a finite horizon). On the mesh `t_i = i dt` (divide by `e^{-rho t_i}`):

    delta_i(theta) = gamma J_{i+1} - J_i + r_i dt,     gamma = exp(-rho dt),

with `J_{i+1}` replaced by the terminal reward `h(X_T)` on the transition reaching `T`.

* Martingale loss (ML, Sec. 4.1): `1/2 E sum_i w_i (G_i - J_i)^2 dt` with the reward-to-go
  `G_i = sum_{j >= i} gamma^{j-i} r_j dt + gamma^{K-i} h(X_T)`: Monte-Carlo regression, whose
  minimiser is the L2 projection of the true value.
* Mean-square TD error (MSTDE, Sec. 3.2): `1/2 E sum_i delta_i^2 / dt`. As `dt -> 0` it is the
  quadratic variation of `J^theta(t, X_t)` plus lower-order terms, so its minimiser is biased and
  the bias does not vanish with `dt` (its closed-form linear minimiser:
  `jaxrl.martingale.linear.mstde_linear`).

Shapes: a `Trajectory` from `jaxrl.envs.diffusions.simulate` (`x: [N, K+1]`). All sums are
averaged over the `N` paths.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jaxrl.envs.diffusions import Trajectory

ValueFn = Callable[[Any, jax.Array, jax.Array], jax.Array]


def path_values(value_fn: ValueFn, params: Any, traj: Trajectory) -> jax.Array:
    """`J^theta(t_i, X_i)` on every mesh point: `[N, K+1]`."""
    per_t = jax.vmap(value_fn, in_axes=(None, 0, 0))  # over time
    return jax.vmap(per_t, in_axes=(None, None, 0))(params, traj.t, traj.x)


def td_increments(values: jax.Array, traj: Trajectory) -> jax.Array:
    """`delta_i = gamma J_{i+1} - J_i + r_i dt` (terminal `h` on the last step): `[N, K]`.

    Masked transitions (beyond the horizon) are set to 0.
    """
    gamma = jnp.exp(-traj.rho * traj.dt)
    nxt = jnp.where(traj.last > 0, traj.terminal[:, None], values[:, 1:])
    delta = gamma * nxt - values[:, :-1] + traj.r * traj.dt
    return delta * traj.mask


def reward_to_go(traj: Trajectory) -> jax.Array:
    """Discounted reward-to-go `G_i` for every valid mesh point: `[N, K]` (0 where masked).

    `G_i = r_i dt + gamma (h if last_i else G_{i+1})`; for infinite horizon the sum is truncated
    at the end of the simulated window (its error is at most `gamma^{K-i} |J(X_K)|`).
    """
    gamma = jnp.exp(-traj.rho * traj.dt)

    def body(g_next, inp):
        r, m, last = inp
        g = m * (r * traj.dt + gamma * jnp.where(last > 0, traj.terminal, g_next))
        return g, g

    _, g = jax.lax.scan(
        body, jnp.zeros_like(traj.terminal), (traj.r.T, traj.mask, traj.last), reverse=True
    )
    return g.T


def fit_weights(traj: Trajectory, fit_until: float | jax.Array | None = None) -> jax.Array:
    """`[K]` weights of the mesh points used by ML: the valid ones with `t_i < fit_until`."""
    w = traj.mask
    if fit_until is not None:
        w = w * (traj.t[:-1] < fit_until)
    return w


def martingale_loss(
    params: Any, value_fn: ValueFn, traj: Trajectory, fit_until: float | jax.Array | None = None
) -> jax.Array:
    """ML objective `1/2 mean_n sum_i w_i (G_i - J_i)^2 dt` (scalar)."""
    values = path_values(value_fn, params, traj)[:, :-1]
    g = jax.lax.stop_gradient(reward_to_go(traj))
    w = fit_weights(traj, fit_until)
    return 0.5 * jnp.mean(jnp.sum(w * (g - values) ** 2, axis=1)) * traj.dt


def traces(f: jax.Array, traj: Trajectory, lam: float | jax.Array | None) -> jax.Array:
    """Test functions from features `f: [N, K, q]`: `xi_i = f_i` (lam None: TD(0)) or the
    continuous-time eligibility trace `xi_i = sum_{j <= i} (gamma lam^dt)^{i-j} f_j dt`.

    `lam` in `[0, 1]` is a decay per UNIT TIME (not per step). `lam = 1` makes the orthogonality
    conditions equal to the normal equations of the martingale loss (CTD(1) == ML).
    Returns: `[N, K, q]`.
    """
    if lam is None:
        return f
    kappa = jnp.exp(-traj.rho * traj.dt) * jnp.power(lam, traj.dt)

    def body(e, fi):
        e = kappa * e + fi * traj.dt
        return e, e

    _, xi = jax.lax.scan(body, jnp.zeros_like(f[:, 0]), jnp.swapaxes(f, 0, 1))
    return jnp.swapaxes(xi, 0, 1)
