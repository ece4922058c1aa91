"""Parametric policies with flat parameter vectors, and episode collection with scores.

A `Policy` has `log_prob(theta, obs, action) -> scalar`, `sample(key, theta, obs) -> action`
and `project(theta) -> theta` (kept inside a valid set after a gradient step). The score
`u = grad_theta log pi(a | x; theta)` comes from `jax.grad` (Ghavamzadeh, Engel & Valko, JMLR
2016, Sec. 2: the trajectory score `u(xi) = sum_t grad log pi(a_t | x_t)` needs no model).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp


class Policy(NamedTuple):
    """A policy over flat parameters `theta: [num_params]`.

    `fisher_at(theta, obs) -> [n, n]` is the policy's Fisher information at one state,
    `E_{a ~ pi(. | x)}[u u^T]` with `u = grad_theta log pi(a | x)`, computed from the policy
    alone (closed form or a sum over the actions; no environment interaction)."""

    log_prob: Callable[[jax.Array, jax.Array, jax.Array], jax.Array]
    sample: Callable[[jax.Array, jax.Array, jax.Array], jax.Array]
    project: Callable[[jax.Array], jax.Array]
    num_params: int
    name: str
    fisher_at: Callable[[jax.Array, jax.Array], jax.Array] | None = None


def gaussian_linear_policy(min_sigma: float = 0.05, max_sigma: float = 5.0,
                           max_abs_gain: float = 2.0) -> Policy:
    """The LQR policy of the BPG papers: `a ~ N(lambda x, sigma^2)`, `theta = (lambda, sigma)`,
    obs `[1]`, scalar action. `project` clips `sigma` to `[min_sigma, max_sigma]` and
    `|lambda|` to `max_abs_gain`."""

    def log_prob(theta, obs, action):
        lam, sig = theta[0], theta[1]
        eps = (action - lam * obs[0]) / sig
        return -0.5 * eps**2 - jnp.log(sig) - 0.5 * jnp.log(2.0 * jnp.pi)

    def sample(key, theta, obs):
        return theta[0] * obs[0] + theta[1] * jax.random.normal(key, (), theta.dtype)

    def project(theta):
        return jnp.stack([jnp.clip(theta[0], -max_abs_gain, max_abs_gain),
                          jnp.clip(theta[1], min_sigma, max_sigma)])

    def fisher_at(theta, obs):
        # u = (eps x / sigma, (eps^2 - 1) / sigma) with eps ~ N(0, 1): E[eps^2] = 1,
        # E[(eps^2 - 1)^2] = 2, E[eps (eps^2 - 1)] = 0.
        sig2 = theta[1] ** 2
        return jnp.diag(jnp.stack([obs[0].astype(theta.dtype) ** 2 / sig2, 2.0 / sig2]))

    return Policy(log_prob, sample, project, 2, "gaussian_linear", fisher_at)


def rbf_grid_features(num_per_dim: int, dim: int, width: float | None = None
                      ) -> tuple[Callable[[jax.Array], jax.Array], int]:
    """Gaussian radial basis functions on a regular grid over `[0, 1]^dim`.

    Centres at `linspace(0, 1, num_per_dim)` in every coordinate (`num_per_dim ** dim` of them,
    the last coordinate varying fastest); `phi_j(x) = exp(-||x - c_j||^2 / (2 width^2))`, with
    `width` the grid spacing `1 / (num_per_dim - 1)` by default. Returns `(features, k)` with
    `features(obs: [dim]) -> [k]` (the 4 x 4 grid on normalised mountain-car states of the BAC
    experiments, JMLR 2016 Sec. 8, is `rbf_grid_features(4, 2)`)."""
    if num_per_dim < 2 or dim < 1:
        raise ValueError(f"rbf_grid_features needs num_per_dim >= 2 and dim >= 1, got "
                         f"{num_per_dim}, {dim}")
    w = 1.0 / (num_per_dim - 1) if width is None else float(width)
    axes = jnp.meshgrid(*([jnp.linspace(0.0, 1.0, num_per_dim)] * dim), indexing="ij")
    centres = jnp.stack([a.reshape(-1) for a in axes], axis=1)  # [k, dim]

    def features(obs):
        x = jnp.asarray(obs)
        d2 = jnp.sum((x[None, :] - centres.astype(x.dtype)) ** 2, axis=1)
        return jnp.exp(-0.5 * d2 / w**2)

    return features, int(centres.shape[0])


def softmax_linear_policy(obs_dim: int, num_actions: int,
                          features: Callable[[jax.Array], jax.Array] | None = None,
                          num_features: int | None = None) -> Policy:
    """Boltzmann policy `pi(a | x) ∝ exp(w_a^T [phi(x), 1])` with `w_0 = 0` (identifiable).

    `phi` is `features` (`obs -> [num_features]`, e.g. `rbf_grid_features`) or the observation
    itself (`num_features = obs_dim`). `theta = vec(W)`, `W: [A - 1, num_features + 1]` holds the
    weights of actions `1..A-1`; action 0's logit is fixed at 0. With a free `w_0` the softmax
    is invariant to adding one vector to every `w_a`, so the Fisher information is singular by
    construction and the Fisher kernels of BPG (which use `G^{-1}`) amplify round-off along that
    null direction. `theta = 0` is the uniform random policy.
    """
    if num_actions < 2:
        raise ValueError(f"softmax_linear_policy needs num_actions >= 2, got {num_actions}")
    if features is None:
        phi_dim = obs_dim
        features = lambda obs: obs  # noqa: E731
    elif num_features is None:
        raise ValueError("softmax_linear_policy: num_features is required with features")
    else:
        phi_dim = int(num_features)
    n = (num_actions - 1) * (phi_dim + 1)

    def logits(theta, obs):
        w = theta.reshape(num_actions - 1, phi_dim + 1)
        phi = features(obs).astype(theta.dtype)
        rest = w @ jnp.concatenate([phi, jnp.ones((1,), theta.dtype)])
        return jnp.concatenate([jnp.zeros((1,), theta.dtype), rest])

    def log_prob(theta, obs, action):
        return jax.nn.log_softmax(logits(theta, obs))[action]

    def sample(key, theta, obs):
        return jax.random.categorical(key, logits(theta, obs))

    def fisher_at(theta, obs):
        # exact: sum over the actions of pi(a | x) u_a u_a^T, u_a = grad log pi(a | x)
        probs = jax.nn.softmax(logits(theta, obs))
        scores = jax.jacobian(lambda t: jax.nn.log_softmax(logits(t, obs)))(theta)  # [A, n]
        return jnp.einsum("a,ai,aj->ij", probs, scores, scores)

    return Policy(log_prob, sample, lambda t: t, n, "softmax_linear", fisher_at)


class Episodes(NamedTuple):
    """A batch of `M` episodes padded to `T` steps (`valid` marks real steps).

    Attributes:
      obs: `[M, T, d]`; actions: `[M, T]`; rewards: `[M, T]`; valid: `[M, T]` bool;
      scores: `[M, T, n]` per-step `grad log pi(a_t | x_t)` (zero on padding);
      terminated: `[M]` bool, whether the episode reached a terminal state (not truncation).
    """

    obs: jax.Array
    actions: jax.Array
    rewards: jax.Array
    valid: jax.Array
    scores: jax.Array
    terminated: jax.Array

    @property
    def returns(self) -> jax.Array:
        """Undiscounted episode returns `R(xi)`: `[M]`."""
        return jnp.sum(self.rewards, axis=1)

    @property
    def trajectory_scores(self) -> jax.Array:
        """`u(xi_i) = sum_t grad log pi(a_t | x_t)`: `[M, n]`."""
        return jnp.sum(self.scores, axis=1)


def collect_episodes(env: Any, env_params: Any, policy: Policy, theta: jax.Array,
                     key: jax.Array, num_episodes: int, max_steps: int) -> Episodes:
    """Run `num_episodes` independent episodes of at most `max_steps` steps (gymnax protocol;
    steps after the first `terminated or truncated` are masked out)."""
    score = jax.grad(policy.log_prob)

    def one_episode(k):
        k_reset, k_steps = jax.random.split(k)
        obs, state = env.reset(k_reset, env_params)

        def step(carry, kk):
            obs, state, alive, term = carry
            k_act, k_env = jax.random.split(kk)
            action = policy.sample(k_act, theta, obs)
            u = score(theta, obs, action)
            obs2, state2, reward, terminated, truncated, _ = env.step(
                k_env, state, action, env_params)
            done = jnp.logical_or(terminated, truncated)
            out = (obs, action, jnp.where(alive, reward, 0.0).astype(theta.dtype), alive,
                   jnp.where(alive, u, 0.0))
            term = term | (alive & terminated)
            return (obs2, state2, alive & ~done, term), out

        init = (obs, state, jnp.asarray(True), jnp.asarray(False))
        (_, _, _, term), (o, a, r, v, u) = jax.lax.scan(
            step, init, jax.random.split(k_steps, max_steps))
        return Episodes(o, a, r, v, u, term)

    return jax.vmap(one_episode)(jax.random.split(key, num_episodes))


def fisher_per_episode_states(policy: Policy, theta: jax.Array, ep: Episodes) -> jax.Array:
    """Each episode's `sum_t F(x_t)`, `F(x) = E_{a ~ pi(. | x)}[u u^T]` (`policy.fisher_at`),
    over its valid steps: `[M, n, n]`."""
    if policy.fisher_at is None:
        raise ValueError(f"policy {policy.name!r} has no fisher_at")
    per = jax.vmap(jax.vmap(lambda x: policy.fisher_at(theta, x)))(ep.obs)  # [M, T, n, n]
    return jnp.einsum("mt,mtij->mij", ep.valid.astype(per.dtype), per)


def fisher_from_states(policy: Policy, theta: jax.Array, ep: Episodes,
                       mask: jax.Array | None = None) -> jax.Array:
    """`G ~= (1/M) sum_i sum_t F(x_it)`, `F(x) = E_{a ~ pi(. | x)}[u u^T]` (`policy.fisher_at`).

    The per-step estimate `(1/M) sum_i sum_t u_it u_it^T` (`bpg.fisher_from_steps`) with the
    expectation over each step's action taken analytically: the same mean (unbiased for the
    trajectory Fisher, JMLR 2016 Sec. 4) and a smaller variance (the action noise is averaged
    out; only the states are sampled), still model-free. `[n, n]`; `mask: [M]` keeps episodes.
    """
    per = fisher_per_episode_states(policy, theta, ep)
    w = jnp.ones(per.shape[0], per.dtype) if mask is None else mask.astype(per.dtype)
    return jnp.einsum("m,mij->ij", w, per) / jnp.sum(w)
