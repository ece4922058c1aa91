"""Gradient-estimation study on the paper's LQR: MC, BPG Models 1 / 2 and BAC against the exact
gradient (Ghavamzadeh, Engel & Valko, JMLR 2016, Sec. 6.1; digest Part B ground truth 1, 2, 6).

`estimate_gradients(key, ...)` draws `M` episodes at `theta` and returns every estimator's
gradient (and natural gradient) estimate; `jax.vmap` it over keys for repetitions.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from jaxrl import linalg
from jaxrl.bayes_pg import bpg, estimators, gp, policies
from jaxrl.envs.lqr import LQR, LQRParams, lqr_exact_gradient, lqr_trajectory_fisher

ESTIMATORS = estimators.ESTIMATORS  # the one registry (name -> EstimatorSpec)
MC_NAMES = ("mc", "mc_baseline")
FISHER_MODES = ("exact", "steps", "trajectory", "states")


def estimate_gradients(key: jax.Array, theta: jax.Array, params: LQRParams, num_episodes: int,
                       fisher_mode: str = "exact", gp_noise: float | jax.Array = 1.0,
                       num_used: jax.Array | None = None, mc_only: bool = False,
                       fit: bool = False, hypers: Mapping[str, float] | None = None,
                       names: tuple[str, ...] | None = None, capacity: int = 64
                       ) -> dict[str, jax.Array]:
    """Every registered estimator on one batch of `num_episodes` LQR episodes at `theta: [2]`.

    `num_used` (a traced int <= num_episodes) keeps only the first `num_used` episodes, so one
    compiled program evaluates every M (vmap over it). `mc_only` keeps only the MC estimators
    (`names` selects any subset). `fit` fits the GP signal scale and noise per batch by
    evidence maximization (`estimators` module); otherwise BPG uses `gp_noise` and BAC
    `hypers["bac_noise"]` with scale 1. `hypers` overrides `estimators.DEFAULT_HYPERS` (BAC's
    `gamma`, kernel weights, length scale, ALD threshold); `capacity`: BAC dictionary size.

    Returns `{name: [2]}` gradient estimates, their natural-gradient versions (`nat_<name>`,
    preconditioned by the same `G` the kernels use) and, for estimators with a posterior,
    `<name>_cov: [2, 2]`, `<name>_scale`, `<name>_noise`, `<name>_at_bound` (the GP's signal
    scale, noise variance, and whether the evidence fit ended at its range's end), plus
    `bac_dict_size`.
    """
    if fisher_mode not in FISHER_MODES:
        raise ValueError(f"fisher_mode must be one of {FISHER_MODES}, got {fisher_mode!r}")
    if num_episodes < 2:
        raise ValueError(f"num_episodes must be >= 2, got {num_episodes}")
    if names is None:
        names = MC_NAMES if mc_only else tuple(ESTIMATORS)
    hp = {**estimators.DEFAULT_HYPERS, **(hypers or {}), "gp_noise": gp_noise}
    env, pol = LQR(), policies.gaussian_linear_policy()
    ep = policies.collect_episodes(env, params, pol, theta, key, num_episodes,
                                   params.max_steps_in_episode)
    u = ep.trajectory_scores
    mask = None if num_used is None else jnp.arange(num_episodes) < num_used
    if fisher_mode == "exact":
        g = lqr_trajectory_fisher(theta, params)
    elif fisher_mode == "steps":
        g = bpg.fisher_from_steps(ep.scores, mask)
    elif fisher_mode == "states":
        g = policies.fisher_from_states(pol, theta, ep, mask)
    else:
        g = bpg.fisher_from_trajectories(u, mask)
    g_inv = bpg.inv_psd(g)
    out = {}
    for name in names:
        spec = ESTIMATORS[name]
        e = spec.fn(ep, g, hp, mask, fit=fit, capacity=capacity)
        out[name] = e.posterior.mean
        out[f"nat_{name}"] = g_inv @ e.posterior.mean
        if spec.posterior:
            out[f"{name}_cov"] = e.posterior.cov
            out[f"{name}_scale"], out[f"{name}_noise"] = e.scale, e.noise
            out[f"{name}_at_bound"] = e.at_bound
        if name == "bac":
            out["bac_dict_size"] = e.dict_size
    return out


def truth(theta: jax.Array, params: LQRParams) -> dict[str, jax.Array]:
    """Exact gradient `[2]`, exact natural gradient `G^{-1} grad` `[2]` and `G` `[2, 2]`."""
    g = lqr_trajectory_fisher(theta, params)
    grad = lqr_exact_gradient(theta, params)
    return {"gradient": grad, "natural_gradient": linalg.solve(g, grad), "fisher": g}


def error_stats(estimates: dict[str, jax.Array], theta: jax.Array, params: LQRParams,
                names: tuple[str, ...] = tuple(ESTIMATORS)) -> dict[str, dict[str, jax.Array]]:
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


Z95 = 1.959963984540054  # two-sided 95% standard-normal quantile


def _angle_np(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    cos = np.sum(a * b, -1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1) + 1e-300)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def coverage(mean: np.ndarray, cov: np.ndarray, truth: np.ndarray, rng: np.random.Generator,
             samples: int = 2000, dof: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Calibration of Gaussian (or, with `dof`, Student-t) gradient posteriors over repetitions
    (host NumPy).

    Args:
      mean: `[R, n]` posterior means, cov: `[R, n, n]` posterior covariances (the Student-t
        scale matrix when `dof` is given), truth: `[n]`, dof: optional `[R]` degrees of freedom
        of a multivariate Student-t posterior `t_dof(mean, cov)`.
    Returns:
      `z: [R, n]` standardized errors `(mean - truth) / sd`; `inside: [R, n]` bool, the marginal
      95% interval `mean +- q sd` holds the true component (`q` = 1.96, or the t quantile
      `t_dof(0.975)`); `angle_inside: [R]` bool, the angle between mean and truth is within the
      posterior's 95% angle quantile (the angle between a posterior draw and the mean, from
      `samples` draws).
    """
    mean, cov = np.asarray(mean, np.float64), np.asarray(cov, np.float64)
    sd = np.sqrt(np.maximum(np.diagonal(cov, axis1=1, axis2=2), 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (mean - truth) / sd
    if dof is None:
        q95 = np.full((mean.shape[0], 1), Z95)
    else:
        q95 = stats.t.ppf(0.975, np.asarray(dof, np.float64))[:, None]
    inside = np.abs(mean - truth) <= q95 * sd
    w, v = np.linalg.eigh(0.5 * (cov + np.swapaxes(cov, 1, 2)))
    root = v * np.sqrt(np.maximum(w, 0.0))[:, None, :]
    eps = rng.standard_normal((mean.shape[0], samples, mean.shape[1]))
    if dof is not None:  # multivariate t draws: normal / sqrt(chi2_dof / dof)
        nu = np.asarray(dof, np.float64)[:, None]
        fin = np.isfinite(nu)
        nu_f = np.where(fin, nu, 1.0)
        chi = np.where(fin, rng.chisquare(nu_f, (mean.shape[0], samples)) / nu_f, 1.0)
        eps = eps / np.sqrt(chi)[:, :, None]
    draws = mean[:, None, :] + np.einsum("rij,rsj->rsi", root, eps)
    q = np.quantile(_angle_np(draws, mean[:, None, :]), 0.95, axis=1)
    return {"z": z, "inside": inside, "angle_inside": _angle_np(mean, truth[None]) <= q}


# ---------------------------------------------------------------------------------------------
# Calibration diagnostic (issue 19 item 1): which modelling choice costs coverage.
# ---------------------------------------------------------------------------------------------

# name -> (model, heteroscedastic noise, constant prior mean integrated out, Student-t marginal,
# the estimated G's sampling error propagated into the covariance (`bpg.fisher_error_cov`))
CALIBRATION_VARIANTS: dict[str, tuple[int, bool, bool, bool, bool]] = {
    "bpg1": (1, False, False, False, False),
    "bpg1_t": (1, False, False, True, False),
    "bpg1_het_t": (1, True, False, True, False),
    "bpg1_het_t_dg": (1, True, False, True, True),
    "bpg2": (2, False, False, False, False),
    "bpg2_t": (2, False, False, True, False),
    "bpg2_het_t": (2, True, False, True, False),
    "bpg2_mean": (2, False, True, False, False),
    "bpg2_mean_t": (2, False, True, True, False),
    "bpg2_mean_het_t": (2, True, True, True, False),
    "bpg2_mean_het_t_dg": (2, True, True, True, True),
}


def calibration_variants(key: jax.Array, theta: jax.Array, params: LQRParams,
                         num_episodes: int, fisher_mode: str = "steps",
                         names: tuple[str, ...] = tuple(CALIBRATION_VARIANTS),
                         num_drawn: int | None = None) -> dict[str, jax.Array]:
    """BPG posteriors on one batch under the calibration variants (`CALIBRATION_VARIANTS`).

    Every variant fits its GP's signal scale and noise by evidence on the batch. The switches
    separate the suspected causes of under-coverage: `fisher_mode` "exact" vs "steps" (error in
    the estimated `G`); heteroscedastic noise `b diag(d)` with `d = bpg.noise_profile` (vs `b I`);
    for Model 2 a constant prior mean with a flat prior integrated out (vs zero mean); the
    Student-t marginal from integrating the common scale `s^2` of signal and noise under the
    Jeffreys prior (vs the plug-in Gaussian; `gp.student_t_dof`). Returns `{name: [2]}` means,
    `<name>_cov: [2, 2]` (the t scale matrix for t variants, which equals the plug-in
    covariance) and `<name>_dof` (`inf` for Gaussian variants). `num_drawn` (>= num_episodes)
    episodes are drawn and the first `num_episodes` kept (the study draws 40 and keeps the first
    M, so with its keys the plain variants reproduce its episodes).
    """
    if fisher_mode not in ("exact", "steps", "states"):
        raise ValueError(f"fisher_mode must be 'exact', 'steps' or 'states', got "
                         f"{fisher_mode!r}")
    env, pol = LQR(), policies.gaussian_linear_policy()
    ep = policies.collect_episodes(env, params, pol, theta, key, num_drawn or num_episodes,
                                   params.max_steps_in_episode)
    ep = jax.tree.map(lambda x: x[:num_episodes], ep)
    r, u = ep.returns, ep.trajectory_scores
    per = {"exact": lambda: None,
           "steps": lambda: bpg.fisher_per_episode(ep.scores),
           "states": lambda: policies.fisher_per_episode_states(pol, theta, ep)}[fisher_mode]()
    g = lqr_trajectory_fisher(theta, params) if per is None else jnp.mean(per, axis=0)
    out = {}
    for name in names:
        post, dof, at_bound = variant_posterior(name, r, u, g, per)
        out[name], out[f"{name}_cov"] = post.mean, post.cov
        out[f"{name}_dof"], out[f"{name}_at_bound"] = dof, at_bound
    return out


def variant_posterior(name: str, returns: jax.Array, scores: jax.Array, fisher: jax.Array,
                      per_episode: jax.Array | None = None
                      ) -> tuple[bpg.GradientPosterior, jax.Array, jax.Array]:
    """One calibration variant (`CALIBRATION_VARIANTS[name]`) on `M` episodes: returns `[M]`,
    trajectory scores `[M, n]`, the kernels' Fisher matrix `[n, n]` and, when it was estimated,
    its per-episode contributions `[M, n, n]` (None: `G` known, e.g. exact). Returns the
    posterior (the t scale matrix for t variants; for `_dg` variants plus `bpg.fisher_error_cov`
    at the fitted hyperparameters), its degrees of freedom (`inf` for Gaussian variants) and
    whether the evidence fit ended at its range's end."""
    model, het, center, student, dg = CALIBRATION_VARIANTS[name]
    r, u, g = returns, scores, fisher
    f = bpg.evidence_fit(model, r, u, g, noise_diag=bpg.noise_profile(model, u, g) if het
                         else None, center=center)

    def posterior_at(gg):
        d = bpg.noise_profile(model, u, gg) if het else None
        if model == 1:
            return bpg.bpg_model1(r, u, gg, f.noise, signal_scale=f.scale, noise_diag=d)
        return bpg.bpg_model2(r, u, gg, f.noise, signal_scale=f.scale, noise_diag=d,
                              center=center)

    post = posterior_at(g)
    if dg and per_episode is not None:
        extra = bpg.fisher_error_cov(lambda gg: posterior_at(gg).mean, g, per_episode)
        post = bpg.GradientPosterior(post.mean, post.cov + extra)
    dof = gp.student_t_dof(r.shape[0], u.shape[1] if model == 1 else 1, center)
    return post, jnp.asarray(dof if student else jnp.inf, r.dtype), f.at_bound
