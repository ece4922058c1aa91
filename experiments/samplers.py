"""Score-based samplers: quality vs NFE, analytical teleportation, warm-started denoising.

`--config=... --workdir=...` (see experiments/configs/samplers.py for commands, expected results
and run times): quality (sliced Wasserstein, MMD against exact or held-out samples) vs NFE for
every sampler on 2-D and 16-D mixtures, a mixture of many well-separated modes in 32-D and
sklearn's 8x8 digits with a DSM-trained score network per seed; teleportation NFE saved at equal
quality; warm-started (RTI) denoising on `tasks.LaneTrackTask`: two-sided agreement of each
candidate solver with the full solve at matched states, closed-loop success, and the start level
chosen by `rti.choose_start_level`. Bring your own mixture: `experiments/sample_gmm.py` (the old
`--gmm` flags of this script still run it).

Files. The score nets are trained on the one runtime (`network.score_net_trainer` through
`experiment.run`, one update = one DSM step) in `DIR/digits/net/` (config.json, metrics.csv with
the DSM loss, checkpoints; re-running the same command resumes the training). Every other study
is one jitted computation per setting (no checkpoints) whose table goes through
`jaxrl.metrics.MetricWriter` in the runtime's long form, one row per seed and setting at step 1
(`env_steps` 0), the settings as the swept columns:
  * `DIR/<data>/quality/metrics.csv` (data = gmm2d, gmm16d, gmm_sep, digits): swept `nfe` (the
    budget); `<sampler>_sw`, `<sampler>_mmd`, `<sampler>_nfe_used` (NFE actually spent),
    `floor_sw`, `floor_mmd` (exact or held-out samples against the reference);
  * `DIR/<data>/teleport/metrics.csv`: swept `skip` (steps jumped) and `steps` (schedule
    length); `<sampler>_{sw,mmd,rmse,nfe_used}` (RMSE against the no-skip solve);
  * `DIR/warm/metrics.csv`: swept `factor` (gripper scale) and `candidate` (index into
    `config.warm_candidates`, labels in summary.json); `WARM_COLUMNS` per seed.
IQM and 95% CIs over seeds in `DIR/summary.json` and the tables are `experiment.summarize` of
those files' columns; `DIR/config.json` holds the config.
"""

from __future__ import annotations

import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import flags
from ml_collections import config_flags

from experiments import common, sample_gmm
from jaxrl import config as jconfig
from jaxrl import experiment, stats, sweep
from jaxrl.diffusion import (
    datasets,
    metrics,
    network,
    rti,
    samplers,
    scores,
    sde,
    tasks,
    teleport,
)
from jaxrl.metrics import MetricWriter, write_json

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "experiment config file", allow_override=True
)
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "output directory of the experiment", allow_override=True
)
# ------------------------------------------------------------------------------------------------
# CONFIG VALIDATION AND DATA
# ------------------------------------------------------------------------------------------------
def validate_config(c: ml_collections.ConfigDict) -> network.ScoreNetConfig:
    common.seeds_from_config(c)
    for field in ("samplers", "teleport_samplers", "digits_samplers"):
        for name in c[field]:
            if name not in samplers.SAMPLERS:
                raise ValueError(f"config.{field} has unknown sampler {name!r}")
    for field in (
        "nfe_grid",
        "digits_nfe_grid",
        "teleport_steps",
    ):
        if not c[field] or min(c[field]) < 1:
            raise ValueError(f"config.{field} must be non-empty with values >= 1, got {c[field]}")
    for name in c.samplers:
        samplers.steps_for_nfe(name, min(c.nfe_grid))
    for part in c.parts:
        if part not in ("gmm", "digits", "warm"):
            raise ValueError(f"config.parts has unknown part {part!r}; use gmm, digits, warm")
    for name in c.datasets:
        if name not in ("gmm2d", "gmm16d", "gmm_sep"):
            raise ValueError(f"config.datasets has unknown data set {name!r}")
    if c.num_samples < 10:
        raise ValueError(f"config.num_samples must be >= 10, got {c.num_samples}")
    if not c.sigma_max > 0.002:
        raise ValueError(f"config.sigma_max must be > 0.002, got {c.sigma_max}")
    for f in c.teleport_fractions:
        if not 0.0 <= f < 1.0:
            raise ValueError(f"config.teleport_fractions must lie in [0, 1), got {f}")
    if c.warm_control_steps < 2:
        raise ValueError(f"config.warm_control_steps must be >= 2, got {c.warm_control_steps}")
    if c.warm_task not in ("lane", "reach"):
        raise ValueError(f"config.warm_task must be 'lane' or 'reach', got {c.warm_task!r}")
    for spec in c.warm_candidates:
        parse_candidate(spec, c)
    if "full" not in tuple(c.warm_candidates):
        raise ValueError(f"config.warm_candidates must contain 'full', got {c.warm_candidates}")
    for field in ("warm_particles", "warm_episodes", "warm_full_steps"):
        if c[field] < (2 if field == "warm_particles" else 1):
            raise ValueError(f"config.{field} must be >= {2 if field == 'warm_particles' else 1}"
                             f", got {c[field]}")
    for k in c.warm_thresholds:
        if k not in rti.DEFAULT_THRESHOLDS:
            raise ValueError(f"config.warm_thresholds has unknown key {k!r}; use "
                             f"{', '.join(rti.DEFAULT_THRESHOLDS)}")
    if not c.warm_factors or min(c.warm_factors) < 1.0:
        raise ValueError(f"config.warm_factors must be non-empty, each >= 1, got {c.warm_factors}")
    if c.denoiser not in ("exact", "learned"):
        raise ValueError(f"config.denoiser must be 'exact' or 'learned', got {c.denoiser!r}")
    if c.denoiser == "learned" and c.warm_task != "lane":
        raise ValueError(f"config.denoiser 'learned' needs config.warm_task 'lane', got "
                         f"{c.warm_task!r}")
    if c.warm_demo_episodes < 1:
        raise ValueError(f"config.warm_demo_episodes must be >= 1, got {c.warm_demo_episodes}")
    if not all(float(sg) > 0 for sg in c.warm_gap_sigmas):
        raise ValueError(f"config.warm_gap_sigmas must be > 0, got {c.warm_gap_sigmas}")
    warm_net_config(c)
    common.validate_runtime(c)
    try:
        net = jconfig.from_config(network.ScoreNetConfig, c.net)
    except (TypeError, ValueError) as e:
        raise ValueError(f"config.net: {e}") from None
    return net.validate(prefix="config.net")


