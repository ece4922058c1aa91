"""Score-based samplers: quality vs NFE, analytical teleportation, warm-started denoising.

Two modes (see experiments/configs/samplers.py for commands, expected results and run times):

* Bring your own mixture: `--gmm=FILE.npz --sampler=NAME --nfe=N --num_samples=K --seed=S
  --out=SAMPLES.npy [--teleport=FRACTION]` draws K samples with the exact mixture score and writes
  a `[K, D]` float32 array in .npy format to exactly the path `--out` (no suffix added; its
  directory must exist). A bad file, mixture or flag is one line `error: ...`, exit status 2,
  before anything is sampled or written. The schedule is the EDM one (`sigma_max` 80) with as many steps as
  the NFE budget buys; `--teleport=f` jumps the first `round(f * steps)` steps with the Gaussian
  closed form (zero NFE), so fewer NFE are spent. Prints one JSON line with the NFE used.
* Experiment (`--config=... --workdir=...`): quality (sliced Wasserstein, MMD against exact or
  held-out samples) vs NFE for every sampler on 2-D and 16-D mixtures and on sklearn's 8x8 digits
  with a DSM-trained score network per seed; teleportation NFE saved at equal quality; warm-started
  (RTI) denoising NFE per control step at equal action error on `warmstart.LaneTrackTask`.

Files of the experiment mode. The score nets are trained on the one runtime
(`network.score_net_trainer` through `experiment.run`, one update = one DSM step) in
`DIR/digits/net/` (config.json, metrics.csv with the DSM loss, checkpoints; re-running the same
command resumes the training). Every other study is one jitted computation per setting (no
checkpoints) whose table goes through `jaxrl.metrics.MetricWriter` in the runtime's long form,
one row per seed and setting at step 1 (`env_steps` 0), the settings as the swept columns:
  * `DIR/<data>/quality/metrics.csv` (data = gmm2d, gmm16d, digits): swept `nfe` (the budget);
    `<sampler>_sw`, `<sampler>_mmd`, `<sampler>_nfe_used` (NFE actually spent), `floor_sw`,
    `floor_mmd` (exact or held-out samples against the reference);
  * `DIR/<data>/teleport/metrics.csv`: swept `skip` (steps jumped) and `steps` (schedule
    length); `<sampler>_{sw,mmd,rmse,nfe_used}` (RMSE against the no-skip solve);
  * `DIR/warm/metrics.csv`: swept `factor` (gripper scale), `sigma_start` (10 = cold start or
    full solve) and `solver_steps`; `pos_err`, `grip_err`, `nfe`.
IQM and 95% CIs over seeds in `DIR/summary.json` and the tables are `experiment.summarize` of
those files' columns; `DIR/config.json` holds the config.
"""

from __future__ import annotations

import json
import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import flags
from ml_collections import config_flags

from experiments import common
from experiments.dp import MEMORY_FRACTION, load_npz_file, memory_limit_bytes
from jaxrl import config as jconfig
from jaxrl import experiment, stats, sweep
from jaxrl.diffusion import metrics, network, samplers, scores, sde, teleport, warmstart
from jaxrl.metrics import MetricWriter, write_json

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "experiment config file", allow_override=True
)
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "output directory of the experiment", allow_override=True
)
_GMM = flags.DEFINE_string(
    "gmm", None, "npz with weights [M], means [M, D], covs [M, D, D]", allow_override=True
)
_SAMPLER = flags.DEFINE_string(
    "sampler", "heun", f"one of {', '.join(samplers.SAMPLERS)}", allow_override=True
)
_NFE = flags.DEFINE_integer(
    "nfe", 35, "budget of score evaluations per sample", allow_override=True
)
_NUM = flags.DEFINE_integer("num_samples", 1000, "number of samples K", allow_override=True)
_SEED = flags.DEFINE_integer("seed", 0, "seed (PRNGKey(seed))", allow_override=True)
_OUT = flags.DEFINE_string(
    "out", None, "output .npy file for the [K, D] samples", allow_override=True
)
_TELEPORT = flags.DEFINE_float(
    "teleport", 0.0, "fraction of the schedule jumped analytically", allow_override=True
)
_SIGMA_MAX = flags.DEFINE_float(
    "sigma_max", 80.0, "largest noise level of the EDM schedule", allow_override=True
)


