"""Warm-started (real-time iteration) denoising for sequential decisions.

Duan, Yin & Kragic ("Real-Time Iteration Scheme for Diffusion Policy", 2025) borrow the
real-time-iteration idea of model predictive control: a diffusion policy predicts an action chunk
`[H, A]`; at the next control step, instead of denoising from pure noise, start from the previous
solution shifted by one step (executed action dropped, last action repeated) and run only the last
few denoising steps, i.e. start at a low intermediate noise level. Pieces:

* `shift_chunk`: the shifted initial guess.
* Discrete action dimensions (a gripper, +-1): a guess that is wrong by the full gap `2` cannot be
  corrected by a few low-noise steps. The paper's fix (and its public code) trains on the discrete
  dimension divided by a factor (10 by default) and thresholds the output back to `+-1`
  (`scale_discrete` / `unscale_discrete`); its alternative "clipping" snaps the guess's discrete
  entries to `+-1 / factor` (`clip_discrete`).
* Start level from contractivity: the warm-started solver map `Phi_k: x -> x0` (the tail of the
  schedule from level `sigma_k`) shrinks the guess error by at most its Lipschitz constant
  `L_k = ||d Phi_k / dx||_2`, so the output error is about `L_k * e0` for a guess error `e0`. The
  paper derives contractivity conditions to estimate the initial step; our implementation of that
  idea measures `L_k` by power iteration on the Jacobian (jvp/vjp) at a calibration guess and picks
  the shortest tail with `L_k * e0 <= tol` (`choose_start_index`).

Two small sequential tasks with exact conditional scores (so the study isolates the sampler), with
a common interface `init(key) -> (p0, ctx)`, `expert(p, t, ctx) -> (q [2, H, 2], w [H])`,
`denoiser(p, t, ctx)`, `action_error(chunk, p, t, ctx)`:

* `LaneTrackTask` (used by the experiment): a time-consistent expert. A target moves on a circle;
  the expert escorts it in one of two lanes (inside or outside, equal weights, so the action
  distribution stays bimodal at every step) and closes/opens a gripper on a periodic schedule.
  Executing the first action of a mode's plan makes the next plan of that mode equal to the old
  plan shifted by one step (up to process noise and the padded last entry): RTI's premise.
* `ReachGraspTask` (kept as the counter-example that explains the first measurement): a point
  reaches a static goal passing an obstacle on the left or right. Its expert is NOT
  time-consistent (the obstacle offset is re-applied around the already offset position, so the
  next plan differs from the shifted one by about `gamma^k * offset`), and after ~8 steps the
  point sits at the goal where the task is unimodal and trivial.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from jaxrl.diffusion import samplers as samplers_lib
from jaxrl.diffusion.scores import Denoiser


def shift_chunk(chunk: jax.Array) -> jax.Array:
    """Drops the executed first action and repeats the last: `[H, A] -> [H, A]`."""
    return jnp.concatenate([chunk[1:], chunk[-1:]], axis=0)


def scale_discrete(chunk: jax.Array, discrete: jax.Array, factor: float) -> jax.Array:
    """Divides the discrete action dimensions (`discrete: [A]` bool) by `factor`: `[H, A]`."""
    return jnp.where(discrete, chunk / factor, chunk)


def unscale_discrete(chunk: jax.Array, discrete: jax.Array) -> jax.Array:
    """Thresholds discrete dimensions back to `+-1` (sign, 0 -> +1): `[H, A]`."""
    return jnp.where(discrete, jnp.where(chunk >= 0, 1.0, -1.0), chunk)


def clip_discrete(chunk: jax.Array, discrete: jax.Array, factor: float) -> jax.Array:
    """The paper's clipping alternative: snaps discrete entries of a guess to `+-1 / factor`."""
    return jnp.where(discrete, jnp.where(chunk >= 0, 1.0, -1.0) / factor, chunk)


def warm_start_denoise(
    denoiser: Denoiser, guess: jax.Array, sigmas_tail: jax.Array, *, name: str = "euler",
    key: jax.Array | None = None, renoise: bool = False,
) -> tuple[jax.Array, jax.Array]:
    """Denoises from a guess `[D]` treated as the state at level `sigmas_tail[0]`.

    `renoise=True` adds `sigmas_tail[0] * z` first (SDEdit-style); the paper's code uses the guess
    as is (`renoise=False`). Returns `(x0 [D], nfe)`."""
    key = jax.random.PRNGKey(0) if key is None else key
    k_noise, k_run = jax.random.split(key)
    x = guess
    if renoise:
        x = x + sigmas_tail[0] * jax.random.normal(k_noise, x.shape, x.dtype)
    return samplers_lib.get_sampler(name)(denoiser, x, sigmas_tail, key=k_run)


def map_lipschitz(fn, x: jax.Array, key: jax.Array, num_iters: int = 30) -> jax.Array:
    """Spectral norm of the Jacobian of `fn: [D] -> [D]` at `x` by power iteration on `J^T J`."""
    v = jax.random.normal(key, x.shape, x.dtype)
    _, vjp = jax.vjp(fn, x)

    def body(v, _):
        v = v / jnp.linalg.norm(v)
        jv = jax.jvp(fn, (x,), (v,))[1]
        return vjp(jv)[0], None

    v, _ = jax.lax.scan(body, v, None, length=num_iters)
    v = v / jnp.linalg.norm(v)
    return jnp.linalg.norm(jax.jvp(fn, (x,), (v,))[1])


def tail_lipschitz(
    denoiser: Denoiser, guess: jax.Array, sigmas: jax.Array, start: int, key: jax.Array,
    name: str = "euler",
) -> jax.Array:
    """`L_k` of the warm-started map from level `sigmas[start]` (the tail `sigmas[start:]`)."""
    fn = lambda x: samplers_lib.get_sampler(name)(denoiser, x, sigmas[start:], key=key)[0]
    return map_lipschitz(fn, guess, key)


def choose_start_index(lipschitz: list[float] | jax.Array, err0: float, tol: float) -> int:
    """Given `L_k` for every start index `k` of a schedule of `N` steps (`lipschitz: [N]`), returns
    the largest `k` (fewest steps, `N - k`) with `L_k * err0 <= tol`; `0` (full solve) if none."""
    lips = [float(v) for v in lipschitz]
    for k in range(len(lips) - 1, -1, -1):
        if lips[k] * err0 <= tol:
            return k
    return 0


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
