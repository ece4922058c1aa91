"""The STAC experiment's aggregation on hand-made metric rows: per-seed final/average values,
IQM summaries and the direction of the pairwise probabilities of improvement."""

import re

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
    # stac: higher return, lower |bias| (avg 1.5 + seed vs 7.5 + seed), lower danger: all P = 1.
    for k in ("return_final", "bias_rollout_avg_abs", "bias_rollout_final_abs",
              "danger_frac_final"):
        assert pr[k][0] == pytest.approx(1.0), k
    (rev,) = ex.pairs(_rows(), "E", "sac", ["stac"])
    for k in ("return_final", "bias_rollout_avg_abs", "danger_frac_final"):
        assert rev[k][0] == pytest.approx(0.0), k


def _signed_rows():
    """Three methods whose final rollout biases are (-16, -3, +9) + seed / 10 (stac: a large
    UNDERestimate); every bias estimator gets the same numbers."""
    rows = []
    for label, final in (("stac", -16.0), ("sac", -3.0), ("sac_single", 9.0)):
        for seed in range(4):
            for step, b in ((100, 50.0), (200, final + seed / 10)):
                rows.append({"env": "E", "variant": label, "label": label, "seed": seed,
                             "step": step, "return": -150.0, "danger_frac": 0.0,
                             "bias_rollout": b, "bias_paper": b, "bias_reference": b,
                             "sigma_mean": 1.0, "alpha": 0.1})
    return rows


def test_bias_is_compared_by_magnitude_not_by_sign():
    """A more negative bias is not a better one: stac's -16 is the largest |bias| here."""
    rows = _signed_rows()
    s = ex.summarize(rows)["E"]
    for c in ex.BIAS_COLUMNS:  # every estimator, signed and |.|, avg and final
        for name in (c, f"{c}_final", f"abs_{c}", f"abs_{c}_final"):
            assert name in s["stac"], name
    assert s["stac"]["bias_rollout_final"]["iqm"] == pytest.approx(-15.85)
    assert s["stac"]["abs_bias_rollout_final"]["iqm"] == pytest.approx(15.85)
    assert s["sac_single"]["abs_bias_rollout_final"]["iqm"] == pytest.approx(9.15)
    # per-seed magnitudes: a seed at -2 and one at +2 average to |bias| 2, not 0
    mixed = [{**r, "bias_rollout": (-2.0 if r["seed"] % 2 else 2.0)} for r in rows
             if r["label"] == "sac"]
    np.testing.assert_allclose(ex.per_seed(mixed, "E", "sac", "bias_rollout", "final_abs"), 2.0)
    np.testing.assert_allclose(ex.per_seed(mixed, "E", "sac", "bias_rollout", "avg_abs"), 2.0)
    assert abs(ex.summarize(mixed)["E"]["sac"]["bias_rollout_final"]["iqm"]) < 2.0
    # probabilities of improvement by magnitude: stac's |bias| is higher than both others'
    (vs_sac, vs_single) = ex.pairs(rows, "E", "stac", ["sac", "sac_single"])
    assert vs_sac["bias_rollout_final_abs"][0] == pytest.approx(0.0)
    assert vs_single["bias_rollout_final_abs"][0] == pytest.approx(0.0)
    # the verdict sentence ranks by magnitude, smallest first, and keeps the sign
    v = ex.bias_verdict(s)
    assert v.index("sac ") < v.index("sac_single ") < v.index("stac ")
    assert re.search(r"stac 15\.[89] \(signed -15\.[89], under\)", v), v
    assert "sac_single 9.15 (signed +9.15, over)" in v
    text = ex.report({**ex.summarize(rows), "_pairs": {"E": [vs_sac]}}, ".", "t")
    assert "P(\\|bias\\| lower, final)" in text and "under" in text


def test_paper_final_score_is_the_authors_pooled_window_iqm():
    """The authors' summarize.py: N evaluation points, the last floor(0.02 N) + 1 of them pooled
    over seeds, mean of the values within [q_0.25, q_0.75] (bounds included)."""
    rows = []
    for seed, last2 in ((0, (1.0, 2.0)), (1, (3.0, 10.0))):
        for k in range(60):  # N = 60 -> window floor(1.2) + 1 = 2 points
            ret = last2[k - 58] if k >= 58 else 1000.0
            rows.append({"env": "E", "label": "m", "seed": seed, "step": 1000 * (k + 1),
                         "return": ret})
    got = ex.paper_final_score(rows, "E", "m")
    # pooled (1, 2, 3, 10): q1 = 1.75, q3 = 4.75 -> mean(2, 3) = 2.5
    assert got == {"iqm": 2.5, "points": 2, "n": 4}
    assert ex.paper_iqm(np.array([1.0, 2.0, np.nan, 3.0, 4.0, 100.0])) == pytest.approx(3.0)


