"""Bayesian policy gradient and Bayesian actor-critic (Ghavamzadeh, Engel & Valko, JMLR 2016).

Two parts (see experiments/configs/bayes_pg.py for commands, expected results and run times):

1. Gradient estimation on the paper's LQR: angle and relative norm error of every estimator of
   the registry `jaxrl.bayes_pg.estimators.ESTIMATORS` (MC with and without baseline, BPG Model
   1 and Model 2, BAC) against the exact gradient, vs the number of episodes M, over many
   repetitions, with the Fisher information `config.fisher` (default: estimated per step from
   the batch, the primary result) and again for each mode of `config.other_fisher` (e.g. the
   exact G, an oracle); the GP signal scale and noise fitted per batch (`config.fit_gp`);
   calibration of the posteriors (coverage of the marginal 95% intervals and of the angle);
   how many more episodes MC + baseline (the main baseline) and plain MC need to match each.
   One jitted computation per set of M (no checkpoints). Its rows go to
   `gradient/metrics.csv` (other modes: `gradient_fisher_<mode>/metrics.csv`; the `gradient`
   variant: `metrics.csv`) through `jaxrl.metrics.MetricWriter`, in the runtime's long form:
   `run` = repetition index r (its key is `split(fold_in(PRNGKey(seed), M), repetitions)[r]`),
   `seed` = `config.seed`, `step` = M (episodes per estimate), `env_steps` = M * horizon;
   metric columns `<est>_angle_deg`, `<est>_rel_error` (against the exact gradient),
   `nat_<est>_angle_deg`, `nat_<est>_rel_error` (natural gradient), `<est>_grad_lam`,
   `<est>_grad_sigma` (the estimate) and, for the posteriors (bpg1, bpg2, bac), `<est>_sd_lam`,
   `<est>_sd_sigma` (posterior standard deviations), `<est>_in95_lam`, `<est>_in95_sigma`,
   `<est>_angle_in95` (0/1 coverage), `<est>_gp_scale`, `<est>_gp_noise`; `bac_dict_size`
   (non-MC cells empty at the MC-only reference M).
2. Policy learning: BPG / BAC / MC-PG on the LQR (and mountain car, `MountainCarNormalized-v0`
   with the 4 x 4 RBF Boltzmann policy, `mode=learn` in the `mountaincar` variant; optionally
   CartPole-v1) over seeds (and
   a grid over the `LearnConfig` floats, `config.sweep`, e.g. the fixed step sizes), each (env,
   estimator) one program of the one runtime, `experiment.run`, in its own workdir
   `learning/<env>/<estimator>/` (checkpointed, resumed by re-running the same command;
   metrics.csv / summary.json in the standard schema). Each estimator is reported at its best
   grid point (fastest median number of updates to `config.<env prefix>_target` when set (on
   the trailing mean of `_target_window` updates), else the IQM of the final return; the same
   seeds) and at every grid point, with P(faster) against MC and MC + baseline.

`config.mode`: `study` (both parts), `learn` (the learning part only) or `gradient` (below).

`summary.json` at the top of the workdir holds both parts (the `gradient` variant: the exact
gradient and each estimator's mean estimate and mean angle at one M).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import app, flags
from ml_collections import config_flags

from experiments import common
from experiments.configs import bayes_pg as bpg_configs
from jaxrl import experiment, stats
from jaxrl.bayes_pg import estimators, gradient_study, learn
from jaxrl.envs.lqr import LQRParams
from jaxrl.metrics import MetricWriter, json_safe, write_json

NAME = "bayes_pg"
_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "config file", lock_config=True, allow_override=True
)
_WORKDIR = flags.DEFINE_string("workdir", None, "output directory", allow_override=True)

# Digest Part B item 6 (indicative, our own earlier simulation; NOT the paper's numbers):
# mean angle in degrees for MC / Model 1 / Model 2 with exact G, Sigma = I, no baseline.
DIGEST_ANGLES = {
    5: (66.5, 56.9, 69.8),
    10: (50.6, 23.1, 50.1),
    20: (34.4, 6.5, 32.9),
    40: (20.3, 3.0, 16.9),
}
LABELS = estimators.LABELS
# Learning environments -> the prefix of their per-program config fields (`<prefix>_updates`,
# `_episodes`, `_max_steps` (the LQR uses `horizon`), `_gamma` (the LQR's is 1), `_target`,
# `_target_window`).
LEARN_ENVS = {"LQR-v0": "lqr", "CartPole-v1": "cartpole", "MountainCarNormalized-v0": "mountaincar"}


@dataclasses.dataclass(frozen=True)
class Plan:
    """What `validate` derives from a config: seeds, grid and one LearnConfig per program."""

    seeds: list[int]
    grid: dict[str, tuple[float, ...]]
    programs: list[tuple[str, str, learn.LearnConfig]]


def validate(c: ml_collections.ConfigDict) -> Plan:
    """One-line `ValueError` naming the field for every bad value (before any file is written
    or anything compiles); returns the `Plan`."""
    if c.mode not in ("study", "gradient", "learn"):
        raise ValueError(f"config.mode must be study, gradient or learn, got {c.mode!r}")
    if not c.sigma > 0:
        raise ValueError(f"config.sigma must be > 0, got {c.sigma}")
    if c.horizon < 1:
        raise ValueError(f"config.horizon must be >= 1, got {c.horizon}")
    if c.num_episodes < 2:
        raise ValueError(f"config.num_episodes must be >= 2, got {c.num_episodes}")
    if c.repetitions < 1:
        raise ValueError(f"config.repetitions must be >= 1, got {c.repetitions}")
    for f in ("noise_var", "init_var", "gp_noise"):
        if not c[f] > 0:
            raise ValueError(f"config.{f} must be > 0, got {c[f]}")
    if int(c.bac_capacity) < 1:
        raise ValueError(f"config.bac_capacity must be >= 1, got {c.bac_capacity!r}")
    if c.action_cost < 0:
        raise ValueError(f"config.action_cost must be >= 0, got {c.action_cost}")
    if c.fisher not in gradient_study.FISHER_MODES:
        raise ValueError(
            f"config.fisher must be one of {gradient_study.FISHER_MODES}, got {c.fisher!r}"
        )
    for mode in c.other_fisher:
        if mode not in gradient_study.FISHER_MODES:
            raise ValueError(f"config.other_fisher entries must be in "
                             f"{gradient_study.FISHER_MODES}, got {mode!r}")
    for f in ("episode_counts", "mc_reference_counts"):
        if any(int(m) < 2 for m in c[f]):
            raise ValueError(f"config.{f} entries must be >= 2, got {tuple(c[f])}")
    if c.mode == "study" and not c.episode_counts:
        raise ValueError("config.episode_counts must not be empty")
    seeds = common.seeds_from_config(c)
    common.validate_runtime(c)
    for e in c.learn_envs:
        if e not in LEARN_ENVS:
            raise ValueError(f"config.learn_envs entries must be in {tuple(LEARN_ENVS)}, got {e!r}")
    lo = 2 if "mc_baseline" in c.learn_estimators else 1
    for e in c.learn_envs:
        p = LEARN_ENVS[e]
        fields = ("updates",) if e == "LQR-v0" else ("updates", "max_steps")
        for f in fields:
            if int(c[f"{p}_{f}"]) < 1:
                raise ValueError(f"config.{p}_{f} must be >= 1, got {c[f'{p}_{f}']!r}")
        if int(c[f"{p}_episodes"]) < lo:
            why = " (mc_baseline's leave-one-out baseline needs two episodes)" if lo == 2 else ""
            raise ValueError(f"config.{p}_episodes must be >= {lo}{why}, got "
                             f"{c[f'{p}_episodes']!r}")
        if e != "LQR-v0" and not 0.0 < float(c[f"{p}_gamma"]) <= 1.0:
            raise ValueError(f"config.{p}_gamma must be in (0, 1], got {c[f'{p}_gamma']!r}")
        if int(c.get(f"{p}_target_window", 1)) < 1:
            raise ValueError(f"config.{p}_target_window must be >= 1, got "
                             f"{c[f'{p}_target_window']!r}")
    for e in c.learn_estimators:
        if e not in learn.ESTIMATORS:
            raise ValueError(
                f"config.learn_estimators entries must be in {learn.ESTIMATORS}, got {e!r}"
            )
    for k in c.algo:
        if k in bpg_configs.PER_PROGRAM:
            raise ValueError(f"config.algo.{k} is set per program (see the config file); use "
                             "learn_envs / learn_estimators / lqr_* / cartpole_* / mountaincar_*")
    programs = []
    grid = {}
    if c.mode in ("study", "learn") and c.learn_envs:
        grid = common.grid_from_config(c)
        for env in c.learn_envs:
            for est in c.learn_estimators:
                lc = learn_config(c, env, est)
                learn.validate(lc, grid)
                programs.append((env, est, lc))
    return Plan(seeds, grid, programs)


def lqr_params(c: ml_collections.ConfigDict) -> LQRParams:
    return LQRParams(
        noise_var=c.noise_var,
        init_mean=c.init_mean,
        init_var=c.init_var,
        action_cost=c.action_cost,
        max_steps_in_episode=int(c.horizon),
    )


# ---------------------------------------------------------------------------------------------
# Part 1: gradient estimation.
# ---------------------------------------------------------------------------------------------


def gradient_point(c: ml_collections.ConfigDict, m: int, reps: int) -> dict:
    """All estimators at one M over `reps` repetitions (vmapped): host arrays."""
    return gradient_points(c, [m], reps)[m]


def gradient_points(
    c: ml_collections.ConfigDict, counts: list[int], reps: int, mc_only: bool = False,
    fisher: str | None = None,
) -> dict[int, dict]:
    """Every estimator for every M in `counts` x `reps` repetitions as ONE compiled program:
    `max(counts)` episodes are drawn per (M, repetition) with its own key and the first M are
    kept (mask), so no M needs its own compilation. `fisher`: the G mode (default
    `config.fisher`). Host arrays per M."""
    params = lqr_params(c)
    dtype = jnp.float64 if c.float64 else jnp.float32
    theta = jnp.asarray([c.lam, c.sigma], dtype)
    m_max = max(counts)
    keys = jnp.stack(
        [jax.random.split(jax.random.fold_in(jax.random.PRNGKey(c.seed), m), reps) for m in counts]
    )
    ms = jnp.asarray(counts, jnp.int32)
    names = gradient_study.MC_NAMES if mc_only else tuple(gradient_study.ESTIMATORS)

    def one(k, m):
        used = None if len(counts) == 1 else m
        est = gradient_study.estimate_gradients(
            k, theta, params, m_max, fisher or c.fisher, c.gp_noise, num_used=used, names=names,
            fit=bool(c.fit_gp), capacity=int(c.bac_capacity))
        return est, gradient_study.error_stats(est, theta, params, names)

    fn = jax.jit(jax.vmap(jax.vmap(one, (0, None)), (0, 0)))
    est, errs = jax.tree.map(lambda x: np.asarray(x, np.float64), fn(keys, ms))
    with jax.enable_x64(True):
        truth = np.asarray(gradient_study.truth(jnp.asarray([c.lam, c.sigma], jnp.float64),
                                                params)["gradient"], np.float64)
    out = {}
    for i, m in enumerate(counts):
        e = jax.tree.map(lambda x, i=i: x[i], est)
        cov = {name: gradient_study.coverage(e[name], e[name + "_cov"], truth,
                                             np.random.default_rng([int(c.seed), m]))
               for name in names if name + "_cov" in e}
        out[m] = {"estimates": e, "errors": jax.tree.map(lambda x, i=i: x[i], errs),
                  "coverage": cov}
    return out


def gradient_columns() -> list[str]:
    """Metric columns of the gradient study's metrics.csv (see the module docstring)."""
    cols = []
    for name, spec in gradient_study.ESTIMATORS.items():
        cols += [f"{name}_angle_deg", f"{name}_rel_error", f"nat_{name}_angle_deg",
                 f"nat_{name}_rel_error", f"{name}_grad_lam", f"{name}_grad_sigma"]
        if spec.posterior:
            cols += [f"{name}_sd_lam", f"{name}_sd_sigma", f"{name}_in95_lam",
                     f"{name}_in95_sigma", f"{name}_angle_in95", f"{name}_gp_scale",
                     f"{name}_gp_noise"]
    return cols + ["bac_dict_size"]


