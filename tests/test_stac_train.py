"""STAC training loop: temperature direction, learning on Pendulum, vmapped seed == single seed."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl import sweep
from jaxrl.stac import STACConfig, default_hparams, evaluate, make_learner, make_stac

TINY = dict(actor_hidden=(16, 16), critic_hidden=(16, 16), total_env_steps=240,
            warmup_steps=200, buffer_size=300, batch_size=16)


@pytest.mark.parametrize("mode", ["paper", "adam"])
def test_temperature_rises_when_entropy_below_target(mode):
    algo = make_stac(STACConfig(alpha_update=mode, alpha_lr=1e-2, **TINY))
    init, update = jax.jit(algo.init), jax.jit(algo.update)
    for target, direction in ((50.0, 1.0), (-50.0, -1.0)):  # entropy of a 1-D policy << 50
        hp = {k: jnp.float32(v) for k, v in {**algo.hparams, "target_entropy": target}.items()}
        s = init(jax.random.PRNGKey(0), hp)
        s2, m = update(s, hp)
        assert float(m["entropy"]) < 50.0 and float(m["entropy"]) > -50.0
        assert direction * (float(s2.log_alpha) - float(s.log_alpha)) > 0


def test_vmapped_seed_equals_single_seed():
    algo = make_stac(STACConfig(**TINY))
    res = sweep.run(algo, seeds=[0, 1, 2], chunk_size=20, progress=False)
    single, m = jax.jit(sweep.make_train(algo))(jax.random.PRNGKey(1))
    got = jax.tree.map(lambda x: np.asarray(x)[1], res.state.algo.actor)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5),
                 got, jax.tree.map(np.asarray, single.actor))
    np.testing.assert_allclose(res.metrics["critic_loss"][1], np.asarray(m["critic_loss"]),
                               rtol=1e-4, atol=1e-5)


def test_short_stac_run_beats_random_policy_on_pendulum():
    cfg = STACConfig(total_env_steps=4000, warmup_steps=500, buffer_size=4000, batch_size=128,
                     actor_hidden=(64, 64), critic_hidden=(64, 64), actor_lr=3e-3,
                     critic_lr=3e-3, alpha_lr=3e-3, alpha_update="adam")
    algo, L = make_stac(cfg), make_learner(cfg)
    keys = jax.vmap(jax.random.PRNGKey)(jnp.arange(4))
    state, _ = jax.jit(jax.vmap(sweep.make_train(algo)))(keys)
    ret = jax.jit(jax.vmap(lambda s, k: evaluate(L, s, k, 8)["return"]))(
        state, jax.random.split(jax.random.PRNGKey(9), 4))

    # Random-policy reference measured here: uniform actions, 32 episodes.
    env, p = L.env, L.env_params

    def random_return(key):
        k0, k1 = jax.random.split(key)
        _, s = env.reset(k0, p)

        def step(c, k):
            s, tot = c
            ka, ke = jax.random.split(k)
            a = jax.random.uniform(ka, (1,), minval=-2.0, maxval=2.0)
            _, s, r, _, _, _ = env.step(ke, s, a, p)
            return (s, tot + r), None

        return jax.lax.scan(step, (s, 0.0), jax.random.split(k1, 200))[0][1]

    rand = float(jnp.mean(jax.vmap(random_return)(jax.random.split(jax.random.PRNGKey(5), 32))))
    assert rand < -900  # sanity of the reference (about -1200)
    wins = np.asarray(ret) > 0.6 * rand  # e.g. > -720 when random is -1200
    assert wins.sum() >= 3, (np.asarray(ret), rand)


def test_mountain_car_continuous_runs_with_box_scaled_actions():
    """STAC on gymnax MountainCarContinuous-v0 (the issue's second control task): the stored
    actions are the policy's normalised ones in [-1, 1], the env receives them rescaled to its
    box (here also [-1, 1]), and a short vmapped run stays finite."""
    cfg = STACConfig(env_name="MountainCarContinuous-v0", **TINY)
    L = make_learner(cfg)
    assert (L.obs_dim, L.action_dim) == (2, 1)
    np.testing.assert_allclose(L.to_env_action(jnp.array([-1.0, 0.0, 1.0])[:, None])[:, 0],
                               [-1.0, 0.0, 1.0])
    algo = make_stac(cfg)
    res = sweep.run(algo, seeds=[0, 1], chunk_size=algo.num_updates, progress=False)
    assert np.all(np.isfinite(res.metrics["critic_loss"]))
    acts = np.asarray(res.state.algo.buffer.data.action)
    assert acts.shape == (2, 300, 1) and np.all(np.abs(acts) <= 1.0)
    assert np.all(np.asarray(res.state.algo.buffer.size) == 240)


def test_config_marks_give_the_hparams_and_their_bounds():
    """`Algorithm.hparams` = the sweepable fields (target entropy resolved to -|A|), static
    fields are not sweepable, and out-of-range defaults or swept values fail in one line."""
    from jaxrl import config

    cfg = STACConfig()
    assert default_hparams(cfg, 3) == {
        "beta": 0.25, "alpha_init": 0.2, "actor_lr": 3e-4, "critic_lr": 3e-4, "alpha_lr": 3e-4,
        "tau": 0.005, "gamma": 0.99, "actor_dropout": 0.01, "critic_dropout": 0.01,
        "target_entropy": -3.0, "kappa": 1.0, "biv_min_ess": 16.0}
    assert default_hparams(STACConfig(target_entropy=-0.5), 3)["target_entropy"] == -0.5
    assert "batch_size" not in config.sweepable_names(STACConfig)
    cfg.validate({"beta": (0.0, 2.0), "gamma": (0.0, 1.0), "tau": (1.0,), "target_entropy": (5.0,)})
    for grid, msg in (({"beta": (0.5, -0.1)}, r"config\.sweep\.beta must be finite and in \[0,"),
                      ({"actor_dropout": (1.0,)}, r"actor_dropout .*in \[0, 1\), got 1\.0"),
                      ({"critic_lr": (0.0,)}, r"critic_lr .*in \(0, inf\), got 0\.0"),
                      ({"tau": (0.0,)}, r"tau .*in \(0, 1\], got 0\.0"),
                      ({"gamma": (1.5,)}, r"gamma .*in \[0, 1\], got 1\.5"),
                      ({"kappa": (float("nan"),)}, r"kappa must be finite"),
                      ({"batch_size": (8.0,)}, r"batch_size is not a sweepable field")):
        with pytest.raises(ValueError, match=msg):
            cfg.validate(grid)
    for field, value in (("beta", -1.0), ("alpha_init", 0.0), ("variant", "td3"),
                         ("actor_hidden", ()), ("warmup_steps", 0), ("alpha_update", "sgd")):
        with pytest.raises(ValueError, match=rf"^config\.{field} "):
            make_stac(STACConfig(**{**TINY, field: value}))


def test_log_every_groups_updates_and_averages_their_metrics():
    """`log_every=K`: one update call = K env steps + gradient updates; the state after N calls
    equals K*N single updates and the metrics are the means of the K single ones."""
    tiny = {**TINY, "actor_hidden": (8,), "critic_hidden": (8,)}
    one, four = make_stac(STACConfig(**tiny)), make_stac(STACConfig(**tiny, log_every=4))
    assert (one.num_updates, four.num_updates) == (40, 10)
    assert (one.env_steps_per_update, four.env_steps_per_update) == (1, 4)
    hp = {k: jnp.float32(v) for k, v in one.hparams.items()}
    s1 = s4 = jax.jit(one.init)(jax.random.PRNGKey(3), hp)
    step1, step4 = jax.jit(one.update), jax.jit(four.update)
    ms1, ms4 = [], []
    for _ in range(2):
        for _ in range(4):
            s1, m = step1(s1, hp)
            ms1.append(m)
        s4, m = step4(s4, hp)
        ms4.append(m)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), s1, s4)
    for k in ("critic_loss", "actor_loss", "alpha", "train_return"):
        ref = np.asarray([float(m[k]) for m in ms1]).reshape(2, 4).mean(axis=1)
        np.testing.assert_allclose([float(m[k]) for m in ms4], ref, rtol=1e-5, atol=1e-6)
