"""STAC vs SAC-family baselines: return, overestimation bias, beta ablation, risk avoidance.

  python -m experiments.stac --config=experiments/configs/stac.py[:quick] --workdir=DIR

Every (environment, method) is ONE compiled program (`jaxrl.stac.STACConfig`) run by
`jaxrl.experiment.run` over all its seeds and grid points (the beta ablation is a grid over
`beta` inside the STAC program), in `DIR/<env>/<method>/` with the runtime's files:
`config.json`, `metrics.csv` (training metrics per run, one row per `log_every` env steps:
their means), `eval.csv` (evaluation every `eval_every` env steps and at the end: return,
danger fraction, overestimation bias by `jaxrl.stac.bias`, critic mean, soft return),
`checkpoints/` and `summary.json`. Evaluation is
the algorithm's `evaluate` on the platform: its key depends only on (seed, evaluation index), so
every beta of a seed is evaluated from the same start states and with the same bias-rollout noise
(common random numbers; comparisons between betas are paired). On RiskyPointMass the final
policies' trajectories are drawn once at the end from the final states, again from the same start
states for every beta of a seed. At the top of DIR: `summary.json` (IQM over seeds with 95% CIs,
probabilities of improvement, paired danger differences), `rows.csv` (the raw per-seed results:
one row per (env, method label, seed, evaluation point); `summarize(load_rows(path))`
recomputes every table from it), `plots/*.png`, `trajectories.npz` and `config.json`.

Bias is SIGNED (positive: the critic overestimates the soft return, negative: it
underestimates). Methods are compared by its MAGNITUDE: the summary has, beside each signed
bias, `abs_*` entries (per seed `|bias|` at the last point, or averaged over the evaluation
points), the probabilities of improvement for bias are P(|bias| lower), and `report` words
the bias verdict by magnitude (with the sign stated). Three estimators (`jaxrl.stac.bias`):
`bias_reference` (the reference code's, on the evaluation episodes), `bias_paper` (ours, one
episode, sampled actions, min of twins) and `bias_rollout` (ours, many rollouts).
`return_last` is the paper's final score: the IQM, pooled over seeds, of the last
`floor(0.02 N) + 1` of the `N` evaluation points (the authors' `summarize.py`, which their
tables call "last 1%"). Killing the script and re-running the same command resumes every program from
its newest checkpoint (finished programs are read back); the CSV files end byte-identical to an
uninterrupted run. Set JAXRL_CPU_DEVICES=auto on a CPU host to spread the lanes over its cores.
Paper: Özalp 2026, arXiv 2601.00737, Sec. 5.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
from typing import Any

import jax
import ml_collections
import numpy as np
from absl import app, flags
from ml_collections import config_flags

from experiments import common
from jaxrl import experiment, stats
from jaxrl.metrics import write_json
from jaxrl.stac import stac as stac_lib
from jaxrl.stac.variants import VARIANTS

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "experiments/configs/stac.py[:quick|:tiny|...]", allow_override=True
)
_WORKDIR = flags.DEFINE_string("workdir", None, "output directory (resumed if it exists)",
                               allow_override=True)

# Methods: the library's variant table (`jaxrl.stac.variants.VARIANTS`, in program order after
# STAC) plus `stac_nodrop`, STAC's networks without the dropout op (a config of `stac`).
KNOWN = tuple(VARIANTS) + ("stac_nodrop",)
EVAL_METRICS = ("return", "danger_frac", "bias_reference", "bias_paper", "bias_rollout", "q_mean",
                "soft_return")  # those an evaluation returns (without bias_states: the first 3)
BIAS_COLUMNS = ("bias_rollout", "bias_paper", "bias_reference")  # estimators, preferred first
PAPER_WINDOW_FRAC = 0.02  # the authors' summarize.py: smooth_ratio, window floor(0.02 N) + 1
TRAIN_AT_EVAL = ("train_return", "alpha", "sigma_mean", "failed")  # training metrics at eval
TRAJ_STREAM = 0x7472616A  # "traj": fold_in tag of the trajectory keys (one per seed)


@dataclasses.dataclass(frozen=True)
class Program:
    """One compiled program: `WORKDIR/<env>/<variant>/`.

    `labels` maps each method label it holds ("stac", "beta=0.5", "sac", ...) to its grid point
    (`{}`: all runs of the program)."""

    env: str
    variant: str
    cfg: stac_lib.STACConfig
    grid: dict[str, tuple[float, ...]]
    labels: dict[str, dict[str, float]]

    def env_steps_per_update(self) -> int:
        return int(self.cfg.num_envs) * int(self.cfg.log_every)

    def workdir(self, root: str) -> str:
        return os.path.join(root, self.env, self.variant)

    def stored_config(self) -> dict[str, Any]:
        """What config.json holds (and a resume compares): everything that sets the numbers."""
        return {"experiment": "stac", "env": self.env, "variant": self.variant,
                "algo": dataclasses.asdict(self.cfg), "labels": self.labels}


def _dropouts(c: ml_collections.ConfigDict) -> tuple[float, float]:
    """STAC's (actor, critic) dropout: `config.actor_dropout` / `config.critic_dropout` where
    set (not None), else `config.dropout` for both."""
    d = float(c.dropout)
    a, q = c.get("actor_dropout"), c.get("critic_dropout")
    return (d if a is None else float(a)), (d if q is None else float(q))


def _target_entropy(c: ml_collections.ConfigDict, env: str) -> float | None:
    """`config.target_entropy` for all methods: None (`-|A|`), a number, or a per-env dict
    (a missing env: None)."""
    t = c.get("target_entropy")
    if t is None:
        return None
    if isinstance(t, int | float):
        return float(t)
    v = t.get(env) if hasattr(t, "get") else None
    return None if v is None else float(v)


def programs(c: ml_collections.ConfigDict, env: str) -> list[Program]:
    """The programs of one env, in run order: STAC (its main beta and the beta ablation as one
    grid over `beta`), STAC without dropout, then the other variants of `config.variants` in
    `VARIANTS` order: with STAC's dropouts where `Variant.dropout`, else without dropout, and
    with the family's own fields (`CriticFamily.config_fields`) where the config sets them."""
    base = dict(
        env_name=env,
        total_env_steps=int(c.steps[env]),
        warmup_steps=int(c.warmup_steps),
        buffer_size=int(c.buffer_size),
        batch_size=int(c.batch_size),
        actor_hidden=(int(c.hidden),) * 2,
        critic_hidden=(int(c.hidden),) * 2,
        alpha_update=c.alpha_update,
        target_entropy=_target_entropy(c, env),
        actor_lr=float(c.lr),
        critic_lr=float(c.lr),
        alpha_lr=float(c.lr),
        alpha_init=float(c.alpha_init[env]),
        beta=float(c.beta),
        eval_episodes=int(c.eval_episodes),
        bias_states=int(c.bias_states),
        bias_rollouts=int(c.bias_rollouts),
        bias_horizon=int(c.bias_horizon),
        log_every=int(c.log_every),
    )
    actor_d, critic_d = _dropouts(c)
    labels: dict[str, dict[str, float]] = {}
    if env in c.variant_envs and "stac" in c.variants:
        labels["stac"] = {"beta": float(c.beta)}
    if env in c.ablation_envs:
        for b in c.betas:
            labels[f"beta={float(b):g}"] = {"beta": float(b)}
    out = []
    if labels:
        betas = tuple(sorted({pt["beta"] for pt in labels.values()}))
        cfg = stac_lib.STACConfig(variant="stac", actor_dropout=actor_d,
                                  critic_dropout=critic_d, **base)
        out.append(Program(env, "stac", cfg, {"beta": betas}, labels))
    if env in c.variant_envs:
        if "stac_nodrop" in c.variants:  # STAC's networks without the dropout op
            cfg = stac_lib.STACConfig(variant="stac", use_dropout=False, actor_dropout=0.0,
                                      critic_dropout=0.0, **base)
            out.append(Program(env, "stac_nodrop", cfg, {}, {"stac_nodrop": {}}))
        for v, spec in VARIANTS.items():
            if v == "stac" or v not in c.variants:
                continue
            extra = {f: c[f] for f in spec.family.config_fields if c.get(f) is not None}
            drop = dict(actor_dropout=actor_d, critic_dropout=critic_d) if spec.dropout else \
                dict(use_dropout=False, actor_dropout=0.0, critic_dropout=0.0)
            cfg = stac_lib.STACConfig(variant=v, **drop, **base, **extra)
            out.append(Program(env, v, cfg, {}, {v: {}}))
    return out


