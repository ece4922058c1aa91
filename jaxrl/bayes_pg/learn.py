"""Policy learning with BPG (Model 1 / 2), BAC and Monte Carlo PG as `sweep.Algorithm`s.

One update = collect `num_episodes` episodes with the current policy, estimate the gradient
with the chosen estimator, optionally precondition with the estimated Fisher information
(natural gradient), take an ascent step along the posterior mean (JMLR 2016, Alg. 1 "BPG" and
Alg. 2 "BAC"): `optimizer="sgd"` is the papers' fixed step `theta += lr * E[grad | D]`,
`"adam"` (default) rescales per coordinate and so hides differences in gradient magnitude;
then project the parameters into the valid set. The posterior covariance is informational
here (logged as `grad_cov_trace`; it scales no step and chooses no sample size).

Estimators: `mc` (REINFORCE), `mc_baseline` (REINFORCE with a leave-one-out mean-return
baseline), `bpg1`, `bpg2` (BPG Models 1 and 2, Fisher estimated from the batch), `bac`
(Bayesian actor-critic with an ALD-sparsified Monte-Carlo GPTD critic).

The Fisher matrix of the kernels (and of the natural gradient) is estimated from the batch:
`fisher="steps"` (per-step score outer products) or `"states"` (the policy's expected score
outer product at the visited states, `policies.fisher_from_states`; less noisy), plus a
relative ridge `fisher_ridge`.

Metrics per update: `return` (exact expected return `eta(theta)` on the LQR, the batch's mean
undiscounted episode return otherwise), `batch_return`, `grad_norm`, `grad_cov_trace`
(trace of the posterior gradient covariance, 0 for MC), `dict_size` (BAC dictionary size).

Config: `LearnConfig` (the `jaxrl.config` idiom): shapes and names are `static`, the floats
(`lr`, `gp_noise`, `gamma`, the BAC kernel and noise settings) are `sweepable` with their valid
ranges, and `make_learner(cfg).hparams` is derived from those marks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import optax

from jaxrl import config as jconfig
from jaxrl import sweep
from jaxrl.bayes_pg import bpg, estimators, policies
from jaxrl.config import static, sweepable

ESTIMATORS = estimators.ESTIMATORS  # the one registry (name -> EstimatorSpec)


class LearnerState(NamedTuple):
    theta: jax.Array
    opt_state: Any
    key: jax.Array


def _one_of(options: tuple[str, ...]):
    return lambda v: None if v in options else f"must be one of {options}"


def _at_least(lo: int):
    return lambda v: None if isinstance(v, int) and v >= lo else f"must be an integer >= {lo}"


def _env_name(v: Any) -> str | None:
    from jaxrl import envs

    if isinstance(v, str) and (v in envs.registered()):
        return None
    return "must be LQR-v0, MountainCarNormalized-v0 or a discrete gymnax task name"


@dataclasses.dataclass(frozen=True)
class LearnConfig:
    """One policy-gradient learner. Static fields shape the compiled program; the sweepable
    floats are read at run time from `hparams` (one program for a whole grid over them)."""

    env: str = static("LQR-v0", check=_env_name,
                      doc="LQR-v0, MountainCarNormalized-v0 or a discrete gymnax task")
    estimator: str = static("bpg1", check=_one_of(tuple(ESTIMATORS)))
    num_episodes: int = static(10, check=_at_least(1), doc="episodes per update")
    max_steps: int = static(20, check=_at_least(1), doc="episode length cap")
    num_updates: int = static(50, check=_at_least(1))
    natural: bool = static(False, doc="precondition by the estimated Fisher information")
    bac_capacity: int = static(64, check=_at_least(1), doc="BAC dictionary capacity")
    fit_gp: bool = static(False, doc="fit GP signal scale and noise per batch (evidence)")
    fisher: str = static("steps", check=_one_of(("steps", "states")),
                         doc="G from the batch: per-step scores, or the policy's expected score "
                             "outer product at the visited states (policies.fisher_from_states)")
    optimizer: str = static("adam", check=_one_of(("adam", "sgd")),
                            doc="adam, or sgd: a fixed step theta += lr * gradient (the papers)")
    lr: float = sweepable(0.05, lo=0.0, lo_open=True, doc="Adam / fixed (sgd) step size")
    gp_noise: float = sweepable(1.0, lo=0.0, lo_open=True, doc="BPG GP noise Sigma = s I")
    gamma: float = sweepable(1.0, lo=0.0, hi=1.0, lo_open=True, doc="BAC critic discount")
    bac_noise: float = sweepable(1.0, lo=0.0, lo_open=True, doc="GPTD observation noise")
    bac_c_x: float = sweepable(1.0, lo=0.0, doc="weight of the state kernel")
    bac_c_f: float = sweepable(1.0, lo=0.0, doc="weight of the Fisher kernel")
    bac_lengthscale: float = sweepable(1.0, lo=0.0, lo_open=True, doc="RBF length scale")
    bac_nu: float = sweepable(0.1, lo=0.0, doc="ALD threshold")
    fisher_ridge: float = sweepable(
        1e-6, lo=0.0, doc="ridge on the estimated Fisher matrix, relative to its mean eigenvalue")


def as_config(config: LearnConfig | ml_collections.ConfigDict | Mapping[str, Any]) -> LearnConfig:
    """A `LearnConfig` from itself, a ConfigDict or a dict (unknown keys refused)."""
    return jconfig.from_config(LearnConfig, config)


def validate(config: LearnConfig | ml_collections.ConfigDict | Mapping[str, Any],
             grid: Mapping[str, Any] | None = None, prefix: str = "config.algo",
             sweep_prefix: str = "config.sweep") -> LearnConfig:
    """Check every field and every swept value (one-line ValueErrors naming the field); returns
    the `LearnConfig`."""
    cfg = as_config(config)
    jconfig.validate(cfg, grid, prefix=prefix, sweep_prefix=sweep_prefix)
    if cfg.estimator == "mc_baseline" and cfg.num_episodes < 2:
        raise ValueError(f"{prefix}.num_episodes must be >= 2 for mc_baseline, got "
                         f"{cfg.num_episodes}")
    return cfg


def default_config() -> LearnConfig:
    """Default learning config (LQR of the paper, BPG Model 1)."""
    return LearnConfig()


# Policy feature maps per environment (default: the raw observation plus a bias). Mountain car:
# the 4 x 4 Gaussian RBF grid on the normalised state of the BAC experiments (JMLR 2016, Sec. 8;
# digest `stac_bpg.md`), 2 x 17 = 34 parameters.
POLICY_FEATURES: dict[str, int] = {"MountainCarNormalized-v0": 4}  # env -> RBF centres per dim


def make_env(name: str, max_steps: int):
    """`(env, params, policy, theta0, is_lqr)` for `LQR-v0`, one of our discrete tasks
    (`jaxrl.envs`, e.g. `MountainCarNormalized-v0`) or a discrete gymnax task; `theta0` is the
    LQR's `(-0.2, 1)` or zeros (the uniform random Boltzmann policy)."""
    if name == "LQR-v0":
        from jaxrl.envs.lqr import make_lqr

        env, params = make_lqr(max_steps_in_episode=max_steps)
        return env, params, policies.gaussian_linear_policy(), jnp.array([-0.2, 1.0]), True
    from jaxrl import envs

    env, params = envs.make(name)
    params = params.replace(max_steps_in_episode=max_steps)
    obs_dim = int(env.observation_space(params).shape[0])
    if name in POLICY_FEATURES:
        phi, k = policies.rbf_grid_features(POLICY_FEATURES[name], obs_dim)
        pol = policies.softmax_linear_policy(obs_dim, int(env.num_actions), phi, k)
    else:
        pol = policies.softmax_linear_policy(obs_dim, int(env.num_actions))
    return env, params, pol, jnp.zeros((pol.num_params,)), False