# ------------------------------------------------------------------------------------------------
# QUALITY VS NFE
# ------------------------------------------------------------------------------------------------
def write_table(path: str, runs: list[dict], columns: dict[str, np.ndarray]) -> dict:
    """A table of one jitted computation (no checkpoints) in the runtime's long form through
    `MetricWriter`: one row per run (`seed` and the study's settings as swept columns) at step 1,
    `columns[name]: [runs]`; rewritten whole. Returns the same numbers as `read_metrics` would."""
    cols = {k: np.asarray(v, np.float64)[:, None] for k, v in columns.items()}
    if jax.process_index() == 0:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if os.path.exists(path):
            os.remove(path)
        writer = MetricWriter(path, runs, list(columns))
        writer.truncate_after(0)
        writer.append([1], cols)
    return {"runs": runs, "steps": np.ones(1, int), "env_steps": np.zeros(1), **cols}


def ci_by_point(data: dict, metric: str) -> dict[tuple, dict]:
    """IQM and 95% stratified-bootstrap CI over seeds of `metric` per setting
    (`experiment.summarize`), keyed by the tuple of the swept values in sorted-name order."""
    names = sorted(k for k in data["runs"][0] if k != "seed")
    out = {}
    for a in experiment.summarize(data, metric, last_frac=1.0)["aggregate"]:
        lo, hi = a["iqm_ci95"] or (None, None)
        out[tuple(a[n] for n in names)] = {"iqm": a["iqm"], "lo": lo, "hi": hi}
    return out


def quality_table(path: str, quality: dict, floor, names, nfes, seeds) -> dict:
    """`path` (long form: swept `nfe` = the budget; `<sampler>_sw`, `<sampler>_mmd`,
    `<sampler>_nfe_used`, `floor_sw`, `floor_mmd`) and the summary table (IQM [CI] per cell)."""
    runs = sweep.expand_runs(seeds, {"nfe": nfes})  # nfe-major, then seeds
    cols = {}
    for name in names:
        cols[f"{name}_sw"] = np.concatenate([quality[(name, n)][0] for n in nfes])
        cols[f"{name}_mmd"] = np.concatenate([quality[(name, n)][1] for n in nfes])
        cols[f"{name}_nfe_used"] = np.concatenate(
            [np.full(len(seeds), quality[(name, n)][2]) for n in nfes])
    cols["floor_sw"] = np.tile(np.asarray(floor[0]), len(nfes))
    cols["floor_mmd"] = np.tile(np.asarray(floor[1]), len(nfes))
    data = write_table(path, runs, cols)
    table = {}
    for name in names:
        sw, mm = ci_by_point(data, f"{name}_sw"), ci_by_point(data, f"{name}_mmd")
        for n in nfes:
            table[f"{name}@{n}"] = dict(sw=sw[(float(n),)], mmd=mm[(float(n),)],
                                        nfe=quality[(name, n)][2])
    first = (float(nfes[0]),)
    table["floor"] = dict(sw=ci_by_point(data, "floor_sw")[first],
                          mmd=ci_by_point(data, "floor_mmd")[first])
    return table


def teleport_table(path: str, rows: list[dict], seeds) -> None:
    """`path` (long form: swept `steps` = schedule length and `skip` = steps jumped;
    `<sampler>_{sw,mmd,rmse,nfe_used}`); adds `sw_ci`, `mmd_ci`, `rmse_ci` to every row."""
    pairs = sorted({(r["steps"], r["skip"]) for r in rows})
    names = list(dict.fromkeys(r["sampler"] for r in rows))
    by = {(r["sampler"], r["steps"], r["skip"]): r for r in rows}
    runs = [{"seed": s, "skip": float(k), "steps": float(n)} for n, k in pairs for s in seeds]
    cols = {}
    for name in names:
        for m in ("sw", "mmd", "rmse"):
            cols[f"{name}_{m}"] = np.concatenate([by[(name, n, k)][m] for n, k in pairs])
        cols[f"{name}_nfe_used"] = np.concatenate(
            [np.full(len(seeds), by[(name, n, k)]["nfe"]) for n, k in pairs])
    data = write_table(path, runs, cols)
    for name in names:
        for m in ("sw", "mmd", "rmse"):
            ci = ci_by_point(data, f"{name}_{m}")
            for r in rows:
                if r["sampler"] == name:
                    r[f"{m}_ci"] = ci[(float(r["skip"]), float(r["steps"]))]


def _metric_fn(c, bandwidth: float):
    """One jitted, seed-vmapped metric: `(keys [S], x [S, N, D], ref [S, N, D]) -> (sw, mmd)`."""
    return jax.jit(
        jax.vmap(
            lambda k, x, ref: (
                metrics.sliced_wasserstein(k, x, ref, c.num_projections),
                metrics.mmd(x, ref, bandwidth),
            )
        )
    )


def _bandwidth(ref: np.ndarray) -> float:
    """Median pairwise distance of (up to 256 of) the reference samples: one MMD bandwidth per
    data set, shared by every sampler so their MMDs are comparable."""
    r = np.asarray(ref, np.float64)[:256]
    d = np.sqrt(((r[:, None] - r[None]) ** 2).sum(-1))
    return float(np.median(d[np.triu_indices(len(r), 1)]))