def _user_field(name: str, env: str, sweep: bool,
                c: ml_collections.ConfigDict | None = None) -> str:
    """The config field a user sets for STACConfig field `name` (for error messages)."""
    if sweep:
        return {"beta": "config.betas"}.get(name, f"config.{name}")
    if name in ("actor_dropout", "critic_dropout"):
        return f"config.{name}" if c is not None and c.get(name) is not None else "config.dropout"
    return {
        "actor_lr": "config.lr", "critic_lr": "config.lr", "alpha_lr": "config.lr",
        "actor_hidden": "config.hidden", "critic_hidden": "config.hidden",
        "alpha_init": f"config.alpha_init[{env!r}]", "total_env_steps": f"config.steps[{env!r}]",
    }.get(name, f"config.{name}")


def _check_program(p: Program, c: ml_collections.ConfigDict | None = None) -> None:
    """`STACConfig.validate` (i.e. `jaxrl.config.validate` on the field marks) of the program's
    config and grid; the message names the experiment config's field."""
    try:
        p.cfg.validate(p.grid, prefix="@algo", sweep_prefix="@sweep")
    except ValueError as e:
        msg = re.sub(r"@(algo|sweep)\.(\w+)",
                     lambda m: _user_field(m.group(2), p.env, m.group(1) == "sweep", c), str(e))
        raise ValueError(f"{msg} ({p.env}/{p.variant} program)") from None


