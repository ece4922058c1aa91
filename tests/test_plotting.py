"""Tests of jaxrl.plotting: the PNGs exist, decode, and hold the expected artists and numbers."""

import matplotlib.image
import numpy as np
import pytest
import scipy.stats
from matplotlib.collections import PolyCollection

from jaxrl import plotting

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _assert_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    image = matplotlib.image.imread(path)
    assert image.shape[0] > 100 and image.shape[1] > 100
    # Not a blank canvas: several distinct colours are drawn.
    assert len(np.unique(image.reshape(-1, image.shape[-1]), axis=0)) > 10


def test_plot_curves(tmp_path):
    rng = np.random.default_rng(0)
    x = np.arange(30) * 100.0
    y_a = rng.normal(size=(5, 30)) + np.linspace(0, 3, 30)
    y_b = rng.normal(size=(4, 30))
    y_b[1, 20:] = np.nan  # A failed seed.
    path = tmp_path / "plots" / "curves.png"  # The folder is created.
    fig = plotting.plot_curves(path, {"a": (x, y_a), "b": (x, y_b)}, "steps", "return", "demo",
                               reps=200)
    _assert_png(path)
    (ax,) = fig.axes
    lines = ax.get_lines()
    assert len(lines) == 2
    assert sum(isinstance(c, PolyCollection) for c in ax.collections) == 2  # CI bands.
    # The drawn line is the IQM over runs at every step.
    np.testing.assert_allclose(lines[0].get_ydata(), scipy.stats.trim_mean(y_a, 0.25, axis=0))
    np.testing.assert_allclose(lines[0].get_xdata(), x)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a (n=5)", "b (n=4, 1 failed)"]


def test_plot_curves_drops_empty_time_points_and_checks_shapes(tmp_path):
    y = np.ones((3, 5))
    y[:, 4] = np.nan
    with pytest.warns(UserWarning, match="no finite run"):
        fig = plotting.plot_curves(tmp_path / "c.png", {"a": (np.arange(5), y)}, reps=10)
    assert len(fig.axes[0].get_lines()[0].get_xdata()) == 4
    with pytest.raises(ValueError, match="T = len"):
        plotting.plot_curves(tmp_path / "d.png", {"a": (np.arange(4), y)})
    with pytest.raises(ValueError, match="non-empty"):
        plotting.plot_curves(tmp_path / "e.png", {})


def test_plot_performance_profile(tmp_path):
    rng = np.random.default_rng(1)
    scores = {"a": rng.normal(1.0, 0.5, (6, 3)), "b": rng.normal(0.5, 0.5, (6, 3)),
              "c": rng.normal(0.0, 0.5, (5, 3))}
    taus = np.linspace(-1, 2, 31)
    path = tmp_path / "profile.png"
    fig = plotting.plot_performance_profile(path, scores, taus, reps=200)
    _assert_png(path)
    (ax,) = fig.axes
    lines = ax.get_lines()
    assert len(lines) == 3
    np.testing.assert_allclose(lines[0].get_ydata(), [np.mean(scores["a"] > t) for t in taus])
    # Default taus, no bands.
    fig = plotting.plot_performance_profile(tmp_path / "p2.png", scores, reps=0)
    assert len(fig.axes[0].get_lines()) == 3 and not fig.axes[0].collections


def test_plot_interval_estimates(tmp_path):
    rng = np.random.default_rng(2)
    scores = {"a": rng.normal(1.0, 0.3, (5, 4)), "b": rng.normal(0.5, 0.3, (5, 4))}
    path = tmp_path / "intervals.png"
    fig = plotting.plot_interval_estimates(path, scores, reps=200)
    _assert_png(path)
    assert [ax.get_title() for ax in fig.axes] == ["Median", "IQM", "Mean", "Optimality gap"]
    iqm_ax = fig.axes[1]
    bars = iqm_ax.patches
    assert len(bars) == 2
    # Each bar spans an interval containing the IQM of that label's pooled runs.
    for bar, s in zip(bars, scores.values(), strict=True):
        point = scipy.stats.trim_mean(s, 0.25, axis=None)
        assert bar.get_x() <= point <= bar.get_x() + bar.get_width()
    with pytest.raises(ValueError, match="unknown metric"):
        plotting.plot_interval_estimates(tmp_path / "x.png", scores, metrics=("mode",))


def test_plot_probability_of_improvement(tmp_path):
    rng = np.random.default_rng(3)
    scores = {"a": rng.normal(1.0, 0.3, (5, 2)), "b": rng.normal(0.0, 0.3, (5, 2)),
              "c": rng.normal(0.0, 0.3, (6, 2))}
    path = tmp_path / "poi.png"
    fig = plotting.plot_probability_of_improvement(path, scores, reps=200)
    _assert_png(path)
    (ax,) = fig.axes
    assert len(ax.patches) == 3  # Pairs (a, b), (a, c), (b, c).
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["P(a > b)", "P(a > c)", "P(b > c)"]
    fig = plotting.plot_probability_of_improvement(tmp_path / "p.png", scores, [("c", "a")],
                                                   reps=50)
    assert len(fig.axes[0].patches) == 1
    with pytest.raises(ValueError, match="unknown label"):
        plotting.plot_probability_of_improvement(tmp_path / "q.png", scores, [("a", "z")])
