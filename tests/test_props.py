"""Ground-truth tests of PROPS (jaxrl/props/) and the sampling-error estimators.

Digest items (../shared/papers/props.md, "Ground truth for tests"): 1 the exact `pi_D - pi`
gradient at `phi = theta`; 2 ratios 1 / KL 0 at the start of each update; 3 clipping zeroes
gradients below `1 - eps` only; 4 behavior lr 0 == PPO-Buffer bit for bit and `b = 1` == PPO;
5 bandit sampling error of i.i.d. sampling ~ (K-1)/(2N), PROPS clearly below and falling faster
than 1/N; 6 KL estimators against analytic values. Plus vmapped seed i == single seed i.
"""

from __future__ import annotations

import functools

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl import ppo, props, sweep
from jaxrl.props import sampling_error as se

HP = {k: jnp.float32(v) for k, v in {"props_clip_eps": 0.3, "props_kl_coef": 0.0,
                                      "props_target_kl": 0.05, "props_lr": 0.1,
                                      "props_max_grad_norm": 10.0}.items()}


def tiny_config(**kw):
    c = props.get_config()
    c.num_envs, c.num_steps, c.props_num_steps, c.buffer_batches = 2, 32, 8, 2
    c.total_timesteps = 64 * 3
    c.update_epochs, c.num_minibatches = 2, 4
    c.props_update_epochs, c.props_num_minibatches = 2, 4
    c.se_steps, c.unroll, c.hidden = 0, 1, (16, 16)
    for k, v in kw.items():
        c[k] = v
    return c


FIXED_TARGET = {"lr": 0.0, "props_target_kl": 0.0, "props_lr": 0.05}


@functools.cache
def trained(**kw):
    """(final state, metrics) of a tiny CartPole run, seed 0, cached across tests."""
    algo = props.make_props(tiny_config(**kw))
    return jax.jit(sweep.make_train(algo))(jax.random.PRNGKey(0))


# 1 -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kl_coef", [0.0, 0.7])
def test_gradient_at_theta_is_pi_d_minus_pi(kl_coef):
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    theta = jax.random.normal(k1, (5,))
    acts = jax.random.randint(k2, (37,), 0, 5)
    obs = jnp.zeros((37, 1))

    def apply_pi(p, o):
        return distrax.Categorical(logits=jnp.broadcast_to(p, o.shape[:1] + p.shape))

    hp = {**HP, "props_kl_coef": jnp.float32(kl_coef)}
    grad, _ = jax.grad(props.props_loss, has_aux=True)(
        theta, apply_pi, obs, acts, apply_pi(theta, obs), jnp.ones(37, bool), hp)
    pi_d = np.bincount(np.asarray(acts), minlength=5) / 37
    np.testing.assert_allclose(grad, pi_d - np.asarray(jax.nn.softmax(theta)), atol=1e-6)


# 2 -------------------------------------------------------------------------------------------
def test_ratio_one_and_kl_zero_at_phi_equal_theta():
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(1), 3)
    mean = jax.random.normal(k1, (11, 2))
    theta = {"mean": mean, "log_std": jnp.array([0.3, -0.2])}

    def apply_pi(p, o):
        return distrax.MultivariateNormalDiag(p["mean"], jnp.exp(p["log_std"]))

    acts = apply_pi(theta, None).sample(seed=k2)
    _, aux = props.props_loss(theta, apply_pi, None, acts, apply_pi(theta, None),
                              jnp.ones(11, bool), HP)
    assert float(aux["approx_kl"]) == 0.0 and float(aux["kl"]) == 0.0
    assert float(aux["clip_frac"]) == 0.0


def test_ppo_ratios_one_with_fixed_target_and_props_behavior():
    # Target lr 0: theta never moves. Data come from behavior policies phi != theta, yet every PPO
    # minibatch sees ratio 1 (approx KL 0, no clipping) because the old log-probs are recomputed
    # under the current theta. props_target_kl = 0 still lets the first behavior step through.
    _, m = trained(**FIXED_TARGET)
    assert np.all(np.asarray(m["approx_kl"]) == 0.0)
    assert np.all(np.asarray(m["clip_frac"]) == 0.0)
    assert np.all(np.asarray(m["props_steps"])[1:] == 1.0)  # one step, then the KL stop
    assert np.all(np.asarray(m["props_kl"])[1:] > 0.0)  # ... and it did move phi


