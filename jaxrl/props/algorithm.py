"""PROPS: Proximal Robust On-Policy Sampling (Corrado & Hanna, "On-Policy Policy Gradient
Reinforcement Learning Without On-Policy Sampling", arXiv 2311.08290).

On-policy sampling only matches the policy in expectation; a finite batch over- and under-samples
actions ("sampling error", `KL(pi_D || pi_theta)`, see `jaxrl.props.sampling_error`). PROPS
collects data with a *behavior* policy `pi_phi` that is re-fitted every `m` environment steps so
that actions the data under-represents become likelier, and keeps the last `b` target batches in a
FIFO buffer, so the aggregate buffer is closer to on-policy than i.i.d. sampling would make it.

One `update` of the returned `sweep.Algorithm` is one target (PPO) update cycle:

    for k in 0 .. n/m - 1:                       # n = num_steps, m = props_num_steps (per env)
        phi <- theta                             # re-copy (Adam state of phi persists)
        phi <- behavior update on buffer[m:]     # all but the m oldest steps (evicted next)
        collect m steps with pi_phi, push them into the FIFO buffer (evicting the oldest m)
    theta <- PPO update on the whole buffer      # log-probs and GAE recomputed under theta

so the behavior update after the target update (at `k = 0` of the next cycle) is taken relative
to the new `theta`, as in the paper.

Behavior update (PROPS, Sec. 5): minimise over `phi`, with `r = pi_phi(a|s) / pi_theta(a|s)`,

    L(phi) = mean_D max(r, clip(r, 1 - eps_P, 1 + eps_P)) + lambda * KL(pi_theta || pi_phi),

i.e. PPO's clipped surrogate with the advantage fixed at -1: at `phi = theta` its gradient is the
ROS direction `mean_D grad log pi(a|s)` (for a tabular softmax `n(s)/|D| (pi_D - pi)`), and once
an action's ratio drops below `1 - eps_P` its gradient is zero. The KL is analytic over the whole
action distribution (`jaxrl.action_dists`). Before each minibatch step `mean((r - 1) - log r)`
estimates `KL(pi_theta || pi_phi)`; once it exceeds `delta_P` (`props_target_kl`) the round stops
(a mask carried through `lax.scan`).

Settings of the same code:
* PPO-Buffer: `behavior="none"` (`phi = theta`, no behavior updates), or equivalently
  `props_lr = 0` (bit-identical, tested).
* PPO: PPO-Buffer with `buffer_batches = 1`.
* ROS (Zhong et al., 2022): `ROS_HPARAMS` (no clipping, no regulariser, no early stop) with
  `props_update_epochs = props_num_minibatches = 1`.

PPO on the buffer: `log pi_theta_old` and values are recomputed for every buffer sample under
the current `theta` (no behavior-policy correction) and GAE runs over the whole time-ordered
buffer with the current critic (truncation bootstrapped from `final_obs`, see `ppo.gae`). Minibatch
size is `b * n / num_minibatches` (as the authors); before the buffer is full only the filled
minibatches are used. The PPO KL early stop is checked on each minibatch before its step.

Sampling error (metrics, every update, with `se_steps > 0`): `sampling_error` is
`KL(pi_D || pi_theta)` of the buffer the target update uses (`policy_sampling_error`).
`ref_sampling_error` (`se_reference`) is the paper's on-policy reference, the authors'
`compute_se_ref`: the state keeps the actor parameters of the last `b` targets (slot `i` = the
target in charge while buffer batch `i` was collected, i.e. `theta` before its update);
`reference_rollouts` re-simulates `n` on-policy steps per env copy with each of them in turn,
and the same estimator measures that data against the current `theta`. Deviations from the
authors' code: the re-simulation starts from the current environment state *and* its current
observation (theirs copies the current environments but feeds the observation stored with the
oldest target as the first one), its key is derived from the rollout stream without advancing
it (so runs with and without the reference are bit-identical otherwise), and observation
statistics, if normalised, keep updating inside the discarded re-simulation (theirs freezes them).

Configuration: `PROPSConfig` (the `jaxrl.config` idiom: static fields fix the program, every
`sweepable` float is read from `hparams` at run time with its bounds checked), so a sweep over
learning rates, clip coefficients, KL coefficient/threshold, ... is one compiled program.
`get_config()` gives its defaults as a ConfigDict; `make_props` accepts either.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import struct

from jaxrl import config as jconfig
from jaxrl import envs, ppo, sweep
from jaxrl.action_dists import Categorical, DiagGaussian
from jaxrl.config import static, sweepable
from jaxrl.networks import _ACTIVATIONS as ACTIVATIONS
from jaxrl.networks import MLP, ActorCritic
from jaxrl.props import sampling_error as se

BEHAVIORS = ("props", "none")


def _at_least(n: int) -> Callable[[Any], str | None]:
    return lambda v: None if int(v) == v and int(v) >= n else f"must be an integer >= {n}"


def _one_of(options: tuple[str, ...]) -> Callable[[Any], str | None]:
    return lambda v: None if v in options else f"must be one of {options}"


def _positive_ints(v: Any) -> str | None:
    ok = isinstance(v, tuple | list) and len(v) > 0 and all(int(h) >= 1 for h in v)
    return None if ok else "must be a non-empty tuple of ints >= 1"


def _env_name(v: Any) -> str | None:
    return None if v in envs.registered() else f"must be one of {', '.join(envs.registered())}"


@dataclasses.dataclass(frozen=True)
class PROPSConfig:
    """PROPS's configuration; defaults are the paper's PPO and PROPS settings on CartPole-v1.

    Static fields fix the compiled program; sweepable floats are read from `hparams` at run
    time (`Algorithm.hparams = jaxrl.config.hparams(cfg)`), so a sweep over learning rates, clip
    coefficients, KL coefficient/threshold, ... is one compiled program.
    """

    env_name: str = static("CartPole-v1", check=_env_name)
    behavior: str = static("props", check=_one_of(BEHAVIORS),
                           doc='"props" (PROPS / ROS) or "none" (PPO-Buffer / PPO)')
    num_envs: int = static(1, check=_at_least(1))
    num_steps: int = static(1024, check=_at_least(1), doc="n: target batch, per env")
    props_num_steps: int = static(256, check=_at_least(1),
                                  doc="m: steps between behavior updates, per env")
    buffer_batches: int = static(2, check=_at_least(1), doc="b")
    total_timesteps: int = static(100_000, check=_at_least(1))
    update_epochs: int = static(10, check=_at_least(1))
    num_minibatches: int = static(32, check=_at_least(1))
    props_update_epochs: int = static(16, check=_at_least(1))
    props_num_minibatches: int = static(16, check=_at_least(1))
    anneal_lr: bool = static(True)
    props_anneal_lr: bool = static(False)
    se_steps: int = static(30, check=_at_least(0),
                           doc="most Newton steps of the sampling-error MLE fit (discrete; a "
                           "Gaussian head has a closed form); 0: not measured")
    se_reference: bool = static(True, doc="also measure the on-policy reference "
                                "`ref_sampling_error` (re-simulated from the last b targets; "
                                "needs se_steps > 0)")
    hidden: tuple[int, ...] = static((64, 64), check=_positive_ints)
    activation: str = static("tanh", check=_one_of(tuple(sorted(ACTIVATIONS))))
    normalize_obs: bool = static(False, doc="shared observation statistics (ppo.make_env)")
    normalize_reward: bool = static(False, doc="reward scaling (ppo.make_env)")
    reward_norm_gamma: float = static(0.99, check=ppo._unit_interval)
    # Scan unroll of the rollout and GAE. 1 compiles much faster (Acrobot `:quick`, 2 programs:
    # 56 s vs 82 s for compile + run at 8; the full config's PROPS program took 4 min to compile
    # at 8 under load) and runs no slower on CPU; the same default as `ppo.PPOConfig`.
    unroll: int = static(1, check=_at_least(1))
    lr: float = sweepable(1e-3, lo=0.0, doc="target lr (0: fixed target)")
    ent_coef: float = sweepable(0.01, lo=0.0)
    vf_coef: float = sweepable(0.5, lo=0.0)
    clip_eps: float = sweepable(0.2, lo=0.0, lo_open=True)
    gamma: float = sweepable(0.99, lo=0.0, hi=1.0, lo_open=True)
    gae_lambda: float = sweepable(0.95, lo=0.0, hi=1.0)
    max_grad_norm: float = sweepable(0.5, lo=0.0, lo_open=True)
    target_kl: float = sweepable(0.03, lo=0.0, lo_open=True)
    props_lr: float = sweepable(1e-3, lo=0.0, doc="behavior lr (0: PPO-Buffer)")
    props_clip_eps: float = sweepable(0.3, lo=0.0, lo_open=True)
    props_kl_coef: float = sweepable(0.1, lo=0.0)
    props_target_kl: float = sweepable(0.05, lo=0.0)
    props_max_grad_norm: float = sweepable(0.5, lo=0.0, lo_open=True)


# The sweepable floats, derived from the marks (kept for callers of the old name).
FLOAT_HPARAMS = jconfig.sweepable_names(PROPSConfig)

# ROS as a setting of PROPS: unclipped, unregularised, no early stop (use with one epoch and one
# minibatch per behavior update).
ROS_HPARAMS = {"props_clip_eps": 1e6, "props_kl_coef": 0.0, "props_target_kl": 1e6}


def get_config() -> ml_collections.ConfigDict:
    """`PROPSConfig()`'s defaults as a ConfigDict (every field a flag; `make_props` accepts it)."""
    return jconfig.to_config_dict(PROPSConfig())


