"""Sign and scale of the pessimism term and of every variant's TD target, against numbers
computed by hand / in NumPy from explicit small inputs (issue 18, STAC item 1).

The next action and its log-probability are fixed by the test (the squashed-Gaussian sampler is
replaced by a stub returning given values), and the critics are explicit tiny networks (one
hidden ReLU layer of width 2, no LayerNorm, no dropout) whose outputs the test computes itself,
so the expected targets do not go through any code of `jaxrl.stac`. `beta != 0` and
`sigma != 1` throughout, so a flipped sign (`mu + beta sigma`), a wrong scale (`2 beta`,
`sigma^2`) or the wrong twin combination changes the numbers.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.stac import STACConfig, Transition, make_learner
from jaxrl.stac import networks as nets

SMALL = dict(actor_hidden=(2,), critic_hidden=(2,), layer_norm=False, use_dropout=False,
             actor_dropout=0.0, critic_dropout=0.0, total_env_steps=300, warmup_steps=100,
             buffer_size=300)
BETA, GAMMA, ALPHA = 0.75, 0.9, 0.3
HP = {"beta": BETA, "gamma": GAMMA, "actor_dropout": 0.0, "critic_dropout": 0.0, "kappa": 1.0}

# Pendulum: obs_dim 3, |A| = 1. Three transitions; the second one ends in a terminal state.
OBS = np.array([[0.2, 0.1, -0.3], [0.0, 1.0, 0.5], [-0.7, 0.4, 0.9]], np.float32)
NEXT_OBS = np.array([[0.5, -1.0, 2.0], [1.0, 0.3, -0.4], [-0.2, 0.8, 1.5]], np.float32)
ACTION = np.array([[0.1], [-0.2], [0.3]], np.float32)
REWARD = np.array([1.0, -0.5, 2.0], np.float32)
TERMINATED = np.array([0.0, 1.0, 0.0], np.float32)
NEXT_ACTION = np.array([[0.3], [-0.6], [0.9]], np.float32)  # a' ~ pi(.|s'), fixed here
NEXT_LOGP = np.array([-0.7, 0.4, 1.2], np.float32)  # log pi(a'|s'), fixed here


def _batch():
    return Transition(jnp.asarray(OBS), jnp.asarray(ACTION), jnp.asarray(REWARD),
                      jnp.asarray(NEXT_OBS), jnp.asarray(TERMINATED))


@pytest.fixture
def fixed_next_action(monkeypatch):
    """Every policy sample returns (NEXT_ACTION, NEXT_LOGP)."""
    def fake(key, mean, std, eps=None):
        return jnp.asarray(NEXT_ACTION), jnp.asarray(NEXT_LOGP)

    monkeypatch.setattr(nets, "tanh_gaussian_sample", fake)


def _actor(L):
    z = jnp.zeros(())
    return L.actor.init(jax.random.PRNGKey(0), jnp.zeros((1, L.obs_dim)), z, False)


def _critic(W1, b1, W2, b2):
    """Stacked critic parameters `[n, ...]` of `nets.Critic(hidden=(2,), layer_norm=False)`."""
    f = lambda x: jnp.asarray(np.asarray(x, np.float32))  # noqa: E731
    return {"params": {"Body_0": {"Dense_0": {"kernel": f(W1), "bias": f(b1)}},
                       "Dense_0": {"kernel": f(W2), "bias": f(b2)}}}


def _constant_critic(outputs):
    """Critics whose outputs are the constants `outputs [n, out]` for every input."""
    out = np.asarray(outputs, np.float32)
    n, k = out.shape
    return _critic(np.ones((n, 4, 2)), np.zeros((n, 2)), np.zeros((n, 2, k)), out)


def _np_critic(W1, b1, W2, b2, obs, act):
    """The same network in NumPy: `relu([s, a] W1 + b1) W2 + b2`, `[n, B, out]`."""
    x = np.concatenate([obs, act], axis=-1).astype(np.float64)
    h = np.maximum(np.einsum("bi,nih->nbh", x, W1) + b1[:, None], 0.0)
    return np.einsum("nbh,nho->nbo", h, W2) + b2[:, None]


def _softplus(x):
    return np.log1p(np.exp(x))


def _inv_softplus(y):
    return np.log(np.expm1(y))


def _target(variant, critic, **cfg):
    L = make_learner(STACConfig(variant=variant, **SMALL, **cfg))
    y = L.target(_actor(L), critic, jax.random.PRNGKey(7), _batch(), HP, jnp.float32(ALPHA))
    return np.asarray(y, np.float64)


# ---------------------------------------------------------------------------------------------
# Literal numbers (constant critics): the whole formula by hand.
# ---------------------------------------------------------------------------------------------


def test_stac_target_literal_mu_minus_beta_sigma(fixed_next_action):
    # mu = 4, sigma = softplus(raw) = 3; y = r + gamma (1 - d) (mu - beta sigma - alpha logp')
    y = _target("stac", _constant_critic([[4.0, _inv_softplus(3.0)]]))
    # sample 0: 1 + 0.9 * (4 - 0.75 * 3 + 0.3 * 0.7) = 1 + 0.9 * 1.96 = 2.764
    # sample 1: terminal -> r = -0.5
    # sample 2: 2 + 0.9 * (4 - 2.25 - 0.3 * 1.2) = 2 + 0.9 * 1.39 = 3.251
    np.testing.assert_allclose(y, [2.764, -0.5, 3.251], rtol=1e-5)


def test_stac_actor_loss_literal_sign_of_pessimism(fixed_next_action):
    # actor loss = mean(alpha log pi(a|s) - (mu - beta sigma)), a and log pi fixed by the stub
    L = make_learner(STACConfig(variant="stac", **SMALL))
    critic = _constant_critic([[4.0, _inv_softplus(3.0)]])
    loss, logp = L.actor_loss(_actor(L), critic, jax.random.PRNGKey(1), jnp.asarray(OBS), HP,
                              jnp.float32(ALPHA))
    np.testing.assert_array_equal(np.asarray(logp), NEXT_LOGP)
    # 0.3 * mean(-0.7, 0.4, 1.2) - (4 - 0.75 * 3) = 0.09 - 1.75 = -1.66
    np.testing.assert_allclose(float(loss), -1.66, rtol=1e-5)


@pytest.mark.parametrize("variant,outputs", [
    ("sac", [[4.0], [2.5]]),  # twin Q: min = 2.5
    ("estac", [[4.0, _inv_softplus(3.0)], [2.5, _inv_softplus(0.5)]]),  # min of means, no beta
    ("sac_single", [[2.5]]),
])
def test_twin_and_single_targets_literal(fixed_next_action, variant, outputs):
    # value 2.5 for all: sample 0: 1 + 0.9 (2.5 + 0.21) = 3.439; sample 2: 2 + 0.9 (2.5 - 0.36)
    y = _target(variant, _constant_critic(outputs))
    np.testing.assert_allclose(y, [3.439, -0.5, 3.926], rtol=1e-5)


def test_dsac_target_literal_elementwise_min_and_min_mean(fixed_next_action):
    # Two critics of 3 quantiles: z1 = (0, 1, 5) (mean 2), z2 = (0.5, 0.8, 2) (mean 1.1).
    critic = _constant_critic([[0.0, 1.0, 5.0], [0.5, 0.8, 2.0]])
    y = _target("dsac", critic, num_quantiles=3)  # default: the reference's element-wise min
    # min(z1, z2) = (0, 0.8, 2); y_j = r + gamma (1 - d) (z_j - alpha logp')
    np.testing.assert_allclose(y[0], [1 + 0.9 * 0.21, 1 + 0.9 * 1.01, 1 + 0.9 * 2.21],
                               rtol=1e-5)
    np.testing.assert_allclose(y[1], [-0.5] * 3, rtol=1e-6)
    np.testing.assert_allclose(y[2], [2 + 0.9 * -0.36, 2 + 0.9 * 0.44, 2 + 0.9 * 1.64],
                               rtol=1e-5)
    # the old rule: all quantiles of the critic with the smaller mean (z2)
    y_old = _target("dsac", critic, num_quantiles=3, dsac_target="min_mean")
    np.testing.assert_allclose(y_old[0], [1 + 0.9 * 0.71, 1 + 0.9 * 1.01, 1 + 0.9 * 2.21],
                               rtol=1e-5)


# ---------------------------------------------------------------------------------------------
# Input-dependent critics: the network and the target recomputed in NumPy.
# ---------------------------------------------------------------------------------------------

W1 = np.array([[[0.5, -0.3], [0.2, 0.4], [-0.1, 0.6], [0.7, -0.2]],
               [[-0.4, 0.3], [0.6, 0.1], [0.2, -0.5], [0.3, 0.8]]])  # [2, 4, 2]
B1 = np.array([[0.1, 0.2], [0.3, -0.1]])


def test_stac_target_matches_numpy_with_input_dependent_sigma(fixed_next_action):
    W2 = np.array([[[1.5, 0.8], [-0.7, 0.9]]])  # [1, 2, 2]: mu and raw sigma
    B2 = np.array([[2.0, 0.8]])
    critic = _critic(W1[:1], B1[:1], W2, B2)
    out = _np_critic(W1[:1], B1[:1], W2, B2, NEXT_OBS, NEXT_ACTION)[0]
    mu, sigma = out[:, 0], _softplus(np.maximum(out[:, 1], -5.0))
    assert np.all(np.abs(sigma - 1.0) > 0.1) and np.ptp(sigma) > 0.2  # sigma != 1, varies
    ref = REWARD + GAMMA * (1 - TERMINATED) * (mu - BETA * sigma - ALPHA * NEXT_LOGP)
    np.testing.assert_allclose(_target("stac", critic), ref, rtol=1e-5, atol=1e-6)
    # beta = 0 removes exactly beta * sigma (scale check independent of the sign check above)
    L = make_learner(STACConfig(variant="stac", **SMALL))
    y0 = L.target(_actor(L), critic, jax.random.PRNGKey(7), _batch(), {**HP, "beta": 0.0},
                  jnp.float32(ALPHA))
    np.testing.assert_allclose(np.asarray(y0) - _target("stac", critic),
                               GAMMA * (1 - TERMINATED) * BETA * sigma, rtol=1e-4, atol=1e-6)


def test_dsac_elementwise_min_matches_numpy_with_crossing_quantiles(fixed_next_action):
    W2 = np.array([[[1.0, -0.5, 2.0], [0.3, 0.9, -0.4]],
                   [[-0.6, 0.7, 0.5], [1.2, -0.3, 0.8]]])  # [2, 2, 3]
    B2 = np.array([[0.0, 0.5, 1.0], [0.2, 0.1, 1.5]])
    critic = _critic(W1, B1, W2, B2)
    z = _np_critic(W1, B1, W2, B2, NEXT_OBS, NEXT_ACTION)  # [2, B, 3]
    elementwise = np.minimum(z[0], z[1])
    by_mean = z[np.argmin(z.mean(-1), axis=0), np.arange(3)]
    assert not np.allclose(elementwise, by_mean)  # the two rules differ on these inputs
    ref = REWARD[:, None] + GAMMA * (1 - TERMINATED[:, None]) * (
        elementwise - ALPHA * NEXT_LOGP[:, None])
    np.testing.assert_allclose(_target("dsac", critic, num_quantiles=3), ref, rtol=1e-5,
                               atol=1e-6)
    ref_old = REWARD[:, None] + GAMMA * (1 - TERMINATED[:, None]) * (
        by_mean - ALPHA * NEXT_LOGP[:, None])
    np.testing.assert_allclose(_target("dsac", critic, num_quantiles=3, dsac_target="min_mean"),
                               ref_old, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Temperature rules (the reference code's per method) by hand.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant,rule,scaled", [
    ("stac", "reference", True), ("sac", "reference", False), ("dsac", "reference", False),
    ("estac", "reference", True), ("sac", "paper", True), ("stac", "sac_rule", False)])
def test_temperature_step_by_hand(variant, rule, scaled):
    """One update: log alpha moves by -lr alpha (H - H_target) (STAC / ESTAC in the reference,
    "paper") or by -lr (H - H_target) (SAC / DSAC in the reference, "sac_rule")."""
    from jaxrl.stac import make_stac
    from jaxrl.stac.stac import resolved_alpha_update

    cfg = STACConfig(variant=variant, alpha_update=rule, alpha_lr=0.05, alpha_init=0.4,
                     num_quantiles=3, actor_hidden=(8,), critic_hidden=(8,),
                     total_env_steps=240, warmup_steps=200, buffer_size=300, batch_size=16)
    assert resolved_alpha_update(cfg) == ("paper" if scaled else "sac_rule")
    algo = make_stac(cfg)
    hp = {k: jnp.float32(v) for k, v in {**algo.hparams, "target_entropy": -3.0}.items()}
    s = jax.jit(algo.init)(jax.random.PRNGKey(0), hp)
    s2, m = jax.jit(algo.update)(s, hp)
    gap = float(m["entropy"]) - (-3.0)
    step = 0.05 * (0.4 if scaled else 1.0) * gap
    np.testing.assert_allclose(float(s2.log_alpha) - float(s.log_alpha), -step, rtol=1e-4)