def validate(c: ml_collections.ConfigDict) -> tuple[list[int], list[Program]]:
    """Every check before anything compiles or is written: one-line `ValueError`s naming the
    field. Returns the seeds and the programs in run order."""
    seeds = common.seeds_from_config(c)
    common.validate_runtime(c)
    for v in c.variants:
        if v not in KNOWN:
            raise ValueError(f"config.variants must hold names from {KNOWN}, got {v!r}")
    for e in tuple(c.variant_envs) + tuple(c.ablation_envs):
        if e not in c.envs:
            raise ValueError(f"config.envs must include {e!r} (in variant_envs/ablation_envs)")
    for e in c.envs:
        for field in ("steps", "alpha_init"):
            if e not in c[field]:
                raise ValueError(f"config.{field} must have an entry for {e!r}")
        try:
            stac_lib.make_env(e)
        except ValueError as err:
            raise ValueError(f"config.envs: {err}") from None
        except Exception as err:  # noqa: BLE001 - a third-party env that fails to build
            first = (str(err).splitlines() or [""])[0]
            raise ValueError(f"config.envs: building {e!r} failed: {type(err).__name__}: "
                             f"{first}") from None
    if int(c.log_every) < 1:
        raise ValueError(f"config.log_every must be >= 1, got {c.log_every!r}")
    if int(c.eval_every) < 1 or int(c.eval_every) % int(c.log_every):
        raise ValueError(f"config.eval_every must be a positive multiple of log_every="
                         f"{c.log_every}, got {c.eval_every!r}")
    for e in c.envs:
        n = int(c.steps[e]) - int(c.warmup_steps)
        if n <= 0 or n % int(c.eval_every):
            raise ValueError(
                f"config.steps[{e!r}] - warmup_steps must be a positive multiple of "
                f"eval_every={c.eval_every}, got {c.steps[e]}"
            )
    if int(c.bias_states) < 0:
        raise ValueError(f"config.bias_states must be >= 0 (0: only the reference bias "
                         f"estimate), got {c.bias_states!r}")
    if str(c.get("dsac_target", "elementwise_min")) not in stac_lib.DSAC_TARGETS:
        raise ValueError(f"config.dsac_target must be one of {stac_lib.DSAC_TARGETS}, got "
                         f"{c.dsac_target!r}")
    if int(c.trajectory_episodes) < 1:
        raise ValueError(f"config.trajectory_episodes must be >= 1, got "
                         f"{c.trajectory_episodes!r}")
    progs = [p for e in c.envs for p in programs(c, e)]
    if not progs:
        raise ValueError("nothing to run: config.variants/variant_envs/ablation_envs select no "
                         "program")
    for p in progs:
        _check_program(p, c)
    return seeds, progs


# ---------------------------------------------------------------------------------------------
# Running one program; its results as rows.
# ---------------------------------------------------------------------------------------------


def run_program(p: Program, c: ml_collections.ConfigDict, seeds: list[int], root: str,
                stop_after_chunks: int | None = None) -> tuple[experiment.Result, dict]:
    """Run (or resume, or read back when finished) one program in its sub-workdir, evaluating
    every `eval_every` env steps; write its summary.json."""
    sub = p.workdir(root)
    t0 = time.time()
    result = experiment.run(
        stac_lib.make_stac(p.cfg), seeds, p.grid or None, workdir=sub,
        config=p.stored_config(), eval_every=int(c.eval_every) // p.env_steps_per_update(),
        progress_metric="train_return", stop_after_chunks=stop_after_chunks,
        **common.runtime_kwargs(c))
    if result.interrupted_at is not None:
        return result, {}
    summary = {
        "env": p.env,
        "variant": p.variant,
        "labels": p.labels,
        "seconds_this_invocation": round(time.time() - t0, 1),
        "env_steps_per_run": int(p.cfg.total_env_steps),
        "num_failed": result.num_failed,
        # per run: the last evaluation; per grid point: IQM [95% CI] over seeds.
        "eval": {m: experiment.summarize(result, m, source="eval")
                 for m in ("return", "danger_frac") + BIAS_COLUMNS if m in result.evals},
    }
    experiment.finish(sub, result, summary)
    return result, summary


def _labels_of(p: Program, run: dict) -> list[str]:
    return [lab for lab, pt in p.labels.items() if all(run.get(k) == v for k, v in pt.items())]