# 3 -------------------------------------------------------------------------------------------
def test_clipping_zeroes_gradient_below_one_minus_eps_only():
    # One state per sample, so sample i only touches row i of phi.
    theta = jnp.zeros((3, 2))
    acts = jnp.zeros(3, jnp.int32)
    # pi_phi(0|s_i) / pi_theta(0|s_i) = 2 * sigmoid(d_i): ratios ~0.24 (< 0.7), 1.0, ~1.9 (> 1.3)
    phi = theta.at[:, 0].set(jnp.array([-2.0, 0.0, 3.0]))
    obs = jnp.arange(3)

    def apply_pi(p, o):
        return distrax.Categorical(logits=p[o])

    grad, aux = jax.grad(props.props_loss, has_aux=True)(
        phi, apply_pi, obs, acts, apply_pi(theta, obs), jnp.ones(3, bool), HP)
    ratios = 2 * jax.nn.sigmoid(jnp.array([-2.0, 0.0, 3.0]))
    assert ratios[0] < 0.7 and ratios[2] > 1.3
    assert np.all(np.asarray(grad[0]) == 0.0)
    assert np.all(np.abs(np.asarray(grad[1])) > 1e-3)
    assert np.all(np.abs(np.asarray(grad[2])) > 1e-3)
    np.testing.assert_allclose(aux["clip_frac"], 2 / 3, rtol=1e-6)


# 4 -------------------------------------------------------------------------------------------
def test_behavior_lr_zero_is_bit_identical_to_ppo_buffer():
    s_props, m_props = trained(props_lr=0.0)
    s_buf, m_buf = trained(behavior="none")
    for a, b in zip(jax.tree.leaves(s_props.params), jax.tree.leaves(s_buf.params), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(m_props["return"], m_buf["return"])
    np.testing.assert_array_equal(s_props.buffer.obs, s_buf.buffer.obs)
    assert np.all(np.asarray(m_props["props_kl"]) == 0.0)  # phi == theta throughout


def test_buffer_of_one_batch_is_ppo():
    c = tiny_config(behavior="none", buffer_batches=1, target_kl=1e9)
    pc = ppo.get_config()
    for k in ("num_envs", "num_steps", "total_timesteps", "update_epochs", "num_minibatches",
              "lr", "hidden", "unroll"):
        pc[k] = c[k]
    key = jax.random.PRNGKey(3)
    s1, m1 = jax.jit(sweep.make_train(props.make_props(c)))(key)
    s2, m2 = jax.jit(sweep.make_train(ppo.make_ppo(pc)))(key)
    np.testing.assert_array_equal(m1["return"], m2["return"])
    for a, b in zip(jax.tree.leaves(s1.params), jax.tree.leaves(s2.params), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)


# 5 -------------------------------------------------------------------------------------------
PI = jnp.array([0.1, 0.2, 0.3, 0.4])


@functools.partial(jax.jit, static_argnums=(1, 2))
def bandit_se(keys, n, behavior):
    """Sampling error of the first 100 and of all `n` arms, `[keys, 2]` (one compile each).

    The first 100 PROPS draws do not depend on later ones, so the prefix is a run with N = 100.
    """
    hp = {**HP, "props_lr": jnp.float32(0.1), "props_target_kl": jnp.float32(0.05)}

    def one(k):
        acts = props.bandit_actions(k, jnp.log(PI), n, hp, behavior=behavior,
                                    samples_per_update=n // 100)
        zeros = jnp.zeros(n, jnp.int32)
        return jnp.stack([se.count_sampling_error(zeros, acts, PI[None], jnp.arange(n) < 100),
                          se.count_sampling_error(zeros, acts, PI[None])])

    return jax.vmap(one)(keys)


def test_bandit_sampling_error():
    iid_100, iid_1000 = np.asarray(bandit_se(jax.random.split(jax.random.PRNGKey(5), 2000),
                                             1000, False)).mean(0)
    np.testing.assert_allclose(iid_100, 3 / 200, rtol=0.1)  # (K - 1) / (2N)
    np.testing.assert_allclose(iid_1000, 3 / 2000, rtol=0.1)
    props_100, props_400 = np.asarray(bandit_se(jax.random.split(jax.random.PRNGKey(6), 48),
                                                400, True)).mean(0)
    assert props_100 < 0.4 * iid_100
    assert props_400 < props_100 / 4  # falls faster than 1/N


# 6 -------------------------------------------------------------------------------------------
def test_approx_kl_matches_analytic_gaussian_and_categorical():
    k1, k2 = jax.random.split(jax.random.PRNGKey(6))
    p = distrax.MultivariateNormalDiag(jnp.array([0.0, 1.0]), jnp.array([1.0, 0.5]))
    q = distrax.MultivariateNormalDiag(jnp.array([0.2, 0.8]), jnp.array([1.1, 0.6]))
    x = p.sample(seed=k1, sample_shape=200_000)
    est = se.approx_kl(q.log_prob(x) - p.log_prob(x))
    np.testing.assert_allclose(est, p.kl_divergence(q), rtol=0.05)
    pc = distrax.Categorical(probs=jnp.array([0.1, 0.2, 0.3, 0.4]))
    qc = distrax.Categorical(probs=jnp.array([0.25, 0.25, 0.3, 0.2]))
    a = pc.sample(seed=k2, sample_shape=200_000)
    est = se.approx_kl(qc.log_prob(a) - pc.log_prob(a))
    exact = np.sum([0.1, 0.2, 0.3, 0.4] * np.log(np.array([0.1, 0.2, 0.3, 0.4])
                                                 / np.array([0.25, 0.25, 0.3, 0.2])))
    np.testing.assert_allclose(est, exact, rtol=0.05)


def _tabular(n, key):
    probs = jnp.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1], [1 / 3, 1 / 3, 1 / 3]])
    ks, ka = jax.random.split(key)
    s = jax.random.randint(ks, (n,), 0, 3)
    a = jax.random.categorical(ka, jnp.log(probs[s]))
    return probs, s, a