# ------------------------------------------------------------------------------------------------
# BRING YOUR OWN MIXTURE
# ------------------------------------------------------------------------------------------------
def load_gmm(path: str) -> scores.GMM:
    """Loads and validates a mixture npz; a ValueError naming `--gmm PATH` and the problem (not an
    npz archive of numeric arrays: `experiments.dp.load_npz_file`; a bad mixture:
    `scores.validate_gmm`)."""
    f = load_npz_file(path, "--gmm", ("weights", "means", "covs"))
    try:
        return scores.validate_gmm(f["weights"], f["means"], f["covs"])
    except ValueError as e:
        raise ValueError(f"--gmm {path}: {e}") from e


def check_out_path(out: str) -> None:
    """Refuses an `--out` that cannot be written: empty, a directory, or in a missing directory
    (before any sampling)."""
    if not out:
        raise ValueError("--out is empty; give the .npy file to write")
    if os.path.isdir(out):
        raise ValueError(f"--out {out} is a directory; give a file name")
    parent = os.path.dirname(out)
    if parent and not os.path.isdir(parent):
        raise ValueError(f"--out directory {parent} does not exist")
    if not os.access(parent or ".", os.W_OK):
        raise ValueError(f"--out directory {parent or '.'} is not writable")


def sample_memory_bytes(num_samples: int, num_components: int, dim: int, steps: int) -> int:
    """Estimated peak bytes of `sample_gmm_file`: the float32 samples and the sampler's carries
    (16 x `[K, D]`), the vmapped exact denoiser's `[K, M, D]` intermediates (4 of them) and
    responsibilities, the eigenvectors `[M, D, D]` and the float64 + float32 schedule."""
    k, m, d = int(num_samples), int(num_components), int(dim)
    return 4 * k * (16 * d + 4 * m * d + 4 * m) + 8 * m * d * d + 12 * (int(steps) + 1)


