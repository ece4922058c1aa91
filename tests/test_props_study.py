"""experiments/props_study.py: programs, validation and the summary's statistics (no runs)."""

from __future__ import annotations

import numpy as np
import pytest

from experiments import props_study as ps
from experiments.configs import props_study as cfgs


def test_programs_cover_the_ratios_fixed_target_and_one_grid_program():
    seeds, progs = ps.validate(cfgs.get_config())
    assert seeds == list(range(16))
    names = [p.name for p in progs]
    assert names == ["ppo_buffer", "fixed_target", "ratio_2", "ratio_4", "ratio_8", "ratio_16",
                     "grid", "fixed_grid"]
    by = {p.name: p for p in progs}
    assert [by[f"ratio_{k}"].cfg.props_num_steps for k in (2, 4, 8, 16)] == [128, 64, 32, 16]
    assert by["fixed_target"].cfg.lr == 0.0 and by["fixed_target"].cfg.props_num_steps == 64
    assert by["ppo_buffer"].cfg.behavior == "none"
    # the authors' Hopper PROPS settings on the ratio programs
    c = by["ratio_8"].cfg
    assert (c.props_lr, c.props_target_kl, c.props_kl_coef, c.lr) == (1e-3, 0.05, 0.3, 1e-3)
    g = by["grid"].grid
    assert set(g) == {"props_lr", "props_target_kl", "props_kl_coef"}
    assert np.prod([len(v) for v in g.values()]) == 8  # one compiled program, 8 points
    f = by["fixed_grid"]
    assert f.cfg.lr == 0.0 and f.cfg.props_num_steps == 64 and len(f.grid["props_lr"]) == 2


@pytest.mark.parametrize("task,env", [("acrobot", "Acrobot-v1"), ("pendulum", "Pendulum-v1")])
def test_other_task_variants_keep_the_ratio_settings_on_their_env(task, env):
    _, progs = ps.validate(cfgs.get_config(task))
    assert [p.name for p in progs] == ["ppo_buffer", "fixed_target", "ratio_2", "ratio_4",
                                       "ratio_8", "ratio_16", "grid"]
    assert {p.cfg.env_name for p in progs} == {env}
    c = {p.name: p for p in progs}["ratio_8"].cfg
    assert (c.props_lr, c.props_target_kl, c.props_kl_coef, c.props_num_steps) == (
        1e-3, 0.05, 0.3, 32)


@pytest.mark.parametrize("field,value,match", [
    ("ratios", (3,), r"^config\.ratios must be positive integers dividing"),
    ("grid_ratio", 0, r"^config\.grid_ratio must be positive"),
    ("num_seeds", 0, r"^config\.num_seeds must be >= 1"),
])
def test_bad_config_is_one_line(field, value, match):
    c = cfgs.get_config()
    c[field] = value
    with pytest.raises(ValueError, match=match):
        ps.validate(c)


def test_summary_statistics_against_hand_values():
    # 4 seeds: PROPS's errors all below every reference value -> P = 1; reference all below
    # -> P = 0; IQM of 4 values = mean of the middle two.
    rows = []
    for se, ref, ret in [(1.0, 5.0, 10.0), (2.0, 6.0, 20.0), (3.0, 7.0, 30.0), (4.0, 8.0, 40.0)]:
        rows.append({"label": "ratio_4", "lr": 1e-3, "se": se, "ref_se": ref,
                     "mean_return": ret, "final_return": ret})
        rows.append({"label": "ppo_buffer", "lr": 1e-3, "se": ref, "ref_se": se,
                     "mean_return": ret - 100.0, "final_return": ret + 100.0})
    s = ps.summarize(rows)
    assert s["ratio_4"]["p_se_below_ref"][0] == 1.0
    assert s["ppo_buffer"]["p_se_below_ref"][0] == 0.0
    assert s["ratio_4"]["se"][0] == 2.5 and s["ratio_4"]["ref_se"][0] == 6.5
    np.testing.assert_allclose(s["ratio_4"]["se_ratio_iqm"], 2.5 / 6.5)
    assert s["ratio_4"]["p_mean_return_above_ppo_buffer"][0] == 1.0
    assert s["ratio_4"]["p_final_return_above_ppo_buffer"][0] == 0.0
    assert "p_mean_return_above_ppo_buffer" not in s["ppo_buffer"]
    assert "| ratio_4 | 2.5 [" in ps.table(s)


def test_props_experiment_reports_claim1_against_the_reference():
    # experiments/props.py: PROPS's error half its own reference on every run and update
    # (after the first, unfilled update, which must be left out) -> ratio 0.5 and P = 1.
    from experiments import props as ex

    T, S = 5, 4
    se = np.full((S, T), 1.0)
    ref = np.full((S, T), 2.0)
    se[:, 0], ref[:, 0] = 100.0, 0.0  # update 1: buffer not full, excluded (b = 2)
    ret = np.tile(np.arange(T, dtype=float), (S, 1))
    r = {"timings": {},
         "PROPS": {"b": 2, "sampling_error": se, "ref_sampling_error": ref, "return": ret,
                   "summary": {}},
         "PPO-Buffer": {"b": 2, "sampling_error": se * 3, "return": ret, "summary": {}}}
    s = ex.summarize_env(r)
    np.testing.assert_allclose(s["claim1_se_ratio_props_over_reference"], 0.5)
    assert s["claim1_p_se_below_reference"][0] == 1.0
    np.testing.assert_allclose(s["claim1_se_ratio_props_over_buffer"], 1 / 3)
