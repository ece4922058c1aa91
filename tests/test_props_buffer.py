"""PROPS's FIFO buffer: eviction order, time continuity across batches, GAE across boundaries."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from test_props import tiny_config, trained

from jaxrl import props


def _chunk(label, m=3, e=2):
    f = jnp.full((m, e), float(label))
    return props.Buffer(f[..., None], f.astype(jnp.int32), f, f > 1e9, f > 1e9, f[..., None],
                        jnp.ones((m,), bool))


def test_push_evicts_the_oldest_chunk_first():
    length = 9  # 3 chunks of m = 3
    z = jnp.zeros((length, 2))
    buf = props.Buffer(z[..., None], z.astype(jnp.int32), z, z > 0, z > 0, z[..., None],
                       jnp.zeros((length,), bool))
    for label in range(1, 6):
        buf = props.push(buf, _chunk(label))
        filled = min(label, 3)
        want = [0.0] * (3 - filled) + list(range(max(1, label - 2), label + 1))
        np.testing.assert_array_equal(np.asarray(buf.reward)[::3, 0], want)
        np.testing.assert_array_equal(np.asarray(buf.valid)[::3], [w > 0 for w in want])


def test_buffer_is_time_contiguous_and_gae_crosses_the_batch_boundary():
    """After 3 updates (buffer of b = 2 batches of n = 32, full), every slot's final observation
    is the next slot's observation unless the episode ended there, also at the boundary
    t = n - 1 between the two batches; buffer_gae equals a NumPy GAE loop over all 2n slots."""
    state, _ = trained(behavior="none")
    buf = state.buffer
    n = 32
    obs, fin = np.asarray(buf.obs), np.asarray(buf.final_obs)
    done = np.asarray(buf.terminated) | np.asarray(buf.truncated)
    assert np.asarray(buf.valid).all()
    # Equal to float32 rounding, not bit for bit: gymnax returns the step's observation twice
    # (`obs` and `info["final_observation"]`), and XLA may compute it in two fusions, contracting
    # `x + tau * x_dot` into an FMA in one of them (1 ulp, seen after an unrelated change). A
    # misaligned slot differs by a whole step (~1e-2).
    close = dict(rtol=1e-6, atol=1e-7)
    for t in range(2 * n - 1):
        for e in range(2):
            if not done[t, e]:
                np.testing.assert_allclose(fin[t, e], obs[t + 1, e], **close)
    np.testing.assert_allclose(fin[-1][~done[-1]], np.asarray(state.obs)[~done[-1]], **close)

    cfg = props.as_config(tiny_config(behavior="none"))
    net = props.algorithm.ActorCritic(2, True, tuple(cfg.hidden), cfg.activation)
    hp = {"gamma": jnp.float32(0.9), "gae_lambda": jnp.float32(0.8)}
    traj, adv, _ = props.buffer_gae(net.apply, state.params, buf, state.obs, hp)
    v = np.asarray(traj.value, np.float64)
    v_fin = np.asarray(net.apply(state.params, buf.final_obs)[1], np.float64)
    v_last = np.asarray(net.apply(state.params, state.obs)[1], np.float64)
    r = np.asarray(buf.reward, np.float64)
    term, trunc = np.asarray(buf.terminated), np.asarray(buf.truncated)
    want = np.zeros_like(v)
    nxt = np.zeros(2)
    for t in reversed(range(2 * n)):
        v_next = v_last if t == 2 * n - 1 else v[t + 1]
        for e in range(2):
            if term[t, e]:
                delta, carry = r[t, e] - v[t, e], 0.0
            elif trunc[t, e]:
                delta, carry = r[t, e] + 0.9 * v_fin[t, e] - v[t, e], 0.0
            else:
                delta, carry = r[t, e] + 0.9 * v_next[e] - v[t, e], nxt[e]
            want[t, e] = delta + 0.9 * 0.8 * carry
        nxt = want[t]
    np.testing.assert_allclose(np.asarray(adv), want, rtol=1e-4, atol=1e-5)
    # The boundary slot's trace really carries the newer batch's advantages.
    e = int(np.argmax(~done[n - 1]))
    assert not done[n - 1, e] and abs(want[n - 1, e] - (r[n - 1, e] + 0.9 * v[n, e]
                                                         - v[n - 1, e])) > 1e-3