def result_rows(p: Program, result: experiment.Result) -> list[dict]:
    """One row per (label, seed, evaluation point): the evaluation metrics and the training
    metrics logged at the update evaluated (means over its `log_every` env steps); `step`
    counts env steps including warm-up."""
    pos = {int(s): k for k, s in enumerate(result.steps)}
    rows = []
    for i, run in enumerate(result.runs):
        labels = _labels_of(p, run)
        for j, u in enumerate(result.eval_steps):
            row = {"env": p.env, "variant": p.variant, "seed": int(run["seed"]),
                   "step": int(p.cfg.warmup_steps) + int(u) * p.env_steps_per_update()}
            row |= {m: float(result.evals[m][i, j]) for m in EVAL_METRICS if m in result.evals}
            row |= {m: float(result.metrics[m][i, pos[int(u)]]) for m in TRAIN_AT_EVAL
                    if m in result.metrics}
            rows += [{**row, "label": lab} for lab in labels]
    return rows


def trajectories(p: Program, result: experiment.Result, seed: int,
                 num_episodes: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """`{label: (obs [T, E, obs_dim], alive [T, E])}`: `num_episodes` evaluation episodes of the
    final policy of each grid point's run with seed `seed`, all from the same start states (one
    key, `fold_in(PRNGKey(seed), TRAJ_STREAM)`, for every grid point: common random numbers)."""
    L = stac_lib.make_learner(p.cfg)
    idx = np.asarray([i for i, r in enumerate(result.runs) if r["seed"] == seed], int)
    state = jax.tree.map(lambda x: np.asarray(x)[idx], result.state.algo)
    key = jax.random.fold_in(jax.random.PRNGKey(seed), TRAJ_STREAM)
    fn = jax.jit(jax.vmap(lambda s: stac_lib.evaluate(L, s, key, num_episodes,
                                                      trajectories=True)))
    out = jax.tree.map(np.asarray, fn(state))
    trajs = {}
    for n, i in enumerate(idx):
        for lab in _labels_of(p, result.runs[i]):
            trajs[lab] = (out["obs"][n], out["alive"][n])
    return trajs


# ---------------------------------------------------------------------------------------------
# Aggregation over seeds (rows of all programs) and plots.
# ---------------------------------------------------------------------------------------------


_METRICS = (  # (summary name, row column, per-seed aggregate over evaluation points)
    ("return", "return", "final"),
    ("danger_frac", "danger_frac", "final"),
    ("sigma_mean", "sigma_mean", "final"),
    ("alpha", "alpha", "final"),
) + tuple(  # every bias estimator: signed and |.|, averaged over training and at the end
    (f"{pre}{col}{post}", col, f"{agg}{suffix}")
    for col in BIAS_COLUMNS
    for pre, suffix in (("", ""), ("abs_", "_abs"))
    for post, agg in (("", "avg"), ("_final", "final"))
)


def per_seed(rows: list[dict], env: str, label: str, column: str, agg: str) -> np.ndarray:
    """`[seeds]` values of one column for (env, label): the last evaluation point (`final`) or
    the mean over the points after the first (`avg`); `final_abs` / `avg_abs` take `|value|`
    per point first (the magnitude of a signed bias, per seed)."""
    rs = [r for r in rows if r["env"] == env and r["label"] == label]
    last = max(r["step"] for r in rs)
    first = min(r["step"] for r in rs)
    f = np.abs if agg.endswith("_abs") else (lambda x: x)
    agg = agg.removesuffix("_abs")
    out = []
    for s in sorted({r["seed"] for r in rs}):
        sr = [r for r in rs if r["seed"] == s]
        if agg == "final":
            out.append(np.mean([f(r[column]) for r in sr if r["step"] == last]))
        else:
            out.append(np.mean([f(r[column]) for r in sr if r["step"] > first]
                               or [f(r[column]) for r in sr]))
    return np.asarray(out, float)


def paper_iqm(values: np.ndarray) -> float:
    """The authors' interquartile mean (`summarize.py` `naniqmean` of
    ugurcanozalp/stochastic-actor-critic): the mean of the non-NaN values within
    `[q_0.25, q_0.75]` (NumPy's linear quantiles, bounds included); the median where that
    set is empty (two distinct values)."""
    x = np.asarray(values, float).ravel()
    x = x[~np.isnan(x)]
    if x.size == 0:
        return float("nan")
    q1, q3 = np.quantile(x, 0.25), np.quantile(x, 0.75)
    mid = x[(x >= q1) & (x <= q3)]
    # Two distinct values leave nothing inside [q1, q3] (the authors' function gives NaN): the
    # median then, which only happens for tiny runs (the paper pools 5 x 21 or 5 x 61 values).
    return float(np.mean(mid)) if mid.size else float(np.median(x))


def paper_final_score(rows: list[dict], env: str, label: str, column: str = "return",
                      frac: float = PAPER_WINDOW_FRAC) -> dict:
    """The paper's final score (its tables' "IQM of the last 1% of evaluation episodes"):
    exactly the authors' `summarize.py` at the last point, i.e. `paper_iqm` of the values of
    all seeds at the last `floor(frac N) + 1` of the `N` evaluation points, pooled. Returns
    `{"iqm", "points", "n"}` (window length, number of values)."""
    rs = [r for r in rows if r["env"] == env and r["label"] == label]
    steps = sorted({r["step"] for r in rs})
    w = int(np.floor(frac * len(steps))) + 1
    keep = set(steps[-w:])
    vals = np.asarray([r[column] for r in rs if r["step"] in keep], float)
    return {"iqm": paper_iqm(vals), "points": w, "n": int(vals.size)}


def summarize(rows: list[dict]) -> dict:
    """`{env: {label: {metric: {iqm, lo, hi, n}}}}` over seeds (see `_METRICS`): final return,
    danger fraction, sigma and alpha; every bias estimator present in the rows signed
    (`bias_*`: averaged over each seed's evaluation points after the first; `bias_*_final`: at
    the last point) and by magnitude (`abs_bias_*`, `abs_bias_*_final`: per-seed `|bias|`);
    and `return_last` (`paper_final_score`: the paper's pooled last-window IQM, no CI)."""
    out = {}
    for env, label in sorted({(r["env"], r["label"]) for r in rows}):
        res = {}
        cols = set().union(*(r.keys() for r in rows if r["env"] == env and r["label"] == label))
        for name, column, agg in _METRICS:
            if column not in cols:
                continue
            vals = per_seed(rows, env, label, column, agg)
            lo, hi = (stats.bootstrap_ci(vals, "iqm", reps=1000) if len(vals) > 1
                      else (float(vals[0]), float(vals[0])))
            res[name] = {"iqm": float(stats.iqm(vals)), "lo": float(lo), "hi": float(hi),
                         "n": len(vals)}
        res["return_last"] = paper_final_score(rows, env, label)
        out.setdefault(env, {})[label] = res
    return out


# (column, aggregate, True if lower is better) for the pairwise probabilities of improvement;
# bias by MAGNITUDE (a more negative bias is not better).
_PAIR_METRICS = (("return", "final", False), ("bias_rollout", "avg_abs", True),
                 ("bias_rollout", "final_abs", True), ("danger_frac", "final", True))


def pairs(rows: list[dict], env: str, first: str, others: Any) -> list[dict]:
    """P(`first` better than each of `others`) over all seed pairs (Mann-Whitney, Agarwal et al.
    2021) with 95% bootstrap CIs, for return (higher), |bias| and danger (lower); keys
    `return_final`, `bias_rollout_avg_abs`, `bias_rollout_final_abs`, `danger_frac_final`
    (bias pairs only where the rows have `bias_rollout`)."""
    labels = {r["label"] for r in rows if r["env"] == env}
    cols = set().union(*(r.keys() for r in rows if r["env"] == env)) if labels else set()
    out = []
    for other in others:
        if other == first or other not in labels or first not in labels:
            continue
        row = {"pair": f"{first} vs {other}"}
        for column, agg, lower in _PAIR_METRICS:
            if column not in cols:
                continue
            x = per_seed(rows, env, first, column, agg)
            y = per_seed(rows, env, other, column, agg)
            if lower:
                x, y = -x, -y
            row[f"{column}_{agg}"] = stats.probability_of_improvement_ci(x, y, reps=1000)
        out.append(row)
    return out


def bias_verdict(res: dict, column: str = "bias_rollout") -> str:
    """One sentence ranking the methods of one env by the MAGNITUDE of their final bias
    (`abs_<column>_final`: IQM over seeds of per-seed `|bias|`), smallest first, each with its
    signed IQM and direction (over / under where the signed 95% CI excludes 0, else "sign not
    resolved"); `""` when the estimator is absent."""
    key, signed = f"abs_{column}_final", f"{column}_final"
    ranked = sorted((r[key]["iqm"], lab, r[signed]) for lab, r in res.items() if key in r)
    if not ranked:
        return ""

    def word(d):  # the direction, only where the signed CI excludes 0
        return "over" if d["lo"] > 0 else "under" if d["hi"] < 0 else "sign not resolved"

    parts = [f"{lab} {m:.3g} (signed {d['iqm']:+.3g}, {word(d)})" for m, lab, d in ranked]
    return (f"Final {column} by magnitude (IQM over seeds of per-seed |bias|), smallest "
            f"first: " + "; ".join(parts) + ".")


def paired_differences(rows, env: str, base: str, column: str = "danger_frac") -> dict:
    """`{label: (mean, lo, hi)}`: per-seed final `column` of each `beta=` point minus `base`'s,
    same seeds and (common random numbers) same evaluation start states; mean over seeds with a
    95% bootstrap CI."""
    labels = {r["label"] for r in rows if r["env"] == env and r["label"].startswith("beta=")}
    out = {}
    if base not in labels:
        return out
    ref = per_seed(rows, env, base, column, "final")
    for label in sorted(labels - {base}):
        d = per_seed(rows, env, label, column, "final") - ref
        lo, hi = stats.bootstrap_ci(d, "mean", reps=1000)
        out[label] = (float(np.mean(d)), float(lo), float(hi))
    return out


def file_name(env: str) -> str:
    """`env` as a file-name part (`brax/hopper` -> `brax_hopper`)."""
    return env.replace("/", "_")


ROW_FIELDS = ("env", "variant", "label", "seed", "step") + EVAL_METRICS + TRAIN_AT_EVAL


def write_rows(path: str, rows: list[dict]) -> None:
    """The raw per-seed results as CSV (columns `ROW_FIELDS`; empty where not measured)."""
    import csv

    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=ROW_FIELDS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in ROW_FIELDS})