def write_gradient_metrics(path: str, c: ml_collections.ConfigDict, results: dict[int, dict]
                           ) -> None:
    """The per-repetition rows of every M in `results`, in the long form of the runtime
    (`run` = repetition, `step` = M, `env_steps` = M * horizon), through `MetricWriter`."""
    reps = int(c.repetitions)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    writer = MetricWriter(path, [{"seed": int(c.seed)}] * reps, gradient_columns(),
                          env_steps_per_update=int(c.horizon))
    if os.path.exists(path):
        os.remove(path)  # one jitted computation, recomputed whole: never appended to
    writer.truncate_after(0)
    for m in sorted(results):
        cols = {}
        for name, r in results[m]["errors"].items():
            cols[f"{name}_angle_deg"] = r["angle_deg"][:, None]
            cols[f"{name}_rel_error"] = r["rel_error"][:, None]
        e = results[m]["estimates"]
        for name in gradient_study.ESTIMATORS:
            est = e.get(name)
            if est is not None:
                cols[f"{name}_grad_lam"] = est[:, 0:1]
                cols[f"{name}_grad_sigma"] = est[:, 1:2]
        for name, cv in results[m].get("coverage", {}).items():
            sd = np.sqrt(np.maximum(np.diagonal(e[name + "_cov"], axis1=1, axis2=2), 0.0))
            cols[f"{name}_sd_lam"], cols[f"{name}_sd_sigma"] = sd[:, 0:1], sd[:, 1:2]
            cols[f"{name}_in95_lam"] = cv["inside"][:, 0:1].astype(float)
            cols[f"{name}_in95_sigma"] = cv["inside"][:, 1:2].astype(float)
            cols[f"{name}_angle_in95"] = cv["angle_inside"][:, None].astype(float)
            cols[f"{name}_gp_scale"] = e[name + "_scale"][:, None]
            cols[f"{name}_gp_noise"] = e[name + "_noise"][:, None]
        if "bac_dict_size" in e:
            cols["bac_dict_size"] = e["bac_dict_size"][:, None]
        writer.append([m], cols)


