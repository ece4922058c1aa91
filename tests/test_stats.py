"""Tests of jaxrl.stats against hand-computed values, scipy.stats and brute force."""

import itertools

import numpy as np
import pytest
import scipy.stats

from jaxrl import stats


# ---------------------------------------------------------------------------------------------
# IQM
# ---------------------------------------------------------------------------------------------
def test_iqm_hand_values():
    # n = 8: drop 2 at each end -> mean(3, 4, 5, 6).
    assert stats.iqm(np.arange(1.0, 9.0)) == pytest.approx(4.5)
    # n = 5: floor(5/4) = 1 dropped at each end -> mean(2, 4, 8).
    x = [1.0, 100.0, 4.0, 2.0, 8.0]
    assert stats.iqm(x) == pytest.approx(14.0 / 3.0)
    # Fractional: quartile positions 1.25 and 3.75 -> weights 0.75, 1, 0.75 on 2, 4, 8.
    assert stats.iqm(x, fractional=True) == pytest.approx((0.75 * 2 + 4 + 0.75 * 8) / 2.5)
    # n = 1 and n = 2: nothing to trim.
    assert stats.iqm([3.0]) == 3.0
    assert stats.iqm([3.0, 5.0]) == 4.0


@pytest.mark.parametrize("n", list(range(1, 22)))
def test_iqm_matches_scipy_trim_mean(n):
    x = np.random.default_rng(n).standard_cauchy(n)
    assert stats.iqm(x) == pytest.approx(scipy.stats.trim_mean(x, 0.25), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 6, 7, 9, 13])
def test_fractional_iqm_equals_integer_iqm_of_quadrupled_sample(n):
    # Repeating every value 4 times makes the quartile cut fall on whole values: an
    # independent check of the fractional weights.
    x = np.random.default_rng(100 + n).exponential(size=n)
    expected = scipy.stats.trim_mean(np.repeat(x, 4), 0.25)
    assert stats.iqm(x, fractional=True) == pytest.approx(expected, rel=1e-12)


def test_iqm_axes():
    x = np.random.default_rng(0).normal(size=(7, 3, 4))
    np.testing.assert_allclose(stats.iqm(x, axis=0), scipy.stats.trim_mean(x, 0.25, axis=0))
    np.testing.assert_allclose(stats.iqm(x, axis=-1), scipy.stats.trim_mean(x, 0.25, axis=-1))
    pooled = scipy.stats.trim_mean(x.reshape(7, -1), 0.25, axis=-1)
    np.testing.assert_allclose(stats.iqm(x, axis=(1, 2)), pooled)
    np.testing.assert_allclose(stats.iqm(x, axis=(2, 1)), pooled)
    assert stats.iqm(x, axis=None) == pytest.approx(scipy.stats.trim_mean(x, 0.25, axis=None))


def test_iqm_nan_policy():
    x = np.array([1.0, np.nan, 2.0, 4.0, np.inf, 8.0, 100.0])
    assert stats.iqm(x) == pytest.approx(scipy.stats.trim_mean([1.0, 2.0, 4.0, 8.0, 100.0], 0.25))
    with pytest.raises(ValueError, match="non-finite"):
        stats.iqm(x, nan_policy="raise")
    with pytest.raises(ValueError, match="no finite"):
        stats.iqm([np.nan, np.nan])
    with pytest.raises(ValueError, match="nan_policy"):
        stats.iqm([1.0], nan_policy="propagate")


# ---------------------------------------------------------------------------------------------
# Mean, median, optimality gap, aggregate
# ---------------------------------------------------------------------------------------------
def test_mean_median_gap_hand_values():
    scores = np.array([[1.0, 2.0, 10.0], [3.0, 4.0, 20.0]])  # task means 2, 3, 15
    assert stats.mean(scores) == pytest.approx(20.0 / 3.0)
    assert stats.median(scores) == pytest.approx(3.0)
    gap_scores = np.array([[0.5, 1.5], [1.0, 0.2]])  # min(., 1) = .5, 1, 1, .2 -> mean .675
    assert stats.optimality_gap(gap_scores) == pytest.approx(0.325)
    assert stats.optimality_gap(gap_scores, gamma=2.0) == pytest.approx(2.0 - 0.8)