def load_rows(path: str) -> list[dict]:
    """Rows from `write_rows`' CSV (numbers parsed, empty cells dropped): `summarize`,
    `pairs` and `report` recompute every table from them."""
    import csv

    out = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            row = {}
            for k, v in r.items():
                if v == "":
                    continue
                row[k] = v if k in ("env", "variant", "label") else (
                    int(v) if k in ("seed", "step") else float(v))
            out.append(row)
    return out


def make_plots(rows, trajs, summary, plot_dir):
    import matplotlib

    from jaxrl import plotting

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(plot_dir, exist_ok=True)
    paths = []
    for env in sorted({r["env"] for r in rows}):
        cols = set().union(*(r.keys() for r in rows if r["env"] == env))
        for metric in ("return",) + BIAS_COLUMNS:
            if metric not in cols:
                continue
            name = metric
            curves = {}
            for label in sorted({r["label"] for r in rows if r["env"] == env}):
                rs = [r for r in rows if r["env"] == env and r["label"] == label]
                steps = sorted({r["step"] for r in rs})
                seeds = sorted({r["seed"] for r in rs})
                y = np.full((len(seeds), len(steps)), np.nan)
                for r in rs:
                    y[seeds.index(r["seed"]), steps.index(r["step"])] = r[metric]
                curves[label] = (np.asarray(steps), y)
            p = os.path.join(plot_dir, f"{file_name(env)}_{name}.png")
            plotting.plot_curves(p, curves, ylabel=name, title=f"{env}: {name} (IQM, 95% CI)")
            plt.close("all")
            paths.append(p)
        betas = sorted(k for k in summary[env] if k.startswith("beta="))
        if betas:
            fig, axes = plt.subplots(1, 3, figsize=(12, 3.5))
            xs = [float(b.split("=")[1]) for b in betas]
            # the signed bias, with its zero line: |bias| is the distance from that line
            bias_m = next((c for c in BIAS_COLUMNS if c in summary[env][betas[0]]), None)
            for ax, m in zip(axes, ("return", bias_m, "danger_frac"), strict=True):
                if m is None:
                    continue
                if m == bias_m:
                    ax.axhline(0.0, color="k", lw=0.8, ls="--")
                c = [summary[env][b][m]["iqm"] for b in betas]
                lo = [summary[env][b][m]["lo"] for b in betas]
                hi = [summary[env][b][m]["hi"] for b in betas]
                ax.errorbar(
                    xs, c, yerr=[np.subtract(c, lo), np.subtract(hi, c)], marker="o", capsize=3
                )
                ax.set_xlabel("beta")
                ax.set_title(f"{m} (signed; 0 = unbiased)" if m == bias_m else m)
            fig.suptitle(f"{env}: STAC beta ablation (IQM, 95% CI)")
            fig.tight_layout()
            p = os.path.join(plot_dir, f"{file_name(env)}_beta_ablation.png")
            fig.savefig(p, dpi=100)
            plt.close(fig)
            paths.append(p)
    labels = sorted((k for k in trajs if k.startswith("beta=")), key=lambda k: float(k[5:]))
    if labels:
        fig, axes = plt.subplots(1, len(labels), figsize=(3.2 * len(labels), 3.9), squeeze=False)
        cmap = plt.get_cmap("tab10")
        for ax, label in zip(axes[0], labels, strict=True):
            ax.add_patch(plt.Circle((0.5, 0.5), 0.3, color="red", alpha=0.2))
            ax.add_patch(plt.Circle((0.0, 0.0), 0.05, color="green", alpha=0.6))
            obs, alive = trajs[label]
            for e in range(obs.shape[1]):
                n = int(alive[:, e].sum())
                ax.plot(obs[:n, e, 0], obs[:n, e, 1], color=cmap(e % 10), lw=1.2)
                ax.plot(obs[0, e, 0], obs[0, e, 1], "o", color=cmap(e % 10), ms=3)
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1)
            ax.set_aspect("equal")
            ax.set_title(label)
        fig.suptitle("RiskyPointMass: final evaluation episodes of seed 0\nfrom the same start "
                     "states (dots); red: danger disc, green: goal", fontsize=10)
        fig.tight_layout(rect=(0, 0, 1, 0.9))
        p = os.path.join(plot_dir, "RiskyPointMass_trajectories.png")
        fig.savefig(p, dpi=100)
        plt.close(fig)
        paths.append(p)
    return paths


