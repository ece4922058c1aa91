"""Stochastic Actor-Critic (STAC) and its SAC-family baselines, in one pure-JAX code path.

Özalp, "Stochastic Actor-Critic: Mitigating Overestimation via Temporal Aleatoric Uncertainty",
arXiv 2601.00737 (2026). Variants, chosen by `config.variant`:

* `stac` (paper Sec. 3-4): ONE Gaussian critic `N(mu(s, a), sigma(s, a)^2)` of the one-step return.
  Target (no gradient), one next action `a' ~ pi(.|s')`:
  `y = r + gamma (1 - done) [mu_targ(s', a') - beta sigma_targ(s', a') - alpha log pi(a'|s')]`;
  critic loss = batch-mean Gaussian NLL `-log N(y; mu, sigma^2)`; actor minimises
  `E[alpha log pi(a|s) - mu(s, a) + beta sigma(s, a)]` (reparameterised, online critic, dropout
  on). The paper's Algorithm 1 writes a descent step on the objective itself: a sign slip, the
  reference code minimises the negative, as we do.
* `sac`: twin Q critics, min in target and actor, loss `0.5 (q - y)^2` per critic (Haarnoja 2018).
* `sac_single`: one Q critic, otherwise `sac`.
* `estac`: twin Gaussian one-step critics trained by NLL, min of the means in target and actor,
  no `beta` (the paper's baseline, Sec. 5).
* `dsac`: distributional SAC with twin QUANTILE critics (the paper's DSAC baseline, Sec. 5, 25
  quantiles, twin; quantile-regression critics after Dabney et al. 2018 "QR-DQN", soft
  distributional backup after Ma et al. 2020 / Duan et al. 2021). Each critic outputs
  `N = num_quantiles` quantiles of the soft return at the fixed midpoints
  `tau_i = (2 i - 1) / (2 N)`. Target quantiles (no gradient), one next action `a' ~ pi(.|s')`:
  `y_j = r + gamma (1 - done) [z_j(s', a') - alpha log pi(a'|s')]` with, by `dsac_target`,
  `z_j = min(z_1j, z_2j)` the ELEMENT-WISE min of the two target critics' quantile sets
  (`"elementwise_min"`, the default: the reference code, `rlwarehouse/algos/dsac.py`,
  `th.min(next_qvalue1_qtls, next_qvalue2_qtls)`), or, per sample, all quantiles of the target
  critic whose quantile mean is smaller (`"min_mean"`: this library's rule before issue 18, kept
  to reproduce the DSAC rows of docs/results/stac.md run 1). Critic loss = quantile Huber loss
  (`kappa`, default 1) between each online critic's `N` quantiles and the `N` target quantiles
  (all pairs; summed over the online quantiles, where the reference averages: a constant
  factor `N` that Adam's scale invariance absorbs); actor on `min_i mean_j z_ij(s, a) - alpha
  log pi` (the reference's actor with `msd = 0`).
* `ggd`: STAC with a generalized-Gaussian critic (Kim et al., arXiv 2408.02295): head
  `(mu, scale alpha, shape)`, NLL `log(2 alpha Gamma(1/shape) / shape) + (|y - mu| / alpha)^shape`
  weighted per sample by batch inverse-variance weights, spread = the GGD's std; see
  `jaxrl.stac.ggd` (what was and was not verified there).

Each variant is one entry of `jaxrl.stac.variants.VARIANTS` (critic family, number of critics,
value rule, reference temperature rule, dropout); each critic family (output width, heads, target
statistic, loss) is a record of pure functions in `jaxrl.stac.families` / `jaxrl.stac.ggd`.

Common to all (paper Sec. 4.3): tanh-squashed Gaussian actor, Polyak targets every step,
automatic temperature with `H_target = target_entropy` (`None`: `-|A|`), updated by
`alpha_update`:

* `"paper"`: `alpha <- alpha exp(lr_alpha alpha (H_target - H_batch))`, i.e. SGD on `log alpha`
  of the paper's loss `alpha (H_batch - H_target)` (Sec. 4.3); the reference code's rule for STAC
  and ESTAC (`rlwarehouse/algos/stac.py`, `estac.py`). (The paper's Algorithm 1 writes plain SGD
  on `alpha`; the reference code, which produced the published numbers, does the above.)
* `"sac_rule"`: `alpha <- alpha exp(lr_alpha (H_target - H_batch))` (no `alpha` factor): the
  reference code's rule for its SAC and DSAC baselines (`rlwarehouse/algos/sac.py`, `dsac.py`).
* `"reference"` (default): the reference code's rule for the variant: `"paper"` for `stac` and
  `estac`, `"sac_rule"` for `sac`, `sac_single` and `dsac`.
* `"adam"`: Adam on the gradient `alpha (H_batch - H_target)` of `log alpha` (our CPU-scale
  configs; not in the paper).

The reference code uses the critic learning rate for the temperature (`alpha_lr = 3e-4`).
Target entropy: the paper's appendix table of per-environment entropy, pessimism and dropout
(`tab:target_ent_pessimism_algos`, `stac-paper-arxiv/template.tex` of
ugurcanozalp/stochastic-actor-critic at commit f3500f9) lists about `-|A|/2` on most tasks (Ant
-4, HalfCheetah -3, Humanoid -8, Walker2d -3, Hopper -1, BipedalWalker -2), while its general
hyperparameter table says `-|A|`, and every run behind the published numbers used `-|A|` except
Swimmer (`-1`, `|A| = 2`): the `target_entropy` of each run's `hparams.jsonl`
(`logs/main-comparison/*/*/*/hparams.jsonl` of that repository) and `train_scripts/*.sh`. We
default to `-|A|`; `experiments/configs/stac.py:paper_<task>` sets the logged per-task values.
Networks: `Dense -> Dropout -> LayerNorm -> ReLU` bodies, dropout ON in every training
computation (data collection, target, losses) and OFF in evaluation. One gradient update per
environment step after `warmup_steps` of uniformly random actions (done inside `init`; the
reference draws `tanh(N(0, 1))` warm-up actions, a difference we keep: uniform covers the box
evenly).

`STACConfig` follows `jaxrl.config`: shapes, names and flags are `static` (one compiled program per
config), and every float is `sweepable` with its bounds (`beta >= 0`, learning rates and
`alpha_init` > 0, `tau` in (0, 1], `gamma` in [0, 1], dropout rates in [0, 1), `kappa > 0`,
`target_entropy`); `Algorithm.hparams` is derived from the marks, so a sweep over any of them
compiles once, and `jaxrl.config.validate` checks swept values against the same bounds.

`Algorithm.evaluate(state, key, hparams)` (dropout off): mean return and danger-disc fraction of
`eval_episodes` episodes, the reference code's overestimation estimate on those same episodes
(`bias_reference`, see `jaxrl.stac.bias.reference_returns_backward`), and (with
`bias_states > 0`) our two estimates of `jaxrl.stac.bias` at the run's `gamma`: scalars `return`,
`danger_frac`, `bias_reference`, `bias_paper`, `bias_rollout`, `q_mean`, `soft_return`. The
runtime derives its key from (seed, evaluation index) only, so every grid point of a seed is
evaluated from the same start states.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl import config as jconfig
from jaxrl import networks, optim, replay, rng, sweep
from jaxrl.envs.wrappers import LogWrapper, VecEnv
from jaxrl.stac import networks as nets
from jaxrl.stac.families import gaussian_nll, quantile_huber_loss, quantile_midpoints  # noqa: F401
from jaxrl.stac.variants import VARIANTS, Variant

ALPHA_UPDATES = ("reference", "paper", "sac_rule", "adam")  # see the module docstring
DSAC_TARGETS = ("elementwise_min", "min_mean")  # see the module docstring


def _min(n: int) -> Any:
    """A `static` check: an integer >= n."""
    def check(v):
        ok = isinstance(v, int | np.integer) and not isinstance(v, bool) and v >= n
        return None if ok else f"must be an integer >= {n}"

    return check


def _one_of(options) -> Any:
    return lambda v: None if v in options else f"must be one of {sorted(options)}"


def _widths(v) -> str | None:
    ok = isinstance(v, tuple | list) and len(v) > 0 and all(
        isinstance(h, int | np.integer) and not isinstance(h, bool) and h >= 1 for h in v)
    return None if ok else "must be a non-empty tuple of positive widths"


def _activation(v) -> str | None:
    return None if v in networks.ACTIVATIONS else f"must be one of {sorted(networks.ACTIVATIONS)}"


def _optional_sweepable(doc: str) -> Any:
    """A sweepable float whose default `None` is resolved when the learner is built."""
    f = jconfig.sweepable(0.0, doc=doc)
    f.default = None
    return f


@dataclasses.dataclass(frozen=True)
class STACConfig:
    """One STAC program: `static` fields (shapes, loop lengths, names, flags: part of the
    compiled program) and `sweepable` floats (read from `hparams` at run time; their values here
    are the defaults, `Algorithm.hparams = default_hparams(cfg, |A|)` is derived from the marks).

    `target_entropy=None` means `-|A|`. Step counts are environment steps summed over envs.
    `log_every`: one `Algorithm.update` is that many (environment step + gradient update)
    iterations, its metrics their mean (1: one iteration; larger values only thin the logged
    metrics, the training numbers are those of `log_every=1`).
    `eval_episodes`, `bias_*`: the evaluation `Algorithm.evaluate` runs (`bias_states=0`: no
    rollout / one-episode bias measurement; the reference estimate `bias_reference` is always
    computed on the evaluation episodes). `kappa`, `num_quantiles` and `dsac_target` are read
    by `dsac` only, `biv_min_ess` by `ggd` only. `alpha_update`: see the module docstring
    (`"reference"`: the reference code's rule for the variant, `resolved_alpha_update`).
    """

    env_name: str = jconfig.static("Pendulum-v1")
    variant: str = jconfig.static("stac", check=_one_of(VARIANTS))
    total_env_steps: int = jconfig.static(20_000, check=_min(1))
    warmup_steps: int = jconfig.static(1_000, check=_min(1))
    num_envs: int = jconfig.static(1, check=_min(1))
    buffer_size: int = jconfig.static(100_000, check=_min(1))
    batch_size: int = jconfig.static(256, check=_min(1))
    actor_hidden: tuple[int, ...] = jconfig.static((256, 256), check=_widths)
    critic_hidden: tuple[int, ...] = jconfig.static((256, 256), check=_widths)
    activation: str = jconfig.static("relu", check=_activation)
    layer_norm: bool = jconfig.static(True)
    use_dropout: bool = jconfig.static(True)
    learn_alpha: bool = jconfig.static(True)
    alpha_update: str = jconfig.static("reference", check=_one_of(ALPHA_UPDATES))
    eval_samples: int = jconfig.static(10, check=_min(1))
    log_every: int = jconfig.static(1, check=_min(1), doc="env steps (per env) per update call")
    eval_episodes: int = jconfig.static(8, check=_min(1))
    bias_states: int = jconfig.static(8, check=_min(0))
    bias_rollouts: int = jconfig.static(16, check=_min(1))
    bias_horizon: int = jconfig.static(300, check=_min(1))
    num_quantiles: int = jconfig.static(25, check=_min(1), doc="dsac: quantiles per critic")
    dsac_target: str = jconfig.static("elementwise_min", check=_one_of(DSAC_TARGETS),
                                      doc="dsac: how the twin target quantile sets combine")
    beta: float = jconfig.sweepable(0.25, lo=0.0, doc="pessimism: mu - beta sigma")
    alpha_init: float = jconfig.sweepable(0.2, lo=0.0, lo_open=True)
    actor_lr: float = jconfig.sweepable(3e-4, lo=0.0, lo_open=True)
    critic_lr: float = jconfig.sweepable(3e-4, lo=0.0, lo_open=True)
    alpha_lr: float = jconfig.sweepable(3e-4, lo=0.0, lo_open=True)
    tau: float = jconfig.sweepable(0.005, lo=0.0, hi=1.0, lo_open=True, doc="Polyak rate")
    gamma: float = jconfig.sweepable(0.99, lo=0.0, hi=1.0)
    actor_dropout: float = jconfig.sweepable(0.01, lo=0.0, hi=1.0, hi_open=True)
    critic_dropout: float = jconfig.sweepable(0.01, lo=0.0, hi=1.0, hi_open=True)
    target_entropy: float | None = _optional_sweepable("None: -|A|")
    kappa: float = jconfig.sweepable(1.0, lo=0.0, lo_open=True, doc="dsac: Huber threshold")
    biv_min_ess: float = jconfig.sweepable(16.0, lo=1.0, doc="ggd: min effective batch size of "
                                           "the inverse-variance weights")

    def validate(self, grid: Any = None, prefix: str = "config",
                 sweep_prefix: str = "config.sweep") -> None:
        """Raise `ValueError` with one line naming the first bad field or swept value
        (`jaxrl.config.validate` on the marks, then the cross-field checks)."""
        probe = self if self.target_entropy is not None else dataclasses.replace(
            self, target_entropy=0.0)  # None (= -|A|) is always valid
        jconfig.validate(probe, grid, prefix, sweep_prefix)

        def bad(field, cond, why):
            if cond:
                raise ValueError(f"{prefix}.{field} {why}, got {getattr(self, field)!r}")

        bad("warmup_steps", self.warmup_steps < self.num_envs, "must be >= num_envs")
        bad("total_env_steps", self.total_env_steps < self.warmup_steps + self.num_envs,
            "must exceed warmup_steps by at least num_envs")
        bad("buffer_size", self.buffer_size < self.num_envs, "must be >= num_envs")


def resolved_alpha_update(cfg: STACConfig) -> str:
    """The temperature rule a config runs: `cfg.alpha_update`, with `"reference"` replaced by the
    reference code's rule for `cfg.variant` (`VARIANTS[variant].alpha_rule`: `"paper"` for
    stac/estac/ggd, `"sac_rule"` for sac/sac_single/dsac; `rlwarehouse/algos/{stac,estac,sac,
    dsac}.py`)."""
    if cfg.alpha_update == "reference":
        return VARIANTS[cfg.variant].alpha_rule
    return cfg.alpha_update


def as_config(cfg: Any) -> STACConfig:
    """`STACConfig` from a `STACConfig`, a dict or an `ml_collections.ConfigDict` (extra keys are
    an error naming them), validated."""
    if not isinstance(cfg, STACConfig):
        d = dict(cfg.to_dict() if hasattr(cfg, "to_dict") else cfg)
        names = {f.name for f in dataclasses.fields(STACConfig)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown STAC config field(s) {unknown}")
        for k in ("actor_hidden", "critic_hidden"):
            if k in d:
                d[k] = tuple(int(h) for h in d[k])
        cfg = jconfig.from_config(STACConfig, d)
    cfg.validate()
    return cfg


def make_env(name: str):
    """`(env, params)` from `jaxrl.envs.make`: gymnax names, ours (`RiskyPointMass-v0`) and
    `brax/NAME`; an unknown name fails listing the valid ones."""
    from jaxrl.envs import make

    return make(name)


# ---------------------------------------------------------------------------------------------
# Pure loss pieces (single stream: batch axis first, critics stacked on axis 0).
# ---------------------------------------------------------------------------------------------


def soft_target(
    reward: jax.Array, terminated: jax.Array, next_value: jax.Array, next_log_prob: jax.Array,
    gamma: jax.Array, alpha: jax.Array,
) -> jax.Array:
    """`y = r + gamma (1 - terminated) [next_value - alpha log pi(a'|s')]`, all `[batch]`.

    `next_value` is `mu_targ - beta sigma_targ` (STAC), `min_i Q_targ_i` (SAC) or
    `min_i mu_targ_i` (ESTAC)."""
    return reward + gamma * (1.0 - terminated) * (next_value - alpha * next_log_prob)


class Transition(NamedTuple):
    """One transition (or a batch of them, with leading axes): the replay item of STAC.

    Attributes:
      obs: `[..., obs_dim]` observation `s_t`.
      action: `[..., A]` action in the normalised box `[-1, 1]^A`.
      reward: `[...]` reward `r_t`.
      next_obs: `[..., obs_dim]` the true next observation `s_{t+1}` (before any auto-reset).
      terminated: `[...]` 1.0 if `s_{t+1}` is terminal (no bootstrap); truncation is NOT terminal.
    """

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    next_obs: jax.Array
    terminated: jax.Array


def empty_buffer(capacity: int, obs_dim: int, action_dim: int) -> replay.ReplayState:
    """An empty `jaxrl.replay` buffer of `capacity` float32 `Transition`s."""
    z = jnp.zeros
    example = Transition(z((obs_dim,)), z((action_dim,)), z(()), z((obs_dim,)), z(()))
    return replay.replay_init(example, capacity)


class AgentState(NamedTuple):
    """Training state of one run (vmapped over runs by the sweep engine)."""

    actor: Any
    critic: Any
    target_critic: Any
    actor_opt: Any
    critic_opt: Any
    log_alpha: jax.Array
    alpha_opt: Any
    buffer: replay.ReplayState
    env_state: Any  # LogEnvState [num_envs]: the running and the last finished episode returns
    obs: jax.Array  # [num_envs, obs_dim]
    key: jax.Array
    env_steps: jax.Array


class Learner(NamedTuple):
    """The algorithm's pieces, built by `make_learner` (used by training, evaluation, tests)."""

    config: STACConfig
    env: Any
    env_params: Any
    obs_dim: int
    action_dim: int
    action_low: jax.Array
    action_high: jax.Array
    actor: nets.Actor
    critic: nets.Critic
    variant: Variant

    @property
    def n_critics(self) -> int:
        """Number of critics (stacked on axis 0 of the critic parameters)."""
        return self.variant.n_critics

    # ---- networks -------------------------------------------------------------------------
    def policy(self, actor_params, key, obs, rate, train: bool):
        """`obs [B, obs_dim] -> (mean [B, A], std [B, A])` of the pre-tanh Gaussian."""
        return self.actor.apply(actor_params, obs, rate, train=train, rngs={"dropout": key})

    def sample_action(self, actor_params, key, obs, rate, train: bool, eps=None):
        """`(a [B, A] in (-1, 1), log pi [B])`; dropout key and noise key split from `key`, or,
        with the standard-normal noise `eps [B, A]` given, `key` is the dropout key."""
        k_drop, k_noise = jax.random.split(key) if eps is None else (key, None)
        mean, std = self.policy(actor_params, k_drop, obs, rate, train)
        return nets.tanh_gaussian_sample(k_noise, mean, std, eps)

    def critic_out(self, critic_params, key, obs, act, rate, train: bool):
        """Raw critic outputs `[n, B, out]` (`out` = the family's `out_dim`)."""
        return nets.apply_stacked(self.critic, critic_params, key, obs, act, rate, train=train)

    def critic_heads(self, critic_params, key, obs, act, rate, train: bool):
        """`(mean [n, B], spread [n, B])` by the family's `heads`: `(mu, sigma)` of Gaussian
        critics, `(q, 0)` of plain Q critics, (quantile mean, quantiles' std) of quantile
        critics, `(mu, std)` of generalized-Gaussian critics."""
        out = self.critic_out(critic_params, key, obs, act, rate, train)
        return self.variant.family.heads(out)

    def value(self, mu, sigma, beta):
        """Value `[B]` used by target and actor: the variant's rule (`families.pessimistic_value`
        `mu - beta sigma` for STAC and GGD, paper Sec. 4.1-4.2; `families.min_value`
        `min_i mu_i` for SAC, ESTAC and dsac's actor)."""
        return self.variant.value(mu, sigma, beta)

    def q_estimate(self, mu):
        """The critic's estimate of Q used by our bias measurements (`bias_paper`,
        `bias_rollout`): `mu` (STAC), `min_i mu_i` (twins)."""
        return jnp.min(mu, axis=0)

    def q_reference(self, mu):
        """The critic's estimate of Q in the reference code's bias estimate
        (`bias_reference`): the AVERAGE of the twins, `mean_i mu_i` (`mu` for STAC;
        `rlwarehouse/algos/sac.py` `step_torch`: `0.5 * (q1 + q2)`)."""
        return jnp.mean(mu, axis=0)

    def to_env_action(self, a):
        """Rescale `a in [-1, 1]^A` to the environment's box."""
        return self.action_low + 0.5 * (a + 1.0) * (self.action_high - self.action_low)

    # ---- losses ---------------------------------------------------------------------------
    def target_and_aux(self, actor_params, target_params, key, batch: Transition, hp, alpha,
                       eps=None):
        """TD target (no gradient) and the family's target-side `aux` (None for most families;
        the target variances `[B]` for ggd). One next action, dropout on in actor and target
        (paper Eq. for `Q^TD`, Sec. 4.1): `y = r + gamma (1 - done) [stat - alpha log pi]` with
        `stat` the family's target statistic: `value(s', a')` `[B]` (`Learner.value`), or for
        quantile critics (dsac) the target quantiles `[B, N]` from the two target critics'
        sets combined by `config.dsac_target` (`"elementwise_min"`: `min(z_1j, z_2j)` per
        quantile, the reference code; `"min_mean"`: per sample, the quantiles of the critic with
        the smaller quantile mean). With the next action's noise `eps [B, A]` given, `key` is
        the pair (actor dropout key, critic dropout keys) instead of one key to split."""
        k_pi, k_q = jax.random.split(key) if eps is None else key
        a2, logp2 = self.sample_action(actor_params, k_pi, batch.next_obs, hp["actor_dropout"],
                                       True, eps)
        out = self.critic_out(target_params, k_q, batch.next_obs, a2, hp["critic_dropout"], True)
        discount = hp["gamma"] * (1.0 - batch.terminated)
        stat, aux = self.variant.family.target(out, self.variant.value, discount, self.config,
                                               hp)
        extra = (1,) * (stat.ndim - 1)  # quantile sets: [B, N]
        y = soft_target(batch.reward.reshape(batch.reward.shape + extra),
                        batch.terminated.reshape(batch.terminated.shape + extra), stat,
                        logp2.reshape(logp2.shape + extra), hp["gamma"], alpha)
        return jax.lax.stop_gradient(y), jax.lax.stop_gradient(aux)

    def target(self, actor_params, target_params, key, batch: Transition, hp, alpha):
        """The TD target `[B]` (`[B, N]` for quantile critics) of `target_and_aux`."""
        return self.target_and_aux(actor_params, target_params, key, batch, hp, alpha)[0]

    def critic_loss(self, critic_params, key, batch: Transition, y, hp, aux=None):
        """The family's loss summed over critics (batch-mean Gaussian NLL, `0.5 (q - y)^2`, the
        quantile Huber loss against target quantiles `y [B, N]`, the BIV-weighted GGD NLL with
        the target variances `aux`) and its metrics."""
        out = self.critic_out(critic_params, key, batch.obs, batch.action, hp["critic_dropout"],
                              True)
        return self.variant.family.loss(out, y, aux, hp)

    def actor_loss(self, actor_params, critic_params, key, obs, hp, alpha, eps=None):
        """`mean[alpha log pi(a|s) - value(s, a)]`, `a` reparameterised; returns (loss, log pi).
        `key`, `eps`: as in `target_and_aux`."""
        k_pi, k_q = jax.random.split(key) if eps is None else key
        a, logp = self.sample_action(actor_params, k_pi, obs, hp["actor_dropout"], True, eps)
        mu, sigma = self.critic_heads(critic_params, k_q, obs, a, hp["critic_dropout"], True)
        return jnp.mean(alpha * logp - self.value(mu, sigma, hp["beta"])), logp


