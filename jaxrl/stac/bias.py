"""Overestimation bias of a soft critic (Özalp 2026, Sec. 5.1, "value estimation error").

Three estimators of `E[Q_hat(s, a) - Q^pi_soft(s, a)]` for the current policy `pi` (dropout off).
All are SIGNED: positive = overestimation, negative = underestimation; compare methods by the
magnitude `|bias|` (the experiment reports both).

* `reference_bias_from_episode` (`bias_reference`, the reference code's estimator,
  `rlwarehouse/agent.py` `Agent.eval`, which produced the paper's error curves): one evaluation
  episode with the evaluation action (the mean of 10 squashed samples) and its log-density
  `log pi(a_bar|s)`; `V_t = Q_ref(s_t, a_bar_t) - alpha log pi(a_bar_t|s_t)` with `Q_ref` the
  AVERAGE of the twin critics (`mu` for STAC); returns backwards
  `G_t = r_t - alpha log pi_t + gamma G_{t+1}` with `G_{T-1} = V_{T-1}` at the episode's last step
  (terminal or truncated alike); bias = mean over the episode's steps of `V_t - G_t`. We average
  it over the `eval_episodes` evaluation episodes (the reference runs one per evaluation).
* `paper_bias` (`bias_paper`, ours, after the paper's description): episodes with actions
  SAMPLED from `pi`; `Q_hat` = the MIN over twins (`q_estimate`, what the twin methods' targets
  use); soft returns backwards, bootstrapped at the time limit with the critic's soft value of
  the final observation `V(s_T) = Q_hat(s_T, a_T) - alpha log pi(a_T|s_T)` and 0 after a
  terminal state; bias = mean over visited steps of `Q_hat(s_t, a_t) - (r_t + gamma G_{t+1})`.
  One return sample per state: noisy. Differences to the reference, kept on purpose: the
  sampled action is the policy the critic is trained for (the averaged action is a different,
  nearly deterministic policy whose log-density is not the entropy bonus the soft value was
  trained with), the min of the twins is the estimate the twin methods act on, and
  bootstrapping with `V(s_T)` instead of `G_{T-1} := V_{T-1}` keeps the last step's error.
* `rollout_bias` (`bias_rollout`, stricter, vectorized): from `num_states` states of such an
  episode, run `num_rollouts` independent rollouts each for `horizon` steps with the time limit
  lifted (the critic estimates the infinite-horizon soft value because truncation is not
  terminal), average `Q_hat(s, a_0) - [r_0 + sum_{t>=1} gamma^t (r_t - alpha log pi_t) +
  gamma^H V(s_H)]` over rollouts, then over states. The tail bootstrap weighs `gamma^H` (0.049
  for H = 300, gamma = .99).

`Q_hat` / `Q_ref` are the critic's mean heads, without `beta`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxrl.envs.wrappers import VecEnv
from jaxrl.stac.stac import AgentState, Learner


def soft_returns_backward(
    reward: jax.Array, log_prob: jax.Array, terminated: jax.Array, last: jax.Array,
    bootstrap: jax.Array, gamma: float | jax.Array, alpha: float | jax.Array,
) -> jax.Array:
    """Targets `y_t = r_t + gamma G_{t+1}` for every step of one stream, computed backwards.

    Args:
      reward, log_prob, terminated, last, bootstrap: `[T]`. `log_prob[t] = log pi(a_t|s_t)`;
        `terminated[t]` = 1 if `s_{t+1}` is terminal; `last[t]` = 1 if the stream is cut after
        step `t` (time limit), where `G_{t+1} := bootstrap[t]`.
      gamma, alpha: discount and temperature.

    Returns:
      `y [T]` with `G_{t+1} = y_{t+1} - alpha log_prob_{t+1}` inside the stream.
    """
    def step(g_next, x):
        r, lp, term, lst, boot = x
        g = jnp.where(term > 0, 0.0, jnp.where(lst > 0, boot, g_next))
        y = r + gamma * g
        return y - alpha * lp, y

    _, y = jax.lax.scan(step, jnp.zeros((), reward.dtype),
                        (reward, log_prob, terminated, last, bootstrap), reverse=True)
    return y


def reference_returns_backward(value: jax.Array, reward: jax.Array, log_prob: jax.Array,
                               last: jax.Array, gamma: float | jax.Array,
                               alpha: float | jax.Array) -> jax.Array:
    """The reference code's evaluation returns (`rlwarehouse/agent.py`, `Agent.eval`), `[T]`:
    `G_t = V_t` where `last[t] = 1` (the episode's last step), else
    `G_t = r_t - alpha log_prob_t + gamma G_{t+1}`.

    Args:
      value: `V_t = Q(s_t, a_t) - alpha log pi(a_t|s_t)`, `[T]`.
      reward, log_prob, last: `[T]`.
      gamma, alpha: discount and temperature.
    """
    def step(g_next, x):
        v, r, lp, lst = x
        g = jnp.where(lst > 0, v, r - alpha * lp + gamma * g_next)
        return g, g

    _, g = jax.lax.scan(step, jnp.zeros((), value.dtype), (value, reward, log_prob, last),
                        reverse=True)
    return g


def reference_bias_from_episode(q: jax.Array, reward: jax.Array, log_prob: jax.Array,
                                alive: jax.Array, gamma: float | jax.Array,
                                alpha: float | jax.Array) -> jax.Array:
    """The reference code's value estimation error of one episode (scalar): the mean over its
    steps of `V_t - G_t` (`reference_returns_backward`), `V_t = q_t - alpha log_prob_t`.

    Args:
      q: the critic's estimate at the evaluation action, `[T]` (twin average: `q_reference`).
      reward, log_prob: `[T]`.
      alive: `[T]`, 1 while the episode runs (steps after its end are padding); its last
        alive step, or the last step `T - 1`, is the episode's last step.
    """
    alive = alive.astype(q.dtype)
    nxt = jnp.concatenate([alive[1:], jnp.zeros((1,), alive.dtype)])
    last = alive * (1.0 - nxt)
    v = q - alpha * log_prob
    g = reference_returns_backward(v, reward, log_prob, last, gamma, alpha)
    return jnp.sum(alive * (v - g)) / jnp.maximum(jnp.sum(alive), 1.0)


def _q_hat(L: Learner, state: AgentState, obs, a):
    mu, _ = L.critic_heads(state.critic, jax.random.PRNGKey(0), obs, a, jnp.zeros(()), False)
    return L.q_estimate(mu)


def _sample(L: Learner, state: AgentState, key, obs):
    return L.sample_action(state.actor, key, obs, jnp.zeros(()), False)


def paper_bias(L: Learner, state: AgentState, key: jax.Array, gamma: float,
               num_episodes: int = 1) -> dict[str, jax.Array]:
    """Our one-episode bias estimate (`bias_paper`) from `num_episodes` episodes (see the module
    docstring for how it differs from the reference code's `bias_reference`).

    Returns `bias` (mean over visited steps), `soft_return` (mean `G_0`), `env_states` (the
    visited env states, leaves `[T, num_episodes, ...]`, for `rollout_bias`) and `alive [T, E]`.
    """
    env, params = L.env, L.env_params
    T = int(params.max_steps_in_episode)
    alpha = jnp.exp(state.log_alpha)
    k_reset, k_run = jax.random.split(key)
    obs, env_state = VecEnv(env, num_episodes).reset(k_reset, params)

    def step(carry, xs):
        obs, env_state, alive = carry
        k, t = xs
        k_a, k_e, k_b = jax.random.split(k, 3)
        a, logp = _sample(L, state, k_a, obs)
        q = _q_hat(L, state, obs, a)
        obs2, env_state2, r, term, trunc, info = VecEnv(env, num_episodes).step(
            k_e, env_state, L.to_env_action(a), params)
        fin = info["final_observation"]
        a_b, logp_b = _sample(L, state, k_b, fin)
        boot = _q_hat(L, state, fin, a_b) - alpha * logp_b
        out = dict(r=r, logp=logp, q=q, term=term.astype(jnp.float32),
                   last=jnp.logical_and(trunc, ~term).astype(jnp.float32), boot=boot,
                   alive=alive, env_state=env_state)
        alive = alive * (1.0 - jnp.logical_or(term, trunc))
        return (obs2, env_state2, alive), out

    _, o = jax.lax.scan(step, (obs, env_state, jnp.ones(num_episodes)),
                        (jax.random.split(k_run, T), jnp.arange(T)))
    # Episodes that stop being alive: treat the first non-alive step like a terminal cut.
    y = jax.vmap(soft_returns_backward, in_axes=(1, 1, 1, 1, 1, None, None), out_axes=1)(
        o["r"], o["logp"], o["term"], o["last"], o["boot"], gamma, alpha)
    alive = o["alive"]
    bias = jnp.sum(alive * (o["q"] - y)) / jnp.sum(alive)
    g0 = jnp.mean(y[0] - alpha * o["logp"][0])
    return {"bias": bias, "soft_return": g0, "env_states": o["env_state"], "alive": alive,
            "q_mean": jnp.sum(alive * o["q"]) / jnp.sum(alive)}


def rollout_bias(L: Learner, state: AgentState, key: jax.Array, env_states, gamma: float,
                 num_rollouts: int = 32, horizon: int = 300) -> dict[str, jax.Array]:
    """Stricter bias: `num_rollouts` rollouts of `horizon` steps from each given env state.

    Args:
      env_states: a batch of env states (leaves `[K, ...]`), e.g. from `paper_bias`.
    Returns `bias` (mean over states of the rollout-averaged `Q_hat - G`), `bias_per_state [K]`.
    """
    env = L.env
    params = L.env_params.replace(max_steps_in_episode=jnp.iinfo(jnp.int32).max)
    alpha = jnp.exp(state.log_alpha)
    K = jax.tree.leaves(env_states)[0].shape[0]
    n = K * num_rollouts
    es = jax.tree.map(lambda x: jnp.repeat(x, num_rollouts, axis=0), env_states)
    es = es.replace(time=jnp.zeros_like(es.time))
    obs = VecEnv(env, n).get_obs(es, params)
    k0, k_run, k_end = jax.random.split(key, 3)
    a0, _ = _sample(L, state, k0, obs)
    q0 = _q_hat(L, state, obs, a0)

    def step(carry, xs):
        obs, es, a, alive, ret = carry
        k, t = xs
        k_e, k_a = jax.random.split(k)
        obs2, es2, r, term, trunc, _ = VecEnv(env, n).step(
            k_e, es, L.to_env_action(a), params)
        disc = gamma**t
        ret = ret + alive * disc * r
        alive = alive * (1.0 - term.astype(jnp.float32))
        a2, logp2 = _sample(L, state, k_a, obs2)
        ret = ret - alive * disc * gamma * alpha * logp2  # entropy of the NEXT action
        return (obs2, es2, a2, alive, ret), None

    (obs_h, _, a_h, alive, ret), _ = jax.lax.scan(
        step, (obs, es, a0, jnp.ones(n), jnp.zeros(n)),
        (jax.random.split(k_run, horizon), jnp.arange(horizon, dtype=jnp.float32)))
    # Tail: gamma^H Q_hat(s_H, a_H) (the -alpha log pi(a_H) term was already added in the loop).
    ret = ret + alive * gamma**horizon * _q_hat(L, state, obs_h, a_h)
    per = jnp.mean(jnp.reshape(q0 - ret, (K, num_rollouts)), axis=1)
    return {"bias": jnp.mean(per), "bias_per_state": per}


def measure_bias(L: Learner, state: AgentState, key: jax.Array, gamma: float,
                 num_states: int = 8, num_rollouts: int = 16,
                 horizon: int = 300) -> dict[str, jax.Array]:
    """Both estimates at one evaluation point: the paper's (1 episode) and the rollout one from
    `num_states` evenly spaced states of that episode. Jit/vmap at the call site."""
    k1, k2 = jax.random.split(key)
    p = paper_bias(L, state, k1, gamma, num_episodes=1)
    T = p["alive"].shape[0]
    # Evenly spaced alive steps of the first episode (clipped to the last alive step).
    n_alive = jnp.maximum(jnp.sum(p["alive"][:, 0]).astype(jnp.int32), 1)
    idx = (jnp.arange(num_states) * n_alive) // num_states
    idx = jnp.minimum(idx, T - 1)
    states = jax.tree.map(lambda x: x[idx, 0], p["env_states"])
    r = rollout_bias(L, state, k2, states, gamma, num_rollouts, horizon)
    return {"bias_paper": p["bias"], "bias_rollout": r["bias"], "q_mean": p["q_mean"],
            "soft_return": p["soft_return"]}
