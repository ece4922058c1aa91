"""PNG figures with honest uncertainty: learning curves, performance profiles, interval estimates.

The figures follow Agarwal et al. 2021, "Deep Reinforcement Learning at the Edge of the
Statistical Precipice" (arXiv:2108.13264): IQM learning curves with 95% stratified bootstrap
bands (Fig. 9 style), performance profiles / score distributions with bands (Sec. 4.2, Fig. 5),
interval estimates of median / IQM / mean / optimality gap (Sec. 4.3, Fig. 8) and probability
of improvement (Fig. 10). All numbers come from `jaxrl.stats`; see it for definitions and the
handling of missing runs (NaN = failed seed, dropped by default).

Every function writes a PNG at `path` (creating its folder) and returns the matplotlib `Figure`
(already saved; useful in notebooks and tests). Figures are drawn with the object-oriented Agg
canvas, never through `pyplot`, so no global state or display backend is touched.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from jaxrl import stats

_METRIC_TITLES = {
    "median": "Median",
    "iqm": "IQM",
    "mean": "Mean",
    "optimality_gap": "Optimality gap",
}


def _new_figure(width: float, height: float, ncols: int = 1) -> tuple[Figure, list]:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, list(axes)


def _save(fig: Figure, path: str | os.PathLike) -> Figure:
    folder = os.path.dirname(os.fspath(path))
    if folder:
        os.makedirs(folder, exist_ok=True)
    fig.savefig(path, dpi=120, format="png")
    return fig


def _colors(n: int) -> list:
    cycle = ["C0", "C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8", "C9"]
    return [cycle[i % len(cycle)] for i in range(n)]


def _check_nonempty(d: Mapping, name: str) -> None:
    if not isinstance(d, Mapping) or len(d) == 0:
        raise ValueError(f"{name} must be a non-empty dict label -> data, got {d!r:.80}")


def plot_curves(
    path: str | os.PathLike,
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
    xlabel: str = "environment steps",
    ylabel: str = "return",
    title: str = "",
    *,
    reps: int = 2000,
    alpha: float = 0.05,
    seed: int = 0,
) -> Figure:
    """Learning curves: the IQM over runs with a pointwise (1 - alpha) bootstrap CI band.

    Args:
      path: PNG file to write.
      curves: label -> (x `[T]`, y `[runs, T]` or `[runs, tasks, T]`). Missing values (NaN,
        e.g. a seed after it failed) are dropped per time point; time points where no run is
        finite are left out of the line (with a warning). The legend gives the number of runs
        and how many of them have a non-finite value.
      xlabel, ylabel, title: axis labels and title.
      reps, alpha, seed: bootstrap settings passed to `stats.curve_iqm_ci`.

    Returns:
      The saved figure: one line (and one band) per label.
    """
    _check_nonempty(curves, "curves")
    fig, (ax,) = _new_figure(6.0, 4.0)
    for (label, (x, y)), color in zip(curves.items(), _colors(len(curves)), strict=True):
        x = np.asarray(x, dtype=np.float64).reshape(-1)
        y = np.asarray(y, dtype=np.float64)
        if y.ndim == 1:
            y = y[None]
        if y.ndim not in (2, 3) or y.shape[-1] != x.shape[0]:
            raise ValueError(
                f"curves[{label!r}]: y must be [runs, T] or [runs, tasks, T] with T = len(x) = "
                f"{x.shape[0]}, got shape {y.shape}"
            )
        # A time point is drawn when every task has at least one finite run there.
        present = np.isfinite(y).any(axis=0)
        if y.ndim == 3:
            present = present.all(axis=0)
        if not present.any():
            raise ValueError(f"curves[{label!r}]: no finite value at any time point")
        if not present.all():
            warnings.warn(
                f"plot_curves: {label!r} has no finite run at {int((~present).sum())} time "
                "points; they are left out",
                stacklevel=2,
            )
        center, lo, hi = stats.curve_iqm_ci(y[..., present], reps=reps, alpha=alpha, seed=seed)
        xs = x[present]
        failed = int((~np.isfinite(y)).reshape(y.shape[0], -1).any(axis=1).sum())
        note = f"n={y.shape[0]}" + (f", {failed} failed" if failed else "")
        ax.plot(xs, center, color=color, label=f"{label} ({note})")
        ax.fill_between(xs, lo, hi, color=color, alpha=0.2, linewidth=0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"{ylabel} (IQM, {100 * (1 - alpha):.0f}% CI)")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(frameon=False)
    return _save(fig, path)


def plot_performance_profile(
    path: str | os.PathLike,
    scores: Mapping[str, np.ndarray],
    taus: Sequence[float] | np.ndarray | None = None,
    *,
    reps: int = 2000,
    alpha: float = 0.05,
    seed: int = 0,
    xlabel: str = r"normalized score $\tau$",
    title: str = "",
) -> Figure:
    """Performance profiles (score distributions) with pointwise bootstrap CI bands.

    Args:
      path: PNG file to write.
      scores: label -> scores `[runs]` or `[runs, tasks]`.
      taus: thresholds `[n_tau]`; default 101 points spanning all finite scores.
      reps, alpha, seed: bootstrap settings (`stats.performance_profile_ci`); reps = 0 draws no
        bands.
      xlabel, title: labels.

    Returns:
      The saved figure: one step line per label, y = fraction of runs with score > tau.
    """
    _check_nonempty(scores, "scores")
    if taus is None:
        finite = np.concatenate([np.asarray(s, np.float64).reshape(-1) for s in scores.values()])
        finite = finite[np.isfinite(finite)]
        if finite.size == 0:
            raise ValueError("plot_performance_profile: no finite score")
        taus = np.linspace(finite.min(), finite.max(), 101)
    taus = np.asarray(taus, dtype=np.float64)
    fig, (ax,) = _new_figure(6.0, 4.0)
    for (label, s), color in zip(scores.items(), _colors(len(scores)), strict=True):
        if reps:
            profile, lo, hi = stats.performance_profile_ci(s, taus, reps, alpha, seed)
            ax.fill_between(taus, lo, hi, color=color, alpha=0.2, linewidth=0, step="post")
        else:
            profile = stats.performance_profile(s, taus)
        ax.step(taus, profile, where="post", color=color, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(r"fraction of runs with score $> \tau$")
    ax.set_ylim(-0.02, 1.02)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(frameon=False)
    return _save(fig, path)


def plot_interval_estimates(
    path: str | os.PathLike,
    scores: Mapping[str, np.ndarray],
    metrics: Sequence[str] = ("median", "iqm", "mean", "optimality_gap"),
    *,
    gamma: float = 1.0,
    reps: int = 2000,
    alpha: float = 0.05,
    seed: int = 0,
    xlabel: str = "normalized score",
    title: str = "",
) -> Figure:
    """Aggregate metrics with stratified bootstrap CIs, one panel per metric (paper Fig. 8).

    Args:
      path: PNG file to write.
      scores: label -> scores `[runs]` or `[runs, tasks]`.
      metrics: names from `stats.STATISTICS`.
      gamma: optimality-gap target; reps, alpha, seed: bootstrap settings (`stats.aggregate`).
      xlabel, title: labels.

    Returns:
      The saved figure: in each panel one bar per label spanning its CI and a tick at the
      point estimate.
    """
    _check_nonempty(scores, "scores")
    for m in metrics:
        if m not in stats.STATISTICS:
            raise ValueError(f"metrics: unknown metric {m!r}; choose from {stats.STATISTICS}")
    if reps < 1:
        raise ValueError(f"reps must be >= 1 for interval estimates, got {reps}")
    aggs = {
        label: stats.aggregate(s, gamma=gamma, reps=reps, alpha=alpha, seed=seed)
        for label, s in scores.items()
    }
    labels = list(scores)
    colors = _colors(len(labels))
    fig, axes = _new_figure(2.6 * len(metrics) + 1.0, 0.45 * len(labels) + 1.4, len(metrics))
    rows = np.arange(len(labels))
    for j, (ax, m) in enumerate(zip(axes, metrics, strict=True)):
        lo = np.array([aggs[k][f"{m}_lo"] for k in labels])
        hi = np.array([aggs[k][f"{m}_hi"] for k in labels])
        point = np.array([aggs[k][m] for k in labels])
        # A zero-width interval still gets a visible sliver.
        width = np.maximum(hi - lo, 1e-3 * max(1e-12, np.ptp(np.r_[lo, hi])))
        ax.barh(rows, width, left=lo, height=0.6, color=colors, alpha=0.6)
        ax.vlines(point, rows - 0.3, rows + 0.3, colors="k", linewidth=1.5)
        ax.set_title(_METRIC_TITLES[m])
        ax.set_yticks(rows, labels if j == 0 else [""] * len(labels))
        ax.invert_yaxis()
        ax.grid(axis="x", alpha=0.3)
        ax.set_xlabel(xlabel)
    if title:
        fig.suptitle(f"{title} ({100 * (1 - alpha):.0f}% CI)")
    return _save(fig, path)


def plot_probability_of_improvement(
    path: str | os.PathLike,
    scores: Mapping[str, np.ndarray],
    pairs: Sequence[tuple[str, str]] | None = None,
    *,
    reps: int = 2000,
    alpha: float = 0.05,
    seed: int = 0,
    title: str = "",
) -> Figure:
    """Probability of improvement P(X > Y) with bootstrap CIs, one row per pair (paper Fig. 10).

    Args:
      path: PNG file to write.
      scores: label -> scores `[runs]` or `[runs, tasks]` (same tasks for all labels).
      pairs: (X, Y) label pairs; default every pair (labels[i], labels[j]) with i < j.
      reps, alpha, seed: bootstrap settings (`stats.probability_of_improvement_ci`).
      title: figure title.

    Returns:
      The saved figure: one bar per pair spanning the CI, a tick at the point estimate and a
      dashed line at 0.5 (no improvement).
    """
    _check_nonempty(scores, "scores")
    labels = list(scores)
    if pairs is None:
        pairs = [(a, b) for i, a in enumerate(labels) for b in labels[i + 1:]]
    pairs = list(pairs)
    if not pairs:
        raise ValueError("plot_probability_of_improvement: need at least two labels or one pair")
    for a, b in pairs:
        for lab in (a, b):
            if lab not in scores:
                raise ValueError(f"pairs: unknown label {lab!r}; have {labels}")
    results = [
        stats.probability_of_improvement_ci(scores[a], scores[b], reps, alpha, seed)
        for a, b in pairs
    ]
    point = np.array([r[0] for r in results])
    lo = np.array([r[1] for r in results])
    hi = np.array([r[2] for r in results])
    rows = np.arange(len(pairs))
    fig, (ax,) = _new_figure(5.5, 0.45 * len(pairs) + 1.4)
    ax.barh(rows, np.maximum(hi - lo, 2e-3), left=lo, height=0.6, color=_colors(len(pairs)),
            alpha=0.6)
    ax.vlines(point, rows - 0.3, rows + 0.3, colors="k", linewidth=1.5)
    ax.axvline(0.5, color="gray", linestyle="--", linewidth=1)
    ax.set_yticks(rows, [f"P({a} > {b})" for a, b in pairs])
    ax.invert_yaxis()
    ax.set_xlim(0.0, 1.0)
    ax.set_xlabel(f"probability of improvement ({100 * (1 - alpha):.0f}% CI)")
    ax.grid(axis="x", alpha=0.3)
    if title:
        ax.set_title(title)
    return _save(fig, path)