def _fitted(probs, s, a):
    """Converged softmax MLE on one-hot features (the head starts at theta's logits)."""
    val, gnorm, _ = se.softmax_sampling_error(jnp.log(probs), jnp.zeros(3), jax.nn.one_hot(s, 3),
                                              a, max_iter=50, tol=1e-6)
    assert float(gnorm) < 1e-4
    return val


def test_count_sampling_error_brute_force_and_fitted_estimator():
    probs, s, a = _tabular(300, jax.random.PRNGKey(7))
    sn, an, pn = np.asarray(s), np.asarray(a), np.asarray(probs)
    brute = 0.0
    for i in range(3):
        for j in range(3):
            nij, ni = np.sum((sn == i) & (an == j)), np.sum(sn == i)
            if nij:
                brute += nij / 300 * np.log(nij / ni / pn[i, j])
    count = float(se.count_sampling_error(s, a, probs))
    np.testing.assert_allclose(count, brute, rtol=1e-5)
    np.testing.assert_allclose(float(_fitted(probs, s, a)), count, rtol=1e-3, atol=1e-6)
    # Expected i.i.d. sampling error ~ (K - 1) * S / (2N) and -> 0 as N grows.
    big = _tabular(10_000, jax.random.PRNGKey(8))
    assert float(_fitted(*big)) < 5e-4 < count


# vmap ----------------------------------------------------------------------------------------
def test_vmapped_seed_equals_single_seed():
    algo = props.make_props(tiny_config(**FIXED_TARGET))
    res = sweep.run(algo, seeds=[2, 0], chunk_size=3, progress=False)
    _, m = trained(**FIXED_TARGET)
    for k in ("return", "props_kl", "value_loss"):
        np.testing.assert_allclose(res.metrics[k][1], m[k], rtol=1e-5, atol=1e-6)


def test_bad_config_raises_one_line():
    with pytest.raises(ValueError, match="config.props_num_steps"):
        props.make_props(tiny_config(props_num_steps=7))
    with pytest.raises(ValueError, match="config.behavior"):
        props.make_props(tiny_config(behavior="iid"))
    with pytest.raises(ValueError, match=r"^config\.clip_eps must be finite and in \(0, inf\)"):
        props.make_props(tiny_config(clip_eps=0.0))
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['bogus'\]"):
        props.make_props({**tiny_config().to_dict(), "bogus": 1})


def test_hparams_come_from_the_marks_and_swept_values_are_checked():
    # The sweepable floats are the old hand-kept FLOAT_HPARAMS list, at the config's values.
    old = ("lr", "ent_coef", "vf_coef", "clip_eps", "gamma", "gae_lambda", "max_grad_norm",
           "target_kl", "props_lr", "props_clip_eps", "props_kl_coef", "props_target_kl",
           "props_max_grad_norm")
    c = tiny_config(lr=2e-3, props_kl_coef=0.25)
    algo = props.make_props(c)
    assert sorted(algo.hparams) == sorted(old)
    assert algo.hparams["lr"] == pytest.approx(2e-3)
    assert algo.hparams["props_kl_coef"] == pytest.approx(0.25)
    assert algo.hparams["gamma"] == pytest.approx(0.99)
    # a dataclass and its ConfigDict build the same algorithm settings
    assert props.make_props(props.as_config(c)).hparams == algo.hparams
    with pytest.raises(ValueError, match=r"^config\.sweep\.gamma must be finite and in "
                                         r"\(0, 1\], got 1\.5$"):
        props.validate_config(c, {"gamma": (0.9, 1.5)})
    with pytest.raises(ValueError, match=r"^config\.sweep\.props_lr repeats a value"):
        props.validate_config(c, {"props_lr": (0.0, 0.0)})
    with pytest.raises(ValueError, match="not a sweepable field"):
        props.validate_config(c, {"num_steps": (16.0,)})


