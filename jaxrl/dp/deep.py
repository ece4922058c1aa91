"""DηN: the stock-augmented distributional DQN ("Optimizing Return Distributions with
Distributional Dynamic Programming", 2025, sec. 6).

The agent learns the return distribution `eta(s, c, a)` of a stock-augmented MDP with a
distributional critic (categorical C51 or quantile QR-DQN head) whose input is the observation
and the stock `c`. The stock starts at `c_0` and follows `c_{t+1} = (c_t + r_t) / gamma`, so that
`c_t + G_t = gamma^{-t} (c_0 + G)` (sec. 3). Acting and bootstrapping are greedy for the
*objective*, not the mean:

    a*(s, c) = argmax_a  E_{Z ~ eta(s, c, a)} [ f(c + Z) ]

with `f` one of `mean: x`, `cvar: min(x, 0)` (stock start `c_0 = -b`, outer max over `b`),
`homeostatic: -|x|` (`c_0 = -set point`), `threshold: 1{x >= 0}` (`c_0 = -tau`). All four are
positively homogeneous, so the greedy ranking is unchanged by the rescaling `gamma^t` and a
stationary greedy policy on `(s, c)` is valid (sec. 4); on finite-horizon tasks the observation
carries the time step, which makes the network time-indexed.

The stock is carried by the environment, not by the agent: the agent wraps its (plain) gymnax
environment in `jaxrl.envs.stock.StockAugmentation`, which updates the stock after every step and
appends it to the observation, `obs' = concat(obs, [c])`; the critic reads the last entry as the
stock. Any gymnax env known to `jaxrl.envs.make` works (`Gamble-v0`, `Homeostasis-v0`, gymnax's
own). As in the paper's deep agent, the stock at each episode start is drawn from `U[stock_low,
stock_high]` (the wrapper's `c0_low, c0_high`, set per run from the hyperparameters) so one
network learns every stock level; at evaluation the user fixes `c_0`, and
CVaR_alpha picks `b` by maximizing the network's own estimate of the Rockafellar-Uryasev value
`b + E[min(G - b, 0)] / alpha` at the initial state (`select_cvar_b`).

Everything is pure: `make_deep_dn(config)` returns a `jaxrl.sweep.Algorithm` whose `update` does
one vectorized environment step (`num_envs` copies), one replay insertion and one gradient step
(after `learning_starts` stored transitions). The replay buffer (`jaxrl.replay`), networks,
target parameters, optimizer and environment states all live in the state pytree, so the sweep
engine vmaps seeds and float hyperparameters. The config is `DeepDNConfig` (the `jaxrl.config`
idiom: static fields fix the program; the sweepable floats, with their bounds, are the
`Algorithm.hparams`). `make_greedy_evaluate` gives the `Algorithm.evaluate` that the runtime
calls every `eval_every` updates (greedy episodes from a fixed stock, the outer CVaR max).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxrl import config as jconfig
from jaxrl import optim, sweep
from jaxrl.config import static, sweepable
from jaxrl.distributions import (
    Categorical,
    FiniteSupport,
    Quantile,
    categorical_projection,
    cvar,
    expected_utility,
    quantile_huber_loss,
    utilities,
)
from jaxrl.envs.stock import StockAugmentation, StockParams
from jaxrl.envs.wrappers import LogWrapper, VecEnv
from jaxrl.networks import MLP
from jaxrl.replay import ReplayState, replay_add, replay_init, replay_sample

# f of each objective (sec. 5): maximize E[f(c_0 + G)].
OBJECTIVES: dict[str, Callable[[jax.Array], jax.Array]] = {
    "mean": utilities.identity,
    "cvar": utilities.cvar_hinge,
    "homeostatic": utilities.negative_abs,
    "threshold": utilities.step,
}

# Objectives the stock-augmented greedy agent cannot optimize, and why (sec. 4).
REFUSED: dict[str, str] = {
    "mean_variance": "mean-variance is not an expected utility (not indifferent to mixtures), "
    "so no greedy policy on the stock-augmented MDP is optimal for it",
    "variance": "variance is not an expected utility (not indifferent to mixtures)",
    "cvar_per_step": "CVaR applied greedily per step without the outer max over b is not "
    "optimal; use objective='cvar' (f = min(x, 0), c_0 = -b, then maximize over b)",
}

CRITICS = ("categorical", "quantile")

def check_objective(objective: str) -> Callable[[jax.Array], jax.Array]:
    """The utility `f` of a supported objective; a clear `ValueError` otherwise."""
    if objective in REFUSED:
        raise ValueError(f"objective {objective!r} is refused: {REFUSED[objective]}")
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; valid: {sorted(OBJECTIVES)}")
    return OBJECTIVES[objective]


def objective_names(objective: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """`config.objective` as a tuple of checked names (one name or several)."""
    names = (objective,) if isinstance(objective, str) else tuple(objective)
    if not names:
        raise ValueError("config.objective is empty: give a name or a tuple of names")
    for n in names:
        check_objective(n)
    return names


def make_utility(objective: str | tuple[str, ...] | list[str]):
    """`utility(x, hp) -> f(x)` for `config.objective`.

    With one name, `f` is fixed. With a tuple of names, the float hyperparameter
    `hp["objective_index"]` (rounded) picks `f` at run time, so agents with different objectives
    share one compiled program and one vmapped sweep (`grid={"objective_index": [0, 1]}`).
    """
    names = objective_names(objective)
    fs = [OBJECTIVES[n] for n in names]
    if len(fs) == 1:
        return lambda x, hp: fs[0](x)

    def utility(x, hp):
        idx = jnp.clip(jnp.round(hp["objective_index"]), 0, len(fs) - 1).astype(jnp.int32)
        out = jnp.zeros_like(x)
        for i, fi in enumerate(fs):
            out = jnp.where(idx == i, fi(x), out)
        return out

    return utility


# ---------------------------------------------------------------------------------------------
# Configuration (the `jaxrl.config` idiom).
# ---------------------------------------------------------------------------------------------


def _at_least(n: int) -> Callable[[Any], str | None]:
    return lambda v: None if int(v) == v and int(v) >= n else f"must be an integer >= {n}"


def _positive_ints(v: Any) -> str | None:
    ok = isinstance(v, tuple | list) and len(v) > 0 and all(int(h) >= 1 for h in v)
    return None if ok else "must be positive widths"


def _env_name(v: Any) -> str | None:
    from jaxrl import envs

    return None if v in envs.registered() else "must be an environment of jaxrl.envs.make"


@dataclasses.dataclass(frozen=True)
class DeepDNConfig:
    """DηN's configuration. Static fields fix the compiled program; the sweepable floats are
    read from `hparams` at run time (`Algorithm.hparams = jaxrl.config.hparams(cfg)`).

    `objective` is one name of `OBJECTIVES` or a tuple of them; with a tuple, the sweepable
    `objective_index` (rounded) picks the objective per run, so agents with different
    objectives share one compiled program (`grid={"objective_index": (0.0, 1.0)}`).
    """

    env_name: str = static("Gamble-v0", check=_env_name)
    env_kwargs: dict = static({}, doc="keyword arguments of jaxrl.envs.make")
    critic: str = static("quantile", check=lambda v: None if v in CRITICS
                         else f"must be one of {CRITICS}")
    objective: Any = static("mean", doc="a name of OBJECTIVES or a tuple of them")
    num_atoms: int = static(16, check=_at_least(1))
    hidden: tuple[int, ...] = static((64, 64), check=_positive_ints)
    num_envs: int = static(8, check=_at_least(1))
    buffer_size: int = static(4000, check=_at_least(1))
    batch_size: int = static(64, check=_at_least(1))
    learning_starts: int = static(256, check=_at_least(0),
                                  doc="transitions stored before learning")
    num_updates: int = static(2000, check=_at_least(1))
    lr: float = sweepable(1e-3, lo=0.0, doc="Adam step size")
    gamma: float = sweepable(1.0, lo=0.0, hi=1.0, lo_open=True, doc="discount")
    eps_start: float = sweepable(1.0, lo=0.0, hi=1.0, doc="epsilon-greedy at update 0")
    eps_end: float = sweepable(0.05, lo=0.0, hi=1.0, doc="epsilon after the decay")
    eps_decay_frac: float = sweepable(0.5, lo=0.0, doc="fraction of num_updates over which "
                                      "epsilon decays linearly")
    target_tau: float = sweepable(0.01, lo=0.0, hi=1.0, doc="Polyak rate of the target net")
    huber_kappa: float = sweepable(1.0, lo=0.0, lo_open=True,
                                   doc="quantile Huber threshold (quantile critic only)")
    v_min: float = sweepable(-10.0, doc="categorical support, lower end (categorical only)")
    v_max: float = sweepable(10.0, doc="categorical support, upper end (> v_min)")
    stock_low: float = sweepable(-5.0, doc="c_0 ~ U[stock_low, stock_high] at each training "
                                 "episode start")
    stock_high: float = sweepable(5.0, doc=">= stock_low")
    stock_scale: float = sweepable(0.1, lo=0.0, doc="the network sees stock * stock_scale")
    max_grad_norm: float = sweepable(10.0, lo=0.0, lo_open=True,
                                     doc="global-norm gradient clipping")
    objective_index: float = sweepable(0.0, lo=0.0, doc="which of objective's names (<= the "
                                       "number of names - 1)")
    carry_stock: float = sweepable(1.0, lo=0.0, hi=1.0, doc="1: the stock follows "
                                   "c' = (c + r) / gamma; 0: it stays at c_0 (a stock-free agent "
                                   "with the same network and objective, the baseline that "
                                   "shows whether the stock is needed)")


# Default values of the sweepable floats, derived from the marks.
DEFAULT_HPARAMS: dict[str, float] = jconfig.hparams(DeepDNConfig())


def as_config(config: Any) -> DeepDNConfig:
    """A DeepDNConfig from a DeepDNConfig, ConfigDict or dict (unknown keys are refused)."""
    if isinstance(config, DeepDNConfig):
        return config
    d = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    if isinstance(d.get("objective"), list):
        d["objective"] = tuple(d["objective"])
    return jconfig.from_config(DeepDNConfig, d)


def validate_config(config: Any, grid: Mapping[str, Any] | None = None, prefix: str = "config",
                    sweep_prefix: str = "config.sweep") -> DeepDNConfig:
    """Raise a one-line `ValueError` naming the bad field (or swept value) and the value: the
    marks' checks and bounds, then the relations between fields, for the defaults and for every
    point of `grid`. Returns the DeepDNConfig."""
    cfg = as_config(config)
    try:
        names = objective_names(cfg.objective)
    except ValueError as e:
        raise ValueError(f"{prefix}.objective: {e}") from None
    jconfig.validate(cfg, grid, prefix=prefix, sweep_prefix=sweep_prefix)
    low = 2 if cfg.critic == "categorical" else 1
    if cfg.num_atoms < low:
        raise ValueError(f"{prefix}.num_atoms must be an integer >= {low} for the {cfg.critic} "
                         f"critic, got {cfg.num_atoms}")
    if cfg.num_envs > cfg.buffer_size:
        raise ValueError(f"{prefix}.buffer_size must be >= {prefix}.num_envs ({cfg.num_envs}), "
                         f"got {cfg.buffer_size}")
    grid = {k: tuple(v) for k, v in (grid or {}).items()}
    rel = ("v_min", "v_max", "stock_low", "stock_high", "objective_index")
    swept = [k for k in rel if k in grid]
    base = jconfig.hparams(cfg)
    points = [((), ())] + [(tuple(swept), p) for p in itertools.product(*(grid[k] for k in swept))]
    for names_swept, point in points:  # the defaults, then every grid point
        hp = {**base, **dict(zip(names_swept, point, strict=True))}
        where = lambda k, ns=names_swept: f"{sweep_prefix}.{k}" if k in ns else f"{prefix}.{k}"
        if hp["v_max"] <= hp["v_min"]:
            raise ValueError(f"{where('v_max')} must be > v_min ({hp['v_min']:g}), "
                             f"got {hp['v_max']:g}")
        if hp["stock_high"] < hp["stock_low"]:
            raise ValueError(f"{where('stock_high')} must be >= stock_low "
                             f"({hp['stock_low']:g}), got {hp['stock_high']:g}")
        if round(hp["objective_index"]) > len(names) - 1:
            raise ValueError(f"{where('objective_index')} must be <= {len(names) - 1} (the "
                             f"objectives are {names}), got {hp['objective_index']:g}")
    return cfg


# ---------------------------------------------------------------------------------------------
# Critic and greedy action selection by the objective.
# ---------------------------------------------------------------------------------------------


class Critic(nn.Module):
    """MLP from `(obs, stock feature)` to per-action distribution parameters.

    Input `obs: [..., obs_dim]`, `stock: [...]` (already scaled). Output `[..., A, K]`: logits
    over the fixed support (categorical) or quantile locations (quantile).
    """

    num_actions: int
    num_atoms: int
    hidden: tuple[int, ...] = (64, 64)

    @nn.compact
    def __call__(self, obs: jax.Array, stock: jax.Array) -> jax.Array:
        x = jnp.concatenate([obs, stock[..., None]], axis=-1)
        out = MLP(self.hidden, self.num_actions * self.num_atoms, act="relu")(x)
        return out.reshape(*out.shape[:-1], self.num_actions, self.num_atoms)


def support_of(hp: Mapping[str, jax.Array], num_atoms: int) -> jax.Array:
    """Categorical support `[K]`: `K` evenly spaced atoms on `[v_min, v_max]`."""
    return hp["v_min"] + (hp["v_max"] - hp["v_min"]) * jnp.linspace(0.0, 1.0, num_atoms)


def as_distribution(out: jax.Array, critic: str, support: jax.Array | None = None):
    """Critic output `[..., A, K]` as a `Categorical` (softmax of logits) or `Quantile`."""
    if critic == "categorical":
        return Categorical(support, jax.nn.softmax(out, axis=-1))
    return Quantile(out)


def objective_values(dist: Any, stock: jax.Array, f: Callable[[jax.Array], jax.Array]):
    """`E[f(c + Z)]` per action: `dist` has batch `[..., A]`, `stock: [...]`. Returns `[..., A]`.

    `f` is elementwise (e.g. `utilities.cvar_hinge`)."""
    c = jnp.asarray(stock)[..., None, None]
    return expected_utility(dist, lambda z: f(c + z))


def greedy_action(dist: Any, stock: jax.Array, f: Callable[[jax.Array], jax.Array]):
    """`argmax_a E[f(c + Z_a)]` (first maximizer on ties). Returns int32 `[...]`."""
    return jnp.argmax(objective_values(dist, stock, f), axis=-1).astype(jnp.int32)


# ---------------------------------------------------------------------------------------------
# Environments.
# ---------------------------------------------------------------------------------------------


def make_env(name: str, env_kwargs: Mapping[str, Any] | None = None):
    """`(StockAugmentation(env), env_params)` for the plain env `jaxrl.envs.make(name, **kwargs)`.

    The returned params are the *inner* env's; build the wrapper's per run with `stock_params`.
    """
    from jaxrl import envs

    env, env_params = envs.make(name, **dict(env_kwargs or {}))
    return StockAugmentation(env), env_params


def stock_params(env_params: Any, c0_low: jax.Array, c0_high: jax.Array,
                 gamma: jax.Array, carry: jax.Array | float = 1.0) -> StockParams:
    """Params of the stock wrapper: `c_0 ~ U[c0_low, c0_high]` at each reset (fixed if equal),
    `c' = (c + r) / gamma` (with `carry = 0`: `c' = c`, the stock-free baseline). All four may
    be traced (read from the hyperparameters)."""
    return StockParams(env_params, c0_low, c0_high, gamma,
                       getattr(env_params, "max_steps_in_episode", 2**31 - 1), carry)


def split_stock(obs: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Augmented observation `[..., D + 1]` -> (observation `[..., D]`, stock `[...]`)."""
    return obs[..., :-1], obs[..., -1]


