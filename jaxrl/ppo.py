"""Proximal Policy Optimization (Schulman et al., 2017), the reference workload of the engine.

`make_ppo(config) -> sweep.Algorithm`. One update = collect `num_steps` x `num_envs` transitions,
compute GAE, run `update_epochs` epochs of `num_minibatches` clipped-surrogate steps.

Truncation vs termination: at a time limit (`truncated`) the value of the final observation is
bootstrapped, `delta_t = r_t + gamma V(s_final) - V(s_t)`, while at a true terminal state it is
not. The GAE trace is cut at both (the next stored observation belongs to a new episode).

Float hyperparameters (`lr`, `ent_coef`, `vf_coef`, `clip_eps`, `gamma`, `gae_lambda`,
`max_grad_norm`) are read from the `hparams` dict at run time (the learning rate and the clip
norm enter the optimizer through `jaxrl.optim`, i.e. `optax.inject_hyperparams`), so sweeping
them never recompiles.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import struct

from jaxrl import config as jconfig
from jaxrl import envs, optim, sweep
from jaxrl.config import static, sweepable
from jaxrl.envs import wrappers
from jaxrl.networks import _ACTIVATIONS as ACTIVATIONS
from jaxrl.networks import ActorCritic


def _positive_ints(v: Any) -> str | None:
    ok = isinstance(v, tuple | list) and len(v) > 0 and all(int(h) >= 1 for h in v)
    return None if ok else "must be a non-empty tuple of ints >= 1"


def _unit_interval(v: Any) -> str | None:
    return None if 0.0 < float(v) <= 1.0 else "must be in (0, 1]"


def _at_least(n: int) -> Callable[[Any], str | None]:
    return lambda v: None if int(v) >= n else f"must be >= {n}"


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """PPO's configuration; defaults are the PureJaxRL CartPole configuration.

    Static fields fix the compiled program; sweepable floats are read from `hparams` at run time.
    """

    env_name: str = static("CartPole-v1", check=lambda v: None if v in envs.registered()
                           else f"must be one of {', '.join(envs.registered())}")
    num_envs: int = static(4, check=_at_least(1))
    num_steps: int = static(128, check=_at_least(1))
    total_timesteps: int = static(500_000, check=_at_least(1))
    update_epochs: int = static(4, check=_at_least(1))
    num_minibatches: int = static(4, check=_at_least(1))
    anneal_lr: bool = static(True)
    hidden: tuple[int, ...] = static((64, 64), check=_positive_ints)
    activation: str = static("tanh", check=lambda v: None if v in ACTIVATIONS
                             else f"must be one of {sorted(ACTIVATIONS)}")
    normalize_obs: bool = static(False, doc="observations normalized by statistics shared by "
                                  "all env copies (NormalizeVecObservation)")
    normalize_reward: bool = static(False, doc="rewards scaled by the running std of the "
                                    "discounted return (NormalizeVecReward)")
    reward_norm_gamma: float = static(0.99, check=_unit_interval,
                                      doc="discount of the reward normalizer's return")
    unroll: int = static(1, check=_at_least(1))  # scan unroll (speed only, same numbers)
    lr: float = sweepable(2.5e-4, lo=0.0, lo_open=True)
    ent_coef: float = sweepable(0.01, lo=0.0)
    vf_coef: float = sweepable(0.5, lo=0.0)
    clip_eps: float = sweepable(0.2, lo=0.0, lo_open=True)
    gamma: float = sweepable(0.99, lo=0.0, hi=1.0, lo_open=True)
    gae_lambda: float = sweepable(0.95, lo=0.0, hi=1.0)
    max_grad_norm: float = sweepable(0.5, lo=0.0, lo_open=True)


FLOAT_HPARAMS = jconfig.sweepable_names(PPOConfig)


def get_config() -> ml_collections.ConfigDict:
    """PPOConfig's defaults as a ConfigDict (every field a flag), plus `seed` and `num_seeds`."""
    c = jconfig.to_config_dict(PPOConfig())
    c.seed = 0
    c.num_seeds = 1
    return c


def as_config(c: Any) -> PPOConfig:
    """A PPOConfig from a PPOConfig, ConfigDict or dict (keys outside PPOConfig are ignored)."""
    if isinstance(c, PPOConfig):
        return c
    d = c.to_dict() if isinstance(c, ml_collections.ConfigDict) else dict(c)
    names = {f.name for f in dataclasses.fields(PPOConfig)}
    return jconfig.from_config(PPOConfig, {k: v for k, v in d.items() if k in names})