def gmm_quality(gmm, c, keys):
    """SW and MMD vs exact samples per (sampler, nfe, seed) + the exact-vs-exact floor."""
    dim = gmm.means.shape[1]
    den = scores.gmm_denoiser(gmm)
    n = c.num_samples
    k_ref, k_floor, k_metric, k_run = (
        jnp.stack(a) for a in zip(*[jax.random.split(k, 4) for k in keys], strict=True)
    )
    sample_ref = jax.jit(jax.vmap(lambda k: scores.sample_gmm(k, gmm, n)))
    refs = sample_ref(k_ref)
    metric = _metric_fn(c, _bandwidth(refs[0]))
    out = {}
    for name in c.samplers:
        for nfe in c.nfe_grid:
            steps = samplers.steps_for_nfe(name, nfe)
            sig = jnp.asarray(sde.edm_sigmas(steps, sigma_max=c.sigma_max))
            run = jax.jit(
                jax.vmap(
                    lambda k, name=name, sig=sig: samplers.sample_from_noise(
                        k, n, dim, sig, name=name, denoiser=den
                    )
                )
            )
            x, used = run(k_run)
            sw, mm = metric(k_metric, x, refs)
            out[(name, nfe)] = (np.asarray(sw), np.asarray(mm), int(used[0, 0]))
    fsw, fmm = metric(k_metric, sample_ref(k_floor), refs)
    return out, (np.asarray(fsw), np.asarray(fmm)), refs


def _teleport_schedule(c, steps: int) -> tuple[jax.Array, tuple[int, ...]]:
    """EDM sigmas `[steps + 1]` and the sorted step counts to skip (0 and each fraction's)."""
    sig = jnp.asarray(sde.edm_sigmas(steps, sigma_max=c.sigma_max))
    skips = {teleport.skip_steps_for_fraction(steps, f) for f in c.teleport_fractions} | {0}
    return sig, tuple(sorted(skips))


def _teleport_rows(name: str, steps: int, skips, res, metric) -> list[dict]:
    """One row per skip from `res = [(samples [S, N, D], nfe [S]) per skip]`; RMSE is against
    the no-skip solve (`skips[0] == 0`) from the same `x_T`; `metric(y) -> (sw [S], mmd [S])`."""
    base = res[0][0]
    rows = []
    for skip, (y, used) in zip(skips, res, strict=True):
        sw, mm = metric(y)
        rows.append(
            dict(
                sampler=name,
                steps=steps,
                skip=skip,
                fraction=skip / steps,
                nfe=int(used[0, 0]),
                sw=np.asarray(sw),
                mmd=np.asarray(mm),
                rmse=np.asarray(jnp.sqrt(jnp.mean((y - base) ** 2, axis=(1, 2)))),
            )
        )
    return rows


def teleport_study(den, mean, cov, dim, refs, c, keys):
    """Per (sampler, steps, fraction): NFE, SW vs reference samples `refs: [S, N, D]` and RMSE
    vs the no-skip solve from the same `x_T`."""
    rows = []
    n = refs.shape[1]
    metric = _metric_fn(c, _bandwidth(refs[0]))
    k_init, k_run, k_metric = (
        jnp.stack(a)
        for a in zip(*[jax.random.split(jax.random.fold_in(k, 7), 3) for k in keys], strict=True)
    )
    for name in c.teleport_samplers:
        for steps in c.teleport_steps:
            sig, skips = _teleport_schedule(c, steps)

            def per_seed(k_i, k_r, name=name, sig=sig, skips=skips):
                x_t = sig[0] * jax.random.normal(k_i, (n, dim))
                return [
                    teleport.teleport_then_sample(
                        k_r, x_t, sig, skip, mean, cov, name=name, denoiser=den
                    )
                    for skip in skips
                ]

            res = jax.jit(jax.vmap(per_seed))(k_init, k_run)
            rows += _teleport_rows(name, steps, skips, res, lambda y: metric(k_metric, y, refs))
    return rows


def teleport_savings(rows, tol=1.05):
    """For each (sampler, steps): the largest skip whose SW IQM is within `tol` of no-skip."""
    out = []
    for key in sorted({(r["sampler"], r["steps"]) for r in rows}):
        group = [r for r in rows if (r["sampler"], r["steps"]) == key]
        base = next(r for r in group if r["skip"] == 0)
        q0 = stats.iqm(base["sw"])
        ok = [r for r in group if stats.iqm(r["sw"]) <= tol * q0]
        best = max(ok, key=lambda r: r["skip"])
        out.append(
            dict(
                sampler=key[0],
                steps=key[1],
                nfe_full=base["nfe"],
                nfe_tp=best["nfe"],
                fraction=best["fraction"],
                saved=base["nfe"] - best["nfe"],
                sw_full=float(q0),
                sw_tp=float(stats.iqm(best["sw"])),
            )
        )
    return out


def train_digits_nets(c, net_cfg, seeds, workdir, stop_after_chunks=None) -> experiment.Result:
    """One DSM-trained score net per seed: the runtime (`network.score_net_trainer`, one update
    = one Adam step) in `workdir` (checkpointed, resumed by re-running the same command)."""
    train, _ = datasets.digits_data()
    algo = network.score_net_trainer(train, net_cfg, name="digits_dsm")
    config = {"net": jconfig.to_config_dict(net_cfg).to_dict(),
              "data": "sklearn load_digits / 16 * 2 - 1, permutation seed 0, rows 360: train"}
    return experiment.run(algo, seeds, workdir=workdir, config=config, progress_metric="loss",
                          stop_after_chunks=stop_after_chunks, **common.runtime_kwargs(c))