def run(c: ml_collections.ConfigDict, workdir: str, stop_after_chunks: int | None = None) -> dict:
    """Validate, run (or resume) every program into `workdir/<env>/<variant>/`, then write the
    top-level summary.json, rows.csv, plots, trajectories.npz and config.json; returns the
    summary (or
    `{"interrupted_at", "program"}` when `stop_after_chunks` stopped a program)."""
    seeds, progs = validate(c)
    t0 = time.time()
    rows, trajs, seconds = [], {}, {}
    for p in progs:
        result, s = run_program(p, c, seeds, workdir, stop_after_chunks)
        if result.interrupted_at is not None:
            return {"interrupted_at": result.interrupted_at, "program": p.workdir(workdir)}
        seconds[f"{p.env}/{p.variant}"] = s["seconds_this_invocation"]
        rows += result_rows(p, result)
        if p.env.startswith("RiskyPointMass"):
            trajs.update(trajectories(p, result, seeds[0], int(c.trajectory_episodes)))
    summary = summarize(rows)
    summary["_pairs"] = {
        env: pairs(rows, env, "stac", list(c.variants) + ["beta=0"])
        + pairs(rows, env, "beta=0.5", ["beta=0"])
        for env in c.envs
    }
    summary["_danger_vs_beta0"] = {env: paired_differences(rows, env, "beta=0") for env in c.envs
                                   if env.startswith("RiskyPointMass")}
    summary["_wall_s"] = time.time() - t0  # this invocation (finished programs are read back)
    summary["_seconds_per_program"] = seconds
    if jax.process_index() == 0:
        if trajs:  # the trajectory plot's data, to re-plot without re-running
            np.savez(os.path.join(workdir, "trajectories.npz"),
                     **{f"{k}/{part}": v[i] for k, v in trajs.items()
                        for i, part in enumerate(("obs", "alive"))})
        make_plots(rows, trajs, {k: v for k, v in summary.items() if not k.startswith("_")},
                   os.path.join(workdir, "plots"))
        write_rows(os.path.join(workdir, "rows.csv"), rows)
        write_json(os.path.join(workdir, "config.json"), c.to_dict())
        experiment.finish(workdir, None, summary)
    return summary