def as_config(c: Any) -> PROPSConfig:
    """A PROPSConfig from a PROPSConfig, ConfigDict or dict (unknown keys are refused)."""
    return jconfig.from_config(PROPSConfig, c)


def validate_config(c: Any, grid: Mapping[str, Any] | None = None, prefix: str = "config",
                    sweep_prefix: str = "config.sweep") -> PROPSConfig:
    """Raise a one-line ValueError naming the first bad field (before anything compiles): the
    marks' checks and bounds for every field and every swept value in `grid`, then the
    size constraints between fields. Returns the PROPSConfig."""
    cfg = as_config(c)
    jconfig.validate(cfg, grid, prefix=prefix, sweep_prefix=sweep_prefix)
    for name, values in (grid or {}).items():
        if len(set(map(float, values))) != len(values):
            raise ValueError(f"{sweep_prefix}.{name} repeats a value, got {tuple(values)!r}")

    def need(ok: bool, field: str, what: str) -> None:
        if not ok:
            raise ValueError(f"{prefix}.{field} {what}, got {getattr(cfg, field)!r}")

    need(cfg.num_steps % cfg.props_num_steps == 0, "props_num_steps", "must divide num_steps")
    b, n = cfg.buffer_batches, cfg.num_steps * cfg.num_envs
    need((b * n) % cfg.num_minibatches == 0, "num_minibatches",
         f"must divide buffer size b*n={b * n}")
    need(cfg.num_minibatches % b == 0, "num_minibatches",
         f"must be a multiple of buffer_batches={b}")
    beh = (b * cfg.num_steps - cfg.props_num_steps) * cfg.num_envs
    if cfg.behavior == "props":
        need(beh >= 1, "props_num_steps", "leaves no behavior data (b*num_steps - m must be > 0)")
        need(beh % cfg.props_num_minibatches == 0, "props_num_minibatches",
             f"must divide the behavior data size (b*n - m*num_envs)={beh}")
    need(cfg.total_timesteps >= n, "total_timesteps", f"must be >= num_envs*num_steps={n}")
    return cfg


