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
