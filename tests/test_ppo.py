"""PPO's loss against hand-computed values, and a short CartPole learning check."""

from __future__ import annotations

import distrax
import jax
import jax.numpy as jnp
import numpy as np

from jaxrl import ppo, sweep

HP = {"clip_eps": jnp.float32(0.2), "vf_coef": jnp.float32(0.5), "ent_coef": jnp.float32(0.01)}


def _apply(params, obs):
    del obs
    return distrax.Categorical(logits=params["logits"]), params["v"]


def test_ppo_loss_against_a_hand_computed_value():
    """Four rows chosen so that each branch of the clipped objectives is active once:
    ratio above 1+eps with A>0 (clipped), below 1-eps with A<0 (clipped), above 1+eps with A<0
    (unclipped: the pessimistic min keeps r*A), inside the band; the value of row 0 moves past
    the clip band toward a far target and row 1 past it away from its target (both: the clipped
    term is the larger), row 2 moves inside the band."""
    logits = np.log(np.array([[0.6, 0.4], [0.1, 0.9], [0.7, 0.3], [0.5, 0.5]]))
    old_p = np.array([0.4, 0.5, 0.5, 0.45])  # pi_old(a_i|s_i); actions all 0
    adv = np.array([1.0, -2.0, -0.5, 0.3])
    v_old = np.array([0.0, 1.0, 2.0, -1.0])
    v_new = np.array([0.5, 0.5, 2.1, -1.0])
    tgt = np.array([3.0, 0.0, 2.0, 0.0])
    eps, c_v, c_e = 0.2, 0.5, 0.01

    # Hand computation, case by case (no min/clip expressions).
    pi = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    ratio = pi[:, 0] / old_p  # 1.5, 0.2, 1.4, 1.111
    a = (adv - adv.mean()) / (adv.std() + 1e-8)
    assert a[0] > 0 and a[1] < 0 and a[2] < 0
    surr = [
        (1 + eps) * a[0],  # r = 1.5 > 1.2, A > 0: clipped at 1.2
        (1 - eps) * a[1],  # r = 0.2 < 0.8, A < 0: clipped at 0.8
        ratio[2] * a[2],   # r = 1.4 > 1.2, A < 0: r*A is the smaller, unclipped
        ratio[3] * a[3],   # r = 1.11 inside the band
    ]
    actor = -np.mean(surr)
    # Values: row 0 clipped to 0.2 (err 2.8^2 > 2.5^2), row 1 clipped to 0.8 (0.8^2 > 0.5^2),
    # row 2 inside the band (0.1^2), row 3 unchanged (1.0).
    value_sq = [2.8 ** 2, 0.8 ** 2, 0.1 ** 2, 1.0]
    value_loss = 0.5 * np.mean(value_sq)
    entropy = np.mean(-(pi * np.log(pi)).sum(1))
    want = actor + c_v * value_loss - c_e * entropy

    batch = ppo.Transition(obs=jnp.zeros((4, 1)), action=jnp.zeros(4, jnp.int32),
                           log_prob=jnp.log(jnp.asarray(old_p, jnp.float32)),
                           value=jnp.asarray(v_old, jnp.float32), reward=jnp.zeros(4),
                           terminated=jnp.zeros(4, bool), truncated=jnp.zeros(4, bool),
                           final_obs=jnp.zeros((4, 1)))
    params = {"logits": jnp.asarray(logits, jnp.float32), "v": jnp.asarray(v_new, jnp.float32)}
    total, aux = ppo.ppo_loss(params, _apply, batch, jnp.asarray(adv, jnp.float32),
                              jnp.asarray(tgt, jnp.float32), HP)
    np.testing.assert_allclose(float(aux["actor_loss"]), actor, rtol=1e-5)
    np.testing.assert_allclose(float(aux["value_loss"]), value_loss, rtol=1e-5)
    np.testing.assert_allclose(float(aux["entropy"]), entropy, rtol=1e-5)
    np.testing.assert_allclose(float(total), want, rtol=1e-5)
    np.testing.assert_allclose(float(aux["clip_frac"]), 0.75)  # rows 0, 1, 2 outside the band
    # Gradient of the surrogate: zero through the clipped rows 0 and 1 only.
    g = jax.grad(lambda p: ppo.ppo_loss(p, _apply, batch, jnp.asarray(adv, jnp.float32),
                                        jnp.asarray(tgt, jnp.float32),
                                        {**HP, "ent_coef": jnp.float32(0.0)})[0])(params)
    gl = np.asarray(g["logits"])
    np.testing.assert_allclose(gl[:2], 0.0, atol=1e-7)
    assert np.all(np.abs(gl[2:]) > 1e-3)
    # Value gradient: row 0 and 1 clipped (zero), rows 2, 3 c_v * (v - tgt) / B.
    np.testing.assert_allclose(np.asarray(g["v"]),
                               [0.0, 0.0, c_v * 0.1 / 4, c_v * -1.0 / 4], atol=1e-6)


def test_ppo_learns_cartpole_with_fixed_seeds():
    """16k steps (64 updates of 4 envs x 64 steps), seeds 0-3: a uniform random policy scores
    ~22; measured final returns 171-286 (last 5 updates)."""
    c = ppo.get_config()
    c.total_timesteps, c.num_steps, c.lr, c.hidden = 16_384, 64, 1e-3, (32, 32)
    train = jax.jit(jax.vmap(sweep.make_train(ppo.make_ppo(c))))
    _, m = train(jax.random.split(jax.random.PRNGKey(0), 4))
    final = np.asarray(m["return"])[:, -5:].mean(1)
    assert final.min() > 100.0 and final.mean() > 150.0, final
