"""Closed-form estimators for a linear value `J = theta . phi(t, x) + base(t, x)`.

Jia & Zhou (JMLR 2022), Sec. 4. With `delta_i(theta) = c_i . theta + d_i`,
`c_i = gamma phi_{i+1} - phi_i` (no `phi_{i+1}` on the terminal step) and
`d_i = gamma base_{i+1} - base_i + r_i dt` (`gamma h(X_T)` on the terminal step):

* `ml_linear`: least squares of the reward-to-go `G_i - base_i` on `phi_i` (martingale loss).
* `clstd`: the martingale orthogonality conditions `E sum_i xi_i delta_i = 0` solved in closed
  form, `theta = -[sum xi_i c_i^T]^{-1} sum xi_i d_i` (CLSTD; `xi = phi` gives LSTD(0), traces
  give LSTD(lambda); more test functions than parameters: GMM least squares).
* `mstde_linear`: the minimiser of the mean-square TD error,
  `theta = -[sum c_i c_i^T]^{-1} sum c_i d_i`.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from jaxrl import linalg
from jaxrl.envs.diffusions import Trajectory
from jaxrl.martingale.objectives import fit_weights, reward_to_go, traces
from jaxrl.martingale.values import LinearValue


def path_features(features: Callable, traj: Trajectory) -> jax.Array:
    """`phi(t_i, X_i)` on every mesh point: `[N, K+1, p]`."""
    per_t = jax.vmap(features, in_axes=(0, 0))
    return jax.vmap(per_t, in_axes=(None, 0))(traj.t, traj.x)


def td_linear_parts(value: LinearValue, traj: Trajectory) -> tuple[jax.Array, jax.Array]:
    """`(c, d)` with `delta_i(theta) = c_i . theta + d_i`: `c: [N, K, p]`, `d: [N, K]` (masked)."""
    phi = path_features(value.features, traj)
    base = jax.vmap(jax.vmap(value.base, in_axes=(0, 0)), in_axes=(None, 0))(traj.t, traj.x)
    gamma = jnp.exp(-traj.rho * traj.dt)
    last = traj.last[None, :]
    c = gamma * (1.0 - last)[..., None] * phi[:, 1:] - phi[:, :-1]
    d = (
        gamma * jnp.where(last > 0, traj.terminal[:, None], base[:, 1:])
        - base[:, :-1]
        + traj.r * traj.dt
    )
    m = traj.mask[None, :]
    return c * m[..., None], d * m


def ml_linear(
    value: LinearValue, traj: Trajectory, fit_until: float | jax.Array | None = None
) -> jax.Array:
    """Martingale-loss minimiser for a linear value (closed form): `[p]`."""
    phi = path_features(value.features, traj)[:, :-1]
    base = jax.vmap(jax.vmap(value.base, in_axes=(0, 0)), in_axes=(None, 0))(traj.t, traj.x)
    g = reward_to_go(traj) - base[:, :-1]
    w = fit_weights(traj, fit_until)[None, :]
    gram = jnp.einsum("nk,nkp,nkq->pq", w, phi, phi)
    rhs = jnp.einsum("nk,nkp,nk->p", w, phi, g)
    return linalg.solve(gram, rhs)


def orthogonality_system(
    value: LinearValue,
    traj: Trajectory,
    test_fn: Callable | None = None,
    lam: float | jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
    """`(A, b)` with empirical orthogonality conditions `A theta + b = 0` (path-averaged).

    Args:
      test_fn: `f(t, x) -> [q]` building the test functions (default: the features, i.e.
        `dJ/dtheta`); `lam`: trace decay per unit time (None: `xi_i = f(t_i, X_i)`).
    Returns: `A: [q, p]`, `b: [q]`.
    """
    c, d = td_linear_parts(value, traj)
    f = path_features(test_fn or value.features, traj)[:, :-1]
    xi = traces(f, traj, lam)
    n = traj.x.shape[0]
    return jnp.einsum("nkq,nkp->qp", xi, c) / n, jnp.einsum("nkq,nk->q", xi, d) / n


def clstd(
    value: LinearValue,
    traj: Trajectory,
    test_fn: Callable | None = None,
    lam: float | jax.Array | None = None,
) -> jax.Array:
    """CLSTD: solve the martingale orthogonality conditions in closed form: `[p]`."""
    a, b = orthogonality_system(value, traj, test_fn, lam)
    return linalg.solve_or_lstsq(a, -b)


def mstde_linear(value: LinearValue, traj: Trajectory) -> jax.Array:
    """Minimiser of the mean-square TD error `sum_i delta_i^2 / dt` (closed form): `[p]`."""
    c, d = td_linear_parts(value, traj)
    return linalg.solve(jnp.einsum("nkp,nkq->pq", c, c), -jnp.einsum("nkp,nk->p", c, d))