def test_rows_csv_round_trip_recomputes_the_summary(tmp_path):
    rows = _signed_rows()
    rows[0] = {k: v for k, v in rows[0].items() if k != "bias_paper"}  # a missing cell
    path = str(tmp_path / "rows.csv")
    ex.write_rows(path, rows)
    back = ex.load_rows(path)
    assert len(back) == len(rows) and "bias_paper" not in back[0]
    assert back[1] == {k: v for k, v in rows[1].items() if k in ex.ROW_FIELDS}
    a, b = ex.summarize(rows), ex.summarize(back)
    assert a["E"]["stac"]["abs_bias_rollout_final"] == b["E"]["stac"]["abs_bias_rollout_final"]


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


# ---------------------------------------------------------------------------------------------
# The script on the runtime: validation, programs, rows from a Result, common random numbers.
# ---------------------------------------------------------------------------------------------


def _tiny():
    from experiments.configs import stac as stac_configs

    return stac_configs.get_config("tiny")


@pytest.mark.parametrize("field,value,message", [
    ("betas", (0.0, -0.5), r"^config\.betas must be finite and in \[0, inf\), got -0\.5 "),
    ("beta", -1.0, r"^config\.beta must be finite and in \[0, inf\), got -1\.0 "),
    ("dropout", 1.0, r"^config\.dropout must be finite and in \[0, 1\), got 1\.0 "),
    ("lr", 0.0, r"^config\.lr must be finite and in \(0, inf\), got 0\.0 "),
    ("hidden", 0, r"^config\.hidden must be a non-empty tuple of positive widths"),
    ("variants", ("stac", "ppo"), r"^config\.variants must hold names from"),
    ("chunk_size", -1, r"^config\.chunk_size must be >= 0"),
    ("eval_every", 30, r"^config\.steps\['Pendulum-v1'\] - warmup_steps must be a positive "),
])
def test_validate_names_the_field_in_one_line_before_anything_is_written(tmp_path, field, value,
                                                                        message):
    c = _tiny()
    c[field] = value
    with pytest.raises(ValueError, match=message) as e:
        ex.run(c, str(tmp_path / "w"))
    assert "\n" not in str(e.value)
    assert not (tmp_path / "w").exists()


def test_programs_share_the_stac_program_between_main_beta_and_ablation():
    from experiments.configs import stac as stac_configs

    c = stac_configs.get_config("")  # full config: both envs, every variant, five betas
    progs = ex.programs(c, "Pendulum-v1")
    assert [p.variant for p in progs] == ["stac", "stac_nodrop", "sac", "sac_single", "estac"]
    stac = progs[0]
    assert stac.grid == {"beta": (0.0, 0.125, 0.25, 0.375, 0.5)}
    assert stac.labels["stac"] == stac.labels["beta=0.25"] == {"beta": 0.25}
    assert (stac.cfg.actor_dropout, stac.cfg.critic_dropout, stac.cfg.use_dropout) == (
        0.01, 0.01, True)
    nodrop = progs[1].cfg
    assert (nodrop.variant, nodrop.use_dropout, nodrop.actor_dropout) == ("stac", False, 0.0)
    assert all(not p.cfg.use_dropout for p in progs[1:])


