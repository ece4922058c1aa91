"""The bayes_pg script: validation before any file, the gradient study's long-form table, the
learning programs on the runtime (files, kill-free resume) and the report."""

import filecmp
import json
import os

import numpy as np
import pytest

from experiments import bayes_pg as exp
from experiments.configs import bayes_pg as cfg
from jaxrl.metrics import read_metrics

# The paper's LQR at (lambda, sigma) = (-0.2, 1), T = 20 (digest Part B ground truth 1).
TRUE_GRADIENT = np.array([-180.0747, -100.0638])
TRUE_RETURN = -50.76597


@pytest.mark.parametrize("field,value,match", [
    ("sigma", 0.0, "config.sigma"), ("repetitions", 0, "config.repetitions"),
    ("num_seeds", 0, "config.num_seeds"), ("learn_envs", ("Pong",), "config.learn_envs"),
    ("learn_estimators", ("ppo",), "config.learn_estimators"),
    ("checkpoint_every", 0, "config.checkpoint_every"),
    ("lqr_episodes", 1, "config.lqr_episodes"),
])
def test_bad_config_values_raise_one_line_before_any_file(tmp_path, field, value, match):
    c = cfg.get_config("tiny")
    c[field] = value
    with pytest.raises(ValueError, match=match.replace(".", r"\.")) as e:
        exp.run(c, str(tmp_path / "w"))
    assert "\n" not in str(e.value)
    assert not os.path.exists(tmp_path / "w")


@pytest.mark.parametrize("path,value,match", [
    ("algo.lr", -1.0, r"config\.algo\.lr"), ("algo.bac_lengthscale", 0.0, "bac_lengthscale"),
    ("sweep.lr", (0.1, 0.0), r"config\.sweep\.lr"),
    ("sweep.gamma", (0.9, 1.5), r"config\.sweep\.gamma"),
])
def test_bad_learning_hparams_raise_one_line(tmp_path, path, value, match):
    c = cfg.get_config("tiny")
    group, name = path.split(".")
    c[group][name] = value
    with pytest.raises(ValueError, match=match) as e:
        exp.validate(c)
    assert "\n" not in str(e.value)


def _strict_json(path):
    def bad(x):
        raise AssertionError(f"{path}: non-strict JSON constant {x}")

    with open(path) as f:
        return json.load(f, parse_constant=bad)


def _angle_deg(g, ref):
    cos = g @ ref / (np.linalg.norm(g, axis=-1) * np.linalg.norm(ref))
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