def _fmt(d):
    return f"{d['iqm']:.3g} [{d['lo']:.3g}, {d['hi']:.3g}]"


def _cell(r: dict, name: str) -> str:
    return _fmt(r[name]) if name in r else "n/a"


_BIAS_NAMES = {"bias_reference": "reference", "bias_paper": "one episode",
               "bias_rollout": "rollouts"}


def report(summary: dict, prefix: str, title: str) -> str:
    """Markdown section for a summary (images relative to the report root via `prefix`):
    per env a return table, a bias table with every estimator signed and by magnitude, the
    bias verdict by magnitude (`bias_verdict`) and the probabilities of improvement."""
    lines = [
        f"## {title}",
        "",
        "Özalp 2026 (arXiv 2601.00737). IQM over seeds with 95% stratified-bootstrap CIs. "
        "`return`: final evaluation return (dropout off, mean action); `paper score`: the "
        "paper's final score, the IQM pooled over seeds of the last floor(0.02 N) + 1 of N "
        "evaluations (no CI). Bias = critic estimate minus soft return, SIGNED (+: "
        "overestimation, -: underestimation); each bias cell is `signed; |bias|` where |bias| "
        "is the IQM over seeds of per-seed magnitudes, `avg` over evaluation points after the "
        "first, `final` at the last. Estimators: `reference` (the reference code's, on the "
        "evaluation episodes), `one episode` (ours, sampled actions, min of twins), `rollouts` "
        "(ours, many rollouts from the same states). Methods are compared by |bias|, not by the "
        "signed value. `sigma`, `alpha`: training metrics at the last evaluation point. "
        "Evaluation keys depend only on the seed and the evaluation index, so every method and "
        "beta of a seed is evaluated from the same start states (paired comparisons).",
        "",
    ]
    for env, res in summary.items():
        if env.startswith("_"):
            continue
        lines += [
            f"**{env}**",
            "",
            "| method | return | paper score | danger frac | sigma | alpha |",
            "|---|---|---|---|---|---|",
        ]
        for label, r in res.items():
            last = r.get("return_last")
            score = f"{last['iqm']:.4g} (last {last['points']})" if last else "n/a"
            lines.append(
                f"| {label} (n={r['return']['n']}) | {_fmt(r['return'])} | {score} | "
                f"{_cell(r, 'danger_frac')} | {r['sigma_mean']['iqm']:.3g} | "
                f"{r['alpha']['iqm']:.3g} |")
        present = [c for c in BIAS_COLUMNS if any(c in r for r in res.values())]
        if present:
            head = " | ".join(f"{_BIAS_NAMES[c]} {w}" for c in present for w in ("avg", "final"))
            lines += ["", f"| method | {head} |", "|---|" + "---|" * (2 * len(present))]
            for label, r in res.items():
                cells = []
                for c in present:
                    for post in ("", "_final"):
                        cells.append(f"{_cell(r, c + post)}; {_cell(r, 'abs_' + c + post)}"
                                     if c + post in r else "n/a")
                lines.append(f"| {label} | " + " | ".join(cells) + " |")
            verdict = bias_verdict(res, present[0])
            if verdict:
                lines += ["", verdict]
        prs = summary.get("_pairs", {}).get(env, [])
        if prs:
            keys = [("return_final", "P(return higher)"),
                    ("bias_rollout_avg_abs", "P(\\|bias\\| lower, avg)"),
                    ("bias_rollout_final_abs", "P(\\|bias\\| lower, final)"),
                    ("danger_frac_final", "P(danger lower)")]
            keys = [(k, h) for k, h in keys if any(k in pr for pr in prs)]
            lines += ["", "| pair | " + " | ".join(h for _, h in keys) + " |",
                      "|---|" + "---|" * len(keys)]
            for pr in prs:
                cells = [f"{pr[k][0]:.2f} [{pr[k][1]:.2f}, {pr[k][2]:.2f}]" if k in pr else "n/a"
                         for k, _ in keys]
                lines.append(f"| {pr['pair']} | " + " | ".join(cells) + " |")
        diffs = summary.get("_danger_vs_beta0", {}).get(env, {})
        if diffs:
            lines += ["", "Danger fraction minus beta=0's, same seeds and start states (mean over "
                      "seeds, 95% CI): " + "; ".join(
                          f"{k}: {m:+.3f} [{lo:+.3f}, {hi:+.3f}]" for k, (m, lo, hi)
                          in diffs.items())]
        f = file_name(env)
        imgs = f"![{env} return]({prefix}/plots/{f}_return.png)"
        if present:
            imgs += f" ![{env} bias]({prefix}/plots/{f}_{present[0]}.png)"
        lines += ["", imgs, ""]
        if any(k.startswith("beta=") for k in res):
            lines += [f"![{env} beta]({prefix}/plots/{f}_beta_ablation.png)", ""]
    if "RiskyPointMass-v0" in summary:
        lines += [f"![trajectories]({prefix}/plots/RiskyPointMass_trajectories.png)", ""]
    lines += [
        "Paper (MuJoCo, 5 seeds, its final score, SAC vs STAC): Hopper 3196 vs 3364, Walker2d "
        "5036 vs 6635, HalfCheetah 11476 vs 14569, Humanoid 6990 vs 8726, Ant 7407 vs 6907 "
        "(`results/main-comparison/summary.csv` of ugurcanozalp/stochastic-actor-critic). The "
        "`paper_<task>` configs run Brax equivalents of those tasks (not the same simulator).",
        "",
    ]
    return "\n".join(lines)


def reproduce(root: str) -> str:
    """Run (or resume) the quick variant into `root/stac` and return its Markdown section."""
    from experiments.configs import stac as stac_config

    c = stac_config.get_config("quick")
    c.progress = False
    summary = run(c, os.path.join(root, "stac"))
    text = report(summary, "stac", "STAC vs SAC-family (quick: 3 seeds, tiny nets, few steps)")
    return text + (
        f"Wall time of this invocation {summary['_wall_s']:.0f} s (programs already finished in "
        "the workdir are read back, not re-run). At this scale (2.5k Pendulum steps, 1.5k "
        "RiskyPointMass steps, 2x32 networks, 3 seeds) differences between methods are not "
        "meaningful; see `experiments/configs/stac.py` for the full experiment.\n"
    )


def main(argv):
    del argv

    def body():
        summary = run(_CONFIG.value, _WORKDIR.value)
        print(report(summary, ".", "STAC vs SAC-family"))

    common.guarded_main(body)


if __name__ == "__main__":
    flags.mark_flags_as_required(["config", "workdir"])
    app.run(main)