def sample_gmm_file(
    gmm_path: str,
    sampler: str,
    nfe: int,
    num_samples: int,
    seed: int,
    out: str,
    teleport_fraction: float = 0.0,
    sigma_max: float = 80.0,
) -> dict:
    """The `--gmm` mode as a function; returns `{"nfe": used, "steps": ..., "skipped": ...}`.

    Writes the `[K, D]` float32 samples in .npy format to exactly `out` (no suffix is added,
    whatever the extension). Every argument is checked before sampling, and non-finite samples
    are a ValueError with nothing written."""
    if sampler not in samplers.SAMPLERS:
        raise ValueError(f"--sampler: unknown sampler {sampler!r}; choose one of "
                         f"{', '.join(samplers.SAMPLERS)}")
    if nfe < 1:
        raise ValueError(f"--nfe must be >= 1, got {nfe}")
    if num_samples < 1:
        raise ValueError(f"--num_samples must be >= 1, got {num_samples}")
    if not 0 <= seed < 2**32:
        raise ValueError(f"--seed must be in [0, 2**32 - 1] (PRNGKey(seed) keeps 32 bits), "
                         f"got {seed}")
    if not (np.isfinite(sigma_max) and sigma_max > 0.002):
        raise ValueError(f"--sigma_max must be finite and > 0.002, got {sigma_max}")
    if not 0.0 <= teleport_fraction < 1.0:
        raise ValueError(f"--teleport must be in [0, 1), got {teleport_fraction}")
    check_out_path(out)
    gmm = load_gmm(gmm_path)
    steps = samplers.steps_for_nfe(sampler, nfe)
    num_comp, dim = (int(n) for n in gmm.means.shape)
    need, limit = sample_memory_bytes(num_samples, num_comp, dim, steps), memory_limit_bytes()
    if need > limit:
        raise ValueError(
            f"--num_samples {num_samples} with --nfe {nfe} needs ~{need / 2**30:.3g} GiB (M = "
            f"{num_comp} components, D = {dim}); the limit is {limit / 2**30:.3g} GiB "
            f"({MEMORY_FRACTION:g} of the available RAM); use fewer samples or a smaller --nfe")
    skip = teleport.skip_steps_for_fraction(steps, teleport_fraction)
    sig = jnp.asarray(sde.edm_sigmas(steps, sigma_max=sigma_max))
    mean, cov = scores.gaussian_moments_of_gmm(gmm)
    den = scores.gmm_denoiser(gmm)
    dim = gmm.means.shape[1]

    @jax.jit
    def run(key):
        k_init, k_run = jax.random.split(key)
        # Start from the exact first two moments of the noised data at sigma_max,
        # N(mean, cov + sigma_max^2 I), not N(0, sigma_max^2 I): for data that is not centred the
        # latter's offset survives the ODE as a bias of about |mean| * data scale / sigma_max.
        chol = jnp.linalg.cholesky(cov + sig[0] ** 2 * jnp.eye(dim, dtype=cov.dtype))
        x = mean + jax.random.normal(k_init, (num_samples, dim)) @ chol.T
        return teleport.teleport_then_sample(
            k_run, x, sig, skip, mean, cov, name=sampler, denoiser=den
        )

    x, used = run(jax.random.PRNGKey(seed))
    x = np.asarray(x, np.float32)
    bad = int(np.sum(~np.all(np.isfinite(x), axis=1)))
    if bad:
        raise ValueError(f"--gmm {gmm_path}: sampler {sampler!r} produced {bad} non-finite "
                         f"sample(s) of {x.shape[0]} (float32 overflow or underflow of the "
                         f"mixture's scale?); nothing written to --out {out}")
    with open(out, "wb") as f:  # np.save(path) would append ".npy" to any other name
        np.save(f, x)
    return {"nfe": int(used[0]), "steps": steps, "skipped_steps": skip, "shape": list(x.shape)}


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
        "warm_cold_steps",
        "warm_tail_steps",
    ):
        if not c[field] or min(c[field]) < 1:
            raise ValueError(f"config.{field} must be non-empty with values >= 1, got {c[field]}")
    for name in c.samplers:
        samplers.steps_for_nfe(name, min(c.nfe_grid))
    for part in c.parts:
        if part not in ("gmm", "digits", "warm"):
            raise ValueError(f"config.parts has unknown part {part!r}; use gmm, digits, warm")
    for name in c.datasets:
        if name not in ("gmm2d", "gmm16d"):
            raise ValueError(f"config.datasets has unknown data set {name!r}")
    if c.num_samples < 10:
        raise ValueError(f"config.num_samples must be >= 10, got {c.num_samples}")
    if not c.sigma_max > 0.002:
        raise ValueError(f"config.sigma_max must be > 0.002, got {c.sigma_max}")
    for f in c.teleport_fractions:
        if not 0.0 <= f < 1.0:
            raise ValueError(f"config.teleport_fractions must lie in [0, 1), got {f}")
    if max(c.warm_tail_steps) > c.warm_full_steps:
        raise ValueError(
            f"config.warm_tail_steps must be <= warm_full_steps, got {c.warm_tail_steps}"
        )
    if c.warm_control_steps < 2:
        raise ValueError(f"config.warm_control_steps must be >= 2, got {c.warm_control_steps}")
    if c.warm_task not in ("lane", "reach"):
        raise ValueError(f"config.warm_task must be 'lane' or 'reach', got {c.warm_task!r}")
    if min(c.warm_start_sigmas) <= 0.002 or max(c.warm_start_sigmas) >= WARM_SIGMA_MAX:
        raise ValueError(f"config.warm_start_sigmas must lie in (0.002, {WARM_SIGMA_MAX:g}), got "
                         f"{c.warm_start_sigmas}")
    if not c.warm_factor >= 1.0:
        raise ValueError(f"config.warm_factor must be >= 1, got {c.warm_factor}")
    common.validate_runtime(c)
    try:
        net = jconfig.from_config(network.ScoreNetConfig, c.net)
    except (TypeError, ValueError) as e:
        raise ValueError(f"config.net: {e}") from None
    return net.validate(prefix="config.net")