def gradient_mode(c: ml_collections.ConfigDict, workdir: str) -> dict:
    """The `gradient` variant: one M, `metrics.csv` (long form) and a summary with the exact
    gradient and mean estimates."""
    params = lqr_params(c)
    with jax.enable_x64(True):  # the exact answer always in float64
        tr = gradient_study.truth(jnp.asarray([c.lam, c.sigma], jnp.float64), params)
        tr = jax.tree.map(lambda x: np.asarray(x, np.float64), tr)
    m = int(c.num_episodes)
    out = gradient_point(c, m, int(c.repetitions))
    write_gradient_metrics(os.path.join(workdir, "metrics.csv"), c, {m: out})
    summary = {
        "true_gradient": np.asarray(tr["gradient"], np.float64).tolist(),
        "true_natural_gradient": np.asarray(tr["natural_gradient"], np.float64).tolist(),
        "fisher": np.asarray(tr["fisher"], np.float64).tolist(),
        "theta": [c.lam, c.sigma],
        "num_episodes": m,
        "repetitions": int(c.repetitions),
        "fisher_mode": c.fisher,
        "gp_noise": c.gp_noise,
        "fit_gp": bool(c.fit_gp),
    }
    for name in gradient_study.ESTIMATORS:
        e, r = out["estimates"][name], out["errors"][name]
        summary[name] = {
            "mean_estimate": e.mean(0).tolist(),
            "std_estimate": e.std(0).tolist(),
            "mean_angle_deg": float(r["angle_deg"].mean()),
            "mean_rel_error": float(r["rel_error"].mean()),
            "mean_natural_angle_deg": float(out["errors"]["nat_" + name]["angle_deg"].mean()),
        }
        if name in out["coverage"]:
            summary[name].update(coverage_summary(out, name))
    return summary