def gradient_estimate(estimator: str, ep: policies.Episodes, hp: dict[str, jax.Array],
                      config: LearnConfig, policy: policies.Policy | None = None,
                      theta: jax.Array | None = None
                      ) -> tuple[bpg.GradientPosterior, jax.Array, jax.Array]:
    """The chosen estimator (`estimators.ESTIMATORS`, the registry the gradient study uses) on
    a batch; the Fisher information is estimated from the batch's steps (`fisher_from_steps`,
    or with `config.fisher = "states"` `policies.fisher_from_states(policy, theta, ep)`,
    plus `fisher_ridge` times its mean eigenvalue `tr(G) / n` on the diagonal: the default 1e-6
    leaves a well-conditioned G (the LQR's) unchanged; with a near-singular G (a softmax policy on
    correlated RBF features, once it is nearly deterministic where the batch goes: eigenvalues
    spanning 8 decades on mountain car) float32 Cholesky needs ~1e-3. Returns (posterior,
    Fisher `[n, n]`, BAC dictionary size)."""
    n = ep.scores.shape[-1]
    if config.fisher == "states":
        if policy is None or theta is None:
            raise ValueError("gradient_estimate: config.fisher='states' needs policy and theta")
        fisher = policies.fisher_from_states(policy, theta, ep)
    else:
        fisher = bpg.fisher_from_steps(ep.scores)
    ridge = jnp.asarray(hp.get("fisher_ridge", 1e-6), fisher.dtype)
    fisher = fisher + ridge * jnp.trace(fisher) / n * jnp.eye(n, dtype=fisher.dtype)
    e = estimators.ESTIMATORS[estimator].fn(ep, fisher, hp, None, fit=bool(config.fit_gp),
                                            capacity=int(config.bac_capacity))
    return e.posterior, fisher, e.dict_size.astype(jnp.float32)


def make_learner(config: LearnConfig | ml_collections.ConfigDict | Mapping[str, Any]
                 ) -> sweep.Algorithm:
    """A policy-gradient learner for the runtime (see module docstring); `hparams` are the
    sweepable fields of `LearnConfig` (`jaxrl.config.hparams`)."""
    config = validate(config)
    env, env_params, pol, theta0, is_lqr = make_env(config.env, int(config.max_steps))
    estimator, natural = config.estimator, bool(config.natural)
    m, t = int(config.num_episodes), int(config.max_steps)
    opt = optax.inject_hyperparams(optax.adam if config.optimizer == "adam" else optax.sgd)(
        learning_rate=0.0)
    if is_lqr:
        from jaxrl.envs.lqr import lqr_expected_return

    def init(key, hp):
        theta = theta0.astype(jnp.float32)
        return LearnerState(theta, opt.init(theta), key)

    def update(state, hp):
        key, k_ep = jax.random.split(state.key)
        ep = policies.collect_episodes(env, env_params, pol, state.theta, k_ep, m, t)
        post, fisher, size = gradient_estimate(estimator, ep, hp, config, pol, state.theta)
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

    return sweep.Algorithm(init=init, update=update, num_updates=int(config.num_updates),
                           env_steps_per_update=m * t, hparams=jconfig.hparams(config),
                           name=f"{estimator}_{config.env}")