def gmm_2d() -> scores.GMM:
    """Six anisotropic components on a ring of radius 2 (unequal weights)."""
    ang = np.arange(6) * np.pi / 3
    means = 2.0 * np.stack([np.cos(ang), np.sin(ang)], 1)
    covs = []
    for a in ang:
        r = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        covs.append(r @ np.diag([0.08, 0.01]) @ r.T)
    w = np.array([1, 2, 1, 2, 1, 3], float)
    return scores.validate_gmm(w / w.sum(), means, np.stack(covs))


def gmm_16d(num_components: int) -> scores.GMM:
    rng = np.random.default_rng(16)
    means = rng.normal(size=(num_components, 16)) * 1.5
    a = rng.normal(size=(num_components, 16, 16)) / 4.0
    covs = 0.3 * np.einsum("mij,mkj->mik", a, a) + 0.02 * np.eye(16)
    return scores.validate_gmm(np.full(num_components, 1.0 / num_components), means, covs)


def digits_data() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    x = load_digits().data.astype(np.float32) / 16.0 * 2.0 - 1.0  # [1797, 64] in [-1, 1]
    perm = np.random.default_rng(0).permutation(x.shape[0])
    return x[perm[360:]], x[perm[:360]]


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
    train, _ = digits_data()
    algo = network.score_net_trainer(train, net_cfg, name="digits_dsm")
    config = {"net": jconfig.to_config_dict(net_cfg).to_dict(),
              "data": "sklearn load_digits / 16 * 2 - 1, permutation seed 0, rows 360: train"}
    return experiment.run(algo, seeds, workdir=workdir, config=config, progress_metric="loss",
                          stop_after_chunks=stop_after_chunks, **common.runtime_kwargs(c))


def digits_study(c, net_cfg, keys, res: experiment.Result):
    """Quality vs NFE and teleportation with the nets of `res` (`train_digits_nets`)."""
    train, test = digits_data()
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
WARM_SIGMA_MAX = 10.0


def make_warm_task(c, factor: float):
    """The sequential task of the warm-start study (`config.warm_task`)."""
    if c.warm_task == "lane":
        return warmstart.LaneTrackTask(factor=factor, speed=c.warm_speed)
    return warmstart.ReachGraspTask(factor=factor)