def coverage_summary(point: dict, name: str) -> dict:
    """Calibration of one posterior estimator at one M: `coverage_95` (fraction of (repetition,
    component) pairs whose marginal 95% interval holds the true component), per component,
    `angle_coverage_95`, the mean posterior covariance and the median fitted GP scale/noise."""
    cv, e = point["coverage"][name], point["estimates"]
    return {
        "coverage_95": float(cv["inside"].mean()),
        "coverage_95_per_component": cv["inside"].mean(0).tolist(),
        "angle_coverage_95": float(cv["angle_inside"].mean()),
        "median_z_abs": np.median(np.abs(cv["z"]), axis=0).tolist(),
        "mean_posterior_cov": e[name + "_cov"].mean(0).tolist(),
        "median_gp_scale": float(np.median(e[name + "_scale"])),
        "median_gp_noise": float(np.median(e[name + "_noise"])),
        "fit_at_bound": float(np.mean(e[name + "_at_bound"])),
    }


def sample_factor(m_b: int, err_b: float, counts: np.ndarray, err_mc: np.ndarray) -> str:
    """How many times more episodes MC needs to reach error `err_b` (log-log interpolation of
    the MC error curve; bounds when outside the measured range)."""
    order = np.argsort(counts)
    counts, err_mc = counts[order], np.minimum.accumulate(err_mc[order])
    if err_b <= err_mc[-1]:
        return f">= {counts[-1] / m_b:.1f}"
    if err_b >= err_mc[0]:
        return f"<= {counts[0] / m_b:.2f}"
    m_star = np.exp(np.interp(np.log(err_b), np.log(err_mc[::-1]), np.log(counts[::-1])))
    return f"{m_star / m_b:.1f}"


def gradient_study_run(c: ml_collections.ConfigDict, workdir: str, fisher: str | None = None,
                       sub: str = "gradient") -> dict:
    """Error vs M with the Fisher mode `fisher` (default `config.fisher`):
    `workdir/<sub>/metrics.csv` (every repetition), the plot `plots/<sub>_error.png` and the
    table (mean and standard error over repetitions, coverage of the posteriors)."""
    fisher = fisher or c.fisher
    counts = [int(m) for m in c.episode_counts]
    ref = [int(m) for m in c.mc_reference_counts if int(m) not in counts]
    results = gradient_points(c, counts, int(c.repetitions), fisher=fisher)
    if ref:
        results.update(gradient_points(c, ref, int(c.repetitions), mc_only=True, fisher=fisher))
    write_gradient_metrics(os.path.join(workdir, sub, "metrics.csv"), c, results)
    table = {}
    for m in counts + ref:
        table[m] = {}
        for name, r in results[m]["errors"].items():
            a, e = r["angle_deg"], r["rel_error"]
            table[m][name] = {
                "angle_deg": float(a.mean()),
                "angle_se": float(a.std() / np.sqrt(a.size)),
                "rel_error": float(e.mean()),
                "rel_error_se": float(e.std() / np.sqrt(e.size)),
                "median_rel_error": float(np.median(e)),
            }
            if name in results[m].get("coverage", {}):
                table[m][name].update(coverage_summary(results[m], name))
    all_m = np.asarray(counts + ref, float)
    factors = {}
    for base in ("mc", "mc_baseline"):
        for name in ("bpg1", "bpg2", "bac"):
            for metric in ("angle_deg", "rel_error"):
                err_mc = np.asarray([table[m][base][metric] for m in counts + ref])
                factors[f"{name}_vs_{base}_{metric}"] = {
                    m: sample_factor(m, table[m][name][metric], all_m, err_mc) for m in counts
                }
    plot_gradient(os.path.join(workdir, "plots", f"{sub}_error.png"), table, counts, ref,
                  fisher)
    return {
        "fisher_mode": fisher,
        "fit_gp": bool(c.fit_gp),
        "table": {str(m): v for m, v in table.items()},
        "sample_factor": {k: {str(m): s for m, s in v.items()} for k, v in factors.items()},
        "episode_counts": counts,
        "mc_reference_counts": ref,
    }


def plot_gradient(path: str, table: dict, counts: list[int], ref: list[int],
                  fisher: str = "exact") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric, ylabel in (
        (axes[0], "angle_deg", "mean |angle| to true gradient (deg)"),
        (axes[1], "rel_error", "mean |g_hat - g| / |g|"),
    ):
        for name in gradient_study.ESTIMATORS:
            ms = counts + (ref if name.startswith("mc") else [])
            y = np.asarray([table[m][name][metric] for m in ms])
            se_key = "angle_se" if metric == "angle_deg" else "rel_error_se"
            se = np.asarray([table[m][name][se_key] for m in ms])
            ax.errorbar(ms, y, yerr=1.96 * se, marker="o", capsize=3, label=LABELS[name])
        if metric == "angle_deg":
            ax.plot(
                list(DIGEST_ANGLES),
                [v[1] for v in DIGEST_ANGLES.values()],
                "k:",
                label="digest item 6, Model 1",
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("episodes per estimate M")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"LQR gradient estimation at (lambda, sigma) = (-0.2, 1), Fisher: {fisher}; "
                 "bars: 95% CI")
    fig.tight_layout()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------
# Part 2: policy learning (the runtime).
# ---------------------------------------------------------------------------------------------