def test_missing_run_uses_remaining_runs_of_that_task():
    scores = np.array([[1.0, 2.0], [3.0, np.nan], [5.0, 6.0]])
    # Task means: 3 and 4 (task 1 has runs 2 and 6 left).
    assert stats.mean(scores) == pytest.approx(3.5)
    assert stats.median(scores) == pytest.approx(3.5)
    assert stats.optimality_gap(scores, gamma=4.0) == pytest.approx(4.0 - (1 + 2 + 3 + 4 + 4) / 5)
    agg = stats.aggregate(scores, reps=50)
    assert agg["num_missing"] == 1 and agg["num_runs"] == 3 and agg["num_tasks"] == 2
    assert agg["iqm"] == pytest.approx(scipy.stats.trim_mean([1, 2, 3, 5, 6], 0.25))
    with pytest.raises(ValueError, match="non-finite"):
        stats.aggregate(scores, nan_policy="raise")
    with pytest.raises(ValueError, match="task 1"):
        stats.mean(np.array([[1.0, np.nan], [2.0, np.nan]]))


def test_aggregate_keys_and_ordering():
    scores = np.random.default_rng(1).normal(size=(10, 4))
    agg = stats.aggregate(scores, reps=500, seed=3)
    for name in stats.STATISTICS:
        assert agg[f"{name}_lo"] <= agg[name] <= agg[f"{name}_hi"], name
    assert agg["iqm"] == pytest.approx(scipy.stats.trim_mean(scores, 0.25, axis=None))
    assert agg["mean"] == pytest.approx(scores.mean())
    assert agg["median"] == pytest.approx(np.median(scores.mean(0)))
    # The bootstrap is reproducible given the seed, and each metric equals interval_estimate's.
    assert stats.aggregate(scores, reps=500, seed=3) == agg
    point, lo, hi = stats.interval_estimate(scores, "median", reps=500, seed=3)
    assert (point, lo, hi) == (agg["median"], agg["median_lo"], agg["median_hi"])
    assert "iqm_lo" not in stats.aggregate(scores, reps=0)


def test_bad_arguments_raise():
    x = np.ones((3, 2))
    with pytest.raises(ValueError, match="reps"):
        stats.bootstrap_ci(x, reps=0)
    with pytest.raises(ValueError, match="alpha"):
        stats.bootstrap_ci(x, alpha=1.5)
    with pytest.raises(ValueError, match="statistic"):
        stats.bootstrap_ci(x, statistic="mode")
    with pytest.raises(ValueError, match="shape"):
        stats.mean(np.ones((2, 2, 2)))
    with pytest.raises(ValueError, match="empty"):
        stats.mean([])


# ---------------------------------------------------------------------------------------------
# Stratified bootstrap
# ---------------------------------------------------------------------------------------------
def test_resamples_stay_within_their_task():
    rng = np.random.default_rng(0)
    data = np.arange(12.0).reshape(4, 3)
    data[1, 2] = np.nan
    data[3, 2] = np.nan
    # The internal layout is runs-last: [tasks, runs] in, [reps, tasks, runs] out.
    for sample in stats._stratified_resamples(data.T.copy(), 37, rng, chunk=10):
        for task in range(3):
            col = sample[:, task, :]
            finite = np.isfinite(col)
            # Same number of finite runs as the data, values drawn only from that task.
            assert np.all(finite.sum(1) == np.isfinite(data[:, task]).sum())
            assert set(col[finite]) <= set(data[np.isfinite(data[:, task]), task])


def _exact_task_sum_pmf(values):
    """Exact bootstrap distribution of the sum of n draws with replacement from `values`."""
    n = len(values)
    pmf = {}
    for idx in itertools.product(range(n), repeat=n):
        total = int(sum(values[i] for i in idx))
        pmf[total] = pmf.get(total, 0.0) + 1.0 / n**n
    return pmf


