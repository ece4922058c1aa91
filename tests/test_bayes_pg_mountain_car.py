"""Mountain car for Bayesian actor-critic learning: the environment against gymnax's dynamics,
the RBF-grid Boltzmann policy against a NumPy reference, updates-to-target against a brute-force
loop, and the learning-only script mode (validation and a tiny run with its report)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnax.environments.classic_control import mountain_car as gmc

from experiments import bayes_pg as exp
from experiments.configs import bayes_pg as cfg
from jaxrl import envs, stats
from jaxrl.bayes_pg import learn, policies


def _gymnax_step_np(pos, vel, action):
    """Sutton & Barto's mountain car (the equations, written out in NumPy)."""
    vel = np.clip(vel + (action - 1) * 0.001 - np.cos(3 * pos) * 0.0025, -0.07, 0.07)
    pos = np.clip(pos + vel, -1.2, 0.6)
    if pos == -1.2 and vel < 0:
        vel = 0.0
    return pos, vel


def test_dynamics_are_gymnax_and_observations_are_normalised():
    env, params = envs.make("MountainCarNormalized-v0")
    rng = np.random.default_rng(0)
    for _ in range(20):
        pos, vel = rng.uniform(-1.2, 0.5), rng.uniform(-0.07, 0.07)
        a = int(rng.integers(3))
        state = gmc.EnvState(position=jnp.float32(pos), velocity=jnp.float32(vel), time=0)
        obs, s2, r, term, trunc, _ = env.step(jax.random.PRNGKey(0), state, a, params)
        p2, v2 = _gymnax_step_np(np.float32(pos), np.float32(vel), a)
        np.testing.assert_allclose([float(s2.position), float(s2.velocity)], [p2, v2], atol=1e-6)
        np.testing.assert_allclose(np.asarray(obs), [(p2 + 1.2) / 1.8, (v2 + 0.07) / 0.14],
                                   atol=1e-5)
        assert float(r) == -1.0
        if not bool(term):
            assert p2 < 0.5
    ref_env, ref_params = gmc.MountainCar(), gmc.EnvParams()
    _, ref_state = ref_env.reset(jax.random.PRNGKey(3), ref_params)
    valley, _ = envs.make("MountainCarNormalized-v0", start="valley")
    _, v_state = valley.reset(jax.random.PRNGKey(3), params)
    assert float(v_state.position) == float(ref_state.position)  # gymnax's own start


def test_uniform_start_covers_the_state_space():
    env, params = envs.make("MountainCarNormalized-v0")
    obs, state = jax.vmap(env.reset, (0, None))(jax.random.split(jax.random.PRNGKey(1), 4000),
                                                params)
    pos, vel = np.asarray(state.position), np.asarray(state.velocity)
    assert pos.min() >= -1.2 and pos.max() < 0.5 and abs(vel).max() <= 0.07
    # uniform: the quartiles of U(-1.2, 0.5) and U(-0.07, 0.07), within sampling error
    np.testing.assert_allclose(np.quantile(pos, [0.25, 0.5, 0.75]), [-0.775, -0.35, 0.075],
                               atol=0.04)
    np.testing.assert_allclose(np.quantile(vel, [0.25, 0.5, 0.75]), [-0.035, 0.0, 0.035],
                               atol=0.004)
    assert np.asarray(obs).min() >= 0.0 and np.asarray(obs).max() <= 1.0
    with pytest.raises(ValueError, match="start"):
        envs.make("MountainCarNormalized-v0", start="top")


def test_rbf_softmax_policy_matches_numpy():
    phi, k = policies.rbf_grid_features(4, 2)
    assert k == 16
    pol = policies.softmax_linear_policy(2, 3, phi, k)
    assert pol.num_params == 34
    rng = np.random.default_rng(2)
    theta = rng.normal(size=34).astype(np.float32)
    c = np.array([[i / 3, j / 3] for i in range(4) for j in range(4)])
    for _ in range(5):
        x = rng.uniform(0, 1, size=2).astype(np.float32)
        feats = np.exp(-0.5 * np.sum((x - c) ** 2, axis=1) / (1 / 3) ** 2)
        np.testing.assert_allclose(np.asarray(phi(jnp.asarray(x))), feats, rtol=1e-5)
        logits = np.concatenate([[0.0], theta.reshape(2, 17) @ np.append(feats, 1.0)])
        logp = logits - np.log(np.sum(np.exp(logits)))
        for a in range(3):
            np.testing.assert_allclose(float(pol.log_prob(jnp.asarray(theta), jnp.asarray(x), a)),
                                       logp[a], rtol=1e-4, atol=1e-5)
    # theta = 0 is the uniform random policy
    assert np.allclose(np.exp([float(pol.log_prob(jnp.zeros(34), jnp.asarray(x), a))
                               for a in range(3)]), 1 / 3)
    _, _, lpol, theta0, is_lqr = learn.make_env("MountainCarNormalized-v0", 200)
    assert lpol.num_params == 34 and not is_lqr and float(jnp.abs(theta0).sum()) == 0.0