def learn_config(c: ml_collections.ConfigDict, env: str, estimator: str) -> learn.LearnConfig:
    """The `LearnConfig` of one program: `config.algo` plus the per-program fields."""
    p = LEARN_ENVS[env]
    if env == "LQR-v0":
        per = dict(max_steps=int(c.horizon), num_updates=int(c.lqr_updates),
                   num_episodes=int(c.lqr_episodes), gamma=1.0)
    else:
        per = dict(max_steps=int(c[f"{p}_max_steps"]), num_updates=int(c[f"{p}_updates"]),
                   num_episodes=int(c[f"{p}_episodes"]), gamma=float(c[f"{p}_gamma"]))
    extra = c.get(f"{p}_algo") or {}
    algo = {**c.algo.to_dict(), **(extra.to_dict() if hasattr(extra, "to_dict") else extra)}
    return learn.as_config({**algo, **per, "env": env, "estimator": estimator})


def program_workdir(workdir: str, env: str, estimator: str) -> str:
    return os.path.join(workdir, "learning", env, estimator)


def run_program(c: ml_collections.ConfigDict, lc: learn.LearnConfig, seeds: list[int],
                grid: dict, workdir: str, stop_after_chunks: int | None = None
                ) -> experiment.Result:
    """One (env, estimator) learner over seeds x grid through the runtime (resumable)."""
    algo = learn.make_learner(lc)
    config = {"algo": dataclasses.asdict(lc), "sweep": dict(grid), "float64": bool(c.float64)}
    return experiment.run(algo, seeds, grid, workdir=workdir, config=config,
                          progress_metric="return", stop_after_chunks=stop_after_chunks,
                          **common.runtime_kwargs(c))


def _point_runs(result: experiment.Result, point: dict) -> list[int]:
    """Indices of the runs of grid point `point` (the swept values of an aggregate entry)."""
    return [i for i, r in enumerate(result.runs)
            if all(r.get(k) == v for k, v in point.items())]


def program_summary(result: experiment.Result, lc: learn.LearnConfig, grid: dict,
                    target: float | None = None, window: int = 1) -> dict:
    """`experiment.summarize` of the final return (last 10% of updates) and of the mean return
    over all updates (a speed-of-learning measure that still separates methods whose final
    returns tie), and the figures of the best grid point (by final IQM, on the same seeds:
    flattering to every estimator alike)."""
    final = experiment.summarize(result, "return")
    over = experiment.summarize(result, "return", last_frac=1.0)
    names = sorted(grid)

    def iqm(a):
        return -np.inf if a["iqm"] is None else a["iqm"]

    if target is not None:  # best grid point = fastest to the target (median), then final IQM
        def speed(i):
            runs = _point_runs(result, {k: final["aggregate"][i][k] for k in names})
            its = stats.iterations_to_target(result.metrics["return"][runs], target, window)
            return (-float(np.median(its)), iqm(final["aggregate"][i]))
        best_i = max(range(len(final["aggregate"])), key=speed)
    else:
        best_i = max(range(len(final["aggregate"])), key=lambda i: iqm(final["aggregate"][i]))
    best, best_over = final["aggregate"][best_i], over["aggregate"][best_i]
    point = {k: best[k] for k in names}
    idx = _point_runs(result, point)
    ret = result.metrics["return"][idx]
    finals = np.asarray([np.nan if final["per_run"][i]["final_return"] is None
                         else final["per_run"][i]["final_return"] for i in idx])
    lo, hi = best["iqm_ci95"] or (None, None)
    tlo, thi = best_over["iqm_ci95"] or (None, None)
    with np.errstate(all="ignore"), __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("ignore", RuntimeWarning)
        initial = float(np.nanmean(ret[:, 0]))
        dict_size = float(np.nanmean(result.metrics["dict_size"][idx]))
    return {
        "final_iqm": best["iqm"], "final_iqm_lo": lo, "final_iqm_hi": hi,
        "final_mean": best["mean"], "initial_return": initial,
        "num_failed": best["num_failed"], "num_seeds": best["num_runs"],
        "mean_dict_size": dict_size, "updates": lc.num_updates,
        "episodes_per_update": lc.num_episodes,
        "train_mean_iqm": best_over["iqm"], "train_mean_lo": tlo, "train_mean_hi": thi,
        "best_point": point, "best_lr": float(point.get("lr", lc.lr)),
        "final_iqm_per_point": {experiment.grid_label({k: a[k] for k in names}): a["iqm"]
                                for a in final["aggregate"]},
        "_finals": finals, "_curve": (np.asarray(result.env_steps), ret),
        **({} if target is None else _target_summary(result, grid, target, ret, window)),
    }


def _finite(x: float) -> float | None:
    """`x` as a float, None when not finite (never reached: strict JSON has no Infinity)."""
    return float(x) if np.isfinite(x) else None


def _target_summary(result: experiment.Result, grid: dict, target: float, ret: np.ndarray,
                    window: int = 1) -> dict:
    """Updates to reach `target` at the best point (median over seeds, fraction reached) and
    the median at every grid point (None = not reached by at least half the seeds)."""
    its = stats.iterations_to_target(ret, target, window)
    per = {}
    for a in experiment.summarize(result, "return")["aggregate"]:
        point = {k: a[k] for k in sorted(grid)}
        i = stats.iterations_to_target(result.metrics["return"][_point_runs(result, point)], target,
                                 window)
        per[experiment.grid_label(point)] = _finite(np.median(i))
    return {"target": target, "target_window": int(window),
            "iters_to_target_median": _finite(np.median(its)),
            "iters_to_target_per_seed": [_finite(x) for x in its],
            "frac_reached_target": float(np.mean(np.isfinite(its))),
            "iters_to_target_per_point": per}


