"""The samplers experiment script: validation before any file, the long-form tables and the
summary's IQM / CI derived from them."""

import json
import os

import numpy as np
import pytest
from scipy.stats import trim_mean

from experiments import samplers as exp
from experiments.configs import samplers as cfg
from jaxrl.metrics import read_metrics


@pytest.mark.parametrize("field,value,match", [
    ("warm_candidates", ("full", "euler:10:1"), r"config\.warm_candidates.*euler:10:1"),
    ("warm_candidates", ("ddpm:2",), r"config\.warm_candidates must contain .full."),
    ("nfe_grid", (), r"config\.nfe_grid"),
    ("checkpoint_every", 0, r"config\.checkpoint_every"),
    ("num_seeds", 0, r"config\.num_seeds"),
    ("denoiser", "bogus", r"config\.denoiser must be 'exact' or 'learned', got 'bogus'"),
    ("warm_demo_episodes", 0, r"config\.warm_demo_episodes"),
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
    c = cfg.get_config("tiny")
    c.warm_net.learning_rate = 0.0
    with pytest.raises(ValueError, match=r"config\.warm_net\.learning_rate"):
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