def test_bootstrap_distribution_matches_exact_enumeration():
    # Two tasks with 3 runs each, one of them with a 4th, missing run: the stratified bootstrap
    # distribution of the mean of task means (= sum of all resampled values / 6 here) is the
    # convolution of the exact per-task distributions (all 3^3 resamples per task equally
    # likely). Chi-square goodness of fit on the integer sums.
    scores = np.array([[0.0, 10.0], [1.0, 20.0], [4.0, np.nan], [np.nan, 70.0]])
    pmf0 = _exact_task_sum_pmf([0, 1, 4])
    pmf1 = _exact_task_sum_pmf([10, 20, 70])
    exact = {}
    for a, pa in pmf0.items():
        for b, pb in pmf1.items():
            exact[a + b] = exact.get(a + b, 0.0) + pa * pb
    draws = []

    def record(x):  # x: [reps, runs, tasks] with NaN in the unused slots.
        finite = np.isfinite(x)
        assert np.all(finite.sum(-2) == 3)  # Each task keeps its 3 finite runs.
        value = (np.nansum(x, axis=-2) / 3).mean(-1)
        if x.ndim == 3:  # Skip the point-estimate call on the data itself.
            draws.append(value)
        return value

    reps = 20000
    stats.bootstrap_ci(scores, record, reps=reps, seed=11)
    sums = np.rint(np.concatenate(draws) * 6).astype(int)
    values, counts = np.unique(sums, return_counts=True)
    assert set(values.tolist()) <= set(exact)
    keys = sorted(exact)
    observed = np.array([counts[values == k].sum() for k in keys])
    expected = np.array([exact[k] for k in keys]) * reps
    # Pool rare cells (expected < 5) into one so the chi-square approximation holds.
    rare = expected < 5
    if rare.any():
        observed = np.r_[observed[~rare], observed[rare].sum()]
        expected = np.r_[expected[~rare], expected[rare].sum()]
    assert scipy.stats.chisquare(observed, expected).pvalue > 1e-3


def test_stratification_constant_tasks_give_zero_width():
    # Each task is constant, so every stratified resample has task means (1, 3) exactly: the
    # interval of the mean has zero width. An unstratified bootstrap would mix the tasks.
    scores = np.stack([np.full(6, 1.0), np.full(6, 3.0)], axis=1)
    for statistic in ("mean", "median", "iqm", "optimality_gap"):
        point, lo, hi = stats.interval_estimate(scores, statistic, reps=300, gamma=2.0)
        assert lo == pytest.approx(point) and hi == pytest.approx(point), statistic


def test_stratified_interval_of_mean_matches_single_task_interval():
    # With one noisy task and one constant task, the mean of task means is
    # (mean_0 + c) / 2: its bootstrap distribution is the single-task one shifted and scaled.
    rng = np.random.default_rng(2)
    noisy = rng.normal(size=8)
    scores = np.stack([noisy, np.full(8, 5.0)], axis=1)
    lo, hi = stats.bootstrap_ci(scores, "mean", reps=4000, seed=1)
    lo1, hi1 = stats.bootstrap_ci(noisy, "mean", reps=4000, seed=1)
    # Different random draws, so the two intervals agree to Monte Carlo error only.
    assert (lo - 2.5) * 2 == pytest.approx(lo1, abs=0.08)
    assert (hi - 2.5) * 2 == pytest.approx(hi1, abs=0.08)


@pytest.mark.parametrize("statistic, truth", [("mean", 0.0), ("iqm", 0.0)])
def test_percentile_bootstrap_coverage_is_near_nominal(statistic, truth):
    # N(0, 1) samples of 30 runs: the 95% percentile interval should cover the true value
    # (0 for both the mean and the IQM, by symmetry) about 95% of the time (a little less for
    # the percentile method at n = 30). 300 trials: binomial standard error ~1.3%.
    rng = np.random.default_rng(12345)
    trials = 300
    covered = 0
    for t in range(trials):
        x = rng.normal(size=30)
        lo, hi = stats.bootstrap_ci(x, statistic, reps=1000, seed=t)
        covered += lo <= truth <= hi
    assert 0.90 <= covered / trials <= 0.985