def _iters_bruteforce(ret, target, window):
    out = []
    for row in ret:
        hit = [i for i in range(window - 1, len(row))
               if np.mean(row[i - window + 1:i + 1]) >= target]
        out.append(float(hit[0]) if hit else np.inf)
    return np.array(out)


@pytest.mark.parametrize("window", [1, 3, 10])
def test_iterations_to_target_matches_bruteforce(window):
    rng = np.random.default_rng(window)
    ret = np.cumsum(rng.normal(0.5, 3.0, size=(30, 40)), axis=1) - 10.0
    ret[3, 5] = np.nan  # a failed update never counts as a hit
    np.testing.assert_array_equal(stats.iterations_to_target(ret, 0.0, window),
                                  _iters_bruteforce(np.nan_to_num(ret, nan=-np.inf), 0.0, window))


@pytest.mark.parametrize("field,value", [
    ("mountaincar_episodes", 1), ("mountaincar_updates", 0), ("mountaincar_max_steps", 0),
    ("mountaincar_gamma", 1.5), ("mountaincar_target_window", 0),
])
def test_bad_mountain_car_fields_raise_one_line(tmp_path, field, value):
    c = cfg.get_config("mountaincar_tiny")
    c[field] = value
    with pytest.raises(ValueError, match=f"config\\.{field}") as e:
        exp.run(c, str(tmp_path / "w"))
    assert "\n" not in str(e.value)
    assert not (tmp_path / "w").exists()


def test_learning_only_mode_runs_and_reports(tmp_path):
    c = cfg.get_config("mountaincar_tiny")
    summary = exp.run(c, str(tmp_path / "w"))
    assert "gradient" not in summary
    d = summary["learning"]["MountainCarNormalized-v0"]
    assert set(d) == {"mc", "mc_baseline", "bac"}
    for v in d.values():
        assert v["target_window"] == 10 and v["episodes_per_update"] == 3
        # episodes of at most 30 steps: every return in [-30, 0)
        assert -30.0 <= v["final_iqm"] < 0.0
    assert "prob_faster_vs_mc_baseline" in d["bac"] and "prob_faster_vs_mc" in d["bac"]
    text = exp.report(summary)
    assert "Updates to reach -70 on MountainCarNormalized-v0" in text
    assert "P(faster)" in text


@pytest.mark.parametrize("ridge", [1e-6, 1e-3])
def test_learner_fisher_ridge_is_relative_to_the_mean_eigenvalue(ridge):
    env, params, pol, theta0, _ = learn.make_env("MountainCarNormalized-v0", 40)
    ep = policies.collect_episodes(env, params, pol, theta0 + 0.3, jax.random.PRNGKey(4), 5, 40)
    cfg_ = learn.as_config(dict(env="MountainCarNormalized-v0", estimator="mc", max_steps=40,
                                num_episodes=5))
    hp = {**{k: jnp.float32(v) for k, v in learn.jconfig.hparams(cfg_).items()},
          "fisher_ridge": jnp.float32(ridge)}
    _, fisher, _ = learn.gradient_estimate("mc", ep, hp, cfg_)
    u = np.asarray(ep.scores, np.float64).reshape(-1, 34)
    g = u.T @ u / 5  # sum over the steps of the batch, per episode
    np.testing.assert_allclose(np.asarray(fisher), g + ridge * np.trace(g) / 34 * np.eye(34),
                               rtol=2e-4, atol=1e-6)


def test_learner_states_fisher_on_the_lqr():
    env, params, pol, theta0, _ = learn.make_env("LQR-v0", 20)
    ep = policies.collect_episodes(env, params, pol, theta0, jax.random.PRNGKey(7), 8, 20)
    cfg_ = learn.as_config(dict(estimator="bpg1", fisher="states", fit_gp=True))
    hp = {k: jnp.float32(v) for k, v in learn.jconfig.hparams(cfg_).items()}
    post, fisher, _ = learn.gradient_estimate("bpg1", ep, hp, cfg_, pol, theta0)
    g = np.asarray(policies.fisher_from_states(pol, theta0, ep), np.float64)
    np.testing.assert_allclose(np.asarray(fisher), g + 1e-6 * np.trace(g) / 2 * np.eye(2),
                               rtol=1e-5)
    assert abs(g[1, 1] - 40.0) < 1e-3  # 2T / sigma^2 in every batch (sigma = 1, T = 20)
    assert np.all(np.isfinite(np.asarray(post.mean)))
    with pytest.raises(ValueError, match="states"):
        learn.gradient_estimate("bpg1", ep, hp, cfg_)
