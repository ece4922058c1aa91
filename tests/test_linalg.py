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