def warm_rollout(
    key,
    task,
    mode: str,
    steps: int,
    full_steps: int,
    control_steps: int,
    sigma_start: jax.Array | float = WARM_SIGMA_MAX,
):
    """One closed-loop episode; returns per-step (pos_err [T], grip_err [T], nfe [T]).

    `mode="cold"`: every control step denoises from noise at `WARM_SIGMA_MAX` with `steps` Euler
    steps (`steps = full_steps` is the full solve). `mode="warm"`: the first step is a full solve,
    then each step runs `steps` Euler steps on the EDM schedule from level `sigma_start`
    (traceable) down to 0, starting at the previous chunk shifted by one step (RTI; the guess is
    used as is, as in the paper's code). `task` follows the `warmstart` task interface."""
    k_init, k_loop = jax.random.split(key)
    p0, ctx = task.init(k_init)
    full = jnp.asarray(sde.edm_sigmas(full_steps, sigma_max=WARM_SIGMA_MAX))
    short = jnp.asarray(sde.edm_sigmas(steps, sigma_max=WARM_SIGMA_MAX))
    warm_sig = sde.edm_sigmas_jax(steps, 0.002, sigma_start)
    dim = task.horizon * 3

    def step(carry, inp):
        p, prev = carry
        t, k = inp
        k_x, k_noise = jax.random.split(k)
        den = task.denoiser(p, t, ctx)
        x_t = jax.random.normal(k_x, (dim,))
        if mode == "cold":
            x, nfe = samplers.euler(den, WARM_SIGMA_MAX * x_t, short)
        else:

            def cold(_):
                return samplers.euler(den, WARM_SIGMA_MAX * x_t, full)

            def warm(_):
                guess = warmstart.shift_chunk(prev.reshape(task.horizon, 3)).reshape(-1)
                return warmstart.warm_start_denoise(den, guess, warm_sig, name="euler")

            x, nfe = jax.lax.cond(t == 0, cold, warm, None)
        chunk = x.reshape(task.horizon, 3)
        action = warmstart.unscale_discrete(chunk, task.discrete)
        pos_err, grip_err = task.action_error(action, p, t, ctx)
        p_next = action[0, :2] + task.process_noise * jax.random.normal(k_noise, (2,))
        return (p_next, x), (pos_err, grip_err, nfe)

    ts = jnp.arange(control_steps, dtype=jnp.float32)
    _, (pe, ge, nfe) = jax.lax.scan(
        step, (p0, jnp.zeros(dim)), (ts, jax.random.split(k_loop, control_steps))
    )
    return pe, ge, nfe


def _warm_row(factor, label, k, s0, pe, ge, nfe):
    return dict(
        factor=factor,
        method=label,
        steps=k,
        sigma_start=s0,
        nfe=float(np.asarray(nfe)[:, 1:].mean()),
        pos_err=np.asarray(pe)[:, 1:].mean(1),
        grip_err=np.asarray(ge)[:, 1:].mean(1),
    )


def warm_study(c, keys):
    """Every (method, steps, start level) on both gripper scales (`config.warm_factor` and 1,
    i.e. no scaling). The scale is a traced value, so one compiled program serves both, and the
    start levels of a warm variant are vmapped too."""
    rows = []
    starts = jnp.asarray(c.warm_start_sigmas, jnp.float32)
    factors = (float(c.warm_factor), 1.0)
    f_arr = jnp.asarray(factors, jnp.float32)
    variants = [("full", "cold", c.warm_full_steps)]
    variants += [("cold", "cold", k) for k in c.warm_cold_steps if k != c.warm_full_steps]
    results = {}
    for label, mode, k in variants:
        f = jax.jit(
            jax.vmap(
                jax.vmap(
                    lambda key, fac, mode=mode, k=k: warm_rollout(
                        key, make_warm_task(c, fac), mode, k, c.warm_full_steps,
                        c.warm_control_steps,
                    ),
                    in_axes=(0, None),
                ),
                in_axes=(None, 0),
            )
        )
        results[(label, k)] = f(keys, f_arr)
    warm = {}
    for k in c.warm_tail_steps:
        f = jax.jit(
            jax.vmap(
                jax.vmap(
                    jax.vmap(
                        lambda key, fac, s0, k=k: warm_rollout(
                            key, make_warm_task(c, fac), "warm", k, c.warm_full_steps,
                            c.warm_control_steps, s0,
                        ),
                        in_axes=(0, None, None),
                    ),
                    in_axes=(None, 0, None),
                ),
                in_axes=(None, None, 0),
            )
        )
        warm[k] = f(keys, f_arr, starts)  # each [S0, F, seeds, T]
    for i, factor in enumerate(factors):
        for (label, k), (pe, ge, nfe) in results.items():
            rows.append(_warm_row(factor, label, k, WARM_SIGMA_MAX, pe[i], ge[i], nfe[i]))
        for k, (pe, ge, nfe) in warm.items():
            for j, s0 in enumerate(c.warm_start_sigmas):
                rows.append(_warm_row(factor, "warm", k, s0, pe[j, i], ge[j, i], nfe[j, i]))
    return rows, warm_contractivity_choice(c)