def validate_config(c: Any, grid: Any = None, prefix: str = "config") -> PPOConfig:
    """Raise a one-line ValueError naming the first bad field (before anything compiles);
    swept values in `grid` are checked against the same bounds. Returns the PPOConfig."""
    cfg = as_config(c)
    jconfig.validate(cfg, grid, prefix=prefix)
    batch = cfg.num_envs * cfg.num_steps
    if batch % cfg.num_minibatches:
        raise ValueError(
            f"{prefix}.num_minibatches must divide num_envs*num_steps={batch}, "
            f"got {cfg.num_minibatches!r}"
        )
    if cfg.total_timesteps < batch:
        raise ValueError(f"{prefix}.total_timesteps must be >= num_envs*num_steps={batch}, "
                         f"got {cfg.total_timesteps!r}")
    return cfg


class Transition(NamedTuple):
    """One rollout step for all envs: leaves `[num_envs, ...]` (stacked to `[T, num_envs, ...]`)."""

    obs: jax.Array
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    final_obs: jax.Array


@struct.dataclass
class PPOState:
    params: Any
    opt_state: Any
    env_state: Any
    obs: jax.Array
    key: jax.Array
    update: jax.Array
    last_return: jax.Array
    last_length: jax.Array


def gae(
    rewards: jax.Array,
    values: jax.Array,
    next_values: jax.Array,
    final_values: jax.Array,
    terminated: jax.Array,
    truncated: jax.Array,
    gamma: jax.Array | float,
    lam: jax.Array | float,
    unroll: int = 1,
) -> tuple[jax.Array, jax.Array]:
    """Generalized advantage estimation with truncation bootstrapping.

    Args:
      rewards, values, final_values, terminated, truncated: `[T, ...]`. `values[t] = V(s_t)`,
        `final_values[t] = V(final observation of step t)` (used only where `truncated[t]`).
      next_values: `[...]`, V of the observation after the last step.
      gamma, lam: discount and GAE lambda.

    Returns:
      `(advantages, returns)`, both `[T, ...]`, `returns = advantages + values`.

    Where `done_t = terminated_t or truncated_t` the next stored value belongs to a new episode,
    so `delta_t = r_t + gamma * truncated_t * (1 - terminated_t) * V(final_t) - V(s_t)` and the
    trace is cut; otherwise `delta_t = r_t + gamma V(s_{t+1}) - V(s_t)`.
    """
    chex.assert_equal_shape([rewards, values, final_values, terminated, truncated])
    term = terminated.astype(values.dtype)
    trunc = truncated.astype(values.dtype) * (1.0 - term)
    done = jnp.maximum(term, trunc)
    v_next = jnp.concatenate([values[1:], next_values[None]], axis=0)
    boot = (1.0 - done) * v_next + trunc * final_values
    deltas = rewards + gamma * boot - values

    def body(adv, x):
        delta, d = x
        adv = delta + gamma * lam * (1.0 - d) * adv
        return adv, adv

    _, adv = jax.lax.scan(
        body, jnp.zeros_like(next_values), (deltas, done), reverse=True, unroll=unroll
    )
    return adv, adv + values