def learning_study(c: ml_collections.ConfigDict, plan: Plan, workdir: str,
                   stop_after_chunks: int | None = None) -> dict:
    """Every program of the plan (each resumable in its own workdir); per-environment plots of
    each estimator at its best grid point and its probability of improvement over MC+baseline."""
    from jaxrl import plotting

    out: dict = {}
    curves: dict = {}
    for env, est, lc in plan.programs:
        sub = program_workdir(workdir, env, est)
        res = run_program(c, lc, plan.seeds, plan.grid, sub, stop_after_chunks)
        if res.interrupted_at is not None:
            return {"interrupted_at": int(res.interrupted_at), "program": [env, est]}
        p = LEARN_ENVS[env]
        target, window = c.get(f"{p}_target"), int(c.get(f"{p}_target_window", 1))
        entry = program_summary(res, lc, plan.grid, None if target is None else float(target),
                                window)
        experiment.finish(sub, res, {
            "env": env, "estimator": est,
            "final_return": experiment.summarize(res, "return"),
            "return_over_training": experiment.summarize(res, "return", last_frac=1.0)})
        experiment.plot_curves(res, "return", os.path.join(sub, "plots", "return.png"),
                               f"{LABELS[est]} on {env} ({len(plan.seeds)} seeds)")
        out.setdefault(env, {})[est] = entry
        curves.setdefault(env, {})[LABELS[est]] = entry.pop("_curve")
    for env, d in out.items():
        finals = {est: v.pop("_finals") for est, v in d.items()}
        ref = "mc_baseline" if "mc_baseline" in finals else next(iter(finals))
        for est, f in finals.items():
            if est != ref:
                d[est][f"prob_improvement_vs_{ref}"] = float(
                    stats.probability_of_improvement(f, finals[ref]))
        for r in ("mc", "mc_baseline"):
            if r not in d or "iters_to_target_per_seed" not in d[r]:
                continue
            cap = float(d[r]["updates"]) + 1.0  # never reached = slower than any reach

            def speed(v, cap=cap):
                return -np.asarray([cap if x is None else x
                                    for x in v["iters_to_target_per_seed"]])

            for est, v in d.items():
                if est != r:
                    v[f"prob_faster_vs_{r}"] = list(
                        stats.probability_of_improvement_ci(speed(v), speed(d[r])))
        ylabel = "exact expected return" if env == "LQR-v0" else "mean episode return"
        plotting.plot_curves(
            os.path.join(workdir, "plots", f"learning_{env}.png"), curves[env],
            xlabel="environment steps", ylabel=ylabel,
            title=f"{env}: IQM over {len(plan.seeds)} seeds, 95% bootstrap CI")
    return out


# ---------------------------------------------------------------------------------------------
# Driver.
# ---------------------------------------------------------------------------------------------


def run(c: ml_collections.ConfigDict, workdir: str, stop_after_chunks: int | None = None
        ) -> dict:
    """Validate (before any file is written), run the configured experiment into `workdir`
    (the learning programs resume from their checkpoints) and write `summary.json`; returns
    the summary. Re-running on a finished workdir rewrites identical files."""
    plan = validate(c)
    os.makedirs(os.path.join(workdir, "plots"), exist_ok=True)
    if jax.process_index() == 0:
        write_json(os.path.join(workdir, "config.json"), c.to_dict())
    t0 = time.time()
    with jax.enable_x64(bool(c.float64)):
        if c.mode == "gradient":
            summary = gradient_mode(c, workdir)
        else:
            summary = {}
            if c.mode == "study":
                summary["gradient"] = gradient_study_run(c, workdir)
                for mode in c.other_fisher:
                    if mode != c.fisher:
                        summary[f"gradient_fisher_{mode}"] = gradient_study_run(
                            c, workdir, mode, f"gradient_fisher_{mode}")
            if plan.programs:
                learning = learning_study(c, plan, workdir, stop_after_chunks)
                if "interrupted_at" in learning:
                    return learning
                summary["learning"] = learning
    if jax.process_index() == 0:
        write_json(os.path.join(workdir, "summary.json"), summary)
    print(f"[{NAME}] done in {time.time() - t0:.0f} s; outputs in {workdir}", flush=True)
    return summary


def _main(config: ml_collections.ConfigDict, workdir: str) -> None:
    summary = run(config, workdir)
    view = {k: v for k, v in summary.items() if k != "gradient"}
    print(json.dumps(json_safe(view), indent=1)[:4000])


def main(argv):
    del argv
    common.guarded_main(lambda: _main(_CONFIG.value, _WORKDIR.value))


FISHER_TITLES = {
    "steps": "G estimated from the batch per step (sum_t u_t u_t^T / M)",
    "trajectory": "G estimated from the batch per trajectory (u u^T / M)",
    "exact": "exact analytic G (oracle: side information a model-free method lacks)",
    "states": "G from the batch per step with the expectation over the policy's actions taken "
              "analytically (sum_t F(x_t) / M, F(x) = E_a[u u^T | x]; model-free)",
}


def gradient_parts(summary: dict) -> list[tuple[str, dict]]:
    """`(key, gradient summary)` for the primary Fisher mode, then the others."""
    return [(k, v) for k, v in summary.items() if k.startswith("gradient")]