def test_bootstrap_ci_callable_statistic_and_nan_omit():
    x = np.array([[1.0, 2.0], [np.nan, 4.0], [3.0, 6.0]])
    fn = lambda s: np.nanmax(s, axis=(-2, -1))
    lo, hi = stats.bootstrap_ci(x, fn, reps=200)
    assert 2.0 <= lo <= hi <= 6.0  # Max of a resample is one of the finite values.
    with pytest.raises(ValueError, match="non-finite"):
        stats.bootstrap_ci(x, nan_policy="raise")


# ---------------------------------------------------------------------------------------------
# Learning curves
# ---------------------------------------------------------------------------------------------
def test_curve_iqm_ci_center_and_bands():
    rng = np.random.default_rng(3)
    curves = rng.normal(size=(9, 40)) + np.linspace(0, 5, 40)
    curves[:, 0] = 2.0  # A constant column has a zero-width band.
    center, lo, hi = stats.curve_iqm_ci(curves, reps=500)
    np.testing.assert_allclose(center, scipy.stats.trim_mean(curves, 0.25, axis=0))
    assert center.shape == lo.shape == hi.shape == (40,)
    assert np.all(lo <= center + 1e-12) and np.all(center <= hi + 1e-12)
    assert lo[0] == hi[0] == 2.0
    assert np.all(hi[1:] - lo[1:] > 0)
    # Per-column interval equals a single-column bootstrap to Monte Carlo error.
    col_lo, col_hi = stats.bootstrap_ci(curves[:, 20], "iqm", reps=4000, seed=5)
    _, lo_b, hi_b = stats.curve_iqm_ci(curves, reps=4000, seed=9)
    assert lo_b[20] == pytest.approx(col_lo, abs=0.25)
    assert hi_b[20] == pytest.approx(col_hi, abs=0.25)


def test_curve_iqm_ci_failed_seed():
    rng = np.random.default_rng(4)
    curves = rng.normal(size=(6, 10))
    curves[2, 4:] = np.nan  # Seed 2 failed at step 4.
    center, lo, hi = stats.curve_iqm_ci(curves, reps=200)
    np.testing.assert_allclose(center[:4], scipy.stats.trim_mean(curves[:, :4], 0.25, axis=0))
    kept = np.delete(curves, 2, axis=0)
    np.testing.assert_allclose(center[4:], scipy.stats.trim_mean(kept[:, 4:], 0.25, axis=0))
    assert np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))
    with pytest.raises(ValueError, match="non-finite"):
        stats.curve_iqm_ci(curves, nan_policy="raise")
    curves[:, 7] = np.nan
    with pytest.raises(ValueError, match="no finite run"):
        stats.curve_iqm_ci(curves)


def test_curve_iqm_ci_with_tasks_pools_runs_and_tasks():
    curves = np.random.default_rng(5).normal(size=(5, 3, 7))
    center, lo, hi = stats.curve_iqm_ci(curves, reps=100)
    expected = [scipy.stats.trim_mean(curves[:, :, t], 0.25, axis=None) for t in range(7)]
    np.testing.assert_allclose(center, expected)
    assert lo.shape == hi.shape == (7,)


# ---------------------------------------------------------------------------------------------
# Probability of improvement
# ---------------------------------------------------------------------------------------------
def test_probability_of_improvement_matches_mann_whitney():
    rng = np.random.default_rng(6)
    x = rng.integers(0, 5, size=(7, 3)).astype(float)  # Small range: many ties.
    y = rng.integers(0, 5, size=(5, 3)).astype(float)
    expected = np.mean([
        scipy.stats.mannwhitneyu(x[:, m], y[:, m]).statistic / (7 * 5) for m in range(3)
    ])
    assert stats.probability_of_improvement(x, y) == pytest.approx(expected)
    assert stats.probability_of_improvement(x, y) + stats.probability_of_improvement(
        y, x
    ) == pytest.approx(1.0)