def test_result_rows_map_runs_to_labels_and_steps():
    """Rows from a hand-made Result: a run belongs to every label of its grid point (the main
    STAC beta is also an ablation point); steps count env steps including warm-up."""
    from jaxrl import experiment
    from jaxrl.stac import STACConfig

    cfg = STACConfig(warmup_steps=100, total_env_steps=400, log_every=10, num_envs=1)
    p = ex.Program("E", "stac", cfg, {"beta": (0.0, 0.25)},
                   {"stac": {"beta": 0.25}, "beta=0": {"beta": 0.0}, "beta=0.25": {"beta": 0.25}})
    runs = [{"seed": 0, "beta": 0.0}, {"seed": 1, "beta": 0.0}, {"seed": 0, "beta": 0.25},
            {"seed": 1, "beta": 0.25}]
    T, E = 30, 2  # 30 updates of 10 env steps, evaluations after updates 15 and 30
    tr = {m: np.arange(4 * T, dtype=float).reshape(4, T) + k for k, m in
          enumerate(ex.TRAIN_AT_EVAL)}
    ev = {m: 100.0 * (k + 1) + np.arange(4 * E, dtype=float).reshape(4, E) for k, m in
          enumerate(ex.EVAL_METRICS)}
    res = experiment.Result(runs, tr, np.arange(1, T + 1), 10 * np.arange(1, T + 1), ev,
                            np.asarray([15, 30]), np.full(4, -1), None, 10)
    rows = ex.result_rows(p, res)
    assert len(rows) == 2 * E + 2 * 2 * E  # beta 0: one label; beta 0.25: two labels
    assert sorted({r["step"] for r in rows}) == [100 + 150, 100 + 300]
    r = next(r for r in rows if r["label"] == "stac" and r["seed"] == 1 and r["step"] == 400)
    assert r["return"] == ev["return"][3, 1] and r["alpha"] == tr["alpha"][3, 29]
    twin = next(x for x in rows if x["label"] == "beta=0.25" and x["seed"] == 1
                and x["step"] == 400)
    assert {k: v for k, v in twin.items() if k != "label"} == {
        k: v for k, v in r.items() if k != "label"}


@pytest.fixture(scope="module")
def beta_pair():
    """STAC with two betas x two seeds through the runtime; the evaluation returns the first
    observation of its episodes (obs[0] = the start states) besides their return."""
    from jaxrl import experiment
    from jaxrl.stac import STACConfig, evaluate, make_learner, make_stac

    cfg = STACConfig(env_name="RiskyPointMass-v0", total_env_steps=260, warmup_steps=200,
                     buffer_size=300, batch_size=16, actor_hidden=(8,), critic_hidden=(8,),
                     actor_lr=3e-2, critic_lr=3e-2)
    algo, L = make_stac(cfg), make_learner(cfg)

    def probe(state, key, hp):
        ev = evaluate(L, state, key, 3, trajectories=True)
        return {"return": ev["return"], "x_late": ev["obs"][20, 0, 0],
                **{f"x0_{e}_{d}": ev["obs"][0, e, d] for e in range(3) for d in range(2)}}

    res = experiment.run(algo, [0, 1], {"beta": (0.0, 0.5)}, evaluate=probe, eval_every=30,
                         chunk_size=30, progress=False)
    return cfg, res


def test_runtime_evaluation_uses_the_same_start_states_for_every_beta_of_a_seed(beta_pair):
    _, res = beta_pair
    assert [(r["beta"], r["seed"]) for r in res.runs] == [(0.0, 0), (0.0, 1), (0.5, 0), (0.5, 1)]
    x0 = np.stack([res.evals[f"x0_{e}_{d}"] for e in range(3) for d in range(2)])  # [6, runs, E]
    assert x0.shape == (6, 4, 2)
    np.testing.assert_array_equal(x0[:, 0], x0[:, 2])  # seed 0: beta 0 and beta 0.5
    np.testing.assert_array_equal(x0[:, 1], x0[:, 3])  # seed 1
    assert not np.allclose(x0[:, 0], x0[:, 1])  # another seed: other start states
    assert not np.allclose(x0[:, 0, 0], x0[:, 0, 1])  # another evaluation: other start states
    # ... while the two betas' policies differ (the equality is not one of identical runs)
    assert not np.allclose(res.evals["x_late"][0], res.evals["x_late"][2])
    assert not np.allclose(res.evals["return"][0], res.evals["return"][2])


def test_trajectories_from_the_final_states_share_start_states_across_betas(beta_pair):
    cfg, res = beta_pair
    p = ex.Program("RiskyPointMass-v0", "stac", cfg, {"beta": (0.0, 0.5)},
                   {"beta=0": {"beta": 0.0}, "beta=0.5": {"beta": 0.5}})
    t0 = ex.trajectories(p, res, 0, 4)
    t1 = ex.trajectories(p, res, 1, 4)
    assert sorted(t0) == ["beta=0", "beta=0.5"]
    (o_a, alive_a), (o_b, _) = t0["beta=0"], t0["beta=0.5"]
    assert o_a.shape == (200, 4, 2) and alive_a.shape == (200, 4)  # [T, episodes, (x, y)]
    np.testing.assert_array_equal(o_a[0], o_b[0])  # same start states for both betas
    assert not np.allclose(o_a[1:], o_b[1:])  # different policies, different paths
    assert not np.allclose(o_a[0], t1["beta=0"][0][0])  # another seed, other start states


