"""DSAC baseline (twin quantile critics) of jaxrl.stac against independent references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl import sweep
from jaxrl.stac import (
    STACConfig,
    Transition,
    make_learner,
    make_stac,
    quantile_huber_loss,
    quantile_midpoints,
)

TINY = dict(actor_hidden=(16, 16), critic_hidden=(16, 16), total_env_steps=300,
            warmup_steps=100, buffer_size=300, batch_size=8)


def _np_quantile_huber(pred, target, taus, kappa):
    """Loop reference: sum_i mean_j |tau_i - 1{u<0}| H_kappa(u) / kappa, u = target_j - pred_i."""
    out = np.zeros(pred.shape[0])
    for b in range(pred.shape[0]):
        for i in range(pred.shape[1]):
            acc = 0.0
            for j in range(target.shape[1]):
                u = target[b, j] - pred[b, i]
                h = 0.5 * u * u if abs(u) <= kappa else kappa * (abs(u) - 0.5 * kappa)
                acc += abs(taus[i] - (1.0 if u < 0 else 0.0)) * h / kappa
            out[b] += acc / target.shape[1]
    return out


@pytest.mark.parametrize("kappa", [1.0, 0.3, 5.0])
def test_quantile_huber_loss_matches_numpy(kappa):
    rng = np.random.default_rng(0)
    pred, target = rng.normal(size=(6, 5)) * 2, rng.normal(size=(6, 7)) * 2
    taus = (2 * np.arange(1, 6) - 1) / 10.0
    np.testing.assert_allclose(np.asarray(quantile_midpoints(5)), taus, rtol=1e-6)
    got = quantile_huber_loss(jnp.asarray(pred), jnp.asarray(target), jnp.asarray(taus), kappa)
    np.testing.assert_allclose(np.asarray(got), _np_quantile_huber(pred, target, taus, kappa),
                               rtol=1e-5, atol=1e-6)
    # gradient in pred_i: -mean_j |tau_i - 1{u<0}| clip(u, -kappa, kappa) / kappa
    g = jax.grad(lambda p: quantile_huber_loss(p, jnp.asarray(target), jnp.asarray(taus),
                                               kappa).sum())(jnp.asarray(pred))
    u = target[:, None, :] - pred[:, :, None]
    w = np.abs(taus[:, None] - (u < 0))
    np.testing.assert_allclose(np.asarray(g), -np.mean(w * np.clip(u, -kappa, kappa), -1) / kappa,
                               rtol=1e-4, atol=1e-6)


def test_quantile_regression_minimiser_is_the_empirical_quantile():
    # Minimising the pinball loss (small kappa) over free quantiles recovers the samples'
    # quantiles at the midpoints tau_i (an invariant independent of our implementation).
    rng = np.random.default_rng(1)
    samples = jnp.asarray(rng.exponential(size=(1, 400)))
    taus = quantile_midpoints(4)
    loss = jax.jit(jax.grad(lambda p: quantile_huber_loss(p, samples, taus, 1e-3).sum()))
    p = jnp.zeros((1, 4))
    for _ in range(3000):
        p = p - 0.01 * loss(p)
    ref = np.quantile(np.asarray(samples[0]), np.asarray(taus))
    np.testing.assert_allclose(np.asarray(p[0]), ref, atol=0.03)


def _batch(seed, L, n=8):
    rng = np.random.default_rng(seed)
    f = lambda *shape: jnp.asarray(rng.normal(size=shape), jnp.float32)  # noqa: E731
    return Transition(f(n, L.obs_dim), jnp.tanh(f(n, L.action_dim)), f(n), f(n, L.obs_dim),
                      jnp.asarray(rng.uniform(size=n) < 0.3, jnp.float32))


def _params(L, n_critics=2):
    """Actor and `n_critics` stacked critics (call inside jit: eager init is slow)."""
    o0, a0, z = jnp.zeros((1, L.obs_dim)), jnp.zeros((1, L.action_dim)), jnp.zeros(())
    actor = L.actor.init(jax.random.PRNGKey(0), o0, z, False)
    crits = [L.critic.init(jax.random.PRNGKey(1 + i), o0, a0, z, False) for i in range(n_critics)]
    return actor, jax.tree.map(lambda *x: jnp.stack(x), *crits)


def test_one_quantile_small_kappa_is_absolute_td_error_and_sac_target():
    Ld = make_learner(STACConfig(variant="dsac", num_quantiles=1, **TINY))
    Ls = make_learner(STACConfig(variant="sac", **TINY))
    hp = {"gamma": 0.97, "actor_dropout": 0.2, "critic_dropout": 0.2, "beta": 0.0, "kappa": 1e-6}
    alpha = jnp.float32(0.3)
    b = _batch(2, Ld)
    k = jax.random.PRNGKey(3)

    @jax.jit
    def pieces():
        actor, critic = _params(Ld)  # one quantile: same parameter shapes as a twin Q critic
        yd = Ld.target(actor, critic, k, b, hp, alpha)
        q = Ld.critic_out(critic, k, b.obs, b.action, hp["critic_dropout"], True)[..., 0]
        return {
            "yd": yd, "ys": Ls.target(actor, critic, k, b, hp, alpha),  # twin-min SAC target
            "loss": Ld.critic_loss(critic, k, b, yd, hp)[0], "q": q,
            "actor_d": Ld.actor_loss(actor, critic, k, b.obs, hp, alpha)[0],
            "actor_s": Ls.actor_loss(actor, critic, k, b.obs, hp, alpha)[0],
        }

    o = jax.tree.map(np.asarray, pieces())
    assert o["yd"].shape == (8, 1)
    np.testing.assert_allclose(o["yd"][:, 0], o["ys"], rtol=1e-6, atol=1e-6)
    td = o["yd"][:, 0][None] - o["q"]  # [2, B]
    # N = 1 -> tau = 1/2; as kappa -> 0 the loss per critic is tau |TD error| = |TD error| / 2.
    np.testing.assert_allclose(o["loss"], np.sum(np.mean(0.5 * np.abs(td), axis=1)),
                               rtol=1e-4, atol=1e-5)
    # the actor objective is SAC's (min over critics of the single quantile)
    np.testing.assert_allclose(o["actor_d"], o["actor_s"], rtol=1e-6)


@pytest.mark.parametrize("rule", ["min_mean", "elementwise_min"])
def test_target_combines_the_twin_quantile_sets(rule):
    """`min_mean`: the quantiles of the critic with the smaller mean (our rule before issue 18);
    `elementwise_min` (default): `min(z_1j, z_2j)`, the reference code's DSAC target."""
    L = make_learner(STACConfig(variant="dsac", num_quantiles=5, dsac_target=rule, **TINY))
    hp = {"gamma": 0.9, "actor_dropout": 0.0, "critic_dropout": 0.0}
    alpha = jnp.float32(0.5)
    b = _batch(4, L, n=16)
    k = jax.random.PRNGKey(5)

    @jax.jit
    def pieces():
        actor, critic = _params(L)
        # Reference inputs: the same next action and the raw target-critic outputs.
        k_pi, k_q = jax.random.split(k)
        a2, logp2 = L.sample_action(actor, k_pi, b.next_obs, 0.0, True)
        z = L.critic_out(critic, k_q, b.next_obs, a2, 0.0, True)  # [2, B, 5]
        return L.target(actor, critic, k, b, hp, alpha), z, logp2

    y, z, lp = jax.tree.map(np.asarray, pieces())
    pick = z.mean(-1).argmin(0)
    assert 0 < pick.sum() < len(pick)  # both critics get picked somewhere
    zmin = z[pick, np.arange(16)] if rule == "min_mean" else np.minimum(z[0], z[1])
    assert not np.allclose(z[pick, np.arange(16)], np.minimum(z[0], z[1]))  # rules differ
    r, d = np.asarray(b.reward), np.asarray(b.terminated)
    ref = r[:, None] + 0.9 * (1 - d[:, None]) * (zmin - 0.5 * lp[:, None])
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)


