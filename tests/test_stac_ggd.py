"""Generalized-Gaussian TD critic (`jaxrl.stac.ggd`, variant "ggd"): NLL, variance and their
gradients against scipy.stats.gennorm; beta = 2 is the Gaussian critic; the batch
inverse-variance weights against a NumPy/scipy reference; a vmapped seed equals a single run."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import optimize, stats

from jaxrl.stac import VARIANTS, STACConfig, families, generalized_gaussian_nll, ggd, make_stac

Y = np.array([0.3, -1.2, 2.5, 0.05, -0.7])
MU = np.array([0.1, 0.4, -0.5, 0.0, -0.7001])
ALPHA = np.array([0.8, 1.7, 0.35, 2.2, 0.5])
BETA = np.array([2.0, 0.6, 1.3, 4.5, 0.3])


def _ref_nll(y, mu, alpha, beta):
    return -stats.gennorm.logpdf(y, beta, loc=mu, scale=alpha)


def test_nll_and_its_gradients_match_scipy_gennorm():
    ours = generalized_gaussian_nll(*(jnp.asarray(a, jnp.float32) for a in (Y, MU, ALPHA, BETA)))
    np.testing.assert_allclose(ours, _ref_nll(Y, MU, ALPHA, BETA), rtol=2e-5, atol=2e-5)
    grads = jax.vmap(jax.grad(generalized_gaussian_nll, argnums=(0, 1, 2, 3)))(
        *(jnp.asarray(a, jnp.float32) for a in (Y, MU, ALPHA, BETA)))
    h = 1e-6
    for i, g in enumerate(grads):  # central differences of scipy's NLL in float64
        up = [Y, MU, ALPHA, BETA]
        dn = [Y, MU, ALPHA, BETA]
        up[i], dn[i] = up[i] + h, up[i] - h
        fd = (_ref_nll(*up) - _ref_nll(*dn)) / (2 * h)
        np.testing.assert_allclose(g, fd, rtol=2e-3, atol=2e-4, err_msg=f"argument {i}")
    # at y = mu the power term has gradient 0 (no NaN for beta < 1)
    g0 = jax.grad(generalized_gaussian_nll, argnums=1)(0.5, 0.5, 1.0, 0.3)
    assert float(g0) == 0.0


def test_variance_matches_gennorm():
    ours = ggd.generalized_gaussian_variance(jnp.asarray(ALPHA, jnp.float32),
                                             jnp.asarray(BETA, jnp.float32))
    np.testing.assert_allclose(ours, stats.gennorm.var(BETA, scale=ALPHA), rtol=1e-4)


def _softplus_inv(x):
    return np.log(np.expm1(x))


def test_shape_two_is_the_gaussian_critic():
    """GGD outputs with raw shape 0 (beta = 2) and scale sqrt(2) sigma give the Gaussian
    family's heads, pessimistic target statistic and (equal target variances: uniform weights)
    batch-mean NLL loss."""
    rng = np.random.default_rng(0)
    n, b = 1, 6
    mu = rng.normal(size=(n, b))
    sigma = rng.uniform(0.2, 2.0, size=(n, b))
    y = jnp.asarray(rng.normal(size=b), jnp.float32)
    out_g = jnp.asarray(np.stack([mu, _softplus_inv(sigma)], -1), jnp.float32)
    out_ggd = jnp.asarray(np.stack([mu, _softplus_inv(np.sqrt(2) * sigma), np.zeros((n, b))],
                                   -1), jnp.float32)
    _, _, shape = ggd.ggd_params(out_ggd)
    np.testing.assert_allclose(shape, 2.0, rtol=1e-6)
    for a, c in zip(families.GAUSSIAN.heads(out_g), ggd.GGD.heads(out_ggd), strict=True):
        np.testing.assert_allclose(c, a, rtol=1e-5, atol=1e-6)
    hp = {"beta": jnp.float32(0.4), "biv_min_ess": jnp.float32(4.0)}
    disc = jnp.full(b, 0.99)
    v_g, _ = families.GAUSSIAN.target(out_g, families.pessimistic_value, disc, None, hp)
    v_ggd, var = ggd.GGD.target(out_ggd, families.pessimistic_value, disc, None, hp)
    np.testing.assert_allclose(v_ggd, v_g, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(var, 0.99**2 * sigma[0] ** 2, rtol=1e-4)
    loss_g, _ = families.GAUSSIAN.loss(out_g, y, None, hp)
    loss_ggd, aux = ggd.GGD.loss(out_ggd, y, jnp.ones(b), hp)
    np.testing.assert_allclose(loss_ggd, loss_g, rtol=1e-5)
    np.testing.assert_allclose(aux["biv_ess"], b, rtol=1e-5)


def _np_biv(v, min_ess):
    """NumPy reference: w ∝ 1/(v + xi), xi = 0 or the root of ESS(xi) = min(min_ess, B - 1)."""
    v = np.maximum(np.asarray(v, np.float64), ggd.VAR_FLOOR)
    m = min(min_ess, len(v) - 1)

    def ess(xi):
        w = 1.0 / (v + xi)
        return w.sum() ** 2 / (w**2).sum()

    xi = 0.0 if ess(0.0) >= m else optimize.brentq(lambda x: ess(x) - m, 0.0, 1e3 * v.max())
    w = 1.0 / (v + xi)
    return w / w.sum(), xi


@pytest.mark.parametrize("case", ["no_xi", "xi", "terminal_zeros", "cap_at_B_minus_1"])
def test_biv_weights_match_numpy_reference(case):
    rng = np.random.default_rng(1)
    b, m = 32, 16.0
    if case == "no_xi":
        v = rng.uniform(1.0, 1.5, b)
    elif case == "xi":
        v = np.exp(rng.normal(0.0, 2.0, b))
    elif case == "terminal_zeros":
        v = np.exp(rng.normal(0.0, 1.0, b))
        v[:3] = 0.0
    else:
        v, m = np.exp(rng.normal(0.0, 1.0, b)), 100.0
    ref, xi = _np_biv(v, m)
    assert (xi == 0.0) == (case == "no_xi")
    w = ggd.biv_weights(jnp.asarray(v, jnp.float32), m)
    np.testing.assert_allclose(np.sum(w), 1.0, rtol=1e-5)
    np.testing.assert_allclose(w, ref, rtol=2e-3, atol=1e-7)
    ess = float(ggd.effective_batch_size(w))
    assert ess >= min(m, b - 1) * (1 - 1e-4)


TINY = dict(env_name="Pendulum-v1", variant="ggd", total_env_steps=40, warmup_steps=24,
            buffer_size=40, batch_size=8, actor_hidden=(4,), critic_hidden=(4,),
            eval_episodes=1, bias_states=0, biv_min_ess=4.0)


def test_vmapped_seeds_equal_single_runs():
    """Three seeds vmapped in one program equal each seed run alone (training metrics and
    critic parameters after 8 updates)."""
    algo = make_stac(STACConfig(**TINY))
    hp = {k: jnp.float32(v) for k, v in algo.hparams.items()}

    def run(key):
        s = algo.init(key, hp)
        s, ms = jax.lax.scan(lambda s, _: algo.update(s, hp), s, None, length=8)
        return ms, s.critic

    keys = jax.random.split(jax.random.PRNGKey(4), 3)
    ms_v, crit_v = jax.jit(jax.vmap(run))(keys)
    ms_1, crit_1 = jax.jit(run)(keys[1])
    assert set(ms_1) >= {"critic_loss", "shape_mean", "biv_ess", "sigma_mean"}
    for k in ms_1:
        np.testing.assert_allclose(ms_v[k][1], ms_1[k], rtol=1e-5, atol=1e-6, err_msg=k)
    for a, c in zip(jax.tree.leaves(crit_v), jax.tree.leaves(crit_1), strict=True):
        np.testing.assert_allclose(a[1], c, rtol=1e-5, atol=1e-6)
    assert np.all(np.isfinite(ms_v["critic_loss"]))


def test_ggd_is_one_table_entry_the_experiment_runs():
    from experiments import stac as exp
    from experiments.configs import stac as stac_config

    assert "ggd" in exp.KNOWN and VARIANTS["ggd"].family is ggd.GGD
    c = stac_config.get_config("quick")
    c.variants = ("stac", "ggd")
    progs = exp.programs(c, "Pendulum-v1")
    p = next(p for p in progs if p.variant == "ggd")
    assert p.cfg.variant == "ggd" and p.cfg.use_dropout
    assert (p.cfg.actor_dropout, p.cfg.critic_dropout) == (c.dropout, c.dropout)


def test_ggd_loss_is_the_biv_weighted_nll():
    """The family's loss = sum_i w_i NLL_i with the reference weights of the target variances
    and scipy's generalized-Gaussian NLL at the heads' (mu, alpha, beta)."""
    rng = np.random.default_rng(2)
    b = 12
    out = jnp.asarray(rng.normal(size=(1, b, 3)), jnp.float32)
    y = jnp.asarray(rng.normal(size=b), jnp.float32)
    var = np.exp(rng.normal(0.0, 2.0, b))
    loss, aux = ggd.GGD.loss(out, y, jnp.asarray(var, jnp.float32),
                             {"biv_min_ess": jnp.float32(6.0)})
    mu, alpha, beta = (np.asarray(a[0], np.float64) for a in ggd.ggd_params(out))
    w, xi = _np_biv(var, 6.0)
    assert xi > 0
    ref = np.sum(w * _ref_nll(np.asarray(y, np.float64), mu, alpha, beta))
    np.testing.assert_allclose(loss, ref, rtol=1e-3)
    np.testing.assert_allclose(aux["biv_ess"], 6.0, rtol=1e-3)