def test_tiny_study_files_in_standard_form_and_resume(tmp_path):
    c = cfg.get_config("tiny")
    a = str(tmp_path / "a")
    summary = exp.run(c, a)
    assert _strict_json(os.path.join(a, "summary.json")) == json.loads(json.dumps(summary))
    assert _strict_json(os.path.join(a, "config.json"))["variant"] == "tiny"

    # Gradient study: one row per repetition, step = M, env_steps = M * horizon.
    g = read_metrics(os.path.join(a, "gradient", "metrics.csv"))
    reps, m = c.repetitions, c.episode_counts[0]
    assert len(g["runs"]) == reps and all(r == {"seed": c.seed} for r in g["runs"])
    assert g["steps"].tolist() == [m] and g["env_steps"].tolist() == [m * c.horizon]
    for name in ("mc", "mc_baseline", "bpg1", "bpg2"):
        est = np.stack([g[f"{name}_grad_lam"][:, 0], g[f"{name}_grad_sigma"][:, 0]], axis=1)
        # the angle column is the angle between the estimate column and the exact gradient
        np.testing.assert_allclose(g[f"{name}_angle_deg"][:, 0], _angle_deg(est, TRUE_GRADIENT),
                                   atol=0.05)
        rel = np.linalg.norm(est - TRUE_GRADIENT, axis=1) / np.linalg.norm(TRUE_GRADIENT)
        np.testing.assert_allclose(g[f"{name}_rel_error"][:, 0], rel, rtol=1e-3)
        row = summary["gradient"]["table"][str(m)][name]
        np.testing.assert_allclose(row["angle_deg"], g[f"{name}_angle_deg"].mean(), rtol=1e-6)
    # BPG Model 1 beats plain MC at M = 10 (about 25 vs 50 degrees; 20 repetitions suffice)
    t = summary["gradient"]["table"][str(m)]
    assert t["bpg1"]["angle_deg"] < t["mc"]["angle_deg"]

    # Learning: one runtime workdir per program, standard schema.
    for est in c.learn_estimators:
        sub = os.path.join(a, "learning", "LQR-v0", est)
        with open(os.path.join(sub, "metrics.csv")) as f:
            header = f.readline().strip().split(",")
        assert header[:4] == ["run", "seed", "step", "env_steps"] and "return" in header
        d = read_metrics(os.path.join(sub, "metrics.csv"))
        assert d["steps"].tolist() == [1, 2, 3, 4]
        np.testing.assert_array_equal(d["env_steps"], d["steps"] * c.lqr_episodes * c.horizon)
        # the first logged return is the exact return of the initial policy (-0.2, 1)
        np.testing.assert_allclose(d["return"][:, 0], TRUE_RETURN, rtol=1e-5)
        v = summary["learning"]["LQR-v0"][est]
        np.testing.assert_allclose(v["final_mean"], d["return"][:, -1].mean(), rtol=1e-6)
        np.testing.assert_allclose(v["train_mean_iqm"], d["return"].mean(), rtol=1e-6)
        assert v["final_mean"] > TRUE_RETURN  # 4 Adam steps already improve the policy
        assert sorted(os.listdir(os.path.join(sub, "checkpoints"))) == ["2", "3", "4"]
        assert os.path.exists(os.path.join(sub, "summary.json"))
    assert "prob_improvement_vs_mc_baseline" in summary["learning"]["LQR-v0"]["mc"]
    text = exp.report(summary)
    assert text.startswith("## Bayesian policy gradient") and "learning_LQR-v0.png" in text

    # A learning program stopped after 2 chunks and resumed writes the same bytes.
    plan = exp.validate(c)
    env, est, lc = plan.programs[1]
    b = str(tmp_path / "b")
    r = exp.run_program(c, lc, plan.seeds, plan.grid, b, stop_after_chunks=2)
    assert r.interrupted_at == 2
    exp.run_program(c, lc, plan.seeds, plan.grid, b)
    assert filecmp.cmp(os.path.join(b, "metrics.csv"),
                       os.path.join(a, "learning", env, est, "metrics.csv"), shallow=False)


def test_gradient_variant_reports_coverage_recomputed_from_rows(tmp_path):
    """`coverage_95` per posterior estimator equals the fraction of (repetition, component)
    pairs with |estimate - exact| <= 1.96 sd, recomputed from metrics.csv's estimate and sd
    columns against the exact gradient; MC estimators (no posterior) have none."""
    c = cfg.get_config("gradient")
    c.repetitions, c.num_episodes = 24, 6
    d = str(tmp_path / "g")
    summary = exp.run(c, d)
    assert _strict_json(os.path.join(d, "summary.json"))["fit_gp"] is True
    g = read_metrics(os.path.join(d, "metrics.csv"))
    for name in ("bpg1", "bpg2", "bac"):
        est = np.stack([g[f"{name}_grad_lam"][:, 0], g[f"{name}_grad_sigma"][:, 0]], 1)
        sd = np.stack([g[f"{name}_sd_lam"][:, 0], g[f"{name}_sd_sigma"][:, 0]], 1)
        inside = np.abs(est - TRUE_GRADIENT) <= 1.96 * sd
        np.testing.assert_allclose(summary[name]["coverage_95"], inside.mean(), atol=1e-9)
        assert 0.0 <= summary[name]["angle_coverage_95"] <= 1.0
        assert summary[name]["median_gp_scale"] > 0 and summary[name]["median_gp_noise"] > 0
    for name in ("mc", "mc_baseline"):
        assert "coverage_95" not in summary[name]