def digits_study(c, net_cfg, keys, res: experiment.Result):
    """Quality vs NFE and teleportation with the nets of `res` (`train_digits_nets`)."""
    train, test = datasets.digits_data()
    params = jax.tree.map(jnp.asarray, res.state.algo.params)
    losses = np.asarray(res.metrics["loss"])
    n = test.shape[0]
    refs = jnp.broadcast_to(jnp.asarray(test), (keys.shape[0], n, 64))
    metric = _metric_fn(c, _bandwidth(test))
    k_run, k_metric, k_floor = (
        jnp.stack(a)
        for a in zip(*[jax.random.split(jax.random.fold_in(k, 11), 3) for k in keys], strict=True)
    )
    out = {}
    last_x = None
    for name in c.digits_samplers:
        for nfe in c.digits_nfe_grid:
            steps = samplers.steps_for_nfe(name, nfe)
            sig = jnp.asarray(sde.edm_sigmas(steps, sigma_max=c.sigma_max))

            def per_seed(key, p, name=name, sig=sig):
                den = network.make_denoiser(p, 64, net_cfg)
                return samplers.sample_from_noise(key, n, 64, sig, name=name, denoiser=den)

            x, used = jax.jit(jax.vmap(per_seed))(k_run, params)
            sw, mm = metric(k_metric, x, refs)
            out[(name, nfe)] = (np.asarray(sw), np.asarray(mm), int(used[0, 0]))
            last_x = np.asarray(x[0])
    idx = jax.vmap(lambda k: jax.random.choice(k, train.shape[0], (n,), replace=False))(k_floor)
    fsw, fmm = metric(k_metric, jnp.asarray(train)[idx], refs)
    mean = jnp.asarray(train.mean(0))
    cov = jnp.asarray(np.cov(train.T).astype(np.float32))
    tp_rows = []
    for s_name in c.teleport_samplers:
        for steps in c.teleport_steps:
            sig, skips = _teleport_schedule(c, steps)

            def per_seed(key, p, s_name=s_name, sig=sig, skips=skips):
                den = network.make_denoiser(p, 64, net_cfg)
                k_init, k_r = jax.random.split(key)
                x_t = sig[0] * jax.random.normal(k_init, (n, 64))
                return [
                    teleport.teleport_then_sample(
                        k_r, x_t, sig, skip, mean, cov, name=s_name, denoiser=den
                    )
                    for skip in skips
                ]

            res = jax.jit(jax.vmap(per_seed))(k_run, params)
            tp_rows += _teleport_rows(
                s_name, steps, skips, res, lambda y: metric(k_metric, y, refs)
            )
    return dict(
        quality=out,
        floor=(np.asarray(fsw), np.asarray(fmm)),
        teleport=tp_rows,
        final_loss=np.asarray(losses[:, -50:].mean(1)),
        samples=last_x,
    )


# ------------------------------------------------------------------------------------------------
# WARM START (REAL-TIME ITERATION)
# ------------------------------------------------------------------------------------------------
WARM_SIGMA_MAX = rti.COLD_SIGMA_MAX
WARM_KINDS = ("full", "cold", "ddpm", "ddim", "euler")


def make_warm_task(c, factor: float):
    """The sequential task of the warm-start study (`config.warm_task`)."""
    if c.warm_task == "lane":
        return tasks.LaneTrackTask(factor=factor, speed=c.warm_speed)
    return tasks.ReachGraspTask(factor=factor)


def parse_candidate(spec: str, c) -> tuple[rti.Solver, str]:
    """A `config.warm_candidates` entry -> `(Solver, label)`:
    `full` (Euler, `warm_full_steps` from sigma 10), `cold:N` (N Euler steps from sigma 10),
    `ddpm:K` (RTI-DP's protocol: ancestral DDPM steps K, ..., 1, 0 of the `warm_ddpm_schedule`
    100-step schedule on the shifted guess), `ddim:K` (the same levels, deterministic),
    `euler:S0:N` (N Euler steps on the EDM schedule from sigma S0, the previous study's warm
    start). Raises a one-line ValueError naming the entry."""
    parts = str(spec).split(":")
    kind = parts[0]
    try:
        if kind == "full" and len(parts) == 1:
            sig = sde.edm_sigmas(c.warm_full_steps, sigma_max=WARM_SIGMA_MAX)
            return rti.Solver("euler", jnp.asarray(sig), False), f"full ({c.warm_full_steps} Euler)"
        if kind == "cold" and len(parts) == 2 and int(parts[1]) >= 1:
            sig = sde.edm_sigmas(int(parts[1]), sigma_max=WARM_SIGMA_MAX)
            return rti.Solver("euler", jnp.asarray(sig), False), f"cold {parts[1]} Euler"
        if kind in ("ddpm", "ddim") and len(parts) == 2 and 0 <= int(parts[1]) < 100:
            tail = sde.ddpm_tail(sde.ddpm_sigmas(100, c.warm_ddpm_schedule), int(parts[1]))
            word = "ancestral" if kind == "ddpm" else "deterministic"
            return (rti.Solver(kind, jnp.asarray(tail), True),
                    f"warm {kind} t={parts[1]} ({word}, sigma {tail[0]:.3f})")
        if kind == "euler" and len(parts) == 3 and int(parts[2]) >= 1:
            s0 = float(parts[1])
            if 0.002 < s0 < WARM_SIGMA_MAX:
                sig = sde.edm_sigmas(int(parts[2]), sigma_min=0.002, sigma_max=s0)
                return rti.Solver("euler", jnp.asarray(sig), True), \
                    f"warm euler {parts[2]} from sigma {s0:g}"
    except ValueError:
        pass
    raise ValueError(f"config.warm_candidates has a bad entry {spec!r}; use full, cold:N, "
                     "ddpm:K, ddim:K (0 <= K < 100) or euler:S0:N (0.002 < S0 < 10)")


def warm_net_config(c) -> network.ScoreNetConfig:
    """The learned policy's `ScoreNetConfig` (`config.warm_net`); one-line ValueError."""
    try:
        net = jconfig.from_config(network.ScoreNetConfig, c.warm_net)
    except (TypeError, ValueError) as e:
        raise ValueError(f"config.warm_net: {e}") from None
    return net.validate(prefix="config.warm_net")


