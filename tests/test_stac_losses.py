"""STAC loss pieces against independent references (NumPy / SciPy, hand-made numbers)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jaxrl.stac import STACConfig, Transition, gaussian_nll, make_learner, soft_target
from jaxrl.stac import networks as nets

TINY = dict(actor_hidden=(16, 16), critic_hidden=(16, 16), total_env_steps=300,
            warmup_steps=100, buffer_size=300, batch_size=8)


def test_gaussian_nll_and_mu_gradient_match_numpy():
    rng = np.random.default_rng(0)
    y, mu = rng.normal(size=50), rng.normal(size=50)
    sigma = rng.uniform(0.1, 3.0, size=50)
    got = np.asarray(gaussian_nll(jnp.asarray(y), jnp.asarray(mu), jnp.asarray(sigma)))
    np.testing.assert_allclose(got, -stats.norm.logpdf(y, mu, sigma), rtol=1e-5, atol=1e-5)
    g = jax.grad(lambda m: jnp.sum(gaussian_nll(jnp.asarray(y), m, jnp.asarray(sigma))))(
        jnp.asarray(mu))
    np.testing.assert_allclose(np.asarray(g), (mu - y) / sigma**2, rtol=1e-5, atol=1e-5)
    # and in sigma: 1/sigma - (y - mu)^2 / sigma^3
    gs = jax.grad(lambda s: jnp.sum(gaussian_nll(jnp.asarray(y), jnp.asarray(mu), s)))(
        jnp.asarray(sigma))
    np.testing.assert_allclose(np.asarray(gs), 1 / sigma - (y - mu) ** 2 / sigma**3, rtol=1e-4)


def test_soft_target_hand_made():
    # y = r + gamma (1 - d) [mu - beta sigma - alpha logp]; STAC's value = mu - beta sigma.
    r = jnp.array([1.0, -2.0, 0.5])
    d = jnp.array([0.0, 0.0, 1.0])
    mu, sigma, logp = jnp.array([10.0, 4.0, 99.0]), jnp.array([2.0, 0.0, 5.0]), \
        jnp.array([-1.0, 0.5, 3.0])
    beta, gamma, alpha = 0.25, 0.9, 0.2
    y = soft_target(r, d, mu - beta * sigma, logp, gamma, alpha)
    # by hand: 1 + .9 (10 - .5 + .2) = 9.73; -2 + .9 (4 - 0 - .1) = 1.51; terminal -> 0.5
    np.testing.assert_allclose(np.asarray(y), [9.73, 1.51, 0.5], rtol=1e-6)


def _batch(key, L, n=8):
    k = jax.random.split(key, 5)
    return Transition(
        jax.random.normal(k[0], (n, L.obs_dim)),
        jax.random.uniform(k[1], (n, L.action_dim), minval=-1, maxval=1),
        jax.random.normal(k[2], (n,)),
        jax.random.normal(k[3], (n, L.obs_dim)),
        (jax.random.uniform(k[4], (n,)) < 0.3).astype(jnp.float32),
    )


def test_stac_with_beta0_no_dropout_unit_sigma_equals_single_critic_sac():
    Ls = make_learner(STACConfig(variant="stac", use_dropout=False, **TINY))
    Lq = make_learner(STACConfig(variant="sac_single", use_dropout=False, **TINY))
    key = jax.random.PRNGKey(0)
    o0, a0, z = jnp.zeros((1, Ls.obs_dim)), jnp.zeros((1, Ls.action_dim)), jnp.zeros(())
    actor = Ls.actor.init(key, o0, z, False)
    cs = nets.init_stacked(Ls.critic, jax.random.PRNGKey(1), 1, o0, a0, z, False)
    # Force sigma == 1: zero the raw-scale column, bias softplus^{-1}(1) = log(e - 1).
    last = max(k for k in cs["params"] if k.startswith("Dense"))
    cs["params"][last]["kernel"] = cs["params"][last]["kernel"].at[..., 1].set(0.0)
    cs["params"][last]["bias"] = cs["params"][last]["bias"].at[..., 1].set(np.log(np.e - 1))
    cq = jax.tree.map(lambda x: x, cs)
    cq["params"][last] = {"kernel": cs["params"][last]["kernel"][..., :1],
                          "bias": cs["params"][last]["bias"][..., :1]}
    hp = {"beta": 0.0, "gamma": 0.97, "actor_dropout": 0.3, "critic_dropout": 0.3}
    alpha = jnp.float32(0.3)
    b = _batch(jax.random.PRNGKey(2), Ls)
    k = jax.random.PRNGKey(3)
    ys = Ls.target(actor, cs, k, b, {**hp, "beta": 5.0}, alpha)  # beta matters when sigma=1 ...
    y0 = Ls.target(actor, cs, k, b, hp, alpha)
    yq = Lq.target(actor, cq, k, b, hp, alpha)
    np.testing.assert_allclose(np.asarray(y0), np.asarray(yq), rtol=1e-5, atol=1e-5)
    assert not np.allclose(np.asarray(ys), np.asarray(yq))  # ... and beta=0 removes it
    ls, _ = Ls.critic_loss(cs, k, b, y0, hp)
    lq, _ = Lq.critic_loss(cq, k, b, yq, hp)
    np.testing.assert_allclose(float(ls), float(lq) + 0.5 * np.log(2 * np.pi), rtol=1e-5)
    (as_, _), gs = jax.value_and_grad(Ls.actor_loss, has_aux=True)(actor, cs, k, b.obs, hp, alpha)
    (aq, _), gq = jax.value_and_grad(Lq.actor_loss, has_aux=True)(actor, cq, k, b.obs, hp, alpha)
    np.testing.assert_allclose(float(as_), float(aq), rtol=1e-5)
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-6), gs, gq)


@pytest.mark.parametrize("mean,std", [(0.3, 0.5), (-1.0, 1.5)])
def test_tanh_log_prob_matches_sampled_density(mean, std):
    n = 400_000
    a, logp = nets.tanh_gaussian_sample(jax.random.PRNGKey(0), jnp.full((n, 1), mean),
                                        jnp.full((n, 1), std))
    a = np.asarray(a[:, 0])
    hist, edges = np.histogram(a, bins=40, range=(-0.95, 0.95))
    centers = 0.5 * (edges[1:] + edges[:-1])
    emp = hist / (n * (edges[1] - edges[0]))
    u = np.arctanh(centers)[:, None]
    model = np.exp(np.asarray(nets.tanh_gaussian_log_prob(jnp.asarray(u), mean, std)))
    ok = emp > 0.05
    np.testing.assert_allclose(emp[ok], model[ok], rtol=0.06)
    # the returned log-prob of each sample equals the density formula at that sample
    ref = stats.norm.logpdf(np.arctanh(a[:1000]), mean, std) - np.log1p(-a[:1000] ** 2)
    np.testing.assert_allclose(np.asarray(logp[:1000]), ref, rtol=1e-3, atol=1e-3)


def test_stable_log_det_equals_naive_and_stays_finite():
    u = jnp.linspace(-5, 5, 101)
    np.testing.assert_allclose(np.asarray(nets.log_one_minus_tanh_sq(u)),
                               np.log(1 - np.tanh(np.asarray(u, np.float64)) ** 2), atol=1e-4)
    big = nets.log_one_minus_tanh_sq(jnp.array([-50.0, 50.0]))
    np.testing.assert_allclose(np.asarray(big), 2 * (np.log(2) - 50.0), rtol=1e-6)


def test_dropout_on_in_training_off_in_evaluation():
    L = make_learner(STACConfig(**TINY))
    o = jax.random.normal(jax.random.PRNGKey(0), (4, L.obs_dim))
    z = jnp.zeros(())
    actor = L.actor.init(jax.random.PRNGKey(1), o, z, False)
    rate = jnp.float32(0.5)
    tr1 = L.policy(actor, jax.random.PRNGKey(2), o, rate, True)[0]
    tr2 = L.policy(actor, jax.random.PRNGKey(3), o, rate, True)[0]
    ev1 = L.policy(actor, jax.random.PRNGKey(2), o, rate, False)[0]
    ev2 = L.policy(actor, jax.random.PRNGKey(3), o, rate, False)[0]
    nodrop = L.policy(actor, jax.random.PRNGKey(2), o, z, True)[0]
    assert not np.allclose(tr1, tr2)  # training: dropout masks differ per key
    np.testing.assert_array_equal(ev1, ev2)  # evaluation: no dropout
    np.testing.assert_allclose(ev1, nodrop, rtol=1e-6)
    # the target critic keeps dropout on: two keys give different critic heads
    a = jnp.zeros((4, L.action_dim))
    c = nets.init_stacked(L.critic, jax.random.PRNGKey(4), 1, o, a, z, False)
    m1 = L.critic_heads(c, jax.random.PRNGKey(5), o, a, rate, True)[0]
    m2 = L.critic_heads(c, jax.random.PRNGKey(6), o, a, rate, True)[0]
    assert not np.allclose(m1, m2)
    # and a dropout mask zeroes about `rate` of the units, scaling survivors by 1 / (1 - rate)
    x = jnp.ones(20_000)
    d = np.asarray(nets.dropout(jax.random.PRNGKey(7), x, rate))
    assert abs(np.mean(d == 0) - 0.5) < 0.02 and np.allclose(d[d > 0], 2.0)