def test_experiment_programs_and_validation():
    from experiments import props as ex
    from experiments.configs import props as cfgs

    # quick: PROPS, PPO-Buffer and the fixed-target pair share one program; PPO is the other
    seeds, progs = ex.validate(cfgs.get_config("quick"))
    assert seeds == [0, 1, 2, 3]
    assert [(p.env_name, p.method) for p in progs] == [("CartPole-v1", "shared"),
                                                       ("CartPole-v1", "ppo")]
    shared = progs[0]
    assert shared.grid == {"props_lr": (0.0, 1e-3), "lr": (1e-3, 0.0)}
    assert shared.labels["PPO-Buffer"] == {"props_lr": 0.0, "lr": 1e-3}
    assert shared.labels[ex.FIXED[1]] == {"props_lr": 1e-3, "lr": 0.0}
    assert progs[1].cfg.behavior == "none" and progs[1].cfg.buffer_batches == 1
    # the full config: separate programs; Pendulum gets its override section
    _, progs = ex.validate(cfgs.get_config())
    assert [p.method for p in progs if p.env_name == "CartPole-v1"] == [
        "props", "ppo_buffer", "ppo", "fixed_target"]
    pend = next(p for p in progs if p.env_name == "Pendulum-v1")
    assert pend.cfg.num_envs == 4 and pend.cfg.gamma == 0.9 and pend.cfg.normalize_obs
    assert pend.workdir("/w") == "/w/Pendulum-v1/props"
    _, progs = ex.validate(cfgs.get_config("tiny"))
    assert [p.method for p in progs] == ["shared"]
    bad = cfgs.get_config("tiny")
    bad.algo.props_clip_eps = -1.0
    with pytest.raises(ValueError, match=r"^config\.algo\.props_clip_eps must be finite"):
        ex.validate(bad)
    bad = cfgs.get_config()
    bad.pendulum.num_steps = 100
    with pytest.raises(ValueError, match=r"config\.algo\.props_num_steps must divide "
                                         r"num_steps.*\(Pendulum-v1\)"):
        ex.validate(bad)
    bad = cfgs.get_config("tiny")
    bad.algo.se_steps = 0
    with pytest.raises(ValueError, match=r"^config\.algo\.se_steps must be >= 1"):
        ex.validate(bad)


def test_behavior_update_with_precomputed_theta_head_matches_plain():
    # `head=(out_fn, dist_fn)` only caches theta's outputs; the update must be the same.
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(9), 3)
    w = {"w": 0.3 * jax.random.normal(k1, (3, 2)), "log_std": jnp.array([0.1, -0.3])}
    obs = jax.random.normal(k2, (24, 3))

    def out_fn(p, o):
        return o @ p["w"]

    def dist_fn(p, out):
        return distrax.MultivariateNormalDiag(out, jnp.exp(p["log_std"]))

    def apply_pi(p, o):
        return dist_fn(p, out_fn(p, o))

    acts = apply_pi(w, obs).sample(seed=k3)
    tx = ppo.make_optimizer()
    opt = props.set_opt_hparams(tx.init(w), jnp.float32(0.05), jnp.float32(10.0))
    hp = {**HP, "props_kl_coef": jnp.float32(0.3), "props_target_kl": jnp.float32(1e9)}
    mask = jnp.arange(24) < 20
    kw = {"apply_pi": apply_pi, "tx": tx, "epochs": 3, "num_minibatches": 4}
    phi1, _, m1 = props.behavior_update(w, opt, obs, acts, mask, k3, hp, **kw)
    phi2, _, m2 = props.behavior_update(w, opt, obs, acts, mask, k3, hp, head=(out_fn, dist_fn),
                                        **kw)
    for a, b in zip(jax.tree.leaves(phi1), jax.tree.leaves(phi2), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert float(m1["props_steps"]) == float(m2["props_steps"]) == 12.0
    assert float(jnp.abs(phi1["w"] - w["w"]).max()) > 1e-3  # it did move
