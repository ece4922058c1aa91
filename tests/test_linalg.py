"""`jaxrl.linalg`: the plain-JAX backend against NumPy, and the one switch routing martingale's
closed-form solves."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl import linalg
from jaxrl import martingale as mg
from jaxrl.envs import diffusions as dif


def test_plain_solve_and_lstsq_match_numpy_under_vmap(monkeypatch):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 5, 5))
    a[:, 0, 0] = 0.0  # needs pivoting
    b = rng.normal(size=(3, 5))
    tall = rng.normal(size=(3, 7, 4))
    monkeypatch.setattr(linalg, "BACKEND", "plain")
    x = jax.jit(jax.vmap(linalg.solve))(jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32))
    np.testing.assert_allclose(x, np.linalg.solve(a, b[..., None])[..., 0], rtol=2e-4, atol=2e-4)
    y = jax.jit(jax.vmap(linalg.lstsq))(jnp.asarray(tall, jnp.float32),
                                        jnp.asarray(tall[..., 0] + b[:, :1], jnp.float32))
    ref = np.stack([np.linalg.lstsq(t, t[:, 0] + bb[0], rcond=None)[0]
                    for t, bb in zip(tall, b, strict=True)])
    np.testing.assert_allclose(y, ref, rtol=2e-4, atol=2e-4)


def test_switch_routes_martingale_solves(monkeypatch):
    env, params = dif.make_ou(dt=0.2, horizon=4.0)
    traj = jax.jit(lambda k: dif.simulate(k, env, params, 64, 20))(jax.random.PRNGKey(0))
    value = mg.LinearValue(mg.quadratic_features)

    def both(tr):  # traced anew for each backend (the switch is read at trace time)
        return jnp.stack([mg.clstd(value, tr), mg.ml_linear(value, tr)])

    calls = []
    plain = linalg._plain_solve
    monkeypatch.setattr(linalg, "_plain_solve", lambda a, b: calls.append(1) or plain(a, b))
    lapack = np.asarray(jax.jit(both)(traj))
    assert not calls
    monkeypatch.setattr(linalg, "BACKEND", "plain")
    got = np.asarray(jax.jit(lambda tr: both(tr))(traj))
    assert len(calls) == 2
    np.testing.assert_allclose(got, lapack, rtol=1e-3, atol=1e-4)


def _batch(n=6, batch=(3, 4), seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=batch + (n, n)) + n * np.eye(n)
    return jnp.asarray(a, jnp.float32), jnp.asarray(rng.normal(size=batch + (n,)), jnp.float32)


def test_serial_backend_is_bit_identical_to_batched_lapack(monkeypatch):
    a, b = _batch()
    tall = a[..., :, :4]
    monkeypatch.setattr(linalg, "BACKEND", "lapack")
    ref = [jax.jit(jax.vmap(jax.vmap(f)))(x, b) for f, x in
           ((linalg.solve, a), (linalg.lstsq, tall))]
    ref.append(jax.jit(jax.vmap(linalg.solve, (0, None)))(a[0], b[0, 0]))  # unbatched rhs
    monkeypatch.setattr(linalg, "BACKEND", "serial")
    for f, x in ((linalg.solve, a[0]), (linalg.lstsq, tall[0])):  # every LAPACK call unbatched
        hlo = jax.jit(jax.vmap(f)).lower(x, b[0]).compile().as_text()
        calls = [ln for ln in hlo.splitlines() if 'custom_call_target="lapack_' in ln]
        shapes = [ln.split(" = ", 1)[1].lstrip("(") for ln in calls]
        assert calls and all(sh.startswith(f"f32[{x.shape[1]},") for sh in shapes), shapes
    got = [jax.jit(jax.vmap(jax.vmap(f)))(x, b) for f, x in
           ((linalg.solve, a), (linalg.lstsq, tall))]
    got.append(jax.jit(jax.vmap(linalg.solve, (0, None)))(a[0], b[0, 0]))
    # a PROPS-sized least squares (256 samples x 65 features), where looping the whole of
    # `jnp.linalg.lstsq` (not only its SVD) changed the last bits
    big, rhs = jax.random.normal(jax.random.PRNGKey(0), (2, 16, 256, 65))
    monkeypatch.setattr(linalg, "BACKEND", "lapack")
    ref.append(jax.jit(jax.vmap(linalg.lstsq))(big, rhs[..., :1]))
    monkeypatch.setattr(linalg, "BACKEND", "serial")
    got.append(jax.jit(jax.vmap(linalg.lstsq))(big, rhs[..., :1]))
    for g, r in zip(got, ref, strict=True):
        np.testing.assert_array_equal(np.asarray(g), np.asarray(r))
    a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
    np.testing.assert_allclose(got[0], np.linalg.solve(a64, b64[..., None])[..., 0],
                               rtol=1e-5, atol=1e-6)


def test_serial_backend_gradients_match_numpy_closed_forms(monkeypatch):
    """d/dA and d/db of sum(w * x) for x = A^{-1} b and for the least-squares x, under vmap,
    against the closed forms (A^{-T} w for b, -A^{-T} w x^T for A; least squares by central
    differences in float64)."""
    jax.config.update("jax_enable_x64", True)
    try:
        monkeypatch.setattr(linalg, "BACKEND", "serial")
        rng = np.random.default_rng(1)
        a = rng.normal(size=(3, 5, 5)) + 5 * np.eye(5)
        b = rng.normal(size=(3, 5))
        w = rng.normal(size=5)
        ga, gb = jax.vmap(jax.grad(lambda a, b: (w * linalg.solve(a, b)).sum(), (0, 1)))(a, b)
        lam = np.linalg.solve(np.swapaxes(a, 1, 2), np.broadcast_to(w, b.shape)[..., None])
        x = np.linalg.solve(a, b[..., None])
        np.testing.assert_allclose(gb, lam[..., 0], rtol=1e-10)
        np.testing.assert_allclose(ga, -lam @ np.swapaxes(x, 1, 2), rtol=1e-10)
        t, y = rng.normal(size=(3, 8, 3)), rng.normal(size=(3, 8))

        def loss(t, y):
            return (w[:3] * linalg.lstsq(t, y)).sum()

        gt, gy = jax.vmap(jax.grad(loss, (0, 1)))(t, y)

        def np_loss(t, y):
            return (w[:3] * np.linalg.lstsq(t, y, rcond=None)[0]).sum()

        eps = 1e-6
        for arr, grad in ((t, gt), (y, gy)):
            fd = np.zeros_like(arr)
            for idx in np.ndindex(arr.shape):
                up, dn = arr.copy(), arr.copy()
                up[idx] += eps
                dn[idx] -= eps
                i = idx[0]
                args_up = (up[i], y[i]) if arr is t else (t[i], up[i])
                args_dn = (dn[i], y[i]) if arr is t else (t[i], dn[i])
                fd[idx] = (np_loss(*args_up) - np_loss(*args_dn)) / (2 * eps)
            np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-8)
    finally:
        jax.config.update("jax_enable_x64", False)


def test_serial_backend_runs_the_two_device_pattern_that_deadlocks_lapack():
    """Two CPU devices each running a vmapped 128 x 128 solve / lstsq in a loop: the batched
    LAPACK kernels deadlock XLA's 2-thread pool here (the benchmark script shows HANG with
    `--linalg=lapack`); through the serial backend both finish."""
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "experiments.benchmarks.lapack_vmap_deadlock", "--devices=2",
         "--cases=solve_devices,lstsq_devices", "--reps=3", "--timeout=120", "--linalg=serial"],
        capture_output=True, text=True, timeout=300)
    assert "hung: none" in out.stdout, out.stdout + out.stderr