def make_learner(config: Any) -> Learner:
    """Build the `Learner` (networks, env, action scaling) for a config: the critic's output
    width is the variant's family's `out_dim(config)`."""
    cfg = as_config(config)
    env, env_params = make_env(cfg.env_name)
    space = env.action_space(env_params)
    action_dim = int(np.prod(space.shape))
    obs_dim = int(np.prod(env.observation_space(env_params).shape))
    low = jnp.broadcast_to(jnp.asarray(space.low, jnp.float32), (action_dim,))
    high = jnp.broadcast_to(jnp.asarray(space.high, jnp.float32), (action_dim,))
    variant = VARIANTS[cfg.variant]
    kw = dict(activation=cfg.activation, layer_norm=cfg.layer_norm, use_dropout=cfg.use_dropout)
    actor = nets.Actor(cfg.actor_hidden, action_dim, **kw)
    critic = nets.Critic(cfg.critic_hidden, variant.family.out_dim(cfg), **kw)
    return Learner(cfg, env, env_params, obs_dim, action_dim, low, high, actor, critic, variant)


def resolve(cfg: STACConfig, action_dim: int) -> STACConfig:
    """`cfg` with `target_entropy=None` replaced by `-action_dim` (the SAC default)."""
    if cfg.target_entropy is not None:
        return cfg
    return dataclasses.replace(cfg, target_entropy=float(-action_dim))


