"""Gradient-estimation study on the paper's LQR: MC vs BPG Model 1 / Model 2 against the exact
gradient (Ghavamzadeh, Engel & Valko, JMLR 2016, Sec. 6.1; digest Part B ground truth 1, 2, 6).

`estimate_gradients(key, ...)` draws `M` episodes at `theta` and returns every estimator's
gradient (and natural gradient) estimate; `jax.vmap` it over keys for repetitions.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxrl.bayes_pg import bpg, policies
from jaxrl.envs.lqr import LQR, LQRParams, lqr_exact_gradient, lqr_trajectory_fisher

ESTIMATORS = ("mc", "mc_baseline", "bpg1", "bpg2")
FISHER_MODES = ("exact", "steps", "trajectory")


def estimate_gradients(key: jax.Array, theta: jax.Array, params: LQRParams, num_episodes: int,
                       fisher_mode: str = "exact", gp_noise: float | jax.Array = 1.0,
                       num_used: jax.Array | None = None, mc_only: bool = False
                       ) -> dict[str, jax.Array]:
    """All estimators on one batch of `num_episodes` LQR episodes at `theta: [2]`.

    `num_used` (a traced int <= num_episodes) keeps only the first `num_used` episodes, so one
    compiled program evaluates every M (vmap over it). `mc_only` skips the BPG models.

    Returns `{name: [2]}` for the gradient estimates (`mc`, `mc_baseline`, `bpg1`, `bpg2`), their
    natural-gradient versions (`nat_<name>`, preconditioned by the same `G` the BPG models use),
    and `{bpg1,bpg2}_cov: [2, 2]` posterior covariances.
    """
    if fisher_mode not in FISHER_MODES:
        raise ValueError(f"fisher_mode must be one of {FISHER_MODES}, got {fisher_mode!r}")
    if num_episodes < 2:
        raise ValueError(f"num_episodes must be >= 2, got {num_episodes}")
    env, pol = LQR(), policies.gaussian_linear_policy()
    ep = policies.collect_episodes(env, params, pol, theta, key, num_episodes,
                                   params.max_steps_in_episode)
    r, u = ep.returns, ep.trajectory_scores
    mask = None if num_used is None else jnp.arange(num_episodes) < num_used
    if fisher_mode == "exact":
        g = lqr_trajectory_fisher(theta, params)
    elif fisher_mode == "steps":
        g = bpg.fisher_from_steps(ep.scores, mask)
    else:
        g = bpg.fisher_from_trajectories(u, mask)
    out = {"mc": bpg.mc_gradient(r, u, mask=mask),
           "mc_baseline": bpg.mc_gradient(r, u, baseline=True, mask=mask)}
    if not mc_only:
        p1 = bpg.bpg_model1(r, u, g, gp_noise, mask)
        p2 = bpg.bpg_model2(r, u, g, gp_noise, mask)
        out.update(bpg1=p1.mean, bpg2=p2.mean)
    g_inv = bpg.inv_psd(g)
    out.update({f"nat_{k}": g_inv @ v for k, v in list(out.items())})
    if not mc_only:
        out["bpg1_cov"], out["bpg2_cov"] = p1.cov, p2.cov
    return out


def truth(theta: jax.Array, params: LQRParams) -> dict[str, jax.Array]:
    """Exact gradient `[2]`, exact natural gradient `G^{-1} grad` `[2]` and `G` `[2, 2]`."""
    g = lqr_trajectory_fisher(theta, params)
    grad = lqr_exact_gradient(theta, params)
    return {"gradient": grad, "natural_gradient": jnp.linalg.solve(g, grad), "fisher": g}


def error_stats(estimates: dict[str, jax.Array], theta: jax.Array, params: LQRParams,
                names: tuple[str, ...] = ESTIMATORS) -> dict[str, dict[str, jax.Array]]:
    """Per estimator (`[reps, 2]` estimates): angle (deg) and relative norm error per repetition,
    against the exact (natural) gradient."""
    t = truth(theta, params)
    out = {}
    for name in names:
        for prefix, ref in (("", t["gradient"]), ("nat_", t["natural_gradient"])):
            est = estimates[prefix + name]
            out[prefix + name] = {"angle_deg": bpg.angle_deg(est, ref),
                                  "rel_error": bpg.relative_error(est, ref)}
    return out