def _angle_cell(row: dict) -> str:
    return f"{row['angle_deg']:.1f} +- {1.96 * row['angle_se']:.1f}"


def gradient_tables(g: dict) -> list[str]:
    """Angle / relative-error table and calibration table of one Fisher mode."""
    counts, t = g["episode_counts"], g["table"]
    names = [n for n in estimators.NAMES if n in t[str(counts[0])]]
    lines = [
        f"**{FISHER_TITLES[g['fisher_mode']]}**; GP hyperparameters "
        + ("fitted per batch (evidence)" if g.get("fit_gp") else "fixed (scale 1, noise 1)")
        + ". Mean angle to the exact gradient (deg, +- 95% CI half-width over repetitions) "
        "and mean relative norm error:",
        "",
        "| M | " + " | ".join(LABELS[n] for n in names) + " | rel. err "
        + " / ".join(names) + " |",
        "|---|" + "---|" * (len(names) + 1),
    ]
    for m in counts:
        r = t[str(m)]
        lines.append(f"| {m} | " + " | ".join(_angle_cell(r[n]) for n in names) + " | "
                     + " / ".join(f"{r[n]['rel_error']:.2f}" for n in names) + " |")
    post = [n for n in names if "coverage_95" in t[str(counts[0])][n]]
    if post:
        lines += [
            "",
            "Calibration: `coverage_95` = fraction of (repetition, component) pairs whose "
            "marginal 95% credible interval holds the true component (per component lambda / "
            "sigma in brackets); angle = fraction whose angle error is within the posterior's "
            "95% angle quantile; median |z| (nominal 0.67):",
            "",
            "| M | " + " | ".join(f"{LABELS[n]} cov. [lam / sig] | angle | med. abs z"
                                  for n in post) + " |",
            "|---|" + "---|---|---|" * len(post),
        ]
        for m in counts:
            cells = []
            for n in post:
                r = t[str(m)][n]
                pc = r["coverage_95_per_component"]
                z = r["median_z_abs"]
                cells.append(f"{r['coverage_95']:.3f} [{pc[0]:.2f} / {pc[1]:.2f}] | "
                             f"{r['angle_coverage_95']:.3f} | {z[0]:.2f} / {z[1]:.2f}")
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
    sf = g["sample_factor"]
    lines += [
        "",
        "Episodes MC + baseline (the main baseline) needs to match each estimator's mean "
        "angle, as a multiple of M (log-log interpolation of its curve, measured up to M = "
        f"{max(counts + g['mc_reference_counts'])}; vs plain MC in brackets):",
        "",
        "| M | BPG Model 1 | BPG Model 2 | BAC |",
        "|---|---|---|---|",
    ]
    for m in counts:
        lines.append(f"| {m} | " + " | ".join(
            f"{sf[f'{n}_vs_mc_baseline_angle_deg'][str(m)]} ({sf[f'{n}_vs_mc_angle_deg'][str(m)]})"
            for n in ("bpg1", "bpg2", "bac")) + " |")
    return lines + [""]


def report(summary: dict, name: str = NAME) -> str:
    """Markdown section from a study summary (image links relative to the report root)."""
    lines = [
        "## Bayesian policy gradient and Bayesian actor-critic (Ghavamzadeh, Engel & Valko 2016)",
        "",
    ]
    if "gradient" in summary:
        lines += [
            "Gradient estimates on the paper's LQR at (lambda, sigma) = (-0.2, 1), exact gradient "
            "(-180.07, -100.06). The primary result uses the Fisher information estimated from "
            "the batch; the exact-G figures are an oracle.",
            "",
        ]
    for key, g in gradient_parts(summary):
        lines += gradient_tables(g)
        lines += [f"![gradient error {g['fisher_mode']}]({name}/plots/{key}_error.png)", ""]
    if "learning" in summary:
        lines += [
            "Policy learning (final = last 10% of updates; IQM over seeds, 95% "
            "stratified-bootstrap CI; LQR metric = exact expected return). Each estimator runs "
            "over the config's grid (`config.sweep`) x seeds as one resumable program and is "
            "shown at its best grid point (fastest median time to the target when a target is "
            "set, else best final IQM; chosen on the same seeds):",
            "",
        ]
        for env, d in summary["learning"].items():
            lines += [
                "| env | estimator | final IQM [95% CI] | mean over training IQM [95% CI] | "
                "updates to target: median (reached) | P(faster) vs MC / vs MC+baseline [95% CI] "
                "| best grid point | per point: final IQM; median updates to target |",
                "|---|---|---|---|---|---|---|---|",
            ]
            for est, v in d.items():
                per = ", ".join(
                    f"{k}: {_num(q, '.2f')}; {_num(v.get('iters_to_target_per_point', {}).get(k), '.0f')}"
                    for k, q in v.get("final_iqm_per_point", {}).items())
                tt = ("-" if "target" not in v else
                      f"{_num(v['iters_to_target_median'], '.0f')} "
                      f"({v['frac_reached_target']:.2f})")
                pf = " / ".join(
                    "-" if f"prob_faster_vs_{r}" not in v else
                    "{:.2f} [{:.2f}, {:.2f}]".format(*v[f"prob_faster_vs_{r}"])
                    for r in ("mc", "mc_baseline"))
                lines.append(
                    f"| {env} | {LABELS[est]} | {_num(v['final_iqm'])} [{_num(v['final_iqm_lo'])}, "
                    f"{_num(v['final_iqm_hi'])}] | {_num(v['train_mean_iqm'])} "
                    f"[{_num(v['train_mean_lo'])}, {_num(v['train_mean_hi'])}] | {tt} | {pf} | "
                    f"{experiment.grid_label(v.get('best_point', {}))} | {per} |")
            lines.append("")
        for env in summary["learning"]:
            lines.append(f"![learning {env}]({name}/plots/learning_{env}.png)")
        lines.append("")
    lines.append(honest_statement(summary))
    return "\n".join(lines) + "\n"