def default_hparams(cfg: STACConfig, action_dim: int) -> dict[str, float]:
    """The run-time float hyperparameters with their defaults: every `sweepable` field of the
    config (`jaxrl.config.hparams`), `target_entropy=None` resolved to `-action_dim`."""
    return jconfig.hparams(resolve(cfg, action_dim))


def make_stac(config: Any) -> sweep.Algorithm:
    """STAC or a baseline (by `config.variant`) as a `sweep.Algorithm`: one update = one
    environment step per env + one gradient update of critic, actor and temperature (times
    `log_every`, metrics averaged), `evaluate` = `make_evaluate`."""
    L = make_learner(config)
    cfg = L.config
    env, env_params, n_envs = L.env, L.env_params, cfg.num_envs
    adam = optim.adam()  # learning rates: the run's hparams, written in per step
    per_call = int(cfg.log_every)
    alpha_rule = resolved_alpha_update(cfg)
    num_updates = (cfg.total_env_steps - cfg.warmup_steps) // (n_envs * per_call)
    train_env = VecEnv(LogWrapper(env), n_envs)  # episode returns carried by the LogWrapper

    def env_step(state: AgentState, key, a_norm):
        """Step all envs with normalised actions `a_norm [n_envs, A]`; store the transitions."""
        obs2, env_state, r, term, trunc, info = train_env.step(
            key, state.env_state, L.to_env_action(a_norm), env_params)
        r = r.astype(jnp.float32)
        tr = Transition(state.obs, a_norm, r, info["final_observation"],
                        term.astype(jnp.float32))
        buffer = replay.replay_add(state.buffer, tr)
        return state._replace(buffer=buffer, env_state=env_state, obs=obs2,
                              env_steps=state.env_steps + n_envs)

    def init(key, hp):
        k_actor, k_critic, k_env, k_warm, key = jax.random.split(key, 5)
        obs0 = jnp.zeros((1, L.obs_dim))
        act0 = jnp.zeros((1, L.action_dim))
        rate0 = jnp.zeros(())
        actor_params = L.actor.init({"params": k_actor, "dropout": k_actor}, obs0, rate0, False)
        critic_params = nets.init_stacked(L.critic, k_critic, L.n_critics, obs0, act0, rate0,
                                          False)
        obs, env_state = train_env.reset(k_env, env_params)
        log_alpha = jnp.log(hp["alpha_init"])
        state = AgentState(
            actor=actor_params, critic=critic_params, target_critic=critic_params,
            actor_opt=adam.init(actor_params), critic_opt=adam.init(critic_params),
            log_alpha=log_alpha, alpha_opt=adam.init(log_alpha),
            buffer=empty_buffer(cfg.buffer_size, L.obs_dim, L.action_dim),
            env_state=env_state, obs=obs.astype(jnp.float32),
            key=key,
            env_steps=jnp.zeros((), jnp.int32),
        )

        # WARM-UP: uniformly random actions fill the buffer (no learning).
        def warm(s, k):
            k_a, k_e = jax.random.split(k)
            a = jax.random.uniform(k_a, (n_envs, L.action_dim), minval=-1.0, maxval=1.0)
            return env_step(s, k_e, a), None

        state, _ = jax.lax.scan(warm, state, jax.random.split(k_warm, cfg.warmup_steps // n_envs))
        return state

    B, A, n_q = cfg.batch_size, L.action_dim, L.n_critics
    draws = {  # every random number of one update, from one threefry call (`jaxrl.rng`)
        "idx": (B,), "eps_act": (n_envs, A), "eps_tgt": (B, A), "eps_loss": (B, A),
        "k_env": (n_envs, 2), "k_act": rng.KEY, "k_tgt_pi": rng.KEY, "k_tgt_q": (n_q, 2),
        "k_crit": (n_q, 2), "k_loss_pi": rng.KEY, "k_loss_q": (n_q, 2),
    }

    def one_update(state: AgentState, hp):
        key, d = rng.draw(state.key, draws)
        # COLLECT: one step per env, policy with dropout on.
        a, _ = L.sample_action(state.actor, d["k_act"], state.obs, hp["actor_dropout"], True,
                               rng.normal_from_bits(d["eps_act"]))
        state = env_step(state, d["k_env"], a)
        # LEARN: critic, then actor on the updated critic, then temperature, then Polyak.
        batch = replay.replay_gather(state.buffer,
                                     rng.index_from_bits(d["idx"], state.buffer.size))
        alpha = jnp.exp(state.log_alpha)
        y, y_aux = L.target_and_aux(state.actor, state.target_critic,
                                    (d["k_tgt_pi"], d["k_tgt_q"]), batch, hp, alpha,
                                    rng.normal_from_bits(d["eps_tgt"]))
        (c_loss, aux), c_grad = jax.value_and_grad(L.critic_loss, has_aux=True)(
            state.critic, d["k_crit"], batch, y, hp, y_aux)
        critic, critic_opt = optim.step(adam, c_grad, state.critic_opt, state.critic,
                                        learning_rate=hp["critic_lr"])
        (a_loss, logp), a_grad = jax.value_and_grad(L.actor_loss, has_aux=True)(
            state.actor, critic, (d["k_loss_pi"], d["k_loss_q"]), batch.obs, hp, alpha,
            rng.normal_from_bits(d["eps_loss"]))
        actor, actor_opt = optim.step(adam, a_grad, state.actor_opt, state.actor,
                                      learning_rate=hp["actor_lr"])
        entropy = -jnp.mean(logp)
        log_alpha, alpha_opt = state.log_alpha, state.alpha_opt
        if cfg.learn_alpha:
            gap = jax.lax.stop_gradient(entropy - hp["target_entropy"])  # H_batch - H_target
            if alpha_rule == "paper":  # d/dlog_alpha of alpha (H - H_target)
                log_alpha = log_alpha - hp["alpha_lr"] * (alpha * gap)
            elif alpha_rule == "sac_rule":  # the reference SAC/DSAC: no alpha factor
                log_alpha = log_alpha - hp["alpha_lr"] * gap
            else:
                log_alpha, alpha_opt = optim.step(adam, alpha * gap, alpha_opt, log_alpha,
                                                  learning_rate=hp["alpha_lr"])
        tau = hp["tau"]
        target = jax.tree.map(lambda t, o: (1.0 - tau) * t + tau * o, state.target_critic, critic)
        state = state._replace(actor=actor, critic=critic, target_critic=target,
                               actor_opt=actor_opt, critic_opt=critic_opt, log_alpha=log_alpha,
                               alpha_opt=alpha_opt, key=key)
        metrics = {
            "train_return": jnp.mean(state.env_state.returned_episode_return),
            "critic_loss": c_loss, "actor_loss": a_loss, "alpha": jnp.exp(log_alpha),
            "entropy": entropy,
            **aux,  # the family's: q_mean, sigma_mean (ggd: shape_mean, biv_ess)
        }
        return state, metrics

    def update(state: AgentState, hp):
        if per_call == 1:
            return one_update(state, hp)
        state, ms = jax.lax.scan(lambda s, _: one_update(s, hp), state, None, length=per_call)
        return state, {k: jnp.mean(v) for k, v in ms.items()}

    return sweep.Algorithm(
        init=init, update=update, num_updates=num_updates,
        env_steps_per_update=n_envs * per_call,
        hparams=default_hparams(cfg, L.action_dim), name=cfg.variant,
        evaluate=make_evaluate(L),
    )


# ---------------------------------------------------------------------------------------------
# Evaluation (dropout off): returns, danger-disc visits, trajectories.
# ---------------------------------------------------------------------------------------------


def eval_action_log_prob(L: Learner, actor_params, key, obs) -> tuple[jax.Array, jax.Array]:
    """Evaluation action `[B, A]` in `(-1, 1)` and its log-density `[B]` under the policy
    (dropout off): the action is the mean of `eval_samples` squashed samples (the reference
    code's `exploit` mode, `rlwarehouse/algos/stac.py` `step_torch`), its log-density the
    tanh-Gaussian density at that averaged action (as the reference's `distr.log_prob(action)`)."""
    mean, std = L.policy(actor_params, key, obs, jnp.zeros(()), False)
    eps = jax.random.normal(key, (L.config.eval_samples,) + mean.shape)
    a = jnp.mean(jnp.tanh(mean[None] + std[None] * eps), axis=0)
    u = jnp.arctanh(jnp.clip(a, -1.0 + 1e-6, 1.0 - 1e-6))
    return a, nets.tanh_gaussian_log_prob(u, mean, std)


def eval_action(L: Learner, actor_params, key, obs):
    """Evaluation action `[B, A]` in `[-1, 1]`: mean of `eval_samples` squashed samples, dropout
    off (the reference code's `exploit` mode)."""
    return eval_action_log_prob(L, actor_params, key, obs)[0]


def evaluate(L: Learner, state: AgentState, key: jax.Array, num_episodes: int,
             trajectories: bool = False, gamma: float | jax.Array | None = None,
             ) -> dict[str, jax.Array]:
    """Run `num_episodes` full evaluation episodes in parallel (dropout off, mean action).

    Returns `return` (mean episode return), `danger_frac` (fraction of episodes with any step in
    the danger disc; 0 for envs without `info["danger"]`), with `gamma` given `bias_reference`
    (the reference code's overestimation estimate on these episodes, averaged over them: see
    `jaxrl.stac.bias.reference_bias_from_episode`) and, with `trajectories=True`,
    `obs [T, episodes, obs_dim]` and `alive [T, episodes]`.
    """
    env, params = L.env, L.env_params
    T = int(params.max_steps_in_episode)
    k_reset, k_run = jax.random.split(key)
    obs, env_state = VecEnv(env, num_episodes).reset(k_reset, params)
    with_value = gamma is not None

    def step(carry, k):
        obs, env_state, alive, ret, danger = carry
        k_a, k_e = jax.random.split(k)
        a, logp = eval_action_log_prob(L, state.actor, k_a, obs)
        obs2, env_state, r, term, trunc, info = VecEnv(env, num_episodes).step(
            k_e, env_state, L.to_env_action(a), params)
        ret = ret + alive * r
        if "danger" in info:
            danger = jnp.maximum(danger, alive * info["danger"])
        out = {}
        if trajectories:
            out["obs"], out["alive"] = obs, alive
        if with_value:
            mu, _ = L.critic_heads(state.critic, k_a, obs, a, jnp.zeros(()), False)
            out |= {"q": L.q_reference(mu), "logp": logp, "r": r.astype(jnp.float32),
                    "alive_v": alive}
        alive = alive * (1.0 - jnp.logical_or(term, trunc))
        return (obs2, env_state, alive, ret, danger), out

    z = jnp.zeros(num_episodes)
    (_, _, _, ret, danger), out = jax.lax.scan(
        step, (obs, env_state, jnp.ones(num_episodes), z, z), jax.random.split(k_run, T))
    res = {"return": jnp.mean(ret), "danger_frac": jnp.mean(danger)}
    if with_value:
        from jaxrl.stac import bias as bias_lib  # bias imports this module

        per_ep = jax.vmap(bias_lib.reference_bias_from_episode,
                          in_axes=(1, 1, 1, 1, None, None))(
            out["q"], out["r"], out["logp"], out["alive_v"], gamma, jnp.exp(state.log_alpha))
        res["bias_reference"] = jnp.mean(per_ep)
    if trajectories:
        res["obs"], res["alive"] = out["obs"], out["alive"]
    return res


def make_evaluate(L: Learner):
    """`evaluate(state, key, hparams) -> {name: scalar}` of one run (the `Algorithm.evaluate`
    of `make_stac`): `evaluate(L, ...)` on `eval_episodes` episodes with the first half of `key`
    (`return`, `danger_frac`, `bias_reference` at `hparams["gamma"]`), then, if
    `bias_states > 0`, `bias.measure_bias` with the second half at `hparams["gamma"]`
    (`bias_paper`, `bias_rollout`, `q_mean`, `soft_return`). Pure; jit/vmap at the call site."""
    from gymnax.environments import environment as gymnax_env

    from jaxrl.stac import bias as bias_lib  # bias imports this module

    cfg = L.config
    # The rollout bias restarts episodes from visited env states, which needs `env.get_obs`.
    restartable = type(L.env).get_obs is not gymnax_env.Environment.get_obs

    def evaluate_one(state: AgentState, key: jax.Array, hparams) -> dict[str, jax.Array]:
        if cfg.bias_states and not restartable:
            raise ValueError(f"the bias measurement restarts rollouts from visited states, which "
                             f"{cfg.env_name} does not support (no get_obs); set bias_states=0")
        k_eval, k_bias = jax.random.split(key)
        out = evaluate(L, state, k_eval, int(cfg.eval_episodes), gamma=hparams["gamma"])
        if cfg.bias_states:
            out |= bias_lib.measure_bias(L, state, k_bias, hparams["gamma"],
                                         int(cfg.bias_states), int(cfg.bias_rollouts),
                                         int(cfg.bias_horizon))
        return out

    return evaluate_one
