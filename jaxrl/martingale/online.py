"""Iterative estimators: online CTD(0)/CTD(lambda), two-time-scale CGTD, gradient ML/MSTDE.

Jia & Zhou (JMLR 2022), Sec. 4.2-4.3. The online algorithms sweep the mesh of a batch of paths
in time order (all paths in parallel, updates averaged over paths), `num_epochs` passes over the
data, and return the Polyak average of the iterates of the last pass. Learning rates are per
UNIT TIME: an update is `lr * xi_i * delta_i` with `delta_i = O(dt)` in drift, so the same `lr`
means the same continuous-time ODE for every `dt`.

* `ctd`: `theta += lr * xi_i delta_i`, `xi_i = dJ_i/dtheta` (CTD(0)) or the trace
  `e_i = gamma lam^dt e_{i-1} + dt dJ_i/dtheta` (CTD(lambda)); any `value_fn` (autodiff).
* `cgtd`: linear value; minimises the GMM form `|E sum xi delta|^2_{(E sum xi xi^T dt)^{-1}}`
  by GTD2-style two time scales: `w += beta (xi delta - xi xi^T w dt)`,
  `theta -= alpha c (xi . w)` with `c = d delta / d theta`.
* `fit_loss`: Adam (`jaxrl.optim.adam`) on any loss (e.g. the martingale loss of an MLP).

`ctd_epoch` / `cgtd_epoch` are single passes (the `update` of the runtime algorithms in
`jaxrl.martingale.algorithms`); `ctd` / `cgtd` scan them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jaxrl import optim
from jaxrl.envs.diffusions import Trajectory
from jaxrl.martingale.linear import path_features, td_linear_parts
from jaxrl.martingale.objectives import ValueFn
from jaxrl.martingale.values import LinearValue


def _tree_mean_weighted(tree: Any, w: jax.Array) -> Any:
    """`mean_n w_n tree_n` for a pytree with leading path axis `N`."""
    return jax.tree.map(lambda g: jnp.tensordot(w, g, axes=1) / w.shape[0], tree)


def ctd_epoch(
    params: Any,
    value_fn: ValueFn,
    traj: Trajectory,
    lr: float | jax.Array,
    lam: float | jax.Array | None = None,
) -> tuple[Any, Any]:
    """One pass of online CTD(0) / CTD(lambda) over the mesh (all paths in parallel).

    Returns `(params, average)`: the last iterate (where the next pass starts) and the Polyak
    average of this pass's iterates (the estimate). `ctd` is `num_epochs` of these.
    """
    gamma = jnp.exp(-traj.rho * traj.dt)
    kappa = None if lam is None else gamma * jnp.power(lam, traj.dt)
    val_grad = jax.vmap(jax.value_and_grad(value_fn), in_axes=(None, None, 0))
    val = jax.vmap(value_fn, in_axes=(None, None, 0))
    num_steps = traj.r.shape[1]
    n_paths = traj.x.shape[0]

    def step(carry, i):
        p, e, acc = carry
        j_i, g_i = val_grad(p, traj.t[i], traj.x[:, i])
        j_next = val(p, traj.t[i + 1], traj.x[:, i + 1])
        nxt = jnp.where(traj.last[i] > 0, traj.terminal, j_next)
        delta = traj.mask[i] * (gamma * nxt - j_i + traj.r[:, i] * traj.dt)
        if kappa is None:
            xi = g_i
        else:
            e = jax.tree.map(lambda a, g: kappa * a + traj.dt * g, e, g_i)
            xi = e
        upd = _tree_mean_weighted(xi, delta)
        p = jax.tree.map(lambda a, u: a + lr * u, p, upd)
        acc = jax.tree.map(lambda a, b: a + traj.mask[i] * b, acc, p)
        return (p, e, acc), None

    e0 = jax.tree.map(lambda a: jnp.zeros((n_paths, *jnp.shape(a)), jnp.result_type(a)), params)
    acc0 = jax.tree.map(jnp.zeros_like, params)
    (p, _, acc), _ = jax.lax.scan(step, (params, e0, acc0), jnp.arange(num_steps))
    avg = jax.tree.map(lambda a: a / jnp.maximum(jnp.sum(traj.mask), 1.0), acc)
    return p, avg


def ctd(
    params: Any,
    value_fn: ValueFn,
    traj: Trajectory,
    lr: float | jax.Array,
    lam: float | jax.Array | None = None,
    num_epochs: int = 1,
) -> Any:
    """Online CTD(0) (`lam=None`) or CTD(lambda) with any differentiable `value_fn`.

    Args:
      params: initial parameters (pytree); value_fn: `value_fn(params, t, x) -> scalar`.
      traj: `Trajectory` (`x: [N, K+1]`); lr: step size per unit time.
      lam: trace decay per unit time in `[0, 1]`; num_epochs: passes over the data (static).
    Returns: the Polyak average of the last pass's iterates (same pytree as `params`).
    """
    if num_epochs < 1:
        raise ValueError(f"num_epochs must be >= 1, got {num_epochs}")
    _, avgs = jax.lax.scan(lambda p, _: ctd_epoch(p, value_fn, traj, lr, lam), params, None,
                           length=num_epochs)
    return jax.tree.map(lambda a: a[-1], avgs)


def _cgtd_pass(th, w, c, d, xi, traj, alpha, beta):
    """One CGTD pass given the TD parts `c, d` and test values `xi` (see `cgtd`)."""
    n = traj.x.shape[0]

    def step(carry, inp):
        th, w, acc = carry
        ci, di, xii, mi = inp
        delta = ci @ th + di
        proj = xii @ w
        w = w + beta * (xii.T @ (delta - mi * proj * traj.dt)) / n
        th = th - alpha * (ci.T @ proj) / n
        return (th, w, acc + mi * th), None

    (th, w, acc), _ = jax.lax.scan(
        step,
        (th, w, jnp.zeros_like(th)),
        (jnp.swapaxes(c, 0, 1), jnp.swapaxes(d, 0, 1), jnp.swapaxes(xi, 0, 1), traj.mask),
    )
    return th, w, acc / jnp.maximum(jnp.sum(traj.mask), 1.0)


def cgtd_epoch(
    theta: jax.Array,
    w: jax.Array,
    value: LinearValue,
    traj: Trajectory,
    alpha: float | jax.Array,
    beta: float | jax.Array,
    test_fn: Callable | None = None,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """One CGTD pass: `(theta, w, average)`, the last slow / fast iterates (where the next pass
    starts; `w` starts at zeros of the test-function size) and the Polyak average of this pass's
    `theta` iterates. `cgtd` is `num_epochs` of these."""
    c, d = td_linear_parts(value, traj)
    xi = path_features(test_fn or value.features, traj)[:, :-1]
    return _cgtd_pass(theta, w, c, d, xi, traj, alpha, beta)


def cgtd(
    theta: jax.Array,
    value: LinearValue,
    traj: Trajectory,
    alpha: float | jax.Array,
    beta: float | jax.Array,
    test_fn: Callable | None = None,
    num_epochs: int = 1,
) -> jax.Array:
    """CGTD (GTD2-style, two time scales) for a linear value: `[p]` (Polyak average).

    Args:
      theta: `[p]` initial parameters; alpha, beta: slow / fast step sizes per unit time
        (`beta > alpha`); test_fn: `f(t, x) -> [q]`, default the features.
    """
    if num_epochs < 1:
        raise ValueError(f"num_epochs must be >= 1, got {num_epochs}")
    c, d = td_linear_parts(value, traj)
    xi = path_features(test_fn or value.features, traj)[:, :-1]

    def epoch(carry, _):
        th, w = carry
        th, w, avg = _cgtd_pass(th, w, c, d, xi, traj, alpha, beta)
        return (th, w), avg

    w0 = jnp.zeros(xi.shape[-1], theta.dtype)
    _, avgs = jax.lax.scan(epoch, (theta, w0), None, length=num_epochs)
    return avgs[-1]


def fit_loss(
    loss_fn: Callable[[Any], jax.Array],
    params: Any,
    num_iters: int,
    learning_rate: float | jax.Array = 1e-2,
) -> tuple[Any, jax.Array]:
    """Minimise `loss_fn(params)` with Adam for `num_iters` steps (one `lax.scan`).

    Returns: `(params, losses[num_iters])`.
    """
    opt = optim.adam()

    def body(carry, _):
        p, s = carry
        loss, g = jax.value_and_grad(loss_fn)(p)
        p, s = optim.step(opt, g, s, p, learning_rate=learning_rate)
        return (p, s), loss

    (params, _), losses = jax.lax.scan(body, (params, opt.init(params)), None, length=num_iters)
    return params, losses
