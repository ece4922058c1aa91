"""The bring-your-own-MDP script: npz in, summary.json out; malformed files name the problem."""

import json
import math
import os
import subprocess
import sys
import time

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


def test_npz_threshold(tmp_path):
    path = _write(tmp_path / "m.npz", **_necessity_arrays())
    c = cfg.get_config("quick")
    c.mdp, c.objective, c.threshold = path, "threshold", 1.0
    s = script.run(c, str(tmp_path / "out"))
    assert abs(s["objective_value"] - 0.75) < 1e-6
    on_disk = json.load(open(tmp_path / "out" / "summary.json"))
    assert on_disk["policy_axes"] == ["time", "state", "stock"]
    assert np.asarray(on_disk["policy"]).shape[:2] == (3, 5)
    assert os.path.exists(tmp_path / "out" / "plots" / "return_distribution.png")


def test_npz_cvar_against_hand_computed_values(tmp_path):
    # the gamble (H = 3; safe +1, or +4 / -2 w.p. 0.6 / 0.4), CVaR_0.2. Any policy that ever
    # gambles on its all-safe path loses w.p. >= 0.4 and then ends at G <= 0, so CVaR_0.2 <= 0;
    # never gambling gives G = 3 surely: optimum 3, b = VaR = 3. The risk-neutral policy always
    # gambles: P(G = -6) = 0.4^3 = 0.064, P(G = 0) = 3 * 0.6 * 0.4^2 = 0.288, so
    # CVaR_0.2 = (0.064 * -6 + 0.136 * 0) / 0.2 = -1.92.
    from jaxrl.envs.gamble import gamble_mdp

    m = gamble_mdp(horizon=3)
    path = _write(tmp_path / "g.npz", P=m["P"], R=m["R"], mu0=m["mu0"], gamma=np.float64(1.0),
                  horizon=np.int64(3))
    c = cfg.get_config("quick")
    c.mdp, c.objective, c.alpha = path, "cvar", 0.2
    s = script.run(c, str(tmp_path / "out"))
    assert abs(s["objective_value"] - 3.0) < 1e-9 and abs(s["b"] - 3.0) < 1e-9
    assert abs(s["risk_neutral_objective_value"] - (-1.92)) < 1e-9
    assert abs(s["risk_neutral_mean"] - 4.8) < 1e-9


