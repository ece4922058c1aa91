"""Dense linear solves with one switch between LAPACK and plain-JAX kernels.

Some packages replaced batched LAPACK calls under `vmap` by hand kernels after a reported
deadlock of jaxlib's CPU thread pool (jax 0.10.2, 2 cores). `experiments/benchmarks/
lapack_vmap_deadlock.py` tries to reproduce it (each pattern in a subprocess with a timeout).
Code that wants to be able to avoid LAPACK calls `jaxrl.linalg.solve` / `lstsq` and the switch
decides:

* `BACKEND = "lapack"` (default): `jnp.linalg.solve` / `jnp.linalg.lstsq`.
* `BACKEND = "plain"`: Gaussian elimination with partial pivoting in a `fori_loop` (no custom
  call), and least squares through the normal equations.

The switch is read at trace time: set it (or the environment variable `JAXRL_LINALG`, read at
import) before the first call is traced.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp

BACKENDS = ("lapack", "plain")
BACKEND = os.environ.get("JAXRL_LINALG", "lapack")
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


def solve(a: jax.Array, b: jax.Array) -> jax.Array:
    """Solve the square system `a x = b`: `a: [n, n]`, `b: [n]` or `[n, m]` -> like `b`."""
    if BACKEND == "plain":
        return _plain_solve(a, b)
    return jnp.linalg.solve(a, b)


def lstsq(a: jax.Array, b: jax.Array) -> jax.Array:
    """Least-squares solution of `a x = b` for a tall `a: [q, p]` (q >= p, full column rank):
    `[p]` (or `[p, m]`). The plain backend solves the normal equations (squares the
    condition number)."""
    if BACKEND == "plain":
        return _plain_solve(a.T @ a, a.T @ b)
    return jnp.linalg.lstsq(a, b)[0]


def solve_or_lstsq(a: jax.Array, b: jax.Array) -> jax.Array:
    """`solve` when `a` is square, `lstsq` when it is tall (GMM with more moments than
    parameters)."""
    return solve(a, b) if a.shape[0] == a.shape[1] else lstsq(a, b)
