"""The STAC experiment's aggregation on hand-made metric rows: per-seed final/average values,
IQM summaries and the direction of the pairwise probabilities of improvement."""

import numpy as np
import pytest

from experiments import stac as ex
from jaxrl import stats


def _rows():
    rows = []
    for label, ret, bias, danger in (("stac", 10.0, 1.0, 0.2), ("sac", 0.0, 5.0, 0.6)):
        for seed in range(4):
            for step, scale in ((100, 0.0), (200, 1.0), (300, 2.0)):
                rows.append({
                    "env": "E", "variant": label, "label": label, "seed": seed, "step": step,
                    "return": ret + seed + scale, "danger_frac": danger,
                    "bias_paper": bias * scale, "bias_rollout": bias * scale + seed,
                    "sigma_mean": 0.5, "alpha": 0.1,
                })
    return rows


def test_per_seed_final_and_average_after_first_point():
    rows = _rows()
    # final: the last step (scale 2); avg: mean over steps 200 and 300 (scales 1, 2).
    np.testing.assert_allclose(ex.per_seed(rows, "E", "stac", "return", "final"),
                               [12.0, 13.0, 14.0, 15.0])
    np.testing.assert_allclose(ex.per_seed(rows, "E", "sac", "bias_rollout", "avg"),
                               [7.5, 8.5, 9.5, 10.5])
    s = ex.summarize(rows)["E"]["stac"]
    assert s["return"]["iqm"] == pytest.approx(stats.iqm(np.array([12.0, 13.0, 14.0, 15.0])))
    assert s["bias_rollout_final"]["n"] == 4
    assert s["return"]["lo"] <= s["return"]["iqm"] <= s["return"]["hi"]


def test_pairs_orient_return_up_and_bias_danger_down():
    (pr,) = ex.pairs(_rows(), "E", "stac", ["sac", "missing"])
    assert pr["pair"] == "stac vs sac"
    # stac: higher return, lower bias (avg 1.5 + seed vs 7.5 + seed), lower danger: all P = 1.
    for k in ("return_final", "bias_rollout_avg", "bias_rollout_final", "danger_frac_final"):
        assert pr[k][0] == pytest.approx(1.0), k
    (rev,) = ex.pairs(_rows(), "E", "sac", ["stac"])
    for k in ("return_final", "bias_rollout_avg", "danger_frac_final"):
        assert rev[k][0] == pytest.approx(0.0), k


def test_paired_danger_differences_against_beta0():
    rows = []
    for label, extra in (("beta=0", 0.0), ("beta=0.5", -0.25)):
        for seed in range(5):
            rows.append({"env": "R", "variant": "stac", "label": label, "seed": seed,
                         "step": 100, "danger_frac": 0.5 + 0.1 * seed + extra})
    d = ex.paired_differences(rows, "R", "beta=0")
    assert list(d) == ["beta=0.5"]
    mean, lo, hi = d["beta=0.5"]
    np.testing.assert_allclose([mean, lo, hi], -0.25)  # the same paired difference per seed
    assert ex.paired_differences(rows, "R", "beta=1") == {}


def test_plots_include_beta_ablation_and_per_beta_trajectory_panels(tmp_path):
    rows = [{**r, "env": "RiskyPointMass-v0", "label": lab, "danger_frac": 0.1}
            for lab in ("beta=0", "beta=0.5") for r in _rows() if r["label"] == "stac"]
    summary = ex.summarize(rows)
    T, E = 5, 3
    obs = np.cumsum(np.full((T, E, 2), -0.1), axis=0) + 0.9
    trajs = {"beta=0": (obs, np.ones((T, E))), "beta=0.5": (obs, np.ones((T, E)))}
    paths = ex.make_plots(rows, trajs, summary, str(tmp_path))
    names = sorted(p.rsplit("/", 1)[1] for p in paths)
    assert "RiskyPointMass-v0_beta_ablation.png" in names
    assert "RiskyPointMass_trajectories.png" in names
    assert all((tmp_path / n).stat().st_size > 1000 for n in names)