def _num(x, fmt: str = ".2f") -> str:
    """A number for a table cell; `-` for a missing one (e.g. every seed failed)."""
    return "-" if x is None or not np.isfinite(x) else format(x, fmt)


def honest_statement(summary: dict) -> str:
    """A plain-language verdict computed from the measured tables (the learning part alone
    for a `mode=learn` summary)."""
    if "gradient" not in summary:
        return "**Verdict (measured here).**" + learning_statement(summary)
    g = summary["gradient"]
    t = g["table"]
    m_mid = 10 if "10" in t else g["episode_counts"][0]
    a = {k: t[str(m_mid)][k]["angle_deg"] for k in estimators.NAMES if k in t[str(m_mid)]}
    sf = g["sample_factor"]
    out = (
        f"**Verdict (measured here).** With G estimated from the batch "
        f"({g['fisher_mode']}), at M = {m_mid}: MC + baseline {a['mc_baseline']:.1f} deg, "
        f"BPG Model 1 {a['bpg1']:.1f}, BAC {a['bac']:.1f}, BPG Model 2 {a['bpg2']:.1f}, plain "
        f"MC {a['mc']:.1f}; MC + baseline needs "
        f"{sf['bpg1_vs_mc_baseline_angle_deg'][str(m_mid)]}x the episodes to match Model 1 "
        f"and {sf['bac_vs_mc_baseline_angle_deg'][str(m_mid)]}x to match BAC.")
    post = [k for k in estimators.POSTERIOR if "coverage_95" in t[str(m_mid)].get(k, {})]
    if post:
        cov = ", ".join(f"{LABELS[k]} {t[str(m_mid)][k]['coverage_95']:.2f}" for k in post)
        out += f" Coverage of the nominal 95% intervals at M = {m_mid}: {cov}."
    return out + learning_statement(summary)


def learning_statement(summary: dict) -> str:
    """One sentence per learning environment: which estimators are within / below MC+baseline."""
    out = []
    for env, d in summary.get("learning", {}).items():
        if "mc_baseline" not in d:
            continue
        ref = d["mc_baseline"]
        parts = []
        for est, v in d.items():
            if est == "mc_baseline":
                continue
            cells = (v["final_iqm_lo"], v["final_iqm_hi"], ref["final_iqm_lo"], ref["final_iqm_hi"])
            if any(x is None for x in cells):
                verdict = "no CI: failed seeds"
            elif v["final_iqm_hi"] >= ref["final_iqm_lo"] and v["final_iqm_lo"] <= ref[
                    "final_iqm_hi"]:
                verdict = "CIs overlap"
            else:
                verdict = "better" if v["final_iqm"] > ref["final_iqm"] else "worse"
            parts.append(f"{LABELS[est]} {_num(v['final_iqm'])} ({verdict})")
        out.append(
            f" Policy learning on {env} at each estimator's best grid point: MC+baseline "
            f"{_num(ref['final_iqm'])}; " + "; ".join(parts) + "."
        )
        out.append(speed_statement(env, d))
    return "".join(out)


def _speed_word(p: list[float]) -> str:
    """`faster` / `slower` when the 95% CI of P(faster) excludes 1/2, else `not resolved`."""
    return "faster" if p[1] > 0.5 else "slower" if p[2] < 0.5 else "not resolved"


def speed_statement(env: str, d: dict) -> str:
    """Does each Bayesian estimator reach the target in fewer updates than MC (without and with
    a baseline)? P(faster) = probability of improvement on the per-seed number of updates to
    the target (never reached = slower than any reach) with its 95% bootstrap CI; the verdict
    is `faster` / `slower` only when the CI excludes 1/2."""
    parts = []
    for est in ("bpg1", "bpg2", "bac"):
        v = d.get(est, {})
        cells = [f"vs {LABELS[r]} P(faster) = {v[f'prob_faster_vs_{r}'][0]:.2f} "
                 f"[{v[f'prob_faster_vs_{r}'][1]:.2f}, {v[f'prob_faster_vs_{r}'][2]:.2f}] "
                 f"({_speed_word(v[f'prob_faster_vs_{r}'])})"
                 for r in ("mc", "mc_baseline") if f"prob_faster_vs_{r}" in v]
        if cells:
            parts.append(f"{LABELS[est]} " + ", ".join(cells))
    if not parts:
        return ""
    target = next(v["target"] for v in d.values() if "target" in v)
    return (f" Updates to reach {target:g} on {env} (each at its best step size): "
            + "; ".join(parts) + ".")


def reproduce(root: str) -> str:
    """Run the quick variant into `root/bayes_pg` and return the report's Markdown section."""
    from experiments.configs import bayes_pg as cfg_mod

    c = cfg_mod.get_config("quick")
    summary = run(c, os.path.join(root, NAME))
    return report(summary)


if __name__ == "__main__":
    flags.mark_flags_as_required(["config", "workdir"])
    app.run(main)