# ---------------------------------------------------------------------------------------------
# The behavior-policy update (pure, generic in the policy: also used by the bandit).
# ---------------------------------------------------------------------------------------------


def props_loss(
    phi: Any,
    apply_pi: Callable[[Any, jax.Array], Categorical | DiagGaussian],
    obs: jax.Array,
    actions: jax.Array,
    pi_theta: Categorical | DiagGaussian,
    mask: jax.Array,
    hp: sweep.Hparams,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """PROPS behavior loss on a minibatch `[B, ...]` (see module docstring).

    Args:
      phi: behavior parameters (differentiated).
      apply_pi: `apply_pi(params, obs) -> distribution` with batch shape `[B]`.
      obs, actions: `[B, ...]`, actions collected by earlier behavior policies.
      pi_theta: the target policy's distribution on `obs` (batch `[B]`, held fixed).
      mask: `[B]` bool, valid rows (padded buffers).
      hp: needs `props_clip_eps`, `props_kl_coef`.

    Returns:
      `(loss, aux)`, aux has `approx_kl` (`mean((r-1) - log r)`), `kl` (analytic
      `KL(pi_theta || pi_phi)`), `clip_frac`.
    """
    pi_phi = apply_pi(phi, obs)
    log_ratio = pi_phi.log_prob(actions) - jax.lax.stop_gradient(pi_theta.log_prob(actions))
    ratio = jnp.exp(log_ratio)
    eps = hp["props_clip_eps"]
    surrogate = jnp.maximum(ratio, jnp.clip(ratio, 1.0 - eps, 1.0 + eps))
    kl = pi_theta.kl_divergence(pi_phi)
    loss = se.masked_mean(surrogate, mask) + hp["props_kl_coef"] * se.masked_mean(kl, mask)
    aux = {
        "approx_kl": se.approx_kl(log_ratio, mask),
        "kl": se.masked_mean(kl, mask),
        "clip_frac": se.masked_mean((jnp.abs(ratio - 1.0) > eps).astype(jnp.float32), mask),
    }
    return loss, aux


def behavior_update(
    theta: Any,
    opt_state: Any,
    obs: jax.Array,
    actions: jax.Array,
    mask: jax.Array,
    key: jax.Array,
    hp: sweep.Hparams,
    *,
    apply_pi: Callable[[Any, jax.Array], Categorical | DiagGaussian],
    tx: optax.GradientTransformation,
    epochs: int,
    num_minibatches: int,
    head: tuple[Callable[[Any, jax.Array], jax.Array],
                Callable[[Any, jax.Array], Categorical | DiagGaussian]] | None = None,
) -> tuple[Any, Any, dict[str, jax.Array]]:
    """One PROPS behavior update: `phi <- theta`, then `epochs x num_minibatches` masked steps.

    Args:
      theta: target parameters (copied into `phi`; never changed).
      opt_state: behavior optimizer state (persists across re-copies); its `learning_rate` and
        `max_grad_norm` hyperparameters must be set by the caller.
      obs, actions, mask: behavior data `[N, ...]`, `mask: [N]` bool (N divisible by
        `num_minibatches`).
      key: permutation key.
      hp: `props_clip_eps`, `props_kl_coef`, `props_target_kl`.
      head: optional `(out_fn, dist_fn)` with `apply_pi(p, o) == dist_fn(p, out_fn(p, o))` and
        `out_fn(p, o): [N, ...]` batched over rows; when given, `theta`'s outputs on all `N` rows
        are computed once per call instead of once per minibatch step (same numbers, faster).

    Returns:
      `(phi, opt_state, metrics)`; metrics: `props_steps` (gradient steps taken), `props_kl`
      (analytic `KL(pi_theta || pi_phi)` and `props_clip_frac` on the last minibatch evaluated:
      the one that triggered the early stop, else the last one, before its step).

    A step is skipped when its minibatch has no valid row; once a minibatch's pre-step estimate
    `mean((r-1) - log r)` exceeds `props_target_kl`, this and all later steps are skipped.
    """
    n = obs.shape[0]
    mb = n // num_minibatches
    zero = jnp.zeros((), jnp.float32)

    if head is None:
        theta_out = jnp.zeros((n,), jnp.float32)  # unused placeholder

        def theta_dist(o, _):
            return apply_pi(theta, o)
    else:
        out_fn, dist_fn = head
        theta_out = jax.lax.stop_gradient(out_fn(theta, obs))

        def theta_dist(_, out):
            return dist_fn(theta, out)

    def minibatch(carry, batch):
        phi, opt, stopped, steps, last = carry
        o, a, m, out = batch
        pi_theta = theta_dist(o, out)
        grads, aux = jax.grad(props_loss, has_aux=True)(phi, apply_pi, o, a, pi_theta, m, hp)
        done_before = stopped
        stopped = stopped | ((m.sum() > 0) & (aux["approx_kl"] > hp["props_target_kl"]))
        take = (~stopped) & (m.sum() > 0)
        updates, new_opt = tx.update(grads, opt, phi)
        new_phi = optax.apply_updates(phi, updates)
        phi = jax.tree.map(lambda x, y: jnp.where(take, x, y), new_phi, phi)
        opt = jax.tree.map(lambda x, y: jnp.where(take, x, y), new_opt, opt)
        seen = (m.sum() > 0) & ~done_before
        last = jax.tree.map(lambda x, y: jnp.where(seen, x, y), (aux["kl"], aux["clip_frac"]), last)
        return (phi, opt, stopped, steps + take.astype(jnp.float32), last), None

    def epoch(carry, k):
        perm = jax.random.permutation(k, n)
        data = jax.tree.map(lambda x: x[perm].reshape((num_minibatches, mb) + x.shape[1:]),
                            (obs, actions, mask, theta_out))
        return jax.lax.scan(minibatch, carry, data)

    init = (theta, opt_state, jnp.array(False), zero, (zero, zero))
    (phi, opt_state, _, steps, (kl, clip_frac)), _ = jax.lax.scan(
        epoch, init, jax.random.split(key, epochs)
    )
    return phi, opt_state, {"props_steps": steps, "props_kl": kl, "props_clip_frac": clip_frac}


set_opt_hparams = ppo.set_opt_hparams


# ---------------------------------------------------------------------------------------------
# A K-armed bandit: i.i.d. vs PROPS sampling (ground truth: E KL(pi_D || pi) ~ (K-1)/(2N)).
# ---------------------------------------------------------------------------------------------


def bandit_actions(
    key: jax.Array,
    logits: jax.Array,
    num_samples: int,
    hp: sweep.Hparams,
    *,
    behavior: bool = True,
    samples_per_update: int = 1,
    epochs: int = 16,
    num_minibatches: int = 1,
) -> jax.Array:
    """Draw `num_samples` arms for the fixed policy `softmax(logits)` (`[K]`).

    With `behavior=False` the arms are i.i.d. from the policy; with `behavior=True` a PROPS
    behavior update on all arms drawn so far precedes every `samples_per_update` draws, and the
    draws come from the behavior policy. Returns `[num_samples]` int32 arms.
    """
    if num_samples % samples_per_update:
        raise ValueError(f"samples_per_update must divide num_samples={num_samples}, "
                         f"got {samples_per_update}")
    k_draw, k_beh = jax.random.split(key)
    if not behavior:
        return jax.random.categorical(k_draw, logits, shape=(num_samples,)).astype(jnp.int32)

    def apply_pi(p, o):
        return Categorical(jnp.broadcast_to(p, o.shape[:1] + p.shape))

    tx = ppo.make_optimizer()
    opt = set_opt_hparams(tx.init(logits), hp["props_lr"], hp["props_max_grad_norm"])
    obs = jnp.zeros((num_samples, 1))
    rounds = num_samples // samples_per_update

    def round_(carry, i):
        opt, acts, filled, kd, kb = carry
        kd, k_a = jax.random.split(kd)
        kb, k_u = jax.random.split(kb)
        phi, opt, _ = behavior_update(logits, opt, obs, acts, filled, k_u, hp, apply_pi=apply_pi,
                                      tx=tx, epochs=epochs, num_minibatches=num_minibatches)
        new = jax.random.categorical(k_a, phi, shape=(samples_per_update,)).astype(jnp.int32)
        idx = i * samples_per_update + jnp.arange(samples_per_update)
        return (opt, acts.at[idx].set(new), filled.at[idx].set(True), kd, kb), None

    init = (opt, jnp.zeros(num_samples, jnp.int32), jnp.zeros(num_samples, bool), k_draw, k_beh)
    (_, acts, _, _, _), _ = jax.lax.scan(round_, init, jnp.arange(rounds))
    return acts


# ---------------------------------------------------------------------------------------------
# Sampling error of a buffer for an ActorCritic policy (fitted MLE of the actor's head).
# ---------------------------------------------------------------------------------------------


def policy_sampling_error(
    params: Any, obs: jax.Array, actions: jax.Array, mask: jax.Array, *, hidden: tuple[int, ...],
    activation: str, discrete: bool, max_iter: int, tol: float = 1e-5,
) -> tuple[jax.Array, jax.Array]:
    """`KL(pi_D || pi_theta)` of the data `(obs [N, d], actions [N, ...])` for an `ActorCritic`
    policy: the converged MLE of the actor's head on `theta`'s frozen features (softmax: damped
    Newton, at most `max_iter` steps; Gaussian: closed form). Returns `(se, grad_norm)`, the
    final gradient norm of the softmax fit (0 for the closed form)."""
    actor = params["params"]["actor"]
    n_hidden = len(hidden)
    feat_params = {f"Dense_{i}": actor[f"Dense_{i}"] for i in range(n_hidden)}
    feats = MLP(tuple(hidden), None, activation).apply({"params": feat_params}, obs)
    head = actor[f"Dense_{n_hidden}"]
    if discrete:
        val, gnorm, _ = se.softmax_sampling_error(head["kernel"], head["bias"], feats, actions,
                                                  mask, max_iter=max_iter, tol=tol)
        return val, gnorm
    val = se.gaussian_sampling_error(head["kernel"], head["bias"], params["params"]["log_std"],
                                     feats, actions, mask)
    return val, jnp.zeros((), jnp.float32)


# ---------------------------------------------------------------------------------------------
# The algorithm.
# ---------------------------------------------------------------------------------------------


class Buffer(NamedTuple):
    """FIFO buffer of the last `b` target batches, time-major: leaves `[b * num_steps, E, ...]`
    (oldest first); `valid: [b * num_steps]` marks filled time slots."""

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    final_obs: jax.Array
    valid: jax.Array


@struct.dataclass
class PROPSState:
    params: Any  # theta (target)
    opt_state: Any
    bopt_state: Any  # behavior optimizer (Adam over the actor's parameters only)
    buffer: Buffer
    env_state: Any
    obs: jax.Array
    key: jax.Array  # rollout and PPO-update stream (identical use to ppo.make_ppo)
    bkey: jax.Array  # behavior-update stream
    targets: Any  # actor params of the last b targets, stacked [b, ...] (oldest first)
    targets_valid: jax.Array  # [b] bool: slot holds a target (false before b updates)
    update: jax.Array
    last_return: jax.Array
    last_length: jax.Array


def push(buffer: Any, chunk: Any) -> Any:
    """Append `chunk` (leaves `[m, ...]`) at the end and drop the `m` oldest slots (any pytree
    whose leaves share the leading axis; `Buffer`: time slots)."""
    m = jax.tree.leaves(chunk)[0].shape[0]
    return jax.tree.map(lambda b, c: jnp.concatenate([b[m:], c], axis=0), buffer, chunk)


def reference_rollouts(
    env: Any, env_params: Any, policy: Callable[[Any, jax.Array], Categorical | DiagGaussian],
    targets: Any, env_state: Any, obs: jax.Array, key: jax.Array, num_steps: int,
    unroll: int = 1,
) -> tuple[jax.Array, jax.Array]:
    """On-policy data from a sequence of target policies (the reference of PROPS, Sec. 6:
    the authors' `compute_se_ref`): target `i` of `targets` (leaves stacked `[b, ...]`, oldest
    first) acts for `num_steps` steps per env copy, continuing from where target `i - 1` left
    the environment; the first starts from `(env_state, obs [E, d])`, which is not changed.

    Returns `(obs, actions)` time-major `[b * num_steps, E, ...]`, aligned slot by slot with a
    PROPS buffer whose batch `i` was collected while target `i` was the target.
    """

    def one_target(carry, target):
        env_state, obs, key = carry

        def act(o, k):
            z = jnp.zeros(o.shape[:1], jnp.float32)
            return policy(target, o).sample(seed=k), z, z

        carry, traj, _ = ppo.rollout(env, env_params, act, env_state, obs, key, num_steps, unroll)
        return carry, (traj.obs, traj.action)

    _, (r_obs, r_act) = jax.lax.scan(one_target, (env_state, obs, key), targets)
    return jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), (r_obs, r_act))


