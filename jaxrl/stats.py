"""Robust aggregate statistics for RL results with a handful of runs.

Implements the evaluation protocol of Agarwal et al. 2021, "Deep Reinforcement Learning at the
Edge of the Statistical Precipice" (NeurIPS 2021, arXiv:2108.13264), in vectorized NumPy:

* point estimates of aggregate performance (Sec. 4.3): interquartile mean (IQM), mean, median and
  optimality gap;
* interval estimates (Sec. 4.1): percentile confidence intervals from the *stratified* bootstrap,
  which resamples runs with replacement independently within each task (the tasks stay fixed);
* probability of improvement (Sec. 4.3): P(X > Y) per task in its Mann-Whitney form (ties count
  1/2), averaged over tasks, with a CI from resampling both algorithms' runs independently;
* performance profiles (Sec. 4.2): the fraction of runs whose score exceeds tau, with CI bands;
* learning curves: IQM and bootstrap CI at every time point (`curve_iqm_ci`).

Shapes. `scores` are `[runs]` (one task) or `[runs, tasks]`, usually normalized so that 0 is a
random policy and 1 a reference (`normalize_scores`). Curves are `[runs, T]` or
`[runs, tasks, T]`.

Definitions (checked against the paper and the rliable library, Agarwal et al.'s reference
implementation):
* IQM = 25% trimmed mean of all runs x tasks pooled. As in rliable (`scipy.stats.trim_mean`
  with `proportiontocut=0.25`), `floor(n / 4)` values are dropped at each end of the `n` sorted
  values, so for `n` not divisible by 4 slightly more than half of the values are kept. With
  `fractional=True` we instead return the exact mean of the empirical quantile function over
  [0.25, 0.75]: the values on the quartile boundaries get fractional weight.
* mean = mean over tasks of the per-task mean over runs; median = median over tasks of the
  per-task means (both as in rliable).
* optimality gap(gamma) = gamma - mean(min(score, gamma)) over all runs x tasks: how far the
  algorithm falls short of the target score gamma (lower is better).
* performance profile at tau = fraction of all runs x tasks with score > tau (strictly).

Missing runs (`nan_policy`). A failed seed shows up as NaN (or +-inf). Every function takes
`nan_policy`:
* "omit" (default): non-finite entries are treated as missing runs and dropped. Statistics use
  the remaining runs of each task (pooled statistics pool the remaining runs; the bootstrap
  resamples, within each task / time point, as many runs as that task has left). A task (or time
  point) with no finite run left raises `ValueError`, never returns NaN silently.
  `aggregate` reports how many entries were dropped (`num_missing`).
* "raise": any non-finite entry raises `ValueError` naming its index and value.

Randomness. Bootstraps use `numpy.random.default_rng(seed)`: same inputs and seed give the same
interval. Bootstrap draws are produced in chunks bounded to a few million array elements, so
memory stays bounded for long curves or many runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Literal

import numpy as np
from numpy.lib.array_utils import normalize_axis_tuple

NanPolicy = Literal["omit", "raise"]
ArrayLike = np.ndarray | Sequence[float] | float

STATISTICS = ("iqm", "mean", "median", "optimality_gap")
# Upper bound on the number of array elements materialized per bootstrap chunk.
_CHUNK_ELEMENTS = 1 << 22


# ----------------------------------------------------------------------------------------------
# Input handling
# ----------------------------------------------------------------------------------------------
def _as_array(x: ArrayLike, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.size == 0:
        raise ValueError(f"{name} is empty (shape {a.shape})")
    return a


def _check_nan_policy(nan_policy: str) -> None:
    if nan_policy not in ("omit", "raise"):
        raise ValueError(f"nan_policy must be 'omit' or 'raise', got {nan_policy!r}")


def _missing_to_nan(a: np.ndarray, name: str, nan_policy: str) -> np.ndarray:
    """Returns `a` with every non-finite entry set to NaN; raises under nan_policy='raise'."""
    _check_nan_policy(nan_policy)
    bad = ~np.isfinite(a)
    if not bad.any():
        return a
    if nan_policy == "raise":
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{name} has {int(bad.sum())} non-finite entries (first at index {first}: "
            f"{a[first]}); pass nan_policy='omit' to treat them as missing runs"
        )
    return np.where(bad, np.nan, a)


def _as_scores(scores: ArrayLike, name: str, nan_policy: str) -> np.ndarray:
    """Validates `scores: [runs] | [runs, tasks]`.

    Returns the runs-last internal layout `[tasks, runs]` (contiguous), NaN = missing.
    """
    a = _as_array(scores, name)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise ValueError(f"{name} must have shape [runs] or [runs, tasks], got {a.shape}")
    a = _missing_to_nan(a, name, nan_policy)
    empty = np.flatnonzero(np.isnan(a).all(axis=0))
    if empty.size:
        raise ValueError(f"{name}: task {int(empty[0])} has no finite run (all runs missing)")
    return np.ascontiguousarray(a.T)


def _check_bootstrap_args(reps: int, alpha: float) -> None:
    if isinstance(reps, bool) or int(reps) != reps or reps < 1:
        raise ValueError(f"reps must be an integer >= 1, got {reps!r}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")


def _to_output(x: np.ndarray) -> float | np.ndarray:
    x = np.asarray(x)
    return float(x) if x.ndim == 0 else x


# ----------------------------------------------------------------------------------------------
# Vectorized kernels. Internally scores are laid out runs-last, `[..., tasks, runs]`, so that
# sorting and resampling act on the last, contiguous axis; NaN marks a missing run. Leading axes
# are batch axes (bootstrap replicates) and are never reduced.
# ----------------------------------------------------------------------------------------------
def _trim_weights(k: np.ndarray, n: int, fractional: bool) -> np.ndarray:
    """Weights of the n sorted slots when k of them are finite; `k: [...] -> [..., n]`.

    Sorted value i (0-based) occupies [i, i+1) on a line of length k; its weight is
    |[i, i+1) n [a, b)| with a = floor(k/4), b = k - a (rliable / scipy.stats.trim_mean) or
    a = k/4, b = 3k/4 (fractional). Slots i >= k get weight 0.
    """
    k = np.asarray(k, dtype=np.float64)[..., None]
    lo, hi = (k / 4.0, 3.0 * k / 4.0) if fractional else (np.floor(k / 4.0), k - np.floor(k / 4.0))
    pos = np.arange(n, dtype=np.float64)
    return np.clip(np.minimum(pos + 1.0, hi) - np.maximum(pos, lo), 0.0, None)


def _trimmed_mean_last(x: np.ndarray, fractional: bool) -> np.ndarray:
    """25% trimmed mean along the last axis, ignoring NaN. `x: [..., n] -> [...]`.

    Rows with no finite value give NaN (public functions validate before calling).
    """
    s = np.sort(x, axis=-1)  # NaN sorts last.
    n = s.shape[-1]
    if not np.isnan(s[..., -1]).any():  # Complete data: one weight vector for every row.
        w = _trim_weights(np.array(n), n, fractional)
        return (s @ w) / w.sum()
    w = _trim_weights(np.sum(~np.isnan(s), axis=-1), n, fractional)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sum(w * np.nan_to_num(s, nan=0.0), axis=-1) / np.sum(w, axis=-1)


def _nanmean(x: np.ndarray, axis: int | tuple[int, ...]) -> np.ndarray:
    valid = ~np.isnan(x)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sum(np.where(valid, x, 0.0), axis=axis) / np.sum(valid, axis=axis)


def _stat_iqm(x: np.ndarray, fractional: bool = False) -> np.ndarray:
    """`x: [..., tasks, runs] -> [...]`: IQM of all runs x tasks pooled."""
    return _trimmed_mean_last(x.reshape(*x.shape[:-2], -1), fractional)


def _stat_mean(x: np.ndarray) -> np.ndarray:
    """`x: [..., tasks, runs] -> [...]`: mean over tasks of the per-task mean."""
    return np.mean(_nanmean(x, axis=-1), axis=-1)


def _stat_median(x: np.ndarray) -> np.ndarray:
    """`x: [..., tasks, runs] -> [...]`: median over tasks of the per-task mean."""
    return np.median(_nanmean(x, axis=-1), axis=-1)


def _stat_gap(x: np.ndarray, gamma: float) -> np.ndarray:
    """`x: [..., tasks, runs] -> [...]`: gamma - mean(min(x, gamma)) over runs x tasks."""
    return gamma - _nanmean(np.minimum(x, gamma), axis=(-2, -1))


def _stat_profile(x: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """`x: [..., tasks, runs] -> [..., n_tau]`: fraction of finite runs x tasks with x > tau."""
    flat = x.reshape(*x.shape[:-2], -1, 1)
    above = np.sum(flat > taus, axis=-2)  # NaN > tau is False.
    return above / np.sum(~np.isnan(flat), axis=-2)


def _stat_poi(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """`x: [..., tasks, nx], y: [..., tasks, ny] -> [...]`: mean over tasks of P(X > Y).

    P(X > Y) per task = (#{x_i > y_j} + #{x_i = y_j} / 2) / (n_x n_y) over finite pairs, i.e.
    the Mann-Whitney U statistic of x divided by n_x n_y.
    """
    xe, ye = x[..., :, None], y[..., None, :]
    wins = np.sum(xe > ye, axis=(-2, -1)) + 0.5 * np.sum(xe == ye, axis=(-2, -1))
    pairs = np.sum(~np.isnan(x), axis=-1) * np.sum(~np.isnan(y), axis=-1)
    return np.mean(wins / pairs, axis=-1)


def _named_statistic(
    statistic: str | Callable[[np.ndarray], np.ndarray], gamma: float, fractional: bool
) -> Callable[[np.ndarray], np.ndarray]:
    """The kernel of a named statistic, on runs-last arrays `[..., tasks, runs]`."""
    if callable(statistic):  # Public callables take `[..., runs, tasks]`.
        return lambda x: statistic(np.swapaxes(x, -1, -2))
    if statistic == "iqm":
        return lambda x: _stat_iqm(x, fractional)
    if statistic == "mean":
        return _stat_mean
    if statistic == "median":
        return _stat_median
    if statistic == "optimality_gap":
        return lambda x: _stat_gap(x, gamma)
    raise ValueError(f"statistic must be one of {STATISTICS} or a callable, got {statistic!r}")


# ----------------------------------------------------------------------------------------------
# Stratified bootstrap
# ----------------------------------------------------------------------------------------------
def _stratified_resamples(
    data: np.ndarray, reps: int, rng: np.random.Generator, chunk: int
) -> Iterator[np.ndarray]:
    """Yields stratified bootstrap resamples of `data: [*strata, runs]` in chunks.

    Each yielded array is `[c, *strata, runs]` (sum of c = reps). For every stratum (task, or
    time point of a curve) independently, the n finite runs of that stratum are resampled n times
    with replacement; the remaining `runs - n` slots are NaN (missing), so every replicate has
    exactly the finite-run counts of the data.
    """
    runs = data.shape[-1]
    valid = ~np.isnan(data)
    n = valid.sum(axis=-1, keepdims=True)  # [*strata, 1]
    complete = bool(np.all(n == runs))
    if not complete:  # Move each stratum's finite runs to the front.
        order = np.argsort(~valid, axis=-1, kind="stable")
        data = np.take_along_axis(data, order, axis=-1)
        keep = np.arange(runs) < n  # [*strata, runs]
    done = 0
    while done < reps:
        c = min(chunk, reps - done)
        if complete:
            idx = rng.integers(0, runs, size=(c, *data.shape))
        else:
            u = rng.random(size=(c, *data.shape))
            idx = np.minimum((u * n).astype(np.int64), np.maximum(n - 1, 0))
        out = np.take_along_axis(data[None], idx, axis=-1)
        if not complete:
            out = np.where(keep, out, np.nan)
        done += c
        yield out


def _chunk_size(elements_per_rep: int) -> int:
    return max(1, _CHUNK_ELEMENTS // max(1, elements_per_rep))


def _percentile_interval(boot: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = np.percentile(boot, [100.0 * alpha / 2.0, 100.0 * (1.0 - alpha / 2.0)], axis=0)
    return lo, hi


def _bootstrap_many(
    data: np.ndarray,
    stats: Mapping[str, Callable[[np.ndarray], np.ndarray]],
    reps: int,
    alpha: float,
    seed: int,
    cost: int = 1,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Percentile intervals of several statistics sharing the same stratified resamples."""
    _check_bootstrap_args(reps, alpha)
    rng = np.random.default_rng(seed)
    boots: dict[str, list[np.ndarray]] = {name: [] for name in stats}
    for sample in _stratified_resamples(data, reps, rng, _chunk_size(data.size * cost)):
        for name, fn in stats.items():
            boots[name].append(np.asarray(fn(sample)))
    return {
        name: _percentile_interval(np.concatenate(b, axis=0), alpha) for name, b in boots.items()
    }


# ----------------------------------------------------------------------------------------------
# Point estimates
# ----------------------------------------------------------------------------------------------
def iqm(
    x: ArrayLike,
    axis: int | tuple[int, ...] | None = -1,
    *,
    fractional: bool = False,
    nan_policy: NanPolicy = "omit",
) -> float | np.ndarray:
    """Interquartile mean: the mean of the middle 50% of the values (Agarwal et al. 2021, 4.3).

    Args:
      x: any shape, e.g. `[runs]`, `[runs, T]` (use axis=0) or `[runs, tasks]` (use axis=None
        to pool runs x tasks as the paper does).
      axis: axis (or axes) reduced; None pools all values.
      fractional: False (default) drops floor(n/4) sorted values at each end, exactly like
        rliable and `scipy.stats.trim_mean(x, 0.25)`; True gives the boundary values fractional
        weight (the exact mean of the empirical quantile function over [0.25, 0.75]).
      nan_policy: "omit" drops non-finite values (missing runs); "raise" rejects them.

    Returns:
      A float when everything is reduced, else an array of the remaining shape.
    """
    a = _missing_to_nan(_as_array(x, "x"), "x", nan_policy)
    if axis is None:
        a = a.reshape(-1)
    else:
        axes = (axis,) if isinstance(axis, int) else tuple(axis)
        axes = normalize_axis_tuple(axes, a.ndim)
        a = np.moveaxis(a, axes, tuple(range(a.ndim - len(axes), a.ndim)))
        a = a.reshape(*a.shape[: a.ndim - len(axes)], -1)
    empty = np.isnan(a).all(axis=-1)
    if empty.any():
        where = tuple(int(i) for i in np.argwhere(empty)[0]) if empty.ndim else ()
        raise ValueError(f"iqm: no finite value to average at output index {where}")
    return _to_output(_trimmed_mean_last(a, fractional))


def mean(scores: ArrayLike, *, nan_policy: NanPolicy = "omit") -> float:
    """Mean over tasks of the per-task mean score. `scores: [runs] | [runs, tasks]`."""
    return float(_stat_mean(_as_scores(scores, "scores", nan_policy)))


def median(scores: ArrayLike, *, nan_policy: NanPolicy = "omit") -> float:
    """Median over tasks of the per-task mean score. `scores: [runs] | [runs, tasks]`."""
    return float(_stat_median(_as_scores(scores, "scores", nan_policy)))


def optimality_gap(
    scores: ArrayLike, gamma: float = 1.0, *, nan_policy: NanPolicy = "omit"
) -> float:
    """Optimality gap gamma - mean(min(score, gamma)) over all runs x tasks (lower is better).

    Scores above the target `gamma` count as gamma, so the gap measures only the shortfall
    (Agarwal et al. 2021, Sec. 4.3; gamma = 1 for human-normalized Atari scores).
    """
    if not np.isfinite(gamma):
        raise ValueError(f"gamma must be finite, got {gamma!r}")
    return float(_stat_gap(_as_scores(scores, "scores", nan_policy), float(gamma)))


# ----------------------------------------------------------------------------------------------
# Interval estimates
# ----------------------------------------------------------------------------------------------
def interval_estimate(
    scores: ArrayLike,
    statistic: str | Callable[[np.ndarray], np.ndarray] = "iqm",
    reps: int = 2000,
    alpha: float = 0.05,
    seed: int = 0,
    *,
    gamma: float = 1.0,
    fractional: bool = False,
    nan_policy: NanPolicy = "omit",
) -> tuple[float, float, float]:
    """Point estimate and stratified-bootstrap percentile CI of an aggregate statistic.

    Args:
      scores: `[runs]` or `[runs, tasks]`.
      statistic: "iqm", "mean", "median", "optimality_gap", or a callable mapping
        `x: [..., runs, tasks]` (NaN = missing run, leading axes = replicates) to `[...]`.
      reps: number of bootstrap replicates.
      alpha: 1 - confidence level (0.05 gives a 95% interval).
      seed: seed of the NumPy generator that draws the resamples.
      gamma: target of the optimality gap.
      fractional: IQM trimming rule (see `iqm`).
      nan_policy: see the module docstring.

    Returns:
      (point, lo, hi) as floats.
    """
    data = _as_scores(scores, "scores", nan_policy)
    fn = _named_statistic(statistic, float(gamma), fractional)
    point = float(np.asarray(fn(data)))
    lo, hi = _bootstrap_many(data, {"s": fn}, reps, alpha, seed)["s"]
    return point, float(lo), float(hi)


def bootstrap_ci(
    scores: ArrayLike,
    statistic: str | Callable[[np.ndarray], np.ndarray] = "iqm",
    reps: int = 2000,
    alpha: float = 0.05,
    seed: int = 0,
    *,
    gamma: float = 1.0,
    fractional: bool = False,
    nan_policy: NanPolicy = "omit",
) -> tuple[float, float]:
    """Stratified bootstrap percentile CI `(lo, hi)` of `statistic` on `scores: [runs(, tasks)]`.

    Runs are resampled with replacement within each task independently (Agarwal et al. 2021,
    Sec. 4.1); see `interval_estimate` for the arguments.
    """
    _, lo, hi = interval_estimate(
        scores, statistic, reps, alpha, seed, gamma=gamma, fractional=fractional,
        nan_policy=nan_policy,
    )
    return lo, hi


def aggregate(
    scores: ArrayLike,
    *,
    gamma: float = 1.0,
    reps: int = 2000,
    alpha: float = 0.05,
    seed: int = 0,
    fractional: bool = False,
    nan_policy: NanPolicy = "omit",
) -> dict[str, float]:
    """All four aggregate metrics of `scores: [runs] | [runs, tasks]` with stratified CIs.

    Returns a JSON-ready dict: `iqm`, `mean`, `median`, `optimality_gap`, and (when reps > 0)
    `<metric>_lo` / `<metric>_hi` (percentile CI at level 1 - alpha, all metrics computed on the
    same resamples), plus `num_runs`, `num_tasks`, `num_missing` (non-finite entries omitted),
    `confidence` (= 1 - alpha) and `gamma`.
    """
    raw = _as_array(scores, "scores")
    data = _as_scores(raw, "scores", nan_policy)
    fns = {name: _named_statistic(name, float(gamma), fractional) for name in STATISTICS}
    out: dict[str, float] = {name: float(fn(data)) for name, fn in fns.items()}
    if reps:
        for name, (lo, hi) in _bootstrap_many(data, fns, reps, alpha, seed).items():
            out[f"{name}_lo"], out[f"{name}_hi"] = float(lo), float(hi)
    out.update(
        num_runs=int(data.shape[1]),
        num_tasks=int(data.shape[0]),
        num_missing=int(np.isnan(data).sum()),
        confidence=1.0 - alpha,
        gamma=float(gamma),
    )
    return out


def curve_iqm_ci(
    curves: ArrayLike,
    reps: int = 2000,
    alpha: float = 0.05,
    seed: int = 0,
    *,
    fractional: bool = False,
    nan_policy: NanPolicy = "omit",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IQM learning curve with pointwise stratified bootstrap CIs, vectorized over time.

    Args:
      curves: `[runs, T]` (one task) or `[runs, tasks, T]`; NaN/inf = missing (e.g. a seed that
        failed at some update and logged NaN afterwards).
      reps, alpha, seed: bootstrap replicates, 1 - confidence level, generator seed.
      fractional: IQM trimming rule (see `iqm`).
      nan_policy: "omit" (default) uses, at each time point, the runs that are finite there;
        "raise" rejects any non-finite entry. A time point with no finite run raises.

    Returns:
      (center, lo, hi), each `[T]`: the IQM over runs (x tasks) at every time point and its
      percentile CI. Runs are resampled independently at every (task, time) point, as in
      rliable's sample-efficiency curves; the band is pointwise, not simultaneous.
    """
    a = _as_array(curves, "curves")
    if a.ndim not in (2, 3):
        raise ValueError(f"curves must have shape [runs, T] or [runs, tasks, T], got {a.shape}")
    a = _missing_to_nan(a, "curves", nan_policy)
    empty = np.isnan(a).all(axis=0)  # [(tasks,) T]
    if empty.any():
        where = tuple(int(i) for i in np.argwhere(empty)[0])
        raise ValueError(f"curves: no finite run at (task, time) index {where}")

    data = np.ascontiguousarray(a.T)  # Runs last: [T, (tasks,) runs].
    stat = lambda x: _trimmed_mean_last(x.reshape(*x.shape[: x.ndim - a.ndim + 1], -1), fractional)
    center = stat(data)
    lo, hi = _bootstrap_many(data, {"c": stat}, reps, alpha, seed)["c"]
    return center, lo, hi


# ----------------------------------------------------------------------------------------------
# Probability of improvement
# ----------------------------------------------------------------------------------------------
def _paired_scores(
    x: ArrayLike, y: ArrayLike, nan_policy: str
) -> tuple[np.ndarray, np.ndarray]:
    xs = _as_scores(x, "x", nan_policy)
    ys = _as_scores(y, "y", nan_policy)
    if xs.shape[0] != ys.shape[0]:
        raise ValueError(f"x and y must have the same number of tasks, got {xs.shape[0]} "
                         f"and {ys.shape[0]}")
    return xs, ys


def probability_of_improvement(
    x: ArrayLike, y: ArrayLike, *, nan_policy: NanPolicy = "omit"
) -> float:
    """Average probability of improvement P(X > Y) (Agarwal et al. 2021, Sec. 4.3).

    For each task m, P(X_m > Y_m) = U / (n_x n_y) with U the Mann-Whitney statistic of x
    (pairs with x_i > y_j count 1, ties 1/2); the result is the mean over tasks.

    Args:
      x: `[runs_x]` or `[runs_x, tasks]` scores of algorithm X.
      y: `[runs_y]` or `[runs_y, tasks]` scores of algorithm Y (same tasks; runs may differ).
      nan_policy: see the module docstring.
    """
    xs, ys = _paired_scores(x, y, nan_policy)
    return float(_stat_poi(xs, ys))


def probability_of_improvement_ci(
    x: ArrayLike,
    y: ArrayLike,
    reps: int = 2000,
    alpha: float = 0.05,
    seed: int = 0,
    *,
    nan_policy: NanPolicy = "omit",
) -> tuple[float, float, float]:
    """P(X > Y) with a percentile CI; `(point, lo, hi)`.

    The runs of x and of y are resampled independently, each within every task (rliable's
    stratified independent bootstrap).
    """
    xs, ys = _paired_scores(x, y, nan_policy)
    _check_bootstrap_args(reps, alpha)
    rng_x, rng_y = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    chunk = _chunk_size(xs.shape[0] * xs.shape[1] * ys.shape[1])
    gen_x = _stratified_resamples(xs, reps, rng_x, chunk)
    gen_y = _stratified_resamples(ys, reps, rng_y, chunk)
    boot = np.concatenate([_stat_poi(bx, by) for bx, by in zip(gen_x, gen_y, strict=True)])
    lo, hi = _percentile_interval(boot, alpha)
    return float(_stat_poi(xs, ys)), float(lo), float(hi)


# ----------------------------------------------------------------------------------------------
# Performance profiles
# ----------------------------------------------------------------------------------------------
def _as_taus(taus: ArrayLike) -> np.ndarray:
    t = _as_array(taus, "taus").reshape(-1)
    if not np.all(np.isfinite(t)):
        raise ValueError(f"taus must be finite, got {t}")
    return t


def _profile_fn(taus: np.ndarray, per_task_mean: bool) -> Callable[[np.ndarray], np.ndarray]:
    if not per_task_mean:
        return lambda x: _stat_profile(x, taus)
    # Average-score distribution: fraction of tasks whose mean over runs exceeds tau.
    return lambda x: np.mean(_nanmean(x, axis=-1)[..., None] > taus, axis=-2)


def performance_profile(
    scores: ArrayLike,
    taus: ArrayLike,
    *,
    per_task_mean: bool = False,
    nan_policy: NanPolicy = "omit",
) -> np.ndarray:
    """Performance profile (score distribution) at thresholds `taus` (Agarwal et al. 2021, 4.2).

    Args:
      scores: `[runs]` or `[runs, tasks]`.
      taus: `[n_tau]` thresholds.
      per_task_mean: False (default, the paper's recommendation): fraction of all runs x tasks
        with score > tau. True: fraction of tasks whose mean score over runs is > tau (the
        "average-score distribution", higher variance).
      nan_policy: see the module docstring.

    Returns:
      `[n_tau]` fractions in [0, 1], non-increasing in tau.
    """
    data = _as_scores(scores, "scores", nan_policy)
    return _profile_fn(_as_taus(taus), per_task_mean)(data)


def performance_profile_ci(
    scores: ArrayLike,
    taus: ArrayLike,
    reps: int = 2000,
    alpha: float = 0.05,
    seed: int = 0,
    *,
    per_task_mean: bool = False,
    nan_policy: NanPolicy = "omit",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Performance profile with pointwise stratified bootstrap bands.

    Returns `(profile, lo, hi)`, each `[n_tau]`; see `performance_profile` for the arguments.
    """
    data = _as_scores(scores, "scores", nan_policy)
    t = _as_taus(taus)
    fn = _profile_fn(t, per_task_mean)
    lo, hi = _bootstrap_many(data, {"p": fn}, reps, alpha, seed, cost=t.size)["p"]
    return fn(data), lo, hi


# ----------------------------------------------------------------------------------------------
# Normalization
# ----------------------------------------------------------------------------------------------
def normalize_scores(scores: ArrayLike, low: ArrayLike, high: ArrayLike) -> np.ndarray:
    """Normalized scores (scores - low) / (high - low), e.g. low = random, high = human.

    `low` and `high` are scalars or `[tasks]`, broadcast along the last (task) axis of
    `scores: [..., tasks]`. Non-finite scores pass through (missing runs stay missing).
    """
    s = np.asarray(scores, dtype=np.float64)
    lo = np.asarray(low, dtype=np.float64)
    hi = np.asarray(high, dtype=np.float64)
    span = np.broadcast_to(hi - lo, np.broadcast_shapes(lo.shape, hi.shape))
    if not np.all(np.isfinite(span)) or np.any(span == 0):
        bad = np.argwhere(~np.isfinite(span) | (span == 0))[0] if span.ndim else ()
        raise ValueError(
            f"normalize_scores: high - low must be finite and non-zero, got {span[tuple(bad)]} "
            f"at index {tuple(int(i) for i in bad)}"
        )
    return (s - lo) / span


def iterations_to_target(ret: ArrayLike, target: float, window: int = 1) -> np.ndarray:
    """Per run, the number of updates (learning-curve points) taken before the return first
    reaches `target` (`ret: [runs, updates]`, the return of the policy each update starts from,
    so `ret[:, 0]` is the initial policy's); `inf` when never reached (NaN = a failed run's
    update, never a hit).

    `window > 1` judges the trailing mean of the last `window` updates' returns (the first
    `window - 1` updates cannot count): with a noisy metric (a batch mean of episode returns)
    the first crossing of the raw curve is biased early by the noise."""
    ret = np.nan_to_num(np.asarray(ret, np.float64), nan=-np.inf)
    if window > ret.shape[1]:
        return np.full(ret.shape[0], np.inf)
    if window > 1:  # the mean of updates i - window + 1 .. i, at index i (-inf: too early)
        means = np.lib.stride_tricks.sliding_window_view(ret, window, axis=1).mean(axis=-1)
        ret = np.concatenate([np.full((ret.shape[0], window - 1), -np.inf), means], axis=1)
    hit = ret >= target
    first = np.argmax(hit, axis=1).astype(float)
    return np.where(hit.any(axis=1), first, np.inf)
