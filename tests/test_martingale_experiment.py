"""The martingale experiment script: config validation, the `:ou` mode end to end, the runtime
algorithm against the one-shot library estimators, resume."""

import filecmp
import json
import os

import numpy as np
import pytest

from experiments import martingale as exp
from experiments.configs import martingale as cfg
from jaxrl.metrics import read_metrics


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


def test_bad_config_writes_no_file(tmp_path):
    c = cfg.get_config("tiny")
    c.bm_dts = (0.1, 0.1)
    with pytest.raises(ValueError, match=r"config\.bm_dts") as e:
        exp.run(c, str(tmp_path / "w"))
    assert "\n" not in str(e.value)
    assert not os.path.exists(tmp_path / "w")


def test_ou_case_files_in_runtime_form(tmp_path):
    c = cfg.get_config("ou")
    c.dt, c.num_paths, c.ctd_epochs, c.cgtd_epochs, c.tail = 0.2, 64, 3, 2, 4.0
    s = exp.run(c, str(tmp_path))
    train = read_metrics(os.path.join(tmp_path, "metrics.csv"))
    ev = read_metrics(os.path.join(tmp_path, "eval.csv"))
    assert train["runs"] == [{"seed": 0, "dt": 0.2}] and train["steps"].tolist() == [1, 2, 3]
    assert ev["steps"].tolist() == [3]
    # CGTD stops after its 2 passes: its estimate is frozen at pass 3
    assert train["cgtd_A"][0, 2] == train["cgtd_A"][0, 1] != train["cgtd_A"][0, 0]
    for m in ("ml", "ctd0", "clstd", "cgtd", "mstde"):
        np.testing.assert_allclose(s[m], [ev[f"{m}_{p}"][0, 0] for p in "ABC"], rtol=1e-6)
    np.testing.assert_allclose(s["ctd0"], [train[f"ctd0_{p}"][0, -1] for p in "ABC"], rtol=1e-6)


def test_runtime_estimates_equal_the_library_and_resume_bit_identically(tmp_path):
    """The OU `Algorithm` through `experiment.run` (a pass per update, paths re-simulated from
    the run's key) gives the estimates of the one-shot library calls `mg.ctd`, `mg.cgtd`,
    `mg.ml_linear`, `mg.clstd` on the same paths; a run stopped after one chunk and resumed
    writes the same bytes."""
    import jax
    import jax.numpy as jnp

    from jaxrl import experiment
    from jaxrl import martingale as mg
    from jaxrl.envs import diffusions as dif

    c = cfg.get_config("tiny")
    c.progress = False
    steps = exp.ou_num_steps(c, 0.2)
    algo, pe = exp.ou_algorithm(c, 48, steps)
    grid = {"dt": (0.4, 0.2)}
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    kw = dict(eval_every=algo.num_updates, chunk_size=1, progress=False)
    res = experiment.run(algo, [3], grid, workdir=a, **kw)
    env, base = exp.ou_env(c)
    value = mg.LinearValue(mg.quadratic_features)
    for i, dt in enumerate(grid["dt"]):
        traj = dif.simulate(jax.random.PRNGKey(3), env, base.replace(dt=jnp.float32(dt)), 48,
                            steps)
        ref = {"ctd0": mg.ctd(jnp.zeros(3), value, traj, c.ctd_lr, num_epochs=c.ctd_epochs),
               "cgtd": mg.cgtd(jnp.zeros(3), value, traj, c.cgtd_alpha, c.cgtd_beta,
                               num_epochs=c.cgtd_epochs),
               "ml": mg.ml_linear(value, traj, fit_until=c.t_fit), "clstd": mg.clstd(value, traj)}
        for m, v in ref.items():
            got = [res.evals[f"{m}_{p}"][i, -1] for p in "ABC"]
            np.testing.assert_allclose(got, np.asarray(v), rtol=2e-3, atol=2e-4, err_msg=m)
    truth = exp.true_ou_params(c)
    for m in ("ml", "ctd0", "clstd"):  # close to the closed form even on 48 paths
        est = np.stack([res.evals[f"{m}_{p}"][:, -1] for p in "ABC"], -1)
        assert np.all(np.linalg.norm(est - truth, axis=-1) < 0.5), (m, est)
    r = experiment.run(algo, [3], grid, workdir=b, stop_after_chunks=1, **kw)
    assert r.interrupted_at == 1
    experiment.run(algo, [3], grid, workdir=b, **kw)
    for f in ("metrics.csv", "eval.csv"):
        assert filecmp.cmp(os.path.join(a, f), os.path.join(b, f), shallow=False), f