def buffer_gae(
    apply_fn: Callable[[Any, jax.Array], Any], params: Any, buffer: Buffer, next_obs: jax.Array,
    hp: sweep.Hparams, unroll: int = 1,
) -> tuple[ppo.Transition, jax.Array, jax.Array]:
    """Log-probs, values and GAE of the whole time-ordered buffer under the current `theta`.

    The buffer's `b` batches are consecutive in time for every env copy, so one GAE pass runs
    over all `b * num_steps` slots: the trace crosses the boundaries between batches and is cut
    only at episode ends (`ppo.gae`); `next_obs` `[E, d]` follows the newest slot.

    Returns:
      `(transitions, advantages, targets)`, leaves `[b * num_steps, E, ...]`; the transitions
      carry `log pi_theta(a|s)` and `V_theta(s)` (no behavior-policy correction, as the paper).
    """
    pi_buf, values = apply_fn(params, buffer.obs)
    log_prob = pi_buf.log_prob(buffer.action)
    _, next_value = apply_fn(params, next_obs)
    _, final_values = apply_fn(params, buffer.final_obs)
    advantages, targets = ppo.gae(buffer.reward, values, next_value, final_values,
                                  buffer.terminated, buffer.truncated, hp["gamma"],
                                  hp["gae_lambda"], unroll=unroll)
    traj = ppo.Transition(buffer.obs, buffer.action, log_prob, values, buffer.reward,
                          buffer.terminated, buffer.truncated, buffer.final_obs)
    return traj, advantages, targets


