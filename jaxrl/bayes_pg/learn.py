"""Policy learning with BPG (Model 1 / 2), BAC and Monte Carlo PG as `sweep.Algorithm`s.

One update = collect `num_episodes` episodes with the current policy, estimate the gradient
with the chosen estimator, optionally precondition with the estimated Fisher information
(natural gradient), take an Adam ascent step (JMLR 2016, Alg. 1 "BPG" and Alg. 2 "BAC", with
Adam in place of a fixed step size) and project the parameters into the valid set.

Estimators: `mc` (REINFORCE), `mc_baseline` (REINFORCE with a leave-one-out mean-return
baseline), `bpg1`, `bpg2` (BPG Models 1 and 2, Fisher estimated from the batch), `bac`
(Bayesian actor-critic with an ALD-sparsified Monte-Carlo GPTD critic).

Metrics per update: `return` (exact expected return `eta(theta)` on the LQR, the batch's mean
undiscounted episode return otherwise), `batch_return`, `grad_norm`, `grad_cov_trace`
(trace of the posterior gradient covariance, 0 for MC), `dict_size` (BAC dictionary size).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import optax

from jaxrl import sweep
from jaxrl.bayes_pg import bpg, gp, gptd, policies

ESTIMATORS = ("mc", "mc_baseline", "bpg1", "bpg2", "bac")


class LearnerState(NamedTuple):
    theta: jax.Array
    opt_state: Any
    key: jax.Array


def make_env(name: str, max_steps: int):
    """`(env, params, policy, theta0, is_lqr)` for `LQR-v0` or a discrete gymnax task."""
    if name == "LQR-v0":
        from jaxrl.envs.lqr import make_lqr

        env, params = make_lqr(max_steps_in_episode=max_steps)
        return env, params, policies.gaussian_linear_policy(), jnp.array([-0.2, 1.0]), True
    import gymnax

    env, params = gymnax.make(name)
    params = params.replace(max_steps_in_episode=max_steps)
    obs_dim = int(env.observation_space(params).shape[0])
    pol = policies.softmax_linear_policy(obs_dim, int(env.num_actions))
    return env, params, pol, jnp.zeros((pol.num_params,)), False


def validate(config: ml_collections.ConfigDict) -> None:
    """Raise `ValueError` (one line naming the field) on a bad learning config."""
    if config.estimator not in ESTIMATORS:
        raise ValueError(f"config.estimator must be one of {ESTIMATORS}, got {config.estimator!r}")
    for f, lo in (("num_episodes", 1), ("max_steps", 1), ("num_updates", 1),
                  ("bac_capacity", 1)):
        if int(config[f]) < lo:
            raise ValueError(f"config.{f} must be >= {lo}, got {config[f]}")
    if config.estimator == "mc_baseline" and config.num_episodes < 2:
        raise ValueError(f"config.num_episodes must be >= 2 for mc_baseline, got "
                         f"{config.num_episodes}")
    for f in ("lr", "gp_noise", "bac_noise"):
        if not float(config[f]) > 0:
            raise ValueError(f"config.{f} must be > 0, got {config[f]}")
    if float(config.bac_nu) < 0:
        raise ValueError(f"config.bac_nu must be >= 0, got {config.bac_nu}")
    if not 0.0 < float(config.gamma) <= 1.0:
        raise ValueError(f"config.gamma must be in (0, 1], got {config.gamma}")


def default_config() -> ml_collections.ConfigDict:
    """Default learning config (LQR of the paper, BPG Model 1)."""
    return ml_collections.ConfigDict(dict(
        env="LQR-v0", estimator="bpg1", num_episodes=10, max_steps=20, num_updates=50,
        natural=False, lr=0.05, gp_noise=1.0, gamma=1.0, bac_noise=1.0, bac_c_x=1.0,
        bac_c_f=1.0, bac_lengthscale=1.0, bac_nu=0.1, bac_capacity=64))


def gradient_estimate(estimator: str, ep: policies.Episodes, hp: dict[str, jax.Array],
                      config: ml_collections.ConfigDict) -> tuple[bpg.GradientPosterior, Any]:
    """The chosen estimator on a batch of episodes; returns (posterior, Fisher, dict size)."""
    returns, scores = ep.returns, ep.trajectory_scores
    n = scores.shape[1]
    fisher = bpg.fisher_from_steps(ep.scores)
    fisher = fisher + 1e-6 * jnp.trace(fisher) / n * jnp.eye(n, dtype=fisher.dtype)
    zero_cov = jnp.zeros((n, n), scores.dtype)
    size = jnp.asarray(0.0)
    if estimator == "mc":
        post = bpg.GradientPosterior(bpg.mc_gradient(returns, scores), zero_cov)
    elif estimator == "mc_baseline":
        post = bpg.GradientPosterior(bpg.mc_gradient(returns, scores, baseline=True), zero_cov)
    elif estimator == "bpg1":
        post = bpg.bpg_model1(returns, scores, fisher, hp["gp_noise"])
    elif estimator == "bpg2":
        post = bpg.bpg_model2(returns, scores, fisher, hp["gp_noise"])
    else:  # bac: state-action pairs of all episodes, occupancy Fisher from the same pairs
        m, t, d = ep.obs.shape
        valid = ep.valid.reshape(-1)
        u = ep.scores.reshape(m * t, n)
        nz = jnp.maximum(jnp.sum(valid), 1)
        g_sa = u.T @ u / nz + 1e-6 * jnp.eye(n, dtype=u.dtype)
        g_inv = bpg.inv_psd(g_sa)
        y = jax.vmap(gptd.discounted_returns_to_go, (0, 0, None))(
            ep.rewards, ep.valid, hp["gamma"]).reshape(-1)
        z = jnp.concatenate([ep.obs.reshape(m * t, d).astype(u.dtype), u], axis=1)
        kern = gptd.bac_kernel(hp["bac_c_x"], hp["bac_c_f"], hp["bac_lengthscale"], g_inv, d)
        dic = gp.ald_sparsify(kern, z, hp["bac_nu"], config.bac_capacity, valid)
        k_dict = gp.gram(kern, dic.points, dic.points)
        k_dict = k_dict * dic.mask[:, None] * dic.mask[None, :]
        post_q = gptd.sparse_mc_gptd(k_dict, dic.coeffs, y, hp["bac_noise"])
        u_dict = jnp.where(dic.mask[:, None], dic.points[:, d:], 0.0)
        post = gptd.bac_gradient(post_q, u_dict, g_sa, hp["bac_c_f"])
        fisher = g_sa
        size = dic.size.astype(jnp.float32)
    return post, fisher, size


def make_learner(config: ml_collections.ConfigDict) -> sweep.Algorithm:
    """A policy-gradient learner for the sweep engine (see module docstring)."""
    validate(config)
    env, env_params, pol, theta0, is_lqr = make_env(config.env, int(config.max_steps))
    estimator, natural = config.estimator, bool(config.natural)
    m, t = int(config.num_episodes), int(config.max_steps)
    opt = optax.inject_hyperparams(optax.adam)(learning_rate=0.0)
    if is_lqr:
        from jaxrl.envs.lqr import lqr_expected_return

    def init(key, hp):
        theta = theta0.astype(jnp.float32)
        return LearnerState(theta, opt.init(theta), key)

    def update(state, hp):
        key, k_ep = jax.random.split(state.key)
        ep = policies.collect_episodes(env, env_params, pol, state.theta, k_ep, m, t)
        post, fisher, size = gradient_estimate(estimator, ep, hp, config)
        direction = post
        if natural:
            direction = bpg.natural_gradient(post, fisher)
        opt_state = state.opt_state
        opt_state.hyperparams["learning_rate"] = hp["lr"]
        upd, opt_state = opt.update(-direction.mean, opt_state, state.theta)
        theta = pol.project(optax.apply_updates(state.theta, upd))
        batch_return = jnp.mean(ep.returns)
        ret = lqr_expected_return(state.theta, env_params) if is_lqr else batch_return
        metrics = dict(return_=ret, batch_return=batch_return,
                       grad_norm=jnp.linalg.norm(direction.mean),
                       grad_cov_trace=jnp.trace(direction.cov), dict_size=size)
        metrics = {("return" if k == "return_" else k): v.astype(jnp.float32)
                   for k, v in metrics.items()}
        return LearnerState(theta, opt_state, key), metrics

    hparams = {k: float(config[k]) for k in ("lr", "gp_noise", "gamma", "bac_noise", "bac_c_x",
                                             "bac_c_f", "bac_lengthscale", "bac_nu")}
    return sweep.Algorithm(init=init, update=update, num_updates=int(config.num_updates),
                           env_steps_per_update=m * t, hparams=hparams,
                           name=f"{estimator}_{config.env}")