def ppo_loss(
    params: Any,
    apply_fn: Any,
    batch: Transition,
    advantages: jax.Array,
    targets: jax.Array,
    hp: sweep.Hparams,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Clipped surrogate + clipped value loss - entropy bonus on a minibatch `[B, ...]`."""
    pi, value = apply_fn(params, batch.obs)
    log_prob = pi.log_prob(batch.action)
    v_clipped = batch.value + jnp.clip(value - batch.value, -hp["clip_eps"], hp["clip_eps"])
    value_loss = 0.5 * jnp.maximum((value - targets) ** 2, (v_clipped - targets) ** 2).mean()
    log_ratio = log_prob - batch.log_prob
    ratio = jnp.exp(log_ratio)
    adv = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    surrogate = jnp.minimum(
        ratio * adv, jnp.clip(ratio, 1.0 - hp["clip_eps"], 1.0 + hp["clip_eps"]) * adv
    )
    actor_loss = -surrogate.mean()
    entropy = pi.entropy().mean()
    total = actor_loss + hp["vf_coef"] * value_loss - hp["ent_coef"] * entropy
    aux = {
        "value_loss": value_loss,
        "actor_loss": actor_loss,
        "entropy": entropy,
        "approx_kl": ((ratio - 1.0) - log_ratio).mean(),
        "clip_frac": (jnp.abs(ratio - 1.0) > hp["clip_eps"]).mean(),
    }
    return total, aux


def make_optimizer() -> optax.GradientTransformation:
    """Adam (`eps = 1e-5`) behind global-norm clipping, both hyperparameters injectable at run
    time (`jaxrl.optim.clipped_adam`)."""
    return optim.clipped_adam(eps=1e-5)


def set_opt_hparams(opt_state: Any, lr: jax.Array, max_grad_norm: jax.Array) -> Any:
    """Write the run-time learning rate and clip norm into a `make_optimizer` state."""
    return optim.set_hparams(opt_state, learning_rate=lr, max_grad_norm=max_grad_norm)


def rollout(
    env: Any,
    env_params: Any,
    act: Callable[[jax.Array, jax.Array], tuple[jax.Array, jax.Array, jax.Array]],
    env_state: Any,
    obs: jax.Array,
    key: jax.Array,
    num_steps: int,
    unroll: int = 1,
) -> tuple[tuple[Any, jax.Array, jax.Array], Transition,
           tuple[jax.Array, jax.Array, jax.Array]]:
    """Collect `num_steps` steps of the vectorized `env` (a `VecEnv` over a `LogWrapper`).

    Args:
      act: `act(obs [E, d], key) -> (action [E, ...], log_prob [E], value [E])`, the acting
        policy (PPO: the target policy; PROPS: its behavior policy, with log_prob/value unused).
      env_state, obs, key: the carried environment state, its observation `[E, d]`, the key.
      num_steps: steps per environment copy (static).

    Returns:
      `((env_state, obs, key), traj, (done, ep_return, ep_length))`: the carry after the last
      step, the `Transition` stacked to `[T, E, ...]`, and per step `[T, E]` the LogWrapper's
      episode-end flag and the return and length of the episode that ended there.
    Each step splits `key` into `(key, k_act, k_step)`.
    """

    def env_step(carry, _):
        env_state, obs, key = carry
        key, k_act, k_step = jax.random.split(key, 3)
        action, log_prob, value = act(obs, k_act)
        next_obs, env_state, reward, term, trunc, info = env.step(
            k_step, env_state, action, env_params
        )
        tr = Transition(obs, action, log_prob, value, reward.astype(jnp.float32), term, trunc,
                        info["final_observation"])
        ep = (info["returned_episode"], info["returned_episode_returns"],
              info["returned_episode_lengths"])
        return (env_state, next_obs, key), (tr, ep)

    carry, (traj, ep) = jax.lax.scan(env_step, (env_state, obs, key), None, num_steps,
                                     unroll=unroll)
    return carry, traj, ep


def update_epochs(
    params: Any,
    opt_state: Any,
    data: tuple[Transition, jax.Array, jax.Array],
    key: jax.Array,
    hp: sweep.Hparams,
    *,
    apply_fn: Callable[[Any, jax.Array], Any],
    tx: optax.GradientTransformation,
    epochs: int,
    num_minibatches: int,
    valid: jax.Array | None = None,
    kl_stop: bool = False,
) -> tuple[Any, Any, dict[str, jax.Array], jax.Array]:
    """`epochs` passes of `num_minibatches` `ppo_loss` steps over `data` (Schulman et al. 2017).

    Args:
      data: `(transitions, advantages, targets)`, leaves `[N, ...]` (flattened over time and
        envs); `N` divisible by `num_minibatches`.
      key: split into one permutation key per epoch.
      apply_fn: `apply_fn(params, obs) -> (distribution, value)`.
      valid: optional `[N]` bool (PROPS's partly filled buffer): valid rows are put first in
        every permutation and a minibatch holding an invalid row is skipped.
      kl_stop: stop the update (this and all later minibatch steps skipped) once a valid
        minibatch's pre-step `approx_kl` exceeds `hp["target_kl"]` (PROPS's PPO update).

    Returns:
      `(params, opt_state, aux, took)`: `aux` the `ppo_loss` diagnostics and `took` (1.0 where
      the step was applied) per minibatch, `[epochs, num_minibatches]`. Without `valid` and
      `kl_stop` every step is applied.
    """
    n = jax.tree.leaves(data)[0].shape[0]
    mb_size = n // num_minibatches
    masked = valid is not None or kl_stop
    rows = jnp.ones((n,), bool) if valid is None else valid

    def epoch(carry, k):
        perm = jax.random.permutation(k, n)
        if valid is not None:
            perm = perm[jnp.argsort(~valid[perm], stable=True)]  # filled rows first
        mbs = jax.tree.map(lambda x: x[perm].reshape((num_minibatches, mb_size) + x.shape[1:]),
                           (data, rows))

        def minibatch(c, mb):
            p, opt, stopped = c
            (tr, adv, tgt), ok = mb
            grads, aux = jax.grad(ppo_loss, has_aux=True)(p, apply_fn, tr, adv, tgt, hp)
            updates, new_opt = tx.update(grads, opt, p)
            new_p = optax.apply_updates(p, updates)
            if not masked:
                return (new_p, new_opt, stopped), (aux, jnp.ones((), jnp.float32))
            ok = ok.all()
            if kl_stop:
                stopped = stopped | (ok & (aux["approx_kl"] > hp["target_kl"]))
            take = ok & ~stopped
            p = jax.tree.map(lambda x, y: jnp.where(take, x, y), new_p, p)
            opt = jax.tree.map(lambda x, y: jnp.where(take, x, y), new_opt, opt)
            return (p, opt, stopped), (aux, take.astype(jnp.float32))

        return jax.lax.scan(minibatch, carry, mbs)

    (params, opt_state, _), (aux, took) = jax.lax.scan(
        epoch, (params, opt_state, jnp.array(False)), jax.random.split(key, epochs))
    return params, opt_state, aux, took


def make_env(config: Any):
    """`(env, env_params, discrete)`: `config.env_name` wrapped (LogWrapper, ClipAction for
    continuous actions, VecEnv of `num_envs`, then the shared observation / reward
    normalizers when `normalize_obs` / `normalize_reward`)."""
    env, params = envs.make(config.env_name)
    discrete = envs.is_discrete(env, params)
    env = envs.LogWrapper(env)
    if not discrete:
        env = envs.ClipAction(env)
    env = envs.VecEnv(env, config.num_envs)
    if config.normalize_obs:
        env = wrappers.NormalizeVecObservation(env)
    if getattr(config, "normalize_reward", False):
        env = wrappers.NormalizeVecReward(env, config.reward_norm_gamma)
    return env, params, discrete


def make_ppo(config: PPOConfig | ml_collections.ConfigDict) -> sweep.Algorithm:
    """PPO as a `sweep.Algorithm` (see module docstring); `hparams` from the sweepable marks."""
    config = validate_config(config)
    env, env_params, discrete = make_env(config)
    n_act = envs.action_dim(env, env_params)
    network = ActorCritic(n_act, discrete, tuple(config.hidden), config.activation)
    tx = make_optimizer()
    num_envs, num_steps = int(config.num_envs), int(config.num_steps)
    batch_size = num_envs * num_steps
    num_updates = int(config.total_timesteps) // batch_size
    epochs, n_mb = int(config.update_epochs), int(config.num_minibatches)
    unroll = int(config.unroll)
    anneal = bool(config.anneal_lr)

    def init(key: jax.Array, hp: sweep.Hparams) -> PPOState:
        k_net, k_env, k_run = jax.random.split(key, 3)
        obs, env_state = env.reset(k_env, env_params)
        params = network.init(k_net, obs[:1])
        opt_state = tx.init(params)
        z = jnp.zeros((), jnp.float32)
        return PPOState(params, opt_state, env_state, obs, k_run, jnp.zeros((), jnp.int32), z, z)

    def update(state: PPOState, hp: sweep.Hparams) -> tuple[PPOState, sweep.Metrics]:
        # COLLECT TRAJECTORIES
        def act(obs, k):
            pi, value = network.apply(state.params, obs)
            action = pi.sample(seed=k)
            return action, pi.log_prob(action), value

        (env_state, obs, key), traj, (ep_done, ep_ret, ep_len) = rollout(
            env, env_params, act, state.env_state, state.obs, state.key, num_steps, unroll)

        # ADVANTAGES (bootstrap on truncation with V(final observation))
        _, next_value = network.apply(state.params, obs)
        _, final_values = network.apply(state.params, traj.final_obs)
        advantages, targets = gae(traj.reward, traj.value, next_value, final_values,
                                  traj.terminated, traj.truncated, hp["gamma"], hp["gae_lambda"],
                                  unroll=unroll)

        # UPDATE NETWORK
        lr = hp["lr"]
        if anneal:
            lr = lr * (1.0 - state.update.astype(jnp.float32) / num_updates)
        opt_state = set_opt_hparams(state.opt_state, lr, hp["max_grad_norm"])
        flat = jax.tree.map(lambda x: x.reshape((batch_size,) + x.shape[2:]),
                            (traj, advantages, targets))
        key, k_epochs = jax.random.split(key)
        params, opt_state, aux, _ = update_epochs(
            state.params, opt_state, flat, k_epochs, hp, apply_fn=network.apply, tx=tx,
            epochs=epochs, num_minibatches=n_mb)

        # METRICS (reduced here: per-update scalars only)
        n_done = ep_done.sum()
        mean_ret = jnp.where(n_done > 0, (ep_ret * ep_done).sum() / jnp.maximum(n_done, 1),
                             state.last_return)
        mean_len = jnp.where(n_done > 0, (ep_len * ep_done).sum() / jnp.maximum(n_done, 1),
                             state.last_length)
        metrics = {"return": mean_ret, "episode_length": mean_len,
                   "episodes": n_done.astype(jnp.float32)}
        metrics |= {k: v.mean() for k, v in aux.items()}
        new_state = PPOState(params, opt_state, env_state, obs, key, state.update + 1,
                             mean_ret, mean_len)
        return new_state, metrics

    return sweep.Algorithm(
        init=init,
        update=update,
        num_updates=num_updates,
        env_steps_per_update=batch_size,
        hparams=jconfig.hparams(config),
        name=f"ppo_{config.env_name}",
    )