def warm_contractivity_choice(c, num_transitions: int = 8) -> dict:
    """Start level from contractivity, calibrated on `num_transitions` transitions of one
    full-solve episode (seed 0; no warm-start run is used):

    * continuous part: the warm map `Phi` (start level `s0`, `k` Euler steps) nearly fixes the
      mode plans, so `|Phi(guess) - q| <= L |guess - q|` with `L` its Lipschitz constant at the
      guess (power iteration) and `e0 = |guess - q|` the shifted guess's distance to the nearest
      mode plan `q` (chunk norms, medians over transitions). Require `L e0 <= tolerance * E`,
      `E` the full solve's own distance to the nearest mode plan.
    * discrete part (our derivation for the paper's scaling; the paper's exact condition was not
      available to check): a scaled gripper entry at `-c` (`c = 1 / factor`) is overturned by the
      exact denoiser at level `s0` only if the expert's log-odds exceed `2 c^2 / s0^2`; asking a
      90%-confident switch (log-odds `log 9`) to win gives `s0 >= c sqrt(2 / log 9)`.

    Picks the fewest steps, then the lowest start level, meeting both."""
    task = make_warm_task(c, c.warm_factor)
    full = jnp.asarray(sde.edm_sigmas(c.warm_full_steps, sigma_max=WARM_SIGMA_MAX))
    dim = task.horizon * 3
    key = jax.random.PRNGKey(0)
    p, ctx = task.init(key)
    xs, ps = [], []
    for t in range(num_transitions + 1):
        den = task.denoiser(p, jnp.float32(t), ctx)
        x, _ = samplers.euler(
            den, WARM_SIGMA_MAX * jax.random.normal(jax.random.fold_in(key, t), (dim,)), full
        )
        xs.append(x)
        ps.append(p)
        p = warmstart.unscale_discrete(x.reshape(task.horizon, 3), task.discrete)[0, :2]

    def dist_to_modes(chunk, t):
        q, _ = task.expert(ps[t], jnp.float32(t), ctx)
        return float(jnp.min(jnp.linalg.norm(chunk.reshape(task.horizon, 3)[None, :, :2] - q,
                                             axis=(1, 2))))

    guesses = [warmstart.shift_chunk(xs[t - 1].reshape(task.horizon, 3)).reshape(-1)
               for t in range(1, num_transitions + 1)]
    err0 = float(np.median([dist_to_modes(g, t + 1) for t, g in enumerate(guesses)]))
    full_err = float(np.median([dist_to_modes(xs[t], t) for t in range(1, num_transitions + 1)]))
    tol = c.warm_tolerance * full_err
    s0_min = float(np.sqrt(2.0 / np.log(9.0)) / c.warm_factor)
    ps_arr, g_arr = jnp.stack(ps[1:]), jnp.stack(guesses)
    t_arr = jnp.arange(1, num_transitions + 1, dtype=jnp.float32)
    lips = {}
    for k in c.warm_tail_steps:
        fn = jax.jit(
            jax.vmap(
                lambda p_, t_, g_, s0, k=k: warmstart.map_lipschitz(
                    lambda x: samplers.euler(
                        task.denoiser(p_, t_, ctx), x, sde.edm_sigmas_jax(k, 0.002, s0)
                    )[0],
                    g_,
                    jax.random.PRNGKey(2),
                ),
                in_axes=(0, 0, 0, None),
            )
        )
        for s0 in c.warm_start_sigmas:
            lips[(k, s0)] = float(np.median(np.asarray(fn(ps_arr, t_arr, g_arr, jnp.float32(s0)))))
    ok = sorted((k, s0) for (k, s0), v in lips.items() if v * err0 <= tol and s0 >= s0_min)
    chosen = ok[0] if ok else None
    return dict(
        err0=err0,
        full_err=full_err,
        tol=tol,
        s0_min=s0_min,
        lipschitz={f"{k} steps from {s0:g}": v for (k, s0), v in lips.items()},
        chosen_steps=None if chosen is None else chosen[0],
        chosen_sigma=None if chosen is None else chosen[1],
    )