@pytest.mark.parametrize("change, match", [
    (dict(P="bad_rows"), "m.npz: P rows must sum to 1"),
    (dict(R="bad_shape"), "m.npz: R must have shape"),
    (dict(mu0="nan"), "m.npz: mu0 contains NaN"),
    (dict(horizon="drop"), "lacks array"),
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


def test_exp_utility_is_stable_and_the_same_objective(tmp_path):
    """The log-sum-exp score gives the plain E[u] optimum where exp does not overflow, and a
    finite value where a zero-probability atom made 0 * inf = NaN before (risk 300, G >= -3)."""
    from jaxrl import dp

    mdp = script.stock_necessity_mdp()
    for beta in (1.0, -0.5):
        c = cfg.get_config("quick")
        c.builtin, c.objective, c.risk = "stock_necessity", "utility", beta
        s = script.run(c, str(tmp_path / f"u{beta}"))
        ref = dp.solve_exact(mdp, dp.make_objective("utility", utility="exp", risk=beta))
        assert abs(s["objective_value"] - ref.objective_value) < 1e-12
    c.risk = 300.0
    s = script.run(c, str(tmp_path / "u300"))
    assert math.isfinite(s["objective_value"]) and s["objective_value"] < 0


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _bad_input(kind, d):
    """Writes the input of case `kind` under `d`; returns (extra CLI args, expected fragments)."""
    ok = os.path.join(d, "ok.npz")
    np.savez(ok, **_necessity_arrays())
    path = os.path.join(d, f"{kind}.npz")
    if kind == "npy":
        path = os.path.join(d, "x.npy")
        np.save(path, np.zeros(3))
        return [f"--mdp={path}"], [f"--mdp {path} is not an npz archive"]
    if kind == "empty":
        open(path, "wb").close()
        return [f"--mdp={path}"], [f"--mdp {path}", "empty file"]
    if kind == "not_zip":
        with open(path, "wb") as f:
            f.write(b"definitely not a zip archive")
        return [f"--mdp={path}"], [f"--mdp {path} is not an npz archive"]
    if kind == "truncated":
        with open(ok, "rb") as f:
            data = f.read()
        with open(path, "wb") as f:
            f.write(data[: len(data) // 2])
        return [f"--mdp={path}"], [f"--mdp {path}", "not a readable npz archive"]
    if kind == "pickled":
        np.savez(path, **{**_necessity_arrays(), "P": np.array([{"a": 1}], dtype=object)})
        return [f"--mdp={path}"], [f"--mdp {path}", "'P'", "allow_pickle=False"]
    if kind == "horizon":
        np.savez(path, **{**_necessity_arrays(), "horizon": np.int64(10**9)})
        return [f"--mdp={path}"], ["horizon 1000000000 needs ~", "GiB", "the limit is"]
    if kind == "returns":  # 2^t distinct returns: R in {0, 1}, gamma 0.3
        np.savez(path, P=np.ones((1, 2, 1)), R=np.array([0.0, 1.0]).reshape(1, 2, 1),
                 mu0=np.ones(1), gamma=np.float64(0.3), horizon=np.int64(60))
        return [f"--mdp={path}"], ["distinct achievable returns", "the limit is"]
    flag, value = kind.split("=")
    objective = {"threshold": "threshold", "target": "target", "alpha": "cvar",
                 "risk": "utility"}[flag]
    args = [f"--mdp={ok}", f"--objective={objective}", f"--{flag}={value}"]
    shown = {"1e6": "1e+06", "0": "0.0"}.get(value, value)  # as the message prints it
    return args + (["--utility=exp"] if flag == "risk" else []), [f"--{flag}", shown]


KINDS = ["npy", "empty", "not_zip", "truncated", "pickled", "horizon", "returns",
         "threshold=nan", "threshold=inf", "target=nan", "target=-inf",
         "alpha=nan", "alpha=0", "alpha=1.5", "risk=nan", "risk=1e6"]
# Through the real command line (a process each): the npz reader, the memory estimates (quickly:
# no allocation for the huge horizon) and the objective's parameters. Every kind is also checked
# in-process below (`run`, which the command calls with the flags put into the config).
CLI_KINDS = ["npy", "truncated", "horizon", "returns", "alpha=nan", "risk=1e6"]


@pytest.mark.parametrize("kind", CLI_KINDS)
def test_cli_bad_input_is_one_error_line_and_no_output(tmp_path, kind):
    """The real command line: exit 2, one stderr line `error: ...` naming the file / flag /
    value, nothing written, quickly (no allocation for the huge horizon)."""
    args, fragments = _bad_input(kind, str(tmp_path))
    workdir = tmp_path / "w"
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "experiments.dp", *args, f"--workdir={workdir}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=180)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-2000:]
    for frag in fragments:
        assert frag in lines[0], (frag, lines[0])
    assert not workdir.exists()
    assert proc.stdout == ""
    assert time.monotonic() - t0 < 60


@pytest.mark.parametrize("kind", KINDS)
def test_bad_input_raises_the_message_before_any_output(tmp_path, kind):
    """`run` with the flags in the config (as `main` puts them) refuses every bad input with the
    message the command prints, before creating the workdir."""
    args, fragments = _bad_input(kind, str(tmp_path))
    c = cfg.get_config()
    for a in args:
        name, value = a[2:].split("=", 1)
        c[name] = float(value) if name in ("alpha", "threshold", "target", "risk") else value
    workdir = tmp_path / "w"
    with pytest.raises(ValueError) as err:
        script.run(c, str(workdir))
    for frag in fragments:
        assert frag in str(err.value), (frag, str(err.value))
    assert not workdir.exists()


def test_var_and_scalar_solver_from_the_cli_config(tmp_path):
    """Hand-computed: on the stock-necessity MDP (G in {-3, -1, 1, 3}) the stock policy (safe
    after +1, risky after -1) gives G = 1 w.p. 3/4, -3 w.p. 1/4, so VaR_0.5 = 1, while the
    risk-neutral solution (all policies have E G = 0; ties go to action 0, safe) gives G = +-1
    w.p. 1/2 and VaR_0.5 = -1. No policy reaches VaR_0.5 = 3 (P(G = 3) <= 1/4). The scalar
    solver's CVaR equals the exact (distributional) solver's on the random quick MDP."""
    c = cfg.get_config("quick")
    c.builtin, c.objective, c.alpha = "stock_necessity", "var", 0.5
    s = script.run(c, str(tmp_path / "var"))
    assert s["objective_value"] == 1.0 and s["risk_neutral_objective_value"] == -1.0
    assert s["solver"].startswith("scalar")
    exact = script.run(cfg.get_config("quick"), str(tmp_path / "exact"))
    c = cfg.get_config("quick")
    c.solver = "scalar"
    scalar = script.run(c, str(tmp_path / "scalar"))
    assert scalar["solver"] == "scalar stock-augmented DP" and exact["solver"] == "exact"
    assert abs(scalar["objective_value"] - exact["objective_value"]) < 1e-9
    c = cfg.get_config("quick")
    c.objective, c.horizon = "var", 0
    with pytest.raises(ValueError, match="var needs a finite horizon"):
        script.run(c, str(tmp_path / "bad"))
    assert not os.path.exists(tmp_path / "bad")
    c = cfg.get_config("quick")
    c.solver = "fast"
    with pytest.raises(ValueError, match="config.solver"):
        script.validate_config(c)
