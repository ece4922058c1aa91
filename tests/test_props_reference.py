"""The on-policy reference of PROPS's sampling error (issue 20 items 8 and 10).

`ref_sampling_error` re-simulates, at every target update, the on-policy data that the last `b`
target policies would have produced (the authors' `compute_se_ref`) and measures it with the
same estimator as the PROPS buffer. Checked here against things computed independently of that
code path: deterministic targets fix every reference action (order and alignment of the
batches), the stored target sequence is the recorded history of `theta`, and two invariants of
the RL loop: with no behavior policy (PPO-Buffer) buffer and reference are samples of the same
distribution, and with a fixed target PROPS's buffer is closer to on-policy than the reference.
"""

from __future__ import annotations

import functools

import distrax
import jax
import jax.numpy as jnp
import numpy as np
from test_props import tiny_config

from jaxrl import envs, ppo, props, sweep


def small_config(**kw):
    """4 CartPole copies x n = 64 steps, m = 16, b = 2, 16x16 MLP; 6 target updates."""
    return tiny_config(**{"num_envs": 4, "num_steps": 64, "props_num_steps": 16,
                          "total_timesteps": 256 * 6, "props_update_epochs": 16,
                          "se_steps": 30, **kw})


@functools.cache
def runs(num_seeds: int = 16, **kw):
    """Per-update metrics `[seeds, updates]` of `num_seeds` vmapped runs (seeds 0..)."""
    algo = props.make_props(small_config(**kw))
    train = jax.jit(jax.vmap(sweep.make_train(algo)))
    _, m = train(jax.random.split(jax.random.PRNGKey(0), num_seeds))
    return {k: np.asarray(v) for k, v in m.items()}


def test_reference_rollouts_use_each_target_for_its_own_batch():
    # Target i always plays action i (logits +-50): every reference action of batch i must be
    # i, oldest target first; the environment continues from one target to the next.
    env, env_params, _ = ppo.make_env(small_config())
    obs, env_state = env.reset(jax.random.PRNGKey(1), env_params)

    def policy(target, o):
        return distrax.Categorical(logits=jnp.broadcast_to(target, o.shape[:1] + (2,)))

    targets = jnp.array([[50.0, -50.0], [-50.0, 50.0]])
    r_obs, r_act = props.reference_rollouts(env, env_params, policy, targets, env_state, obs,
                                            jax.random.PRNGKey(2), 20)
    assert r_obs.shape == (40, 4, 4) and r_act.shape == (40, 4)
    assert np.all(np.asarray(r_act[:20]) == 0) and np.all(np.asarray(r_act[20:]) == 1)
    np.testing.assert_array_equal(r_obs[0], obs)  # starts from the given state
    # pushing left then right: the cart's velocity falls during batch 0, rises in batch 1
    # (compared between consecutive steps that did not end an episode)
    v = np.asarray(r_obs[:, :, 1])
    dv = np.diff(v, axis=0)
    step_ok = np.abs(dv) < 0.5  # an episode reset jumps the velocity
    assert np.all(dv[:19][step_ok[:19]] < 0) and np.all(dv[20:][step_ok[20:]] > 0)
    assert envs.action_dim(env, env_params) == 2


def test_stored_targets_are_the_last_b_thetas():
    algo = props.make_props(small_config(total_timesteps=256 * 3, se_steps=0))
    hp = algo.hparams
    state = algo.init(jax.random.PRNGKey(0), hp)
    update = jax.jit(algo.update)
    history = []
    for k in range(3):
        history.append(state.params["params"]["actor"])
        state, _ = update(state, hp)
        valid = np.asarray(state.targets_valid)
        np.testing.assert_array_equal(valid, [k >= 1, True])
        last = jax.tree.map(lambda x: x[-1], state.targets["actor"])
        for a, b in zip(jax.tree.leaves(last), jax.tree.leaves(history[-1]), strict=True):
            np.testing.assert_array_equal(a, b)
        if k >= 1:
            first = jax.tree.map(lambda x: x[0], state.targets["actor"])
            for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(history[-2]), strict=True):
                np.testing.assert_array_equal(a, b)
    # the target moved, so the stored slots differ
    w = state.targets["actor"]["Dense_2"]["kernel"]
    assert float(jnp.abs(w[0] - w[1]).max()) > 0


def test_reference_matches_the_buffer_without_a_behavior_policy():
    # PPO-Buffer: the buffer is on-policy data from the same target sequence the reference
    # re-simulates, so the two sampling errors have the same distribution (ratio ~1), while
    # the estimator's scale is nonzero.
    m = runs(behavior="none")
    se, ref = m["sampling_error"][:, 1:], m["ref_sampling_error"][:, 1:]
    assert se.mean() > 0.005 and ref.mean() > 0.005
    ratio = se.mean() / ref.mean()
    assert 0.9 < ratio < 1.12, ratio
    # The fitted estimator converged (gradient norm of its MLE after `se_steps`; typically
    # ~1e-5): in at least 95 of 96 (seed, update) fits each, none far off.
    for g in (m["se_grad_norm"], m["ref_se_grad_norm"]):
        assert np.mean(g < 1e-3) >= 0.98 and np.all(g < 1e-2), np.sort(g.ravel())[-3:]


def test_props_lowers_the_sampling_error_of_a_fixed_target_in_the_rl_loop():
    # Item 10: target lr 0 (theta fixed), PROPS behavior updates every m = 16 steps. The PROPS
    # buffer's KL(pi_D || pi_theta) must be clearly below on-policy sampling's, measured two
    # ways: the in-loop reference (same runs) and separate PPO-Buffer runs (same seeds, same
    # fixed target). With the behavior step's sign flipped (measured once by editing
    # props_loss) the ratio was far above 1, so this also checks the update's direction.
    p = runs(lr=0.0, props_lr=3e-3)
    o = runs(lr=0.0, behavior="none")
    se = p["sampling_error"][:, 1:].mean()
    ref = p["ref_sampling_error"][:, 1:].mean()
    on_policy = o["sampling_error"][:, 1:].mean()
    assert se / ref < 0.9, (se, ref)
    assert se / on_policy < 0.9, (se, on_policy)
    # and per seed: most seeds improve on their own reference
    assert np.mean(p["sampling_error"][:, 1:].mean(1) < p["ref_sampling_error"][:, 1:].mean(1)) \
        >= 0.75
