"""Warm-started (real-time iteration, RTI) denoising for closed-loop control with action chunks.

Duan, Yin & Kragic ("Real-Time Iteration Scheme for Diffusion Policy", 2025) borrow RTI from
model predictive control: a diffusion policy predicts an action chunk `[H, A]`; at the next
control step, instead of denoising from pure noise, the previous chunk shifted by one step
(executed action dropped, last action repeated) is taken as the state at a small noise level and
only the last few denoising steps are run. Their code (RTI-DP/rti-dp,
`diffusion_unet_lowdim_rti_policy.py`, `config/rti/*.yaml`) runs diffusers' `DDPMScheduler.step`
(ancestral, noisy) at timesteps `steps: [2, 1, 0]` of 100 (PushT; `[3, 1, 0]`-style lists
elsewhere) on the shifted guess used as is. Here: `sde.ddpm_tail` + `samplers.ddpm` (`eta = 1`,
the paper's protocol) or `eta = 0` / `ddim` (the deterministic variant, an option).

Pieces:

* `shift_chunk`, and the discrete-dimension handling of the paper's code: train on the discrete
  dimension divided by a factor and threshold back to `+-1` (`scale_discrete`,
  `unscale_discrete`), or snap the guess's discrete entries to `+-1 / factor` (`clip_discrete`).
* `Solver` (a sampler name, its schedule, warm or cold) and `solve`.
* `closed_loop`: one closed-loop episode of a solver on a `tasks` task (the first control step
  of a warm solver is a full solve).
* `matched_state_actions`: the distribution of the executed first action at the states of a
  reference (full-solve) episode, with the warm chain's own guesses carried along those states
  (teacher-forced states, so warm and full solve are compared at the same states).
* `agreement`: two-sided distributional agreement of a solver's first actions with the full
  solve's at matched states (sliced W2 and MMD against the floor of a second full-solve set,
  mode proportions, dispersion ratio: < 1 under-, > 1 over-dispersed, gripper proportions).
* `accept` / `choose_start_level`: the start-level rule: the cheapest candidate that passes every
  two-sided check and the closed-loop success check; a collapsed (under-dispersed) or blurred
  candidate is rejected whatever its action error.
* `map_lipschitz`: Lipschitz constant of a map by power iteration (a diagnostic of contractivity).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl import stats
from jaxrl.diffusion import metrics
from jaxrl.diffusion import samplers as samplers_lib
from jaxrl.diffusion.scores import Denoiser

COLD_SIGMA_MAX = 10.0  # cold starts of the chunk tasks begin at this level


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


class Solver(NamedTuple):
    """A policy solver: sampler `name` (a key of `samplers.SAMPLERS`) on `sigmas: [N + 1]`;
    `warm=True` starts from the shifted previous chunk at `sigmas[0]`, else from
    `sigmas[0] * z`."""

    name: str
    sigmas: jax.Array
    warm: bool


def solve(solver: Solver, den: Denoiser, prev: jax.Array, key: jax.Array, horizon: int):
    """One chunk `[H * 3]` and its NFE: from the shifted `prev` (warm) or from noise (cold)."""
    k_x, k_run = jax.random.split(key)
    if solver.warm:
        x = shift_chunk(prev.reshape(horizon, -1)).reshape(-1)
    else:
        x = solver.sigmas[0] * jax.random.normal(k_x, prev.shape, prev.dtype)
    return samplers_lib.get_sampler(solver.name)(den, x, solver.sigmas, key=k_run)


def _policy_step(task, solver: Solver, full: Solver, p, t, ctx, prev, key):
    """The chunk at step `t`: the full solve at `t = 0` for a warm solver, else `solver`."""
    den = task.denoiser(p, t, ctx)
    if not solver.warm:
        return solve(solver, den, prev, key, task.horizon)
    return jax.lax.cond(t == 0, lambda: solve(full, den, prev, key, task.horizon),
                        lambda: solve(solver, den, prev, key, task.horizon))


def closed_loop(key: jax.Array, task, solver: Solver, full: Solver, control_steps: int):
    """One closed-loop episode of `solver` on `task` (`tasks` interface); `full` is the solver of
    a warm solver's first step. Returns per step `(pos_err [T], grip_err [T], nfe [T], p [T, 2],
    ts [T], ctx)`: the executed first action's distance to the nearest mode mean, the gripper
    mismatch, the NFE spent and the visited positions."""
    k_init, k_loop = jax.random.split(key)
    p0, ctx = task.init(k_init)
    dim = task.horizon * 3

    def step(carry, inp):
        p, prev = carry
        t, k = inp
        k_s, k_noise = jax.random.split(k)
        x, nfe = _policy_step(task, solver, full, p, t, ctx, prev, k_s)
        action = unscale_discrete(x.reshape(task.horizon, 3), task.discrete)
        pos_err, grip_err = task.action_error(action, p, t, ctx)
        p_next = action[0, :2] + task.process_noise * jax.random.normal(k_noise, (2,))
        return (p_next, x), (pos_err, grip_err, nfe, p)

    ts = jnp.arange(control_steps, dtype=jnp.float32)
    _, (pe, ge, nfe, ps) = jax.lax.scan(
        step, (p0, jnp.zeros(dim)), (ts, jax.random.split(k_loop, control_steps)))
    return pe, ge, nfe, ps, ts, ctx


def matched_state_actions(
    key: jax.Array, task, solver: Solver, full: Solver, ps: jax.Array, ts: jax.Array,
    ctx: jax.Array, num: int,
) -> jax.Array:
    """First actions `[T, num, 3]` (gripper thresholded to +-1) of `num` independent copies of
    the policy at the reference states `ps: [T, 2]`, `ts: [T]`; a warm solver carries each copy's
    own previous chunk along those states (its first step is `full`)."""
    dim = task.horizon * 3

    def step(prev, inp):
        p, t, k = inp
        x, _ = jax.vmap(lambda pr, kk: _policy_step(task, solver, full, p, t, ctx, pr, kk))(
            prev, jax.random.split(k, num))
        first = unscale_discrete(x.reshape(num, task.horizon, 3), task.discrete)[:, 0]
        return x, first

    _, firsts = jax.lax.scan(step, jnp.zeros((num, dim)),
                             (ps, ts, jax.random.split(key, ps.shape[0])))
    return firsts


def agreement(
    key: jax.Array, actions: jax.Array, full_a: jax.Array, full_b: jax.Array, means: jax.Array,
    num_projections: int = 32,
) -> dict[str, jax.Array]:
    """Two-sided agreement of a solver's first actions with the full solve's at matched states.

    `actions, full_a, full_b: [T, M, 3]` (continuous `[..., :2]`, gripper `+-1`), `full_b` a
    second independent full-solve set (the sampling floor); `means: [T, 2, 2]` the two modes'
    first-action means per state. Per-state statistics averaged over states:
    `sw`, `mmd` (continuous part vs `full_a`) and their floors `sw_floor`, `mmd_floor`
    (`full_b` vs `full_a`); `mode0` / `mode0_full` (share nearest to mode 0, pooled);
    `dispersion` = RMS distance to the nearest mode mean, solver over full (1 = matched, < 1
    under-dispersed / collapsed, > 1 over-dispersed / blurred) and `dispersion_floor` (`full_b`
    over `full_a`); `closed`, `closed_full` (gripper-closed share)."""
    keys = jax.random.split(key, actions.shape[0])

    def per_state(k, x, a, b, m):
        sw = metrics.sliced_wasserstein(k, x[:, :2], a[:, :2], num_projections)
        sw0 = metrics.sliced_wasserstein(k, b[:, :2], a[:, :2], num_projections)
        mm, mm0 = metrics.mmd(x[:, :2], a[:, :2]), metrics.mmd(b[:, :2], a[:, :2])
        return sw, sw0, mm, mm0

    sw, sw0, mm, mm0 = jax.vmap(per_state)(keys, actions, full_a, full_b, means)

    def dist(x):  # [T, M, 2, 2] -> nearest mode index and distance
        d = jnp.linalg.norm(x[:, :, None, :2] - means[:, None], axis=-1)
        return jnp.argmin(d, -1), jnp.min(d, -1)

    (ia, da), (ifa, dfa), (_, dfb) = dist(actions), dist(full_a), dist(full_b)
    rms = lambda d: jnp.sqrt(jnp.mean(d**2))
    return dict(sw=sw.mean(), sw_floor=sw0.mean(), mmd=mm.mean(), mmd_floor=mm0.mean(),
                mode0=jnp.mean(ia == 0), mode0_full=jnp.mean(ifa == 0),
                dispersion=rms(da) / rms(dfa), dispersion_floor=rms(dfb) / rms(dfa),
                closed=jnp.mean(actions[..., 2] > 0), closed_full=jnp.mean(full_a[..., 2] > 0))


DEFAULT_THRESHOLDS = dict(sw_ratio=1.5, mode_diff=0.1, dispersion_lo=0.8, dispersion_hi=1.25,
                          closed_diff=0.05, success_drop=0.1)


def accept(ag: Mapping[str, Any], success: float, success_full: float,
           thresholds: Mapping[str, float] | None = None) -> tuple[bool, list[str]]:
    """The two-sided start-level test on seed-aggregated statistics (`agreement` keys as floats
    or per-seed arrays, aggregated by IQM; closed-loop success rates in [0, 1]). Fails, with the
    reasons, if: sliced W2 to the full solve exceeds `sw_ratio` x its floor; the mode-0 share
    or the gripper-closed share differs from the full solve's by more than `mode_diff` /
    `closed_diff`; the dispersion ratio leaves `[dispersion_lo, dispersion_hi]` (under- or
    over-dispersed); the closed-loop success rate is more than `success_drop` below the full
    solve's."""
    th = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
    g = {k: float(stats.iqm(np.atleast_1d(np.asarray(v, np.float64)))) for k, v in ag.items()}
    why = []
    if g["sw"] > th["sw_ratio"] * g["sw_floor"]:
        why.append(f"sliced W2 {g['sw']:.4f} > {th['sw_ratio']:g} x floor {g['sw_floor']:.4f}")
    if abs(g["mode0"] - g["mode0_full"]) > th["mode_diff"]:
        why.append(f"mode-0 share {g['mode0']:.2f} vs full {g['mode0_full']:.2f}")
    if not th["dispersion_lo"] <= g["dispersion"] <= th["dispersion_hi"]:
        kind = "under" if g["dispersion"] < th["dispersion_lo"] else "over"
        why.append(f"{kind}-dispersed: ratio {g['dispersion']:.2f}")
    if abs(g["closed"] - g["closed_full"]) > th["closed_diff"]:
        why.append(f"gripper-closed share {g['closed']:.3f} vs full {g['closed_full']:.3f}")
    if success < success_full - th["success_drop"]:
        why.append(f"closed-loop success {success:.2f} vs full {success_full:.2f}")
    return not why, why


def choose_start_level(candidates: list[dict]) -> dict | None:
    """The cheapest (fewest NFE per control step, then earliest listed) candidate with
    `accepted` true; `None` if every candidate is rejected. Each candidate: a dict with `nfe`
    and `accepted` (from `accept`)."""
    ok = [c for c in candidates if c["accepted"]]
    return min(ok, key=lambda c: c["nfe"]) if ok else None


def episode_success(pos_err: jax.Array, grip_err: jax.Array, pos_tol: float,
                    grip_tol: float) -> jax.Array:
    """An episode succeeds if every executed action from step 2 on (`[..., T]`) is within
    `pos_tol` of a mode mean and at most a `grip_tol` share of gripper commands is wrong."""
    return (jnp.max(pos_err[..., 1:], -1) <= pos_tol) & (jnp.mean(grip_err[..., 1:], -1)
                                                          <= grip_tol)


def denoiser_gap(key: jax.Array, task, other, ps: jax.Array, ts: jax.Array, ctx: jax.Array,
                 sigma: float, num: int) -> tuple[jax.Array, jax.Array]:
    """How far `other.denoiser` (e.g. a learned policy) is from `task.denoiser` (exact) at the
    states `ps: [T, 2]`, `ts: [T]`: `num` expert chunks `x0` per state (`task.sample_chunk`),
    noised to `x = x0 + sigma z`. Returns `(gap, risk)`: the RMS over states, samples and the
    `H * 3` entries of `D_other(x) - D_task(x)`, and of `D_task(x) - x0` (the exact denoiser's
    own error, the scale to read the gap against)."""

    def per_state(k, p, t):
        k_0, k_z = jax.random.split(k)
        x0 = jax.vmap(lambda kk: task.sample_chunk(kk, p, t, ctx))(jax.random.split(k_0, num))
        x = x0 + sigma * jax.random.normal(k_z, x0.shape)
        d_task = jax.vmap(task.denoiser(p, t, ctx), (0, None))(x, sigma)
        d_other = jax.vmap(other.denoiser(p, t, ctx), (0, None))(x, sigma)
        return jnp.mean((d_other - d_task) ** 2), jnp.mean((d_task - x0) ** 2)

    g, r = jax.vmap(per_state)(jax.random.split(key, ps.shape[0]), ps, ts)
    return jnp.sqrt(g.mean()), jnp.sqrt(r.mean())