def test_short_dsac_run_finite_and_vmapped_seed_equals_single_seed():
    cfg = STACConfig(variant="dsac", use_dropout=False, actor_dropout=0.0, critic_dropout=0.0,
                     num_quantiles=8, total_env_steps=500, warmup_steps=200, buffer_size=500,
                     batch_size=16, actor_hidden=(16,), critic_hidden=(16,))
    algo = make_stac(cfg)
    assert algo.hparams["kappa"] == 1.0 and algo.num_updates == 300
    train = sweep.make_train(algo)  # the sweep engine's run; vmapped over seeds below
    keys = jnp.stack([jax.random.PRNGKey(s) for s in (0, 1, 2)])
    states, ms = jax.jit(jax.vmap(train))(keys)
    for k, v in ms.items():
        assert v.shape == (3, 300) and np.all(np.isfinite(np.asarray(v))), k
    assert float(jnp.min(ms["sigma_mean"][:, -1])) > 0.0  # quantiles spread out
    single, m = jax.jit(train)(jax.random.PRNGKey(1))
    got = jax.tree.map(lambda x: np.asarray(x)[1], (states.critic, states.actor))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5),
                 got, jax.tree.map(np.asarray, (single.critic, single.actor)))
    for k in ("critic_loss", "actor_loss", "q_mean"):
        np.testing.assert_allclose(np.asarray(ms[k][1]), np.asarray(m[k]), rtol=1e-4, atol=1e-5)


def test_bad_num_quantiles_raises():
    with pytest.raises(ValueError, match="num_quantiles"):
        make_learner(STACConfig(variant="dsac", num_quantiles=0, **TINY))