# The paper's published numbers and settings, from the authors' repository (read by hand):
# results/main-comparison/summary.csv (last_score_iqm) and logs/main-comparison/*/hparams.jsonl.
PAPER = {  # task: (steps, beta, actor dropout, critic dropout, logged target entropy, |A|)
    "ant": (3_000_000, 0.25, 0.01, 0.01, -8.0, 8),
    "halfcheetah": (3_000_000, 0.0, 0.0, 0.0, -6.0, 6),
    "hopper": (1_000_000, 0.5, 0.01, 0.01, -3.0, 3),
    "humanoid": (3_000_000, 0.25, 0.01, 0.0, -17.0, 17),
    "swimmer": (1_000_000, 0.0, 0.01, 0.0, -1.0, 2),
    "walker2d": (3_000_000, 0.125, 0.01, 0.0, -6.0, 6),
}


@pytest.mark.parametrize("task", sorted(PAPER))
def test_paper_config_validates_with_the_papers_settings(task, tmp_path, monkeypatch):
    """Each `paper_<task>` config validates (no training) and its programs carry the paper's
    per-task settings: 5 seeds, STAC/SAC/ESTAC/DSAC, 2x256 networks, the step budget, beta,
    dropouts, the runs' target entropy, the reference temperature rule and DSAC target."""
    pytest.importorskip("brax.envs")
    from experiments.configs import stac as stac_configs

    monkeypatch.chdir(tmp_path)  # MuJoCo writes MUJOCO_LOG.TXT (a deprecation warning) here
    steps, beta, actor_d, critic_d, entropy, _ = PAPER[task]
    c = stac_configs.get_config(f"paper_{task}")
    assert stac_configs.PAPER_TASKS[task]["target_entropy"] == entropy
    try:
        seeds, progs = ex.validate(c)
    except ValueError as e:
        if task == "swimmer" and "building 'brax/swimmer' failed" in str(e):
            pytest.xfail(f"Brax swimmer does not build with the installed jax: {e}")
        raise
    assert seeds == [0, 1, 2, 3, 4]
    assert [p.variant for p in progs] == ["stac", "sac", "estac", "dsac"]
    for p in progs:
        cfg = p.cfg
        assert (cfg.env_name, cfg.total_env_steps, cfg.warmup_steps, cfg.buffer_size) == (
            f"brax/{task}", steps, 10_000, 1_000_000)
        assert (cfg.actor_hidden, cfg.critic_hidden, cfg.batch_size) == ((256, 256),
                                                                        (256, 256), 256)
        assert (cfg.actor_lr, cfg.critic_lr, cfg.alpha_lr, cfg.alpha_init) == (3e-4, 3e-4,
                                                                              3e-4, 0.2)
        assert (cfg.tau, cfg.gamma, cfg.target_entropy, cfg.alpha_update) == (
            0.005, 0.99, entropy, "reference")
        assert (cfg.eval_episodes, cfg.bias_states) == (1, 0)
    stac = progs[0]
    assert stac.grid == {"beta": (beta,)} and stac.labels == {"stac": {"beta": beta}}
    assert (stac.cfg.actor_dropout, stac.cfg.critic_dropout) == (actor_d, critic_d)
    assert (progs[3].cfg.num_quantiles, progs[3].cfg.kappa, progs[3].cfg.dsac_target) == (
        25, 1.0, "elementwise_min")
    assert int(c.eval_every) == 1000


def test_cli_user_error_is_one_line_with_exit_status_2(tmp_path):
    import subprocess
    import sys

    from conftest import ROOT

    w = tmp_path / "w"
    r = subprocess.run([sys.executable, "-m", "experiments.stac",
                        "--config=experiments/configs/stac.py:tiny", f"--workdir={w}",
                        "--config.betas=(0.0,-1.0)"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: config.betas must be finite and in [0, inf), got -1.0 "
                      "(Pendulum-v1/stac program)"]
    assert "Traceback" not in r.stderr and not w.exists()