# ---------------------------------------------------------------------------------------------
# The agent.
# ---------------------------------------------------------------------------------------------


class Transition(NamedTuple):
    """One stored transition of the stock-augmented env. Observations are augmented,
    `concat(obs, [c])`; `next_obs` is the true next one (before auto-reset), whose stock is
    `(c + reward) / gamma` (set by the wrapper)."""

    obs: jax.Array  # [obs_dim + 1]
    action: jax.Array  # [] int32
    reward: jax.Array  # []
    next_obs: jax.Array  # [obs_dim + 1]
    terminated: jax.Array  # [] float32, 1 at a true terminal state


class DeepDNState(NamedTuple):
    """Agent state (one seed). Env fields have a leading `[num_envs]` axis."""

    params: Any
    target_params: Any
    opt_state: Any
    buffer: ReplayState
    env_state: Any  # DiscountedLogEnvState (episode returns) over the StockState (the stock)
    obs: jax.Array  # [num_envs, obs_dim + 1] augmented observations (stock last)
    key: jax.Array
    step: jax.Array  # int32 updates done


def make_deep_dn(config: DeepDNConfig | Any) -> sweep.Algorithm:
    """Build the DηN agent as a sweep `Algorithm`.

    `config`: a `DeepDNConfig` (or a ConfigDict/dict of its fields). `hparams` are its sweepable
    floats (read at run time, so they can be swept); `evaluate` is None (attach one with
    `algo._replace(evaluate=make_greedy_evaluate(config, ...))`).

    Example (CVaR_0.2 and risk-neutral agents on the gamble, 8 seeds each, one program):
        algo = make_deep_dn(DeepDNConfig(objective=("mean", "cvar")))
        res = sweep.run(algo, range(8), {"objective_index": [0.0, 1.0]})

    Metrics per update: `loss`, `epsilon`, `episode_return` (mean discounted return of the
    episodes that ended in this update, 0 if none), `episodes` (their number).
    """
    config = validate_config(config)
    utility = make_utility(config.objective)
    env, env_params = make_env(config.env_name, config.env_kwargs)
    num_actions = int(env.action_space(stock_params(env_params, 0.0, 0.0, 1.0)).n)
    critic_kind = config.critic
    num_atoms, num_envs = int(config.num_atoms), int(config.num_envs)
    batch_size, learning_starts = int(config.batch_size), int(config.learning_starts)
    num_updates = int(config.num_updates)
    net = Critic(num_actions, num_atoms, tuple(int(h) for h in config.hidden))
    # split(key, num_envs) and vmap, as every agent steps; the LogWrapper carries each copy's
    # discounted episode return with the run's discount, the stock params' gamma (hp["gamma"])
    vec_env = VecEnv(LogWrapper(env, gamma=lambda p: p.gamma), num_envs)
    adam = optim.adam()  # the run's learning rate hp["lr"] is written in per step
    hparams = jconfig.hparams(config)

    def dist(params, obs_aug, hp):
        obs, stock = split_stock(obs_aug)
        out = net.apply(params, obs, stock * hp["stock_scale"])
        return as_distribution(out, critic_kind, support_of(hp, num_atoms))

    def train_stock_params(hp):
        return stock_params(env_params, hp["stock_low"], hp["stock_high"], hp["gamma"],
                            hp["carry_stock"])

    def init(key: jax.Array, hp: Mapping[str, jax.Array]) -> DeepDNState:
        k_net, k_env, key = jax.random.split(key, 3)
        obs, env_state = vec_env.reset(k_env, train_stock_params(hp))
        params = net.init(k_net, *split_stock(obs[0]))
        zero = jnp.zeros((), jnp.float32)
        example = Transition(obs[0], jnp.zeros((), jnp.int32), zero, obs[0], zero)
        return DeepDNState(
            params=params,
            target_params=params,
            opt_state=adam.init(params),
            buffer=replay_init(example, int(config.buffer_size)),
            env_state=env_state,
            obs=obs,
            key=key,
            step=jnp.zeros((), jnp.int32),
        )

    def loss_fn(params, target_params, batch: Transition, hp):
        obs, stock = split_stock(batch.obs)
        out = net.apply(params, obs, stock * hp["stock_scale"])  # [B, A, K]
        out_a = jnp.take_along_axis(out, batch.action[:, None, None], axis=1)[:, 0]  # [B, K]
        next_d = dist(target_params, batch.next_obs, hp)
        next_stock = split_stock(batch.next_obs)[1]  # (c + r) / gamma, set by the wrapper
        a_next = greedy_action(next_d, next_stock, lambda x: utility(x, hp))  # [B]
        not_term = 1.0 - batch.terminated
        scale = (hp["gamma"] * not_term)[:, None]
        if critic_kind == "quantile":
            next_locs = jnp.take_along_axis(next_d.locs, a_next[:, None, None], axis=1)[:, 0]
            target = jax.lax.stop_gradient(batch.reward[:, None] + scale * next_locs)
            losses = jax.vmap(quantile_huber_loss, in_axes=(0, 0, None))(
                out_a, target, hp["huber_kappa"]
            )
        else:
            support = next_d.support
            next_p = jnp.take_along_axis(next_d.probs, a_next[:, None, None], axis=1)[:, 0]
            atoms = batch.reward[:, None] + scale * support[None, :]
            target = jax.lax.stop_gradient(categorical_projection(support, atoms, next_p))
            losses = -(target * jax.nn.log_softmax(out_a, axis=-1)).sum(-1)
        return losses.mean()

    def update(state: DeepDNState, hp: Mapping[str, jax.Array]):
        key, k_eps, k_rand, k_env, k_sample = jax.random.split(state.key, 5)

        # ACT: epsilon-greedy on argmax_a E f(c + Z), c = the stock in the observation.
        frac = state.step / jnp.maximum(hp["eps_decay_frac"] * num_updates, 1.0)
        eps = hp["eps_end"] + (hp["eps_start"] - hp["eps_end"]) * jnp.clip(1.0 - frac, 0.0, 1.0)
        stock = split_stock(state.obs)[1]
        greedy = greedy_action(
            dist(state.params, state.obs, hp), stock, lambda x: utility(x, hp)
        )
        explore = jax.random.uniform(k_eps, (num_envs,)) < eps
        random_a = jax.random.randint(k_rand, (num_envs,), 0, num_actions)
        action = jnp.where(explore, random_a, greedy).astype(jnp.int32)

        # STEP the stock-augmented environments: the wrapper sets c' = (c + r) / gamma and
        # re-draws c_0 ~ U[stock_low, stock_high] after an auto-reset.
        obs, env_state, reward, term, _, info = vec_env.step(
            k_env, state.env_state, action, train_stock_params(hp))
        reward = reward.astype(jnp.float32)
        done = info["returned_episode"]  # terminated or truncated
        transition = Transition(
            state.obs, action, reward, info["final_observation"], term.astype(jnp.float32)
        )
        buffer = replay_add(state.buffer, transition)
        finished = jnp.sum(done)
        ep_ret = info["returned_discounted_episode_returns"]  # [num_envs], read where done
        ret_metric = jnp.sum(jnp.where(done, ep_ret, 0.0)) / jnp.maximum(finished, 1)

        # LEARN: one gradient step on a uniform minibatch once enough data is stored.
        batch = replay_sample(buffer, k_sample, batch_size)
        loss, grads = jax.value_and_grad(loss_fn)(state.params, state.target_params, batch, hp)
        gnorm = optax.tree.norm(grads)
        grads = jax.tree.map(
            lambda g: g * jnp.minimum(1.0, hp["max_grad_norm"] / (gnorm + 1e-8)), grads
        )
        params, opt_state = optim.step(adam, grads, state.opt_state, state.params,
                                       learning_rate=hp["lr"])
        ready = buffer.size >= learning_starts
        params = jax.tree.map(lambda a, b: jnp.where(ready, a, b), params, state.params)
        opt_state = jax.tree.map(lambda a, b: jnp.where(ready, a, b), opt_state, state.opt_state)
        tau = jnp.where(ready, hp["target_tau"], 0.0)
        target_params = jax.tree.map(
            lambda t, p: (1.0 - tau) * t + tau * p, state.target_params, params
        )

        new_state = DeepDNState(
            params, target_params, opt_state, buffer, env_state, obs, key, state.step + 1,
        )
        metrics = {
            "loss": jnp.where(ready, loss, 0.0).astype(jnp.float32),
            "epsilon": eps.astype(jnp.float32),
            "episode_return": ret_metric.astype(jnp.float32),
            "episodes": finished.astype(jnp.float32),
        }
        return new_state, metrics

    name = f"deep_dn_{critic_kind}_{'_'.join(objective_names(config.objective))}"
    return sweep.Algorithm(init, update, num_updates, num_envs, hparams, name)