def test_probability_of_improvement_hand_values():
    assert stats.probability_of_improvement([1.0, 2.0], [0.0, 3.0]) == pytest.approx(0.5)
    assert stats.probability_of_improvement([2.0], [1.0, 2.0, 3.0]) == pytest.approx(0.5)
    assert stats.probability_of_improvement([5.0, 6.0], [1.0, 2.0]) == 1.0
    assert stats.probability_of_improvement([1.0, 1.0], [1.0, 1.0]) == 0.5
    # A missing run of x is dropped: P over the 2 x 2 finite pairs.
    assert stats.probability_of_improvement([3.0, np.nan, 0.0], [1.0, 2.0]) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="tasks"):
        stats.probability_of_improvement(np.ones((2, 2)), np.ones((2, 3)))


def test_probability_of_improvement_ci():
    rng = np.random.default_rng(7)
    x = rng.normal(0.5, 1.0, size=(10, 4))
    y = rng.normal(0.0, 1.0, size=(8, 4))
    point, lo, hi = stats.probability_of_improvement_ci(x, y, reps=1000, seed=0)
    assert point == stats.probability_of_improvement(x, y)
    assert 0.0 <= lo <= point <= hi <= 1.0 and hi - lo > 0.05
    assert stats.probability_of_improvement_ci(x, y, reps=1000, seed=0) == (point, lo, hi)
    same = stats.probability_of_improvement_ci(x, x, reps=200)
    assert same[0] == 0.5


# ---------------------------------------------------------------------------------------------
# Performance profiles and normalization
# ---------------------------------------------------------------------------------------------
def test_performance_profile_hand_values():
    scores = np.array([[0.1, 0.5], [0.9, 2.0]])
    profile = stats.performance_profile(scores, [0.0, 0.5, 1.0, 3.0])
    np.testing.assert_allclose(profile, [1.0, 0.5, 0.25, 0.0])  # Strictly above tau.
    scores_nan = np.array([[0.1, 0.5], [np.nan, 2.0]])
    np.testing.assert_allclose(stats.performance_profile(scores_nan, [0.3]), [2.0 / 3.0])


def test_performance_profile_ci_bands():
    rng = np.random.default_rng(8)
    scores = rng.normal(size=(10, 5))
    taus = np.linspace(-3, 3, 25)
    profile, lo, hi = stats.performance_profile_ci(scores, taus, reps=500)
    brute = [np.mean(scores > t) for t in taus]
    np.testing.assert_allclose(profile, brute)
    assert np.all(lo <= profile) and np.all(profile <= hi)
    assert np.all(np.diff(profile) <= 0)
    assert lo[0] == hi[0] == 1.0 and lo[-1] == hi[-1] == 0.0


def test_performance_profile_per_task_mean():
    scores = np.array([[0.0, 1.0, 3.0], [2.0, 2.0, 3.0]])  # Task means 1, 1.5, 3.
    np.testing.assert_allclose(
        stats.performance_profile(scores, [0.5, 1.2, 2.0, 3.0], per_task_mean=True),
        [1.0, 2.0 / 3.0, 1.0 / 3.0, 0.0],
    )
    profile, lo, hi = stats.performance_profile_ci(scores, [1.2], reps=100, per_task_mean=True)
    assert lo[0] <= profile[0] <= hi[0]


def test_normalize_scores():
    s = np.array([[10.0, 0.0], [20.0, 5.0]])
    out = stats.normalize_scores(s, low=[10.0, 0.0], high=[30.0, 10.0])
    np.testing.assert_allclose(out, [[0.0, 0.0], [0.5, 0.5]])
    with pytest.raises(ValueError, match="non-zero"):
        stats.normalize_scores(s, low=[1.0, 2.0], high=[3.0, 2.0])


def test_functions_accept_lists_and_jax_arrays():
    import jax.numpy as jnp

    x = jnp.arange(8.0)
    assert stats.iqm(x) == pytest.approx(3.5)
    assert stats.mean(list(itertools.repeat(1.0, 3))) == 1.0