def warm_equal_error(rows, tol):
    """Cheapest cold start and warm start whose position error is within `tol` x the full solve
    (IQM over seeds) and whose gripper error rate is at most 1 point above it."""
    out = []
    for factor in sorted({r["factor"] for r in rows}, reverse=True):
        rs = [r for r in rows if r["factor"] == factor]
        full = next(r for r in rs if r["method"] == "full")
        target_pos = tol * stats.iqm(full["pos_err"])
        target_grip = float(np.mean(full["grip_err"])) + 0.01
        res = dict(factor=factor, full_nfe=full["nfe"], full_pos=float(stats.iqm(full["pos_err"])))
        for method in ("cold", "warm"):
            ok = [
                r
                for r in rs
                if r["method"] in ((method, "full") if method == "cold" else (method,))
                and stats.iqm(r["pos_err"]) <= target_pos
                and np.mean(r["grip_err"]) <= target_grip
            ]
            best = min(ok, key=lambda r: r["nfe"], default=None)
            res[method + "_nfe"] = None if best is None else best["nfe"]
            res[method + "_sigma_start"] = None if best is None else best["sigma_start"]
        out.append(res)
    return out


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


def warm_table(path: str, rows: list[dict], seeds) -> None:
    """`path` (long form: swept `factor` (gripper scale), `sigma_start` (WARM_SIGMA_MAX for cold
    starts and the full solve) and `solver_steps`; `pos_err`, `grip_err`, `nfe` per seed); adds
    `pos_err_ci` to every row."""
    runs = [{"seed": s, "factor": float(r["factor"]), "sigma_start": float(r["sigma_start"]),
             "solver_steps": float(r["steps"])} for r in rows for s in seeds]
    cols = {"pos_err": np.concatenate([r["pos_err"] for r in rows]),
            "grip_err": np.concatenate([r["grip_err"] for r in rows]),
            "nfe": np.concatenate([np.full(len(seeds), r["nfe"]) for r in rows])}
    ci = ci_by_point(write_table(path, runs, cols), "pos_err")
    for r in rows:
        r["pos_err_ci"] = ci[(float(r["factor"]), float(r["sigma_start"]), float(r["steps"]))]


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
    gmms = {"gmm2d": gmm_2d, "gmm16d": lambda: gmm_16d(c.gmm16_components)}
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
        rows, choice = warm_study(c, keys)
        warm_table(os.path.join(workdir, "warm", "metrics.csv"), rows, seeds)
        eq = warm_equal_error(rows, c.warm_tolerance)
        summary["warm_start"] = dict(rows=rows, equal_error=eq, contractivity_choice=choice)
        md += _warm_table(rows, eq, choice, c)
        _warm_plot(os.path.join(workdir, "plots", "warm_start.png"), rows)
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


