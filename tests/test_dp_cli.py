"""The bring-your-own-MDP script: npz in, summary.json out; malformed files name the problem."""

import json
import os

import numpy as np
import pytest

from experiments import dp as script
from experiments.configs import dp as cfg


def _write(path, **arrays):
    np.savez(path, **arrays)
    return str(path)


def _necessity_arrays():
    mdp = script.stock_necessity_mdp()
    return dict(P=mdp.P, R=mdp.R, mu0=mdp.mu0, gamma=np.float64(1.0), horizon=np.int64(3))


def test_npz_threshold_and_cvar(tmp_path):
    path = _write(tmp_path / "m.npz", **_necessity_arrays())
    c = cfg.get_config("quick")
    c.mdp, c.objective, c.threshold = path, "threshold", 1.0
    s = script.run(c, str(tmp_path / "out"))
    assert abs(s["objective_value"] - 0.75) < 1e-6
    on_disk = json.load(open(tmp_path / "out" / "summary.json"))
    assert on_disk["policy_axes"] == ["time", "state", "stock"]
    assert np.asarray(on_disk["policy"]).shape[:2] == (3, 5)
    assert os.path.exists(tmp_path / "out" / "plots" / "return_distribution.png")
    # CVaR_0.5 of the returns {-3,-1,1,3} style outcomes: check against the outcome law directly
    c.objective, c.alpha = "cvar", 0.5
    s = script.run(c, str(tmp_path / "out2"))
    x, p = np.asarray(s["returns"]), np.asarray(s["return_probs"])
    order = np.argsort(x)
    x, p = x[order], p[order]
    cvar = (np.clip(0.5 - (np.cumsum(p) - p), 0, p) * x).sum() / 0.5
    assert abs(s["objective_value"] - cvar) < 1e-9
    assert s["objective_value"] >= s["risk_neutral_objective_value"] - 1e-12


@pytest.mark.parametrize("change, match", [
    (dict(P="bad_rows"), "m.npz: P rows must sum to 1"),
    (dict(R="bad_shape"), "m.npz: R must have shape"),
    (dict(mu0="nan"), "m.npz: mu0 contains NaN"),
    (dict(horizon="drop"), "missing array"),
])
def test_malformed_npz(tmp_path, change, match):
    arrays = _necessity_arrays()
    (key, what), = change.items()
    if what == "bad_rows":
        arrays["P"] = arrays["P"] * 0.5
    elif what == "bad_shape":
        arrays["R"] = arrays["R"][:, :, :2]
    elif what == "nan":
        arrays["mu0"] = np.array([np.nan, 1, 0, 0, 0])
    else:
        del arrays[key]
    path = _write(tmp_path / "m.npz", **arrays)
    with pytest.raises(ValueError, match=match):
        script.load_npz(path)


def test_refused_objective_in_config(tmp_path):
    c = cfg.get_config("quick")
    c.objective = "mean_variance"
    with pytest.raises(ValueError, match="not an expected utility"):
        script.run(c, str(tmp_path / "x"))