def make_props(config: PROPSConfig | ml_collections.ConfigDict) -> sweep.Algorithm:
    """PROPS (or PPO-Buffer / PPO / ROS, see module docstring) as a `sweep.Algorithm`;
    `hparams` from the sweepable marks of `PROPSConfig`."""
    config = validate_config(config)
    env, env_params, discrete = ppo.make_env(config)
    n_act = envs.action_dim(env, env_params)
    hidden, act_name = tuple(config.hidden), config.activation
    network = ActorCritic(n_act, discrete, hidden, act_name)
    tx = ppo.make_optimizer()
    btx = ppo.make_optimizer()
    num_envs, num_steps = int(config.num_envs), int(config.num_steps)
    m_steps, b = int(config.props_num_steps), int(config.buffer_batches)
    n_chunks = num_steps // m_steps
    buf_len = b * num_steps
    batch = num_envs * num_steps
    buf_size = buf_len * num_envs
    num_updates = int(config.total_timesteps) // batch
    epochs, n_mb = int(config.update_epochs), int(config.num_minibatches)
    p_epochs, p_mb = int(config.props_update_epochs), int(config.props_num_minibatches)
    use_behavior = config.behavior == "props"
    unroll = int(config.unroll)
    anneal, p_anneal = bool(config.anneal_lr), bool(config.props_anneal_lr)
    se_steps = int(config.se_steps)
    se_ref = bool(config.se_reference) and se_steps > 0

    def apply_pi(p, o):
        return network.apply(p, o)[0]

    # The behavior policy phi only needs the actor: its parameters and Adam state cover the
    # actor (and log-std) alone, which is exactly equivalent (the critic never enters the
    # behavior loss) and saves the critic's optimizer work at every behavior step.
    actor_mlp = MLP(hidden, n_act, act_name, out_scale=0.01)

    def actor_of(p):
        a = {"actor": p["params"]["actor"]}
        if not discrete:
            a["log_std"] = p["params"]["log_std"]
        return a

    def with_actor(p, a):
        return {**p, "params": {**p["params"], **a}}

    def actor_out(a, o):
        return actor_mlp.apply({"params": a["actor"]}, o)

    def actor_dist(a, out):
        if discrete:
            return Categorical(out)
        return DiagGaussian(out, jnp.exp(a["log_std"]))

    def apply_actor(a, o):
        return actor_dist(a, actor_out(a, o))

    def init(key: jax.Array, hp: sweep.Hparams) -> PROPSState:
        k_net, k_env, k_run, k_beh = jax.random.split(key, 4)  # first 3 as in ppo.make_ppo
        obs, env_state = env.reset(k_env, env_params)
        params = network.init(k_net, obs[:1])
        z = jnp.zeros((), jnp.float32)

        def example_step(k):  # shapes/dtypes of one transition (evaluated abstractly only)
            action = apply_pi(params, obs).sample(seed=k)
            _, _, reward, term, trunc, _ = env.step(k, env_state, action, env_params)
            return action, reward.astype(jnp.float32), term, trunc

        ex = jax.eval_shape(example_step, k_beh)

        def zeros(s):
            return jnp.zeros((buf_len,) + s.shape, s.dtype)

        buffer = Buffer(zeros(obs), *(zeros(x) for x in ex), zeros(obs),
                        jnp.zeros((buf_len,), bool))
        targets = jax.tree.map(lambda x: jnp.zeros((b,) + x.shape, x.dtype), actor_of(params))
        return PROPSState(params, tx.init(params), btx.init(actor_of(params)), buffer,
                          env_state, obs, k_run, k_beh, targets, jnp.zeros((b,), bool),
                          jnp.zeros((), jnp.int32), z, z)

    def update(state: PROPSState, hp: sweep.Hparams) -> tuple[PROPSState, sweep.Metrics]:
        frac = 1.0 - state.update.astype(jnp.float32) / num_updates
        p_lr = hp["props_lr"] * frac if p_anneal else hp["props_lr"]
        bopt = set_opt_hparams(state.bopt_state, p_lr, hp["props_max_grad_norm"])
        params = state.params

        # COLLECT n STEPS IN n/m CHUNKS, A BEHAVIOR UPDATE BEFORE EACH CHUNK
        def chunk(carry, _):
            buffer, bopt, env_state, obs, key, bkey, ep = carry
            if use_behavior:
                bkey, k_upd = jax.random.split(bkey)
                beh = jax.tree.map(lambda x: x[m_steps:].reshape((-1,) + x.shape[2:]),
                                   (buffer.obs, buffer.action))
                bmask = jnp.repeat(buffer.valid[m_steps:], num_envs)
                phi_a, bopt, bm = behavior_update(
                    actor_of(params), bopt, beh[0], beh[1], bmask, k_upd, hp,
                    apply_pi=apply_actor, tx=btx, epochs=p_epochs, num_minibatches=p_mb,
                    head=(actor_out, actor_dist))
                phi = with_actor(params, phi_a)
            else:
                phi, bm = params, {}

            def act(o, k):
                action = apply_pi(phi, o).sample(seed=k)
                z = jnp.zeros(o.shape[:1], jnp.float32)  # log-prob and value: not stored
                return action, z, z

            (env_state, obs, key), traj, (done, ep_ret, ep_len) = ppo.rollout(
                env, env_params, act, env_state, obs, key, m_steps, unroll)
            tr = Buffer(traj.obs, traj.action, traj.reward, traj.terminated, traj.truncated,
                        traj.final_obs, jnp.ones((m_steps,), bool))
            stats = jnp.stack([done.sum(-1), (ep_ret * done).sum(-1), (ep_len * done).sum(-1)],
                              axis=-1).astype(jnp.float32)
            ep = ep + stats.sum(0)
            return (push(buffer, tr), bopt, env_state, obs, key, bkey, ep), bm

        carry = (state.buffer, bopt, state.env_state, state.obs, state.key, state.bkey,
                 jnp.zeros(3, jnp.float32))
        (buffer, bopt, env_state, obs, key, bkey, ep), bms = jax.lax.scan(
            chunk, carry, None, n_chunks)
        # RECOMPUTE LOG-PROBS, VALUES AND GAE OVER THE WHOLE BUFFER UNDER THE CURRENT THETA
        traj, advantages, targets = buffer_gae(network.apply, params, buffer, obs, hp, unroll)
        valid = jnp.broadcast_to(buffer.valid[:, None], traj.value.shape)
        flat = jax.tree.map(lambda x: x.reshape((buf_size,) + x.shape[2:]),
                            (traj, advantages, targets, valid))

        # THE LAST b TARGETS: theta (before its update) was the target of the batch just
        # collected, so slot i of `targets` goes with batch i of the buffer.
        past = push(state.targets, jax.tree.map(lambda x: x[None], actor_of(params)))
        past_valid = push(state.targets_valid, jnp.ones((1,), bool))

        # SAMPLING ERROR KL(pi_D || pi_theta) OF THE BUFFER THE TARGET UPDATE USES
        metrics = {}
        if se_steps:
            metrics["sampling_error"], metrics["se_grad_norm"] = policy_sampling_error(
                params, flat[0].obs, flat[0].action, flat[3], hidden=hidden, activation=act_name,
                discrete=discrete, max_iter=se_steps)
        if se_ref:
            # ON-POLICY REFERENCE: re-simulate the buffer's b batches with the targets that were
            # in charge of them (from the current environment state, a key derived from the
            # rollout stream without advancing it) and measure its KL(pi_D || pi_theta) the same
            # way; unfilled batches are masked as in the buffer.
            r_obs, r_act = reference_rollouts(env, env_params, apply_actor, past, env_state,
                                              obs, jax.random.fold_in(key, 0x5EF), num_steps,
                                              unroll)
            r_mask = jnp.repeat(jnp.repeat(past_valid, num_steps), num_envs)
            metrics["ref_sampling_error"], metrics["ref_se_grad_norm"] = policy_sampling_error(
                params, r_obs.reshape((buf_size,) + r_obs.shape[2:]),
                r_act.reshape((buf_size,) + r_act.shape[2:]), r_mask, hidden=hidden,
                activation=act_name, discrete=discrete, max_iter=se_steps)

        # PPO UPDATE ON THE BUFFER
        lr = hp["lr"] * frac if anneal else hp["lr"]
        opt_state = set_opt_hparams(state.opt_state, lr, hp["max_grad_norm"])

        key, k_epochs = jax.random.split(key)
        new_params, opt_state, aux, took = ppo.update_epochs(
            params, opt_state, flat[:3], k_epochs, hp, apply_fn=network.apply, tx=tx,
            epochs=epochs, num_minibatches=n_mb, valid=flat[3], kl_stop=True)

        # METRICS (reduced here: per-update scalars only)
        n_done, ret_sum, len_sum = ep[0], ep[1], ep[2]
        mean_ret = jnp.where(n_done > 0, ret_sum / jnp.maximum(n_done, 1), state.last_return)
        mean_len = jnp.where(n_done > 0, len_sum / jnp.maximum(n_done, 1), state.last_length)
        w = took / jnp.maximum(took.sum(), 1.0)
        metrics |= {"return": mean_ret, "episode_length": mean_len, "episodes": n_done,
                    "ppo_steps": took.sum()}
        metrics |= {k: (v * w).sum() for k, v in aux.items()}
        metrics |= {k: v.mean() for k, v in bms.items()}
        new_state = PROPSState(new_params, opt_state, bopt, buffer, env_state, obs, key,
                               bkey, past, past_valid, state.update + 1, mean_ret,
                               mean_len)
        return new_state, metrics

    return sweep.Algorithm(
        init=init,
        update=update,
        num_updates=num_updates,
        env_steps_per_update=batch,
        hparams=jconfig.hparams(config),
        name=f"props_{config.behavior}_b{b}_{config.env_name}",
    )