# ---------------------------------------------------------------------------------------------
# Evaluation: greedy rollouts from a fixed initial stock, and the outer CVaR search over b.
# ---------------------------------------------------------------------------------------------


def make_evaluate(config: Any, max_steps: int | None = None):
    """Greedy (epsilon = 0) evaluation of a trained `params`.

    Returns `(rollout, predicted)`:
      * `rollout(params, key, hp, c0, num_episodes) -> dict`: episodes run greedily for the
        objective from stock `c_0 = c0` (scalar) for at most `max_steps` steps (default: the
        env's `max_steps_in_episode`): `returns [N]` discounted returns `G`, `actions [steps, N]`
        (-1 after the episode ended), `stocks [steps + 1, N]` the stock before each step and
        after the last one (frozen after the end; undiscounted: `c_0 + rewards so far`).
      * `predicted(params, key, hp, c0, num_states) -> scalar`: the network's own estimate of
        `max_a E f(c0 + Z(s_0, c0, a))` averaged over `num_states` sampled initial states.
    Both are pure (jit/vmap them). `num_episodes`, `num_states` must be static.
    """
    config = validate_config(config)
    utility = make_utility(config.objective)
    env, env_params = make_env(config.env_name, config.env_kwargs)
    num_actions = int(env.action_space(stock_params(env_params, 0.0, 0.0, 1.0)).n)
    num_atoms = int(config.num_atoms)
    net = Critic(num_actions, num_atoms, tuple(int(h) for h in config.hidden))
    steps = int(max_steps or env_params.max_steps_in_episode)

    def dist(params, obs_aug, hp):
        obs, stock = split_stock(obs_aug)
        out = net.apply(params, obs, stock * hp["stock_scale"])
        return as_distribution(out, config.critic, support_of(hp, num_atoms))

    def fixed_stock(hp, c0):  # the wrapper with c_0 = c0 at every reset
        c0 = jnp.asarray(c0, jnp.float32)
        return stock_params(env_params, c0, c0, hp["gamma"], hp["carry_stock"])

    def rollout(params, key, hp, c0, num_episodes: int):
        k_reset, key = jax.random.split(key)
        sp = fixed_stock(hp, c0)
        vec_env = VecEnv(env, num_episodes)
        obs, env_state = vec_env.reset(k_reset, sp)
        stock0 = split_stock(obs)[1]

        def body(carry, k):
            obs, env_state, last, ret, disc, alive = carry
            stock = split_stock(obs)[1]
            a = greedy_action(dist(params, obs, hp), stock, lambda x: utility(x, hp))
            obs, env_state, r, term, trunc, info = vec_env.step(k, env_state, a, sp)
            ret = ret + jnp.where(alive, disc * r, 0.0)
            # the stock of the true next state (frozen once the episode has ended)
            last = jnp.where(alive, info["final_stock"], last)
            out = (jnp.where(alive, a, -1), last)
            alive = alive & ~(term | trunc)
            return (obs, env_state, last, ret, disc * hp["gamma"], alive), out

        init = (
            obs, env_state, stock0, jnp.zeros((num_episodes,)), jnp.ones((num_episodes,)),
            jnp.ones((num_episodes,), bool),
        )
        carry, (actions, stocks) = jax.lax.scan(body, init, jax.random.split(key, steps))
        stocks = jnp.concatenate([stock0[None], stocks], axis=0)
        return {"returns": carry[3], "actions": actions, "stocks": stocks}

    def predicted(params, key, hp, c0, num_states: int):
        obs, _ = VecEnv(env, num_states).reset(key, fixed_stock(hp, c0))
        f = lambda x: utility(x, hp)
        return objective_values(dist(params, obs, hp), split_stock(obs)[1], f).max(-1).mean()

    return rollout, predicted


