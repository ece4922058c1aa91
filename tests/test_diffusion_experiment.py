"""The samplers experiment script: validation before any file, the long-form tables and the
summary's IQM / CI derived from them."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy.stats import trim_mean

from experiments import samplers as exp
from experiments.configs import samplers as cfg
from jaxrl.metrics import read_metrics


@pytest.mark.parametrize("field,value,match", [
    ("warm_start_sigmas", (0.1, 10.0), r"config\.warm_start_sigmas"),
    ("nfe_grid", (), r"config\.nfe_grid"),
    ("checkpoint_every", 0, r"config\.checkpoint_every"),
    ("num_seeds", 0, r"config\.num_seeds"),
])
def test_bad_config_raises_one_line_before_any_file(tmp_path, field, value, match):
    c = cfg.get_config("tiny")
    c[field] = value
    with pytest.raises(ValueError, match=match) as e:
        exp.run_experiment(c, str(tmp_path / "w"))
    assert "\n" not in str(e.value)
    assert not os.path.exists(tmp_path / "w")


def test_bad_net_config_names_the_field(tmp_path):
    c = cfg.get_config("tiny")
    c.net.learning_rate = -1.0
    with pytest.raises(ValueError, match=r"config\.net\.learning_rate"):
        exp.run_experiment(c, str(tmp_path / "w"))
    c = cfg.get_config("tiny")
    c.net.hidden = 0
    with pytest.raises(ValueError, match=r"config\.net\.hidden"):
        exp.run_experiment(c, str(tmp_path / "w"))
    assert not os.path.exists(tmp_path / "w")


def test_gmm_tables_in_long_form_and_summary_from_them(tmp_path):
    c = cfg.get_config("tiny")
    c.parts, c.num_seeds = ("gmm",), 4
    s = exp.run_experiment(c, str(tmp_path))
    with open(tmp_path / "summary.json") as f:
        on_disk = json.load(f, parse_constant=lambda x: pytest.fail(f"non-strict JSON {x}"))
    assert on_disk["tables"].keys() == s["tables"].keys()
    q = read_metrics(os.path.join(tmp_path, "gmm2d", "quality", "metrics.csv"))
    seeds = list(range(4))
    assert [r["seed"] for r in q["runs"]] == seeds * 2
    assert [r["nfe"] for r in q["runs"]] == [4.0] * 4 + [8.0] * 4
    assert q["steps"].tolist() == [1]
    for name in c.samplers:
        for j, nfe in enumerate(c.nfe_grid):
            rows = slice(4 * j, 4 * j + 4)
            cell = on_disk["tables"]["gmm2d"][f"{name}@{nfe}"]
            # IQM over seeds = the 25%-trimmed mean of the file's column (independent formula)
            np.testing.assert_allclose(cell["sw"]["iqm"], trim_mean(q[f"{name}_sw"][rows, 0],
                                                                   0.25), rtol=1e-9)
            assert cell["sw"]["lo"] <= cell["sw"]["iqm"] <= cell["sw"]["hi"]
            assert cell["nfe"] == int(q[f"{name}_nfe_used"][4 * j, 0]) <= nfe
    # the floor (exact vs exact samples) is below every sampler's error at the smallest budget
    floor = on_disk["tables"]["gmm2d"]["floor"]["sw"]["iqm"]
    assert all(on_disk["tables"]["gmm2d"][f"{n}@4"]["sw"]["iqm"] > floor for n in c.samplers)
    t = read_metrics(os.path.join(tmp_path, "gmm2d", "teleport", "metrics.csv"))
    assert sorted({(r["steps"], r["skip"]) for r in t["runs"]}) == [(4.0, 0.0), (4.0, 1.0)]
    no_skip = [i for i, r in enumerate(t["runs"]) if r["skip"] == 0.0]
    np.testing.assert_array_equal(t["heun_rmse"][no_skip, 0], 0.0)  # against itself
    skip = [i for i, r in enumerate(t["runs"]) if r["skip"] == 1.0]
    assert np.all(t["heun_nfe_used"][skip, 0] < t["heun_nfe_used"][no_skip, 0])
    assert not os.path.exists(tmp_path / "digits")  # parts = gmm only
    assert s["markdown"].startswith("### gmm2d")


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _mixture(d, name, **change):
    arrays = dict(weights=np.array([0.5, 0.5]), means=np.array([[-2.0, 0.0], [2.0, 0.0]]),
                  covs=np.stack([np.eye(2)] * 2))
    arrays.update(change)
    path = os.path.join(d, name)
    np.savez(path, **arrays)
    return path


def test_gmm_mode_writes_exactly_out(tmp_path):
    """`--out` is the file written, whatever its extension (np.save(path) appends .npy)."""
    good = _mixture(str(tmp_path), "g.npz")
    out = tmp_path / "samples.npz"
    info = exp.sample_gmm_file(good, "heun", 7, 16, 0, str(out))
    assert info["shape"] == [16, 2]
    assert sorted(os.listdir(tmp_path)) == ["g.npz", "samples.npz"]
    assert np.load(out).shape == (16, 2)


def _bad_gmm(kind, d):
    """(CLI args, expected fragments, the --out path) of a bad `--gmm` command line."""
    good = _mixture(d, "good.npz")
    out = os.path.join(d, "s.npz")
    path = os.path.join(d, f"{kind}.npz")
    if kind == "npy":
        path = os.path.join(d, "x.npy")
        np.save(path, np.zeros(3))
        frags = [f"--gmm {path} is not an npz archive"]
    elif kind == "empty":
        open(path, "wb").close()
        frags = [f"--gmm {path}", "empty file"]
    elif kind == "not_zip":
        with open(path, "wb") as f:
            f.write(b"not a zip")
        frags = [f"--gmm {path} is not an npz archive"]
    elif kind == "pickled":
        path = _mixture(d, "pickled.npz", weights=np.array([None, 1.0], dtype=object))
        frags = [f"--gmm {path}", "'weights'", "allow_pickle=False"]
    elif kind == "missing_file":
        frags = [f"--gmm {path} does not exist"]
    elif kind == "no_means":
        np.savez(path, weights=np.ones(1), covs=np.eye(2)[None])
        frags = [f"--gmm {path} lacks array(s) ['means']"]
    elif kind == "d0":
        path = _mixture(d, "g0.npz", weights=np.ones(1), means=np.zeros((1, 0)),
                        covs=np.zeros((1, 0, 0)))
        frags = [f"error: --gmm {path}: means must have shape [M, D] with D >= 1, got (1, 0)"]
    elif kind == "huge_means":
        path = _mixture(d, "big.npz", weights=np.ones(1), means=np.full((1, 2), 1e30),
                        covs=1e38 * np.eye(2)[None])
        frags = [f"--gmm {path}", "means too large for float32", "1e+30"]
    elif kind == "huge_covs":
        path = _mixture(d, "bigc.npz", weights=np.ones(1), means=np.zeros((1, 2)),
                        covs=1e38 * np.eye(2)[None])
        frags = [f"--gmm {path}", "covs too large for float32", "1e+38"]
    elif kind == "nan_means":
        path = _mixture(d, "nan.npz", means=np.array([[0.0, np.nan], [1.0, 0.0]]))
        frags = [f"--gmm {path}", "means contain NaN"]
    elif kind == "out_dir":
        out = os.path.join(d, "nodir", "s.npz")
        return [f"--gmm={good}", f"--out={out}"], [
            f"error: --out directory {os.path.dirname(out)} does not exist"], out
    elif kind == "no_out":
        return [f"--gmm={good}"], ["--out is required"], out
    else:
        flag, value = kind.split("=")
        return [f"--gmm={good}", f"--out={out}", f"--{flag}={value}"], [f"--{flag}", value], out
    return [f"--gmm={path}", f"--out={out}"], frags, out


@pytest.mark.parametrize("kind", [
    "npy", "empty", "not_zip", "pickled", "missing_file", "no_means", "d0", "huge_means",
    "huge_covs", "nan_means", "out_dir", "no_out", "nfe=0", "nfe=-3", "num_samples=0",
    "num_samples=1000000000000", "sampler=bogus", "seed=-1", "seed=4294967296", "teleport=nan",
    "sigma_max=inf", "nfe=abc",
])
def test_gmm_cli_bad_input_is_one_error_line_and_no_output(tmp_path, kind):
    """The real command line: exit 2, one stderr line `error: ...` naming the file / flag /
    value, before anything is sampled or written."""
    args, fragments, out = _bad_gmm(kind, str(tmp_path))
    before = set(os.listdir(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "experiments.samplers", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=180)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-2000:]
    for frag in fragments:
        assert frag in lines[0], (frag, lines[0])
    assert not os.path.exists(out) and not os.path.exists(out + ".npy")
    assert set(os.listdir(tmp_path)) == before
    assert proc.stdout == ""