def _warm_table(rows, eq, choice, c) -> list[str]:
    task = "lane-tracking" if c.warm_task == "lane" else "reach-and-grasp"
    lines = [
        f"### Warm-started (RTI) denoising on the {task} task",
        "",
        f"{c.warm_control_steps} control steps per episode, {len(rows[0]['pos_err'])} "
        "seeds (IQM [95% bootstrap CI] over seeds of the per-episode mean); errors of the "
        "executed action over steps 2.. (step 1 of a warm run is a full solve). Cold starts "
        f"begin at sigma {WARM_SIGMA_MAX:g}; warm starts at the listed level from the previous "
        "chunk shifted by one step. Position error = distance to the nearest expert mode mean "
        "(the full solve samples the expert's spread, std 0.02 per coordinate, so its error is "
        "that spread; solvers that collapse onto the mode mean score below it).",
        "",
        "| gripper scale | method | start sigma | steps | NFE / control step | position "
        "error (IQM [95% CI]) | gripper errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['factor']:g} | {r['method']} | {r['sigma_start']:g} | {r['steps']} "
            f"| {r['nfe']:.1f} | {_ci_text(r['pos_err_ci'])} | "
            f"{100 * np.mean(r['grip_err']):.1f}% |"
        )

    def fmt(e, m):
        if e[m + "_nfe"] is None:
            return f"{m}: none in the grid"
        return f"{m} {e[m + '_nfe']:.0f} NFE (start sigma {e[m + '_sigma_start']:g})"

    lines += [
        "",
        f"Equal action error (position error IQM within {c.warm_tolerance:g}x the full "
        "solve's, gripper error rate at most 1 point higher), NFE per control step: "
        + "; ".join(
            f"gripper scale {e['factor']:g}: full {e['full_nfe']:.0f}, "
            + fmt(e, "cold")
            + ", "
            + fmt(e, "warm")
            for e in eq
        ),
        "",
        f"Contractivity-based start level (calibrated on one full-solve episode, no warm run "
        f"used): guess distance to the nearest mode plan e0 = {choice['err0']:.3f}, full "
        f"solve's E = {choice['full_err']:.3f}, need L e0 <= {choice['tol']:.3f} and start "
        f"sigma >= {choice['s0_min']:.3f} (discrete entries); Lipschitz constants: "
        + ", ".join(f"{k}: {v:.3g}" for k, v in choice["lipschitz"].items())
        + f"; chosen: {choice['chosen_steps']} steps from sigma {choice['chosen_sigma']}.",
        "",
    ]
    return lines


def _warm_plot(path, rows):
    from jaxrl import plotting

    top = max(r["factor"] for r in rows)
    rs = sorted(
        (r for r in rows if r["factor"] == top and r["method"] in ("cold", "full")),
        key=lambda r: r["nfe"],
    )
    curves = {
        "cold start (from sigma 10)": (
            np.array([r["nfe"] for r in rs]),
            np.stack([r["pos_err"] for r in rs], 1),
        )
    }
    for s0 in sorted({r["sigma_start"] for r in rows if r["method"] == "warm"}):
        rs = sorted(
            (r for r in rows
             if r["factor"] == top and r["method"] == "warm" and r["sigma_start"] == s0),
            key=lambda r: r["nfe"],
        )
        curves[f"warm start from sigma {s0:g}"] = (
            np.array([r["nfe"] for r in rs]),
            np.stack([r["pos_err"] for r in rs], 1),
        )
    fig = plotting.plot_curves(
        path,
        curves,
        xlabel="NFE per control step",
        ylabel="position error of executed action",
        title=f"warm vs cold start (gripper scale {top:g})",
    )
    fig.axes[0].set_xscale("log")
    fig.axes[0].set_yscale("log")
    fig.savefig(path, dpi=90)


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
        + " ![digits](samplers/plots/digits_sw.png) ![warm](samplers/plots/warm_start.png)",
        "",
    ]
    return "\n".join(head) + s["markdown"]


def _main() -> None:
    if _GMM.value is not None:
        if _OUT.value is None:
            raise ValueError("--out is required with --gmm")
        info = sample_gmm_file(
            _GMM.value,
            _SAMPLER.value,
            _NFE.value,
            _NUM.value,
            _SEED.value,
            _OUT.value,
            _TELEPORT.value,
            _SIGMA_MAX.value,
        )
        print(json.dumps(info))
        return
    if _CONFIG.value is None or _WORKDIR.value is None:
        raise ValueError("give --gmm/--out (bring your own mixture) or --config/--workdir")
    s = run_experiment(_CONFIG.value, _WORKDIR.value)
    print(s["markdown"])
    print(f"done in {s['seconds']:.0f} s; outputs in {_WORKDIR.value}")


def main(argv: list[str]) -> None:
    """The command line; a user error is one line `error: ...` with exit status 2."""
    del argv
    common.guarded_main(_main)


if __name__ == "__main__":
    common.run_app(main, required=())