def train_warm_policies(c, task, keys):
    """One conditional diffusion policy per seed (`config.denoiser = learned`): DSM
    (`network.train_score_net`, `config.warm_net`) on `config.warm_demo_episodes` expert
    episodes of `config.warm_control_steps` steps (`tasks.expert_chunks`, the seed's own
    demonstrations), chunks relative to the state, conditioned on the observation. Returns
    `(params` stacked over seeds`, losses [S, num_steps], trivial [S])`: `trivial` is the DSM loss
    of the zero-output net (`D = c_skip x`, the initial net) on the same batches' distribution."""
    net_cfg = warm_net_config(c)

    def train(key):
        obs, ch, off = tasks.expert_chunks(task, jax.random.fold_in(key, 5),
                                           c.warm_demo_episodes, c.warm_control_steps)[:3]
        params, losses = network.train_score_net(jax.random.fold_in(key, 6), ch - off, net_cfg,
                                                 obs)
        k_b, k_l = jax.random.split(jax.random.fold_in(key, 7))
        idx = jax.random.randint(k_b, (4096,), 0, ch.shape[0])
        sd = net_cfg.sigma_data
        trivial = network.denoising_loss(
            lambda x, sg: sd**2 / (sg[:, None] ** 2 + sd**2) * x, k_l, (ch - off)[idx], net_cfg)
        return params, losses, trivial

    return jax.jit(jax.vmap(train))(keys)


