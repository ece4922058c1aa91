"""The martingale experiment script: config validation and the `:ou` mode end to end."""

import json
import os

import numpy as np
import pytest

from experiments import martingale as exp
from experiments.configs import martingale as cfg


@pytest.mark.parametrize("field,value,match", [
    ("rho", 0.0, "config.rho"), ("a", -5.0, "config.a"), ("dt", 0.0, "config.dt"),
    ("num_seeds", 0, "config.num_seeds"), ("dts", (), "config.dts"),
])
def test_bad_config_values_raise_one_line(field, value, match):
    c = cfg.get_config("quick")
    c[field] = value
    with pytest.raises(ValueError, match=match) as e:
        exp.validate(c)
    assert "\n" not in str(e.value)


def test_ou_mode_writes_true_and_estimated_params(tmp_path):
    c = cfg.get_config("ou")
    a, b, sigma, q, rho = 2.0, -0.5, 0.8, 0.3, 1.0
    c.a, c.b, c.sigma, c.q, c.rho, c.dt, c.seed = a, b, sigma, q, rho, 0.1, 1
    c.num_paths, c.ctd_epochs, c.cgtd_epochs = 300, 4, 4
    exp.run(c, str(tmp_path))
    s = json.load(open(os.path.join(tmp_path, "summary.json")))
    # Closed form, restated independently: rho J = x^2/2 + q x + a (b - x) J' + sigma^2 J''/2.
    A = 1 / (rho + 2 * a)
    B = (a * b * A + q) / (rho + a)
    C = (a * b * B + sigma**2 * A / 2) / rho
    np.testing.assert_allclose(s["true_params"], [A, B, C], rtol=1e-5)
    for m in ("ml", "ctd0", "clstd", "mstde"):
        assert len(s[m]) == 3
    assert np.linalg.norm(np.subtract(s["ml"], [A, B, C])) < 0.1
    assert np.linalg.norm(np.subtract(s["clstd"], [A, B, C])) < 0.1
