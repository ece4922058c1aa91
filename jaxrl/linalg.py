"""Dense linear solves with one switch between LAPACK and plain-JAX kernels.

Why: jaxlib's CPU LAPACK kernels (jax 0.10.2) split a *batched* call (a `vmap`ped solve)
into tasks on XLA's intra-op thread pool and block a pool worker until those tasks finish
(`ParallelBatchMap` waiting on a `BlockingCounter`). When as many batched LAPACK calls run at
once as the pool has threads (one per core), every worker waits for tasks that no free worker
can run: a deadlock, every thread in a futex wait. Seen as the PROPS studies hanging with two
CPU devices on this 2-core machine (each device's program inside a vmapped `getrf`; gdb
stacks of the hung process, 2026-12-05) and reproduced by `experiments/benchmarks/
lapack_vmap_deadlock.py --devices=2 --cases=solve_devices` (HANG with `--linalg=lapack`, ok
with `serial`), which `tests/test_linalg.py` runs in a subprocess.

Code that solves under `vmap` calls `jaxrl.linalg.solve` / `lstsq` and the switch decides:

* `BACKEND = "serial"` (default): the same LAPACK call per matrix; under `vmap` the batch is
  looped over (`lax.map`, through `jax.custom_batching.custom_vmap`), so no batched LAPACK call
  is ever issued. Bit-identical to `"lapack"` (the batched kernel runs the same routine per
  matrix; checked in the tests), differentiable (solves through `lax.custom_linear_solve`,
  least squares through a JVP rule), and slower only by the lost parallelism over the batch.
* `BACKEND = "lapack"`: `jnp.linalg.solve` / `jnp.linalg.lstsq` as they are (batched under
  `vmap`; can deadlock as above).
* `BACKEND = "plain"`: Gaussian elimination with partial pivoting in a `fori_loop` (no custom
  call), and least squares through the normal equations.

The switch is read at trace time: set it (or the environment variable `JAXRL_LINALG`, read at
import) before the first call is traced. `jaxrl/bayes_pg/gp.py` (Cholesky) and
`jaxrl/networks.py` (orthogonal init, QR) avoid LAPACK with hand kernels of their own for the
same reason; moving them here would change their results' bits, so they stay as they are.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
from jax.custom_batching import custom_vmap

BACKENDS = ("serial", "lapack", "plain")
BACKEND = os.environ.get("JAXRL_LINALG", "serial")
if BACKEND not in BACKENDS:
    raise ValueError(f"JAXRL_LINALG must be one of {BACKENDS}, got {BACKEND!r}")


def _plain_solve(a: jax.Array, b: jax.Array) -> jax.Array:
    """`a^{-1} b` by Gaussian elimination with partial pivoting (`a: [n, n]`, `b: [n]` or
    `[n, m]`)."""
    n = a.shape[0]
    vec = b.ndim == 1
    m = jnp.concatenate([a, b[:, None] if vec else b], axis=1)
    idx = jnp.arange(n)

    def elim(k, m):
        col = jnp.where(idx >= k, jnp.abs(m[:, k]), -1.0)
        piv = jnp.argmax(col)
        rk, rp = m[k], m[piv]
        m = m.at[k].set(rp).at[piv].set(rk)
        f = jnp.where(idx > k, m[:, k] / m[k, k], 0.0)
        return m - f[:, None] * m[k][None, :]

    m = jax.lax.fori_loop(0, n, elim, m)
    u, rhs = m[:, :n], m[:, n:]

    def back(j, x):
        i = n - 1 - j
        return x.at[i].set((rhs[i] - u[i] @ x) / u[i, i])

    x = jax.lax.fori_loop(0, n, back, jnp.zeros_like(rhs))
    return x[:, 0] if vec else x


def _looped(op):
    """`op(*arrays)` whose `vmap` is a `lax.map` over the batch (one unbatched call per item)."""
    f = custom_vmap(op)

    @f.def_vmap
    def _rule(axis_size, in_batched, *args):
        args = [x if batched else jnp.broadcast_to(x, (axis_size,) + x.shape)
                for x, batched in zip(args, in_batched, strict=True)]
        out = jax.lax.map(lambda xs: f(*xs), tuple(args))
        return out, jax.tree.map(lambda _: True, out)

    return f


_lapack_solve = _looped(jnp.linalg.solve)
_lapack_svd = _looped(lambda a: tuple(jnp.linalg.svd(a, full_matrices=False)))


def _svd_lstsq(a: jax.Array, b: jax.Array) -> jax.Array:
    """Minimum-norm least squares from the thin SVD, singular values below
    `eps * max(q, p) * s_max` dropped: the algorithm of `jnp.linalg.lstsq` (default rcond), with
    only the SVD looped, so the result has its bits."""
    vec = b.ndim == 1
    rhs = b[:, None] if vec else b
    u, s, vt = _lapack_svd(a)
    rcond = float(jnp.finfo(a.dtype).eps) * max(a.shape)
    keep = (s > 0) & (s >= jnp.asarray(rcond, s.dtype) * s[0])
    s_inv = jnp.where(keep, 1 / jnp.where(keep, s, 1).astype(a.dtype), 0)[:, None]
    hi = jax.lax.Precision.HIGHEST
    x = jnp.matmul(vt.T, s_inv * jnp.matmul(u.T, rhs, precision=hi), precision=hi)
    return x[:, 0] if vec else x


def _serial_solve(a: jax.Array, b: jax.Array) -> jax.Array:
    vec = b.ndim == 1
    rhs = b[:, None] if vec else b
    x = jax.lax.custom_linear_solve(
        lambda v: a @ v, rhs, solve=lambda _, r: _lapack_solve(a, r),
        transpose_solve=lambda _, r: _lapack_solve(a.T, r))
    return x[:, 0] if vec else x


@jax.custom_jvp
def _serial_lstsq(a: jax.Array, b: jax.Array) -> jax.Array:
    return _svd_lstsq(a, b)


@_serial_lstsq.defjvp
def _serial_lstsq_jvp(primals, tangents):
    # x = (A^T A)^{-1} A^T b (full column rank): dx = (A^T A)^{-1} (dA^T r + A^T (db - dA x)),
    # r = b - A x the residual.
    (a, b), (da, db) = primals, tangents
    x = _serial_lstsq(a, b)
    r = b - a @ x
    return x, _serial_solve(a.T @ a, da.T @ r + a.T @ (db - da @ x))


def solve(a: jax.Array, b: jax.Array) -> jax.Array:
    """Solve the square system `a x = b`: `a: [n, n]`, `b: [n]` or `[n, m]` -> like `b`."""
    if BACKEND == "plain":
        return _plain_solve(a, b)
    if BACKEND == "serial":
        return _serial_solve(a, b)
    return jnp.linalg.solve(a, b)


def lstsq(a: jax.Array, b: jax.Array) -> jax.Array:
    """Least-squares solution of `a x = b` for a tall `a: [q, p]` (q >= p, full column rank):
    `[p]` (or `[p, m]`). The plain backend solves the normal equations (squares the
    condition number)."""
    if BACKEND == "plain":
        return _plain_solve(a.T @ a, a.T @ b)
    if BACKEND == "serial":
        return _serial_lstsq(a, b)
    return jnp.linalg.lstsq(a, b)[0]


def solve_or_lstsq(a: jax.Array, b: jax.Array) -> jax.Array:
    """`solve` when `a` is square, `lstsq` when it is tall (GMM with more moments than
    parameters)."""
    return solve(a, b) if a.shape[0] == a.shape[1] else lstsq(a, b)