def warm_study(c, keys) -> tuple[list[dict], list[dict]]:
    """Per gripper scale (`config.warm_factors`; 1 = no scaling) and candidate: closed-loop episodes
    (`warm_episodes` per seed: action errors, NFE, success) and the matched-state agreement of
    the executed first action with the full solve's (`rti.agreement`, `warm_particles` copies at
    the states of each seed's first full-solve episode), with the exact denoiser or, with
    `config.denoiser = learned`, a trained diffusion policy per seed (`train_warm_policies`).
    Returns `(rows, net_rows)`: one row per (factor, candidate) with per-seed arrays, and (learned
    only) one row per factor with the per-seed DSM losses and `rti.denoiser_gap` at
    `config.warm_gap_sigmas` on the reference states."""
    rows, net_rows = [], []
    learned = c.denoiser == "learned"
    full_spec = rti.Solver("euler", jnp.asarray(
        sde.edm_sigmas(c.warm_full_steps, sigma_max=WARM_SIGMA_MAX)), False)
    cands = [parse_candidate(s, c) for s in c.warm_candidates]
    for factor in tuple(float(f) for f in c.warm_factors):
        base = make_warm_task(c, factor)
        params = None
        if learned:
            t0 = time.time()
            params, losses, trivial = jax.block_until_ready(train_warm_policies(c, base, keys))
            train_s = time.time() - t0
        net_cfg = warm_net_config(c) if learned else None

        def task_of(params, base=base, net_cfg=net_cfg):
            return base if params is None else tasks.LearnedPolicyTask(base, params, net_cfg)

        def episodes(key, solver, task):
            ks = jax.random.split(key, c.warm_episodes)
            pe, ge, nfe, _, _, _ = jax.vmap(lambda k: rti.closed_loop(
                k, task, solver, full_spec, c.warm_control_steps))(ks)
            ok = rti.episode_success(pe, ge, c.warm_success_pos, c.warm_success_grip)
            return pe[:, 1:].mean(), ge[:, 1:].mean(), nfe[:, 1:].mean(), ok.mean()

        def reference(key, params, base=base):
            """States of the seed's reference episode, two full-solve action sets there, means."""
            task = task_of(params)
            k_ep, k_a, k_b = jax.random.split(jax.random.fold_in(key, 1), 3)
            _, _, _, ps, ts, ctx = rti.closed_loop(k_ep, task, full_spec, full_spec,
                                                   c.warm_control_steps)
            fa = rti.matched_state_actions(k_a, task, full_spec, full_spec, ps, ts, ctx,
                                           c.warm_particles)
            fb = rti.matched_state_actions(k_b, task, full_spec, full_spec, ps, ts, ctx,
                                           c.warm_particles)
            means = jax.vmap(lambda p, t: base.expert(p, t, ctx)[0][:, 0])(ps, ts)
            return ps, ts, ctx, fa, fb, means

        ref = jax.jit(jax.vmap(reference))(keys, params)
        if learned:
            def gaps(key, r, params, base=base):
                ps, ts, ctx = r[:3]
                return [rti.denoiser_gap(jax.random.fold_in(key, 8 + j), base, task_of(params),
                                         ps, ts, ctx, float(sg), c.warm_particles)
                        for j, sg in enumerate(c.warm_gap_sigmas)]

            gp = jax.jit(jax.vmap(gaps))(keys, ref, params)
            tail = max(1, losses.shape[1] // 10)
            net_rows.append(dict(
                factor=factor, train_s=train_s, dsm_loss=np.asarray(losses[:, -tail:].mean(1)),
                dsm_loss_trivial=np.asarray(trivial),
                **{f"gap_{sg:g}": np.asarray(g) for sg, (g, _) in zip(c.warm_gap_sigmas, gp, strict=True)},
                **{f"risk_{sg:g}": np.asarray(r) for sg, (_, r) in zip(c.warm_gap_sigmas, gp, strict=True)}))
        for i, (solver, label) in enumerate(cands):
            def one(key, r, params, solver=solver):
                task = task_of(params)
                ps, ts, ctx, fa, fb, means = r
                acts = rti.matched_state_actions(jax.random.fold_in(key, 2), task, solver,
                                                 full_spec, ps, ts, ctx, c.warm_particles)
                sl = slice(1, None)  # step 1 of a warm solver is the full solve
                ag = rti.agreement(jax.random.fold_in(key, 3), acts[sl], fa[sl], fb[sl],
                                   means[sl])
                return ag, episodes(jax.random.fold_in(key, 4), solver, task)

            ag, (pe, ge, nfe, ok) = jax.jit(jax.vmap(one))(keys, ref, params)
            rows.append(dict(factor=factor, candidate=i, spec=str(c.warm_candidates[i]),
                             label=label, nfe=float(np.mean(nfe)), pos_err=np.asarray(pe),
                             grip_err=np.asarray(ge), success=np.asarray(ok),
                             **{k: np.asarray(v) for k, v in ag.items()}))
    full_rows = {r["factor"]: r for r in rows if r["spec"] == "full"}
    th = dict(c.warm_thresholds)
    for r in rows:
        base_row = full_rows[r["factor"]]
        ag = {k: r[k] for k in WARM_AGREEMENT}
        r["accepted"], r["reasons"] = rti.accept(
            ag, float(np.mean(r["success"])), float(np.mean(base_row["success"])), th)
    return rows, net_rows


def warm_net_table(path: str, net_rows: list[dict], seeds) -> dict:
    """`path` (long form: swept `factor`; per seed the final DSM loss (mean of the last 10% of
    steps), the trivial predictor's, and `gap_<sigma>` / `risk_<sigma>` of `rti.denoiser_gap`).
    Returns `{factor: {column: IQM [95% CI]}}` plus each factor's training seconds."""
    cols_names = [k for k in net_rows[0] if k not in ("factor", "train_s")]
    runs = [{"seed": s, "factor": float(r["factor"])} for r in net_rows for s in seeds]
    cols = {k: np.concatenate([np.asarray(r[k], np.float64) for r in net_rows])
            for k in cols_names}
    data = write_table(path, runs, cols)
    out = {}
    for k in cols_names:
        for key, v in ci_by_point(data, k).items():
            out.setdefault(f"{key[0]:g}", {})[k] = v
    for r in net_rows:
        out[f"{r['factor']:g}"]["train_s"] = r["train_s"]
    return out


WARM_AGREEMENT = ("sw", "sw_floor", "mmd", "mmd_floor", "mode0", "mode0_full", "dispersion",
                  "dispersion_floor", "closed", "closed_full")
WARM_COLUMNS = ("nfe", "pos_err", "grip_err", "success", *WARM_AGREEMENT)


def warm_table(path: str, rows: list[dict], seeds) -> None:
    """`path` (long form: swept `factor` (gripper scale) and `candidate` (index into
    `config.warm_candidates`); per seed the columns `WARM_COLUMNS`); adds `<col>_ci` (IQM and
    95% CI over seeds) to every row."""
    runs = [{"seed": s, "factor": float(r["factor"]), "candidate": float(r["candidate"])}
            for r in rows for s in seeds]
    cols = {k: np.concatenate([np.broadcast_to(np.asarray(r[k], np.float64), (len(seeds),))
                               for r in rows]) for k in WARM_COLUMNS}
    data = write_table(path, runs, cols)
    for k in WARM_COLUMNS:
        ci = ci_by_point(data, k)
        for r in rows:
            r[k + "_ci"] = ci[(float(r["candidate"]), float(r["factor"]))]


# ------------------------------------------------------------------------------------------------
# EXPERIMENT DRIVER, OUTPUTS
# ------------------------------------------------------------------------------------------------
def _quality_plot(path, quality, floor, names, nfes, title, metric=0):
    from jaxrl import plotting

    curves = {}
    for name in names:
        xs = np.array([quality[(name, n)][2] for n in nfes], float)
        ys = np.stack([quality[(name, n)][metric] for n in nfes], axis=1)
        curves[name] = (xs, ys)
    fl = np.tile(np.asarray(floor[metric])[:, None], (1, len(nfes)))
    curves["exact samples (floor)"] = (
        np.array([quality[(names[0], n)][2] for n in nfes], float),
        fl,
    )
    fig = plotting.plot_curves(
        path,
        curves,
        xlabel="NFE (score evaluations)",
        ylabel="sliced W2" if metric == 0 else "MMD",
        title=title,
    )
    fig.axes[0].set_xscale("log")
    fig.axes[0].set_yscale("log")
    fig.savefig(path, dpi=100)


def _quality_table(quality, floor, names, nfes) -> list[str]:
    lines = [
        "| sampler | " + " | ".join(f"NFE~{n}" for n in nfes) + " |",
        "|---|" + "---|" * len(nfes),
    ]
    for name in names:
        cells = []
        for n in nfes:
            sw, mm, used = quality[(name, n)]
            cells.append(f"{stats.iqm(sw):.3f} / {stats.iqm(mm):.3f} ({used})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append(
        f"| exact samples (floor) | {stats.iqm(floor[0]):.3f} / "
        f"{stats.iqm(floor[1]):.3f} |" + " |" * (len(nfes) - 1)
    )
    return lines


def run_experiment(c: ml_collections.ConfigDict, workdir: str,
                   stop_after_chunks: int | None = None) -> dict:
    """Validate (before any file is written), run the configured parts into `workdir`, write
    config.json, one long-form metrics.csv per table (`<part>/<table>/metrics.csv`), the digits
    nets' runtime workdir (`digits/net/`, resumed by re-running), summary.json and plots.
    Re-running on a finished workdir rewrites identical files."""
    net_cfg = validate_config(c)
    seeds = common.seeds_from_config(c)
    keys = jnp.stack([jax.random.PRNGKey(s) for s in seeds])
    os.makedirs(os.path.join(workdir, "plots"), exist_ok=True)
    if jax.process_index() == 0:
        write_json(os.path.join(workdir, "config.json"), c.to_dict())
    t0 = time.time()
    summary: dict = {"seeds": seeds, "tables": {}, "datasets": list(c.datasets)}
    md: list[str] = []
    gmms = {"gmm2d": datasets.gmm_2d, "gmm16d": lambda: datasets.gmm_16d(c.gmm16_components),
            "gmm_sep": lambda: datasets.gmm_separated(c.sep_components, c.sep_dim, c.sep_distance,
                                                      c.sep_std)}
    gmms = {k: gmms[k]() for k in c.datasets} if "gmm" in c.parts else {}
    for label, gmm in gmms.items():
        quality, floor, refs = gmm_quality(gmm, c, keys)
        _quality_plot(
            os.path.join(workdir, "plots", f"{label}_sw.png"),
            quality,
            floor,
            list(c.samplers),
            list(c.nfe_grid),
            f"{label}: exact score",
        )
        md += (
            [
                f"### {label}: sliced W2 / MMD vs exact samples (IQM over {len(seeds)} seeds; "
                "actual NFE in brackets)",
                "",
            ]
            + _quality_table(quality, floor, list(c.samplers), list(c.nfe_grid))
            + [""]
        )
        summary["tables"][label] = quality_table(
            os.path.join(workdir, label, "quality", "metrics.csv"), quality, floor,
            list(c.samplers), list(c.nfe_grid), seeds)
        mean, cov = scores.gaussian_moments_of_gmm(gmm)
        rows = teleport_study(
            scores.gmm_denoiser(gmm), mean, cov, gmm.means.shape[1], refs, c, keys
        )
        teleport_table(os.path.join(workdir, label, "teleport", "metrics.csv"), rows, seeds)
        summary["tables"][label + "_teleport"] = _tp_json(rows)
        summary["tables"][label + "_teleport_savings"] = teleport_savings(rows)
        md += _tp_table(label, rows)
    if c.digits and "digits" in c.parts:
        res = train_digits_nets(c, net_cfg, seeds, os.path.join(workdir, "digits", "net"),
                                stop_after_chunks)
        if res.interrupted_at is not None:
            return {"interrupted_at": int(res.interrupted_at), "part": "digits"}
        experiment.finish(os.path.join(workdir, "digits", "net"), res,
                          {"loss": experiment.summarize(res, "loss")})
        experiment.plot_curves(res, "loss", os.path.join(workdir, "plots", "digits_dsm_loss.png"),
                               f"digits DSM loss ({len(seeds)} seeds)", xlabel="DSM steps")
        dg = digits_study(c, net_cfg, keys, res)
        _quality_plot(
            os.path.join(workdir, "plots", "digits_sw.png"),
            dg["quality"],
            dg["floor"],
            list(c.digits_samplers),
            list(c.digits_nfe_grid),
            "digits 8x8: trained net",
        )
        md += (
            [
                f"### digits 8x8 (score net per seed, {net_cfg.num_steps} DSM steps through the "
                "runtime): sliced W2 / MMD vs held-out digits",
                "",
            ]
            + _quality_table(
                dg["quality"], dg["floor"], list(c.digits_samplers), list(c.digits_nfe_grid)
            )
            + [""]
        )
        summary["tables"]["digits"] = quality_table(
            os.path.join(workdir, "digits", "quality", "metrics.csv"), dg["quality"],
            dg["floor"], list(c.digits_samplers), list(c.digits_nfe_grid), seeds)
        summary["digits_final_dsm_loss"] = dg["final_loss"].tolist()
        if dg["teleport"]:
            teleport_table(os.path.join(workdir, "digits", "teleport", "metrics.csv"),
                           dg["teleport"], seeds)
            summary["tables"]["digits_teleport"] = _tp_json(dg["teleport"])
            summary["tables"]["digits_teleport_savings"] = teleport_savings(dg["teleport"])
            md += _tp_table("digits", dg["teleport"])
        _digit_grid(os.path.join(workdir, "plots", "digits_samples.png"), dg["samples"])
    if "warm" in c.parts:
        rows, net_rows = warm_study(c, keys)
        warm_table(os.path.join(workdir, "warm", "metrics.csv"), rows, seeds)
        if net_rows:
            summary["warm_net"] = warm_net_table(
                os.path.join(workdir, "warm", "net", "metrics.csv"), net_rows, seeds)
            md += _warm_net_lines(summary["warm_net"], c)
        chosen = {f: rti.choose_start_level([r for r in rows if r["factor"] == f
                                             and r["spec"] != "full"])
                  for f in sorted({r["factor"] for r in rows}, reverse=True)}
        summary["warm_start"] = dict(
            denoiser=c.denoiser, candidates=list(c.warm_candidates),
            rows=[{k: v for k, v in r.items() if k.endswith("_ci") or k in (
                "factor", "candidate", "spec", "label", "nfe", "accepted", "reasons")}
                for r in rows],
            chosen={f"{f:g}": None if r is None else r["spec"] for f, r in chosen.items()})
        md += _warm_table(rows, chosen, c)
    if jax.process_index() == 0:
        write_json(os.path.join(workdir, "summary.json"), summary)
    summary["seconds"] = time.time() - t0
    summary["markdown"] = "\n".join(md)
    return summary


def _tp_json(rows):
    return [
        dict(
            sampler=r["sampler"],
            steps=r["steps"],
            skip=r["skip"],
            fraction=r["fraction"],
            nfe=r["nfe"],
            sw=r["sw_ci"],
            mmd=r["mmd_ci"],
            rmse=r["rmse_ci"],
        )
        for r in rows
    ]


def _ci_text(s: dict) -> str:
    """`IQM [lo, hi]` of a `ci_by_point` entry (`-` where every seed failed)."""
    if s["iqm"] is None:
        return "-"
    lo = "-" if s["lo"] is None else f"{s['lo']:.4f}"
    hi = "-" if s["hi"] is None else f"{s['hi']:.4f}"
    return f"{s['iqm']:.4f} [{lo}, {hi}]"


def _tp_table(label, rows) -> list[str]:
    lines = [
        f"### {label}: analytical teleportation (Gaussian closed form for the first steps)",
        "",
        "| sampler | steps | skipped | NFE | sliced W2 (IQM [95% CI]) | MMD | RMSE vs "
        "no-skip solve |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        s = r["sw_ci"]
        lines.append(
            f"| {r['sampler']} | {r['steps']} | {r['skip']} ({100 * r['fraction']:.0f}%)"
            f" | {r['nfe']} | {_ci_text(s)} | "
            f"{stats.iqm(r['mmd']):.4f} | {stats.iqm(r['rmse']):.2e} |"
        )
    lines.append("")
    sav = teleport_savings(rows)
    lines += [
        "Equal quality (sliced W2 IQM within 5% of the no-skip run): "
        + "; ".join(
            f"{s['sampler']} {s['steps']} steps: {s['nfe_full']} -> {s['nfe_tp']} NFE "
            f"({100 * s['fraction']:.0f}% of the schedule skipped)"
            for s in sav
        ),
        "",
    ]
    return lines


def _warm_net_lines(net: dict, c) -> list[str]:
    lines = [f"### Learned diffusion policies (one per seed, {c.warm_net.num_steps} DSM steps, "
             f"width {c.warm_net.hidden}, depth {c.warm_net.depth}, "
             f"{c.warm_demo_episodes} expert episodes)", "",
             "| gripper scale | train s (all seeds) | DSM loss | trivial predictor | "
             + " | ".join(f"gap / exact risk at sigma {s:g}" for s in c.warm_gap_sigmas) + " |",
             "|---" * (3 + len(c.warm_gap_sigmas)) + "|---|"]
    for f, v in net.items():
        lines.append(
            f"| {f} | {v['train_s']:.0f} | {_ci_text(v['dsm_loss'])} | "
            f"{_ci_text(v['dsm_loss_trivial'])} | " + " | ".join(
                f"{v[f'gap_{s:g}']['iqm']:.4f} / {v[f'risk_{s:g}']['iqm']:.4f}"
                for s in c.warm_gap_sigmas) + " |")
    return lines + [""]


def _warm_table(rows, chosen, c) -> list[str]:
    task = "lane-tracking" if c.warm_task == "lane" else "reach-and-grasp"
    n = len(np.atleast_1d(rows[0]["pos_err"]))
    lines = [
        f"### Warm-started (RTI) denoising on the {task} task ({c.denoiser} denoiser)",
        "",
        f"{n} seeds; per seed {c.warm_episodes} closed-loop episodes of "
        f"{c.warm_control_steps} control steps (errors and success over steps 2..) and "
        f"{c.warm_particles} policy copies at the states of one full-solve episode (matched "
        "states, the warm chain carried along them). IQM [95% CI] over seeds. SW = sliced W2 of "
        "the executed first action (continuous part) to the full solve's, floor = a second "
        "full-solve set; dispersion = RMS distance to the nearest mode mean over the full "
        "solve's (< 1 under-, > 1 over-dispersed); success = every executed action within "
        f"{c.warm_success_pos:g} of a mode mean and <= {100 * c.warm_success_grip:.0f}% gripper "
        "errors.",
        "",
        "| gripper scale | solver | NFE / step | position error | SW (floor) | MMD (floor) | "
        "dispersion (floor) | mode-0 share (full) | closed share (full) | success | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    iq = lambda r, k: stats.iqm(np.atleast_1d(r[k]))
    for r in rows:
        verdict = "reference" if r["spec"] == "full" else (
            "accepted" if r["accepted"] else "rejected: " + "; ".join(r["reasons"]))
        lines.append(
            f"| {r['factor']:g} | {r['label']} | {r['nfe']:.1f} | {_ci_text(r['pos_err_ci'])} | "
            f"{iq(r, 'sw'):.4f} ({iq(r, 'sw_floor'):.4f}) | {iq(r, 'mmd'):.3f} "
            f"({iq(r, 'mmd_floor'):.3f}) | {iq(r, 'dispersion'):.2f} "
            f"({iq(r, 'dispersion_floor'):.2f}) | {iq(r, 'mode0'):.2f} "
            f"({iq(r, 'mode0_full'):.2f}) | {iq(r, 'closed'):.3f} ({iq(r, 'closed_full'):.3f}) | "
            f"{np.mean(r['success']):.2f} | {verdict} |")
    lines += ["", "Start level chosen by `rti.choose_start_level` (cheapest accepted): " + "; ".join(
        f"gripper scale {f:g}: " + ("every candidate rejected" if r is None else
                                    f"{r['label']}, {r['nfe']:.0f} NFE")
        for f, r in chosen.items()), ""]
    return lines


def _digit_grid(path, x):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(4, 8, figsize=(8, 4))
    for ax, img in zip(axes.ravel(), x[:32], strict=False):
        ax.imshow(np.clip(img.reshape(8, 8), -1, 1), cmap="gray_r", vmin=-1, vmax=1)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def reproduce(root: str) -> str:
    """Runs the quick variant into `root/samplers` and returns the report section (Markdown)."""
    from experiments.configs import samplers as cfg_mod

    workdir = os.path.join(root, "samplers")
    t0 = time.time()
    c = cfg_mod.get_config("quick")
    c.progress = False
    s = run_experiment(c, workdir)
    head = [
        "## Score-based samplers: quality vs NFE, teleportation, warm starts",
        "",
        f"Quick variant ({len(s['seeds'])} seeds, {time.time() - t0:.0f} s). Exact GMM scores "
        "(so sampler error is the only error), an 8x8-digits score net trained for a few hundred "
        "DSM steps (undertrained in the quick run: its quality is far from the data floor), "
        "teleportation with the Gaussian closed form (Wang & Vastola report skipping 15-30% of "
        "steps), and warm-started denoising (Duan et al.: RTI scheme for diffusion policy).",
        "",
        " ".join(f"![{d}](samplers/plots/{d}_sw.png)" for d in s["datasets"])
        + " ![digits](samplers/plots/digits_sw.png)",
        "",
    ]
    return "\n".join(head) + s["markdown"]


def _main() -> None:
    if sample_gmm._GMM.value is not None:  # the old entry point of `experiments.sample_gmm`
        sample_gmm._main()
        return
    if _CONFIG.value is None or _WORKDIR.value is None:
        raise ValueError("give --config/--workdir (or --gmm/--out: experiments.sample_gmm)")
    s = run_experiment(_CONFIG.value, _WORKDIR.value)
    print(s["markdown"])
    print(f"done in {s['seconds']:.0f} s; outputs in {_WORKDIR.value}")


def main(argv: list[str]) -> None:
    """The command line; a user error is one line `error: ...` with exit status 2."""
    del argv
    common.guarded_main(_main)


if __name__ == "__main__":
    common.run_app(main, required=())
