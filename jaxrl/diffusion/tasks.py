"""Sequential action-chunk tasks with exact conditional denoisers, for warm-started (RTI)
diffusion policies (`rti.py`); the exact score isolates the sampler from learning error.

Common interface: `init(key) -> (p0, ctx)`, `expert(p, t, ctx) -> (q [2, H, 2], w [H])` (the two
modes' plans and the gripper-closed probabilities), `denoiser(p, t, ctx)` (exact denoiser of the
scaled chunk distribution on flattened chunks `[H * 3]`), `action_error(chunk, p, t, ctx)` and
`discrete` (mask of the discrete action dimension).

* `LaneTrackTask` (used by the experiment): a time-consistent expert. A target moves on a circle;
  the expert escorts it in one of two lanes (inside or outside, equal weights, so the action
  distribution stays bimodal at every step) and closes/opens a gripper on a periodic schedule.
  Executing the first action of a mode's plan makes the next plan of that mode equal to the old
  plan shifted by one step (up to process noise and the padded last entry): RTI's premise.
* `expert_chunks`, `LaneTrackTask.observation` / `offset` / `sample_chunk` and
  `LearnedPolicyTask`: expert demonstrations of the lane task and the task with its exact
  denoiser replaced by a trained conditional diffusion policy (observation -> chunk relative to
  the state; issue 20 item 3), for the same warm-start study with a learned denoiser.
* `ReachGraspTask` (kept as the counter-example): a point reaches a static goal passing an
  obstacle on the left or right. Its expert is NOT time-consistent (the obstacle offset is
  re-applied around the already offset position), and after ~8 steps the point sits at the goal
  where the task is unimodal and trivial.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxrl.diffusion import network
from jaxrl.diffusion.scores import Denoiser


def chunk_mixture_denoiser(
    q: jax.Array, w: jax.Array, tau: float, tau_grip: float, factor: float
) -> Denoiser:
    """Exact denoiser of an action-chunk distribution on flattened chunks `[H * 3]`.

    Continuous part `[H, 2]`: equal-weight mixture of two isotropic Gaussians with means
    `q: [2, H, 2]` and std `tau`. Gripper `[H]`: independent entries, `+1 / factor` with
    probability `w: [H]` else `-1 / factor`, each with std `tau_grip / factor`. Returns
    `D(x; sigma) = E[x0 | x]` (Tweedie), tested against autodiff of the smoothed log density."""
    horizon = q.shape[1]
    c, v = 1.0 / factor, (tau_grip / factor) ** 2

    def den(x: jax.Array, sigma: jax.Array) -> jax.Array:
        x = x.reshape(horizon, 3)
        s2 = sigma**2
        var = tau**2 + s2
        logits = -jnp.sum((x[None, :, :2] - q) ** 2, axis=(1, 2)) / (2.0 * var)
        r = jax.nn.softmax(logits)
        cont = (tau**2 * x[:, :2] + s2 * jnp.einsum("j,jhd->hd", r, q)) / var
        xg = x[:, 2]
        logit = jnp.log(w) - jnp.log1p(-w) + 2.0 * c * xg / (v + s2)
        rg = jax.nn.sigmoid(logit)
        mode = rg * c - (1.0 - rg) * c
        grip = (v * xg + s2 * mode) / (v + s2)
        return jnp.concatenate([cont, grip[:, None]], axis=-1).reshape(-1)

    return den


def _first_action_error(chunk: jax.Array, q: jax.Array, w: jax.Array):
    pos_err = jnp.min(jnp.linalg.norm(chunk[0, :2] - q[:, 0], axis=-1))
    grip_err = jnp.where(chunk[0, 2] >= 0, 1.0, 0.0) != jnp.where(w[0] >= 0.5, 1.0, 0.0)
    return pos_err, grip_err.astype(jnp.float32)


@dataclasses.dataclass(frozen=True)
class LaneTrackTask:
    """Time-consistent, persistently bimodal tracking task for warm-started diffusion policies.

    A target moves on a circle, `g(t) = radius (cos(phi + speed t), sin(phi + speed t))`; two
    lanes run alongside it, `lane_j(t) = g(t) + s_j delta u(t)` (`u` the radial unit vector,
    `s = +-1`). The expert's plan in mode `j` from position `p: [2]` at step `t` is
    `q_j[k] = lane_j(t + k) + (p - lane_j(t)) gamma^k`, `k = 1..H` (converge onto the lane while
    tracking it); both modes have weight 1/2 at every step (stay in the lane or change lane),
    with isotropic std `tau`. Gripper: closed (+1) with probability
    `w(t + k) = sigmoid(sin(2 pi (t + k) / period + psi) / kappa)` (a grasp/release cycle),
    stored divided by `factor` (the paper's scaling; `factor = 1` turns it off). Action chunk
    `[H, 3]`; `ctx = (phi, psi)` drawn per episode.
    """

    horizon: int = 8
    gamma: float = 0.5
    tau: float = 0.02
    delta: float = 0.15
    radius: float = 1.0
    speed: float = 0.05        # target angular speed, radians per control step
    tau_grip: float = 0.05
    period: float = 20.0       # gripper cycle, control steps
    kappa: float = 0.2
    factor: float = 10.0
    process_noise: float = 0.01

    @property
    def discrete(self) -> jax.Array:
        return jnp.array([False, False, True])

    def init(self, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        """`(p0 [2], ctx [2])`: start near the inner lane, random target phase and grip phase."""
        k1, k2 = jax.random.split(key)
        ctx = jax.random.uniform(k1, (2,), minval=0.0, maxval=2 * jnp.pi)
        lanes = self.lanes(jnp.zeros(()), ctx)
        return lanes[0, 0] + 0.05 * jax.random.normal(k2, (2,)), ctx

    def lanes(self, ts: jax.Array, ctx: jax.Array) -> jax.Array:
        """Lane positions `[2, T, 2]` at steps `ts: [T]` (or a scalar -> `[2, 1, 2]`)."""
        ang = ctx[0] + self.speed * jnp.atleast_1d(ts)
        u = jnp.stack([jnp.cos(ang), jnp.sin(ang)], -1)
        s = jnp.array([-1.0, 1.0])[:, None, None]
        return (self.radius + s * self.delta) * u[None]

    def expert(self, p: jax.Array, t: jax.Array, ctx: jax.Array):
        """Mode plans `q: [2, H, 2]` and gripper-closed probabilities `w: [H]`."""
        k = jnp.arange(1, self.horizon + 1, dtype=p.dtype)
        now = self.lanes(t, ctx)  # [2, 1, 2]
        q = self.lanes(t + k, ctx) + (p - now) * (self.gamma**k)[None, :, None]
        w = jax.nn.sigmoid(jnp.sin(2 * jnp.pi * (t + k) / self.period + ctx[1]) / self.kappa)
        return q, jnp.clip(w, 1e-6, 1 - 1e-6)

    def denoiser(self, p: jax.Array, t: jax.Array, ctx: jax.Array) -> Denoiser:
        q, w = self.expert(p, t, ctx)
        return chunk_mixture_denoiser(q, w, self.tau, self.tau_grip, self.factor)

    def action_error(self, chunk: jax.Array, p: jax.Array, t: jax.Array, ctx: jax.Array):
        """Executed first action's distance to the nearest mode mean, and gripper mismatch."""
        q, w = self.expert(p, t, ctx)
        return _first_action_error(chunk, q, w)

    def observation(self, p: jax.Array, t: jax.Array, ctx: jax.Array) -> jax.Array:
        """The policy's observation `[6]`: position relative to the target `p - g(t)` (2), the
        target's direction `(cos, sin)` of its angle (2) and the gripper-cycle phase
        `(cos, sin)(2 pi t / period + psi)` (2). The expert's chunk distribution relative to
        `p` (`chunk - offset(p)`) is a function of it alone."""
        ang = ctx[0] + self.speed * t
        u = jnp.stack([jnp.cos(ang), jnp.sin(ang)])
        ph = 2 * jnp.pi * t / self.period + ctx[1]
        return jnp.concatenate([p - self.radius * u, u, jnp.stack([jnp.cos(ph), jnp.sin(ph)])])

    def offset(self, p: jax.Array) -> jax.Array:
        """`[H * 3]`: `p` at every continuous entry of the flattened chunk, 0 at the gripper."""
        return jnp.tile(jnp.concatenate([p, jnp.zeros(1, p.dtype)]), self.horizon)

    def sample_chunk(self, key: jax.Array, p: jax.Array, t: jax.Array,
                     ctx: jax.Array) -> jax.Array:
        """One expert chunk `[H * 3]` (flattened, gripper scaled by `1 / factor`), exactly from
        the distribution `denoiser` denoises: a mode with probability 1/2, its plan plus
        `tau` noise, each gripper entry `+-1 / factor` (closed with probability `w`) plus
        `tau_grip / factor` noise."""
        k_m, k_x, k_g, k_gn = jax.random.split(key, 4)
        q, w = self.expert(p, t, ctx)
        cont = q[jax.random.bernoulli(k_m).astype(jnp.int32)]
        cont = cont + self.tau * jax.random.normal(k_x, cont.shape)
        g = jnp.where(jax.random.uniform(k_g, w.shape) < w, 1.0, -1.0)
        g = (g + self.tau_grip * jax.random.normal(k_gn, w.shape)) / self.factor
        return jnp.concatenate([cont, g[:, None]], -1).reshape(-1)


class ExpertData(NamedTuple):
    """Expert demonstrations, `N` rows: observation `obs [N, 6]`, expert chunk `chunks [N, H * 3]`,
    `offsets [N, H * 3]` (`task.offset` of the state) and the state itself (`p [N, 2]`,
    `t [N]`, `ctx [N, 2]`)."""

    obs: jax.Array
    chunks: jax.Array
    offsets: jax.Array
    p: jax.Array
    t: jax.Array
    ctx: jax.Array


def expert_chunks(task: LaneTrackTask, key: jax.Array, num_episodes: int,
                  steps: int) -> ExpertData:
    """Expert demonstrations of `task`: `num_episodes` episodes of `steps` control steps, each
    step drawing a chunk with `task.sample_chunk` and executing its first action (plus process
    noise); `N = num_episodes * steps` rows, episode-major."""

    def episode(k):
        k_init, k_run = jax.random.split(k)
        p0, ctx = task.init(k_init)

        def step(p, inp):
            t, kk = inp
            k_c, k_n = jax.random.split(kk)
            chunk = task.sample_chunk(k_c, p, t, ctx)
            p_next = chunk.reshape(task.horizon, 3)[0, :2] + task.process_noise * \
                jax.random.normal(k_n, (2,))
            return p_next, (task.observation(p, t, ctx), chunk, task.offset(p), p, t, ctx)

        ts = jnp.arange(steps, dtype=jnp.float32)
        return jax.lax.scan(step, p0, (ts, jax.random.split(k_run, steps)))[1]

    out = jax.vmap(episode)(jax.random.split(key, num_episodes))
    n = num_episodes * steps
    return ExpertData(*(a.reshape((n, *a.shape[2:])) for a in out))


@dataclasses.dataclass(frozen=True)
class LearnedPolicyTask:
    """`base` (a `LaneTrackTask`) with its exact denoiser replaced by a trained conditional
    diffusion policy: `denoiser(p, t, ctx)` is `network.make_denoiser` of `params` conditioned
    on `base.observation(p, t, ctx)`, the net trained on chunks relative to `base.offset(p)`
    (`network.train_score_net(key, d.chunks - d.offsets, cfg, d.obs)`, `d = expert_chunks(...)`).
    Everything else (dynamics, expert, errors) is `base`'s, so the same study runs on either."""

    base: LaneTrackTask
    params: Any
    net_cfg: Any  # network.ScoreNetConfig

    def __getattr__(self, name: str):
        if name in ("base", "params", "net_cfg"):  # not set yet (copy, unpickling)
            raise AttributeError(name)
        return getattr(self.base, name)

    def denoiser(self, p: jax.Array, t: jax.Array, ctx: jax.Array) -> Denoiser:
        return network.make_denoiser(self.params, self.base.horizon * 3, self.net_cfg,
                                     cond=self.base.observation(p, t, ctx),
                                     offset=self.base.offset(p))


@dataclasses.dataclass(frozen=True)
class ReachGraspTask:
    """Exact-score toy task for warm-started diffusion policies (see module docstring).

    Action chunk `[H, 3]`: two target-position coordinates and a gripper (+1 closed, -1 open);
    the gripper dimension is stored divided by `factor` (the paper's scaling; `factor = 1` turns
    it off). The continuous part is bimodal: the expert passes an obstacle on the left or on the
    right (two paths `q +- delta_k n`, `n` normal to the goal direction, equal weights, isotropic
    std `tau`), so a solver that blurs the two modes executes an action between them. Observation:
    position `p: [2]`; goal `g: [2]` fixed per episode.
    """

    horizon: int = 8
    gamma: float = 0.75
    tau: float = 0.02          # std of the continuous actions given the state and the mode
    delta: float = 0.15        # half distance between the two routes (shrinks near the goal)
    tau_grip: float = 0.05     # std of each gripper mode (before scaling)
    radius: float = 0.3        # gripper closes when the planned point is this close to the goal
    kappa: float = 0.03        # softness of the gripper decision
    factor: float = 10.0       # discrete-dimension scale (paper's default 10)
    process_noise: float = 0.02

    @property
    def discrete(self) -> jax.Array:
        return jnp.array([False, False, True])

    def init(self, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        """`(p0 [2], ctx = goal [2])`: goal in `[-1, 1]^2`, start at distance 2 from it."""
        k_goal, k_start = jax.random.split(key)
        g = jax.random.uniform(k_goal, (2,), minval=-1.0, maxval=1.0)
        ang = jax.random.uniform(k_start, (), minval=0.0, maxval=2 * jnp.pi)
        return g + 2.0 * jnp.array([jnp.cos(ang), jnp.sin(ang)]), g

    def expert(self, p: jax.Array, t: jax.Array, g: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Expert mode paths `q: [2, H, 2]` and probability the gripper is closed `w: [H]`
        (`t` is unused: the goal is static)."""
        del t
        k = jnp.arange(1, self.horizon + 1, dtype=p.dtype)[:, None]
        mid = g + (p - g) * self.gamma**k
        dist = jnp.linalg.norm(mid - g, axis=-1, keepdims=True)
        u = (g - p) / (jnp.linalg.norm(g - p) + 1e-6)
        normal = jnp.array([-u[1], u[0]])
        off = self.delta * jnp.minimum(1.0, dist) * normal
        w = jax.nn.sigmoid((self.radius - dist[:, 0]) / self.kappa)
        return jnp.stack([mid + off, mid - off]), w

    def denoiser(self, p: jax.Array, t: jax.Array, g: jax.Array) -> Denoiser:
        """Exact denoiser of the chunk distribution given `p`, on flattened chunks `[H * 3]`."""
        q, w = self.expert(p, t, g)
        return chunk_mixture_denoiser(q, w, self.tau, self.tau_grip, self.factor)

    def action_error(self, chunk: jax.Array, p: jax.Array, t: jax.Array, g: jax.Array):
        """Errors of the executed first action (`chunk: [H, 3]`, gripper already +-1): distance
        to the nearest expert route, and gripper mismatch in {0, 1}."""
        q, w = self.expert(p, t, g)
        return _first_action_error(chunk, q, w)
