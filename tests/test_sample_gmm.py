"""The bring-your-own-mixture command (`experiments.sample_gmm`): samples, unbiased start law,
exact output path, and one-line errors with exit 2 before any file for bad input."""

import os
import subprocess
import sys

import numpy as np
import pytest

from experiments import sample_gmm as exp


def test_cli_writes_samples_and_rejects_bad_mixtures(tmp_path):

    good = tmp_path / "good.npz"
    np.savez(good, weights=np.array([0.4, 0.6]), means=np.array([[0.0, 0.0], [3.0, 1.0]]),
             covs=np.stack([np.eye(2) * 0.2, np.eye(2) * 0.5]))
    out = tmp_path / "x.npy"
    info = exp.sample_gmm_file(str(good), "dpmpp_2m", 12, 300, 0, str(out), teleport_fraction=0.25)
    x = np.load(out)
    assert x.shape == (300, 2) and info["nfe"] == 12 - 3
    assert abs(x[:, 0].mean() - 1.8) < 0.3
    for kwargs, match in [
        (dict(weights=[0.5, 0.6], means=[[0.0], [1.0]], covs=[[[1.0]], [[1.0]]]), "sum to 1"),
        (dict(weights=[1.0], means=[[0.0, 0.0]], covs=[[[1.0, 2.0], [2.0, 1.0]]]),
         "positive definite"),
        (dict(weights=[1.0], means=[[0.0, 0.0]], covs=[[[1.0, 0.3], [0.0, 1.0]]]),
         "symmetric"),
        (dict(weights=[1.0], means=[[0.0, 0.0]]), "lacks"),
    ]:
        bad = tmp_path / "bad.npz"
        np.savez(bad, **{k: np.asarray(v) for k, v in kwargs.items()})
        with pytest.raises(ValueError, match=match):
            exp.sample_gmm_file(str(bad), "heun", 5, 10, 0, str(out))
    with pytest.raises(ValueError, match="unknown sampler"):
        exp.sample_gmm_file(str(good), "rk45", 5, 10, 0, str(out))


def test_cli_samples_of_an_off_centre_mixture_are_unbiased(tmp_path):
    """Mean and mode weights of `--gmm` samples match the mixture's (4 standard errors) for data
    far from the origin: the start law carries the data mean (a N(0, sigma_max^2) start leaves a
    bias of about |mean| * scale / sigma_max, here ~0.15, i.e. > 6 standard errors)."""

    w, mu = np.array([0.3, 0.7]), np.array([[6.0, 4.0], [9.0, 5.0]])
    path = tmp_path / "far.npz"
    np.savez(path, weights=w, means=mu, covs=np.stack([np.eye(2) * 0.5, np.eye(2)]))
    out = tmp_path / "x.npy"
    n = 4000
    exp.sample_gmm_file(str(path), "heun", 35, n, 1, str(out))
    x = np.load(out)
    mean = w @ mu
    var = w @ (np.array([0.5, 1.0])[:, None] + mu**2) - mean**2
    assert np.all(np.abs(x.mean(0) - mean) < 4 * np.sqrt(var / n)), (x.mean(0), mean)
    frac = (x[:, 0] > 7.5).mean()  # ~ the weight of the second component
    p = 0.7 * 0.9332 + 0.3 * 0.0169  # P(x0 > 7.5) under the mixture (normal tail values)
    assert abs(frac - p) < 4 * np.sqrt(p * (1 - p) / n), (frac, p)


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


KINDS = [
    "npy", "empty", "not_zip", "pickled", "missing_file", "no_means", "d0", "huge_means",
    "huge_covs", "nan_means", "out_dir", "no_out", "nfe=0", "nfe=-3", "num_samples=0",
    "num_samples=1000000000000", "sampler=bogus", "seed=-1", "seed=4294967296", "teleport=nan",
    "sigma_max=inf", "nfe=abc", "old:nan_means",
]
# Through the real command line (a process each): one of every path an error takes to the
# one-line message: the npz reader, the mixture check, the --out check, a flag's range, the
# memory estimate, the command's own required flag, absl's parser, the old entry point. Every
# kind's message is also checked in-process below (the checks are the same functions).
CLI_KINDS = ["not_zip", "nan_means", "out_dir", "nfe=0", "num_samples=1000000000000", "no_out",
             "nfe=abc", "old:nan_means"]
_FLAG_ARG = {"gmm": "gmm_path", "sampler": "sampler", "nfe": "nfe", "num_samples": "num_samples",
             "seed": "seed", "out": "out", "teleport": "teleport_fraction",
             "sigma_max": "sigma_max"}


@pytest.mark.parametrize("kind", CLI_KINDS)
def test_gmm_cli_bad_input_is_one_error_line_and_no_output(tmp_path, kind):
    """The real command line: exit 2, one stderr line `error: ...` naming the file / flag /
    value, before anything is sampled or written (`old:` = the same through the old entry point
    `experiments.samplers --gmm`)."""
    module = "experiments.sample_gmm"
    if kind.startswith("old:"):
        module, kind = "experiments.samplers", kind[4:]
    args, fragments, out = _bad_gmm(kind, str(tmp_path))
    before = set(os.listdir(tmp_path))
    proc = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=180)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-2000:]
    for frag in fragments:
        assert frag in lines[0], (frag, lines[0])
    assert not os.path.exists(out) and not os.path.exists(out + ".npy")
    assert set(os.listdir(tmp_path)) == before
    assert proc.stdout == ""


@pytest.mark.parametrize("kind", [k for k in KINDS if k not in ("no_out", "nfe=abc")
                                  and not k.startswith("old:")])
def test_gmm_bad_input_raises_the_message_before_any_output(tmp_path, kind):
    """`sample_gmm_file` (what the command calls with the parsed flags) refuses every bad input
    with the message the command prints, before writing anything."""
    args, fragments, out = _bad_gmm(kind, str(tmp_path))
    kw = {"sampler": exp._SAMPLER.default, "nfe": exp._NFE.default,
          "num_samples": exp._NUM.default, "seed": exp._SEED.default,
          "teleport_fraction": exp._TELEPORT.default, "sigma_max": exp._SIGMA_MAX.default}
    for a in args:
        flag, value = a[2:].split("=", 1)
        name = _FLAG_ARG[flag]
        kw[name] = type(kw[name])(value) if name in kw and kw[name] is not None else value
    before = set(os.listdir(tmp_path))
    with pytest.raises(ValueError) as err:
        exp.sample_gmm_file(**kw)
    message = "error: " + str(err.value)
    for frag in fragments:
        assert frag in message, (frag, message)
    assert not os.path.exists(out) and not os.path.exists(out + ".npy")
    assert set(os.listdir(tmp_path)) == before