def make_greedy_evaluate(config: Any, num_episodes: int, *, cvar_alpha: float | None = None,
                         b_grid: Any = None, set_point: float | None = None,
                         threshold: float | None = None, num_states: int = 8,
                         max_steps: int | None = None):
    """`evaluate(state, key, hp) -> {name: scalar}` for `Algorithm.evaluate` (the runtime calls
    it every `eval_every` updates): `num_episodes` greedy (epsilon = 0) episodes of the critic
    `state.params`, for the run's objective (`objective_index` picks it).

    The initial stock of a run: `c_0 = -b*` for a run whose objective is `cvar` when `cvar_alpha`
    is given, where `b*` maximizes the network's own Rockafellar-Uryasev estimate over `b_grid`
    at `num_states` initial states (`select_cvar_b`, the outer max of sec. 5); otherwise
    `c_0 = -set_point` when `set_point` is given, `c_0 = -threshold` when `threshold` is given
    (the `threshold` objective `P(G >= threshold)`), else 0.

    Metrics: `mean_return` (mean of the discounted returns `G`), `action_<a>_fraction` (share of
    action `a` among the steps taken); with `cvar_alpha`: `cvar` (empirical CVaR of `G`),
    `b_star`, `cvar_predicted` (the estimate at `b*`; meaningful for `cvar` runs only); with
    `set_point`: `abs_dev` (`E|G - set_point|`) and `stock_abs_t<t>` (`E|c_t|`, the distance
    of the stock from the set point before step `t`, `t = 0..steps`; undiscounted); with
    `threshold`: `success` (the fraction of episodes with `G >= threshold - 1e-6`; the slack
    absorbs float32 rounding of sums of exact rewards).
    """
    cfg = validate_config(config)
    if int(num_episodes) < 1:
        raise ValueError(f"num_episodes must be >= 1, got {num_episodes}")
    if cvar_alpha is not None:
        if not 0.0 < float(cvar_alpha) <= 1.0:
            raise ValueError(f"cvar_alpha must be in (0, 1], got {cvar_alpha}")
        if b_grid is None or len(b_grid) < 1:
            raise ValueError("b_grid must hold at least one threshold with cvar_alpha")
        b_grid = jnp.asarray(b_grid, jnp.float32)
    if set_point is not None and threshold is not None:
        raise ValueError("give set_point or threshold, not both")
    rollout, predicted = make_evaluate(cfg, max_steps)
    names = objective_names(cfg.objective)
    is_cvar = jnp.asarray([n == "cvar" for n in names])
    env, env_params = make_env(cfg.env_name, cfg.env_kwargs)
    num_actions = int(env.action_space(stock_params(env_params, 0.0, 0.0, 1.0)).n)
    n = int(num_episodes)

    def evaluate(state: DeepDNState, key: jax.Array, hp: Mapping[str, jax.Array]):
        params = state.params
        k_pred, k_roll = jax.random.split(key)
        idx = jnp.clip(jnp.round(hp["objective_index"]), 0, len(names) - 1).astype(jnp.int32)
        c0 = jnp.float32(-float(set_point) if set_point is not None
                         else -float(threshold) if threshold is not None else 0.0)
        out: dict[str, jax.Array] = {}
        if cvar_alpha is not None:
            vals = jax.vmap(lambda b: predicted(params, k_pred, hp, -b, num_states))(b_grid)
            b_star, estimate = select_cvar_b(vals, b_grid, float(cvar_alpha))
            c0 = jnp.where(is_cvar[idx], -b_star, c0)
            out |= {"b_star": b_star, "cvar_predicted": estimate}
        roll = rollout(params, k_roll, hp, c0, n)
        g, acts = roll["returns"], roll["actions"]
        taken = jnp.maximum(jnp.sum(acts >= 0), 1)
        out["mean_return"] = g.mean()
        for a in range(num_actions):
            out[f"action_{a}_fraction"] = jnp.sum(acts == a) / taken
        if cvar_alpha is not None:
            out["cvar"] = empirical_cvar(g, float(cvar_alpha))
        if threshold is not None:
            out["success"] = jnp.mean(g >= float(threshold) - 1e-6)
        if set_point is not None:
            out["abs_dev"] = jnp.abs(g - float(set_point)).mean()
            stock_abs = jnp.abs(roll["stocks"]).mean(axis=1)  # [steps + 1]
            for t in range(stock_abs.shape[0]):
                out[f"stock_abs_t{t}"] = stock_abs[t]
        return {k: jnp.asarray(v, jnp.float32) for k, v in out.items()}

    return evaluate


def select_cvar_b(values_at_b: jax.Array, b_grid: jax.Array, alpha: float) -> tuple[Any, Any]:
    """Outer CVaR step: `b* = argmax_b  b + V(b) / alpha` where `V(b) = max E min(G - b, 0)`.

    Args:
      values_at_b: `[..., nb]` inner values `V(b)` (e.g. from `predicted` with `c0 = -b`).
      b_grid: `[nb]` candidate thresholds (the achievable returns when they are known).
      alpha: CVaR level in (0, 1].
    Returns:
      `(b_star [...], cvar_estimate [...])`.
    """
    if not 0.0 < float(alpha) <= 1.0:
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    ru = b_grid + values_at_b / alpha
    i = jnp.argmax(ru, axis=-1)
    return jnp.take(b_grid, i), jnp.max(ru, axis=-1)


def empirical_cvar(returns: jax.Array, alpha: float) -> jax.Array:
    """Lower-tail CVaR_alpha of equally weighted samples `returns [..., N]` (boundary split)."""
    n = returns.shape[-1]
    return cvar(FiniteSupport(returns, jnp.full(returns.shape, 1.0 / n)), alpha)
