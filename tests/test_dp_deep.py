"""Tests of the stock-augmented deep agent (DηN): replay buffer, greedy-by-objective action
selection, the finite-horizon tasks, vmapped == single seed, and a tiny learning check that fails
if the objective were ignored."""

from __future__ import annotations

import dataclasses
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl import experiment, sweep
from jaxrl.distributions import Categorical, Quantile
from jaxrl.dp import deep
from jaxrl.envs import gamble as gamble_envs
from jaxrl.replay import replay_add, replay_init, replay_sample

NP_UTILITIES = {
    "mean": lambda x: x,
    "cvar": lambda x: np.minimum(x, 0.0),
    "homeostatic": lambda x: -np.abs(x),
    "threshold": lambda x: (x >= 0).astype(np.float64),
}


# ---------------------------------------------------------------------------------------------
# Replay buffer vs a NumPy ring buffer.
# ---------------------------------------------------------------------------------------------


def test_replay_add_matches_numpy_ring_buffer():
    cap = 7
    rng = np.random.default_rng(0)
    example = {"x": np.zeros((3,), np.float32), "a": np.zeros((), np.int32)}
    state = replay_init(example, cap)
    ref_x, ref_a = np.zeros((cap, 3), np.float32), np.zeros((cap,), np.int32)
    pos = size = 0
    for n in (3, 1, 5, 7, 2, 4):
        batch = {"x": rng.normal(size=(n, 3)).astype(np.float32),
                 "a": rng.integers(0, 100, size=n).astype(np.int32)}
        state = replay_add(state, jax.tree.map(jnp.asarray, batch))
        for i in range(n):  # reference: one item at a time
            ref_x[pos], ref_a[pos] = batch["x"][i], batch["a"][i]
            pos = (pos + 1) % cap
            size = min(size + 1, cap)
        np.testing.assert_array_equal(np.asarray(state.data["x"]), ref_x)
        np.testing.assert_array_equal(np.asarray(state.data["a"]), ref_a)
        assert int(state.pos) == pos and int(state.size) == size


def test_replay_sample_is_uniform_over_stored_items():
    cap = 10
    state = replay_init(jnp.zeros((), jnp.float32), cap)
    state = replay_add(state, jnp.arange(4, dtype=jnp.float32) + 1.0)  # 4 of 10 slots used
    out = np.asarray(replay_sample(state, jax.random.PRNGKey(0), 20_000))
    assert set(np.unique(out)) == {1.0, 2.0, 3.0, 4.0}  # never the empty slots
    freq = np.bincount(out.astype(int), minlength=5)[1:] / out.size
    np.testing.assert_allclose(freq, 0.25, atol=0.015)  # ~5 sigma of a binomial
    with pytest.raises(ValueError, match="exceeds the capacity"):
        replay_add(state, jnp.zeros((11,)))


def test_replay_under_vmap_equals_single():
    state = replay_init(jnp.zeros((2,)), 5)
    batches = jnp.arange(2 * 3 * 2, dtype=jnp.float32).reshape(2, 3, 2)
    states = jax.vmap(lambda b: replay_add(state, b))(batches)
    for i in range(2):
        single = replay_add(state, batches[i])
        np.testing.assert_array_equal(np.asarray(states.data[i]), np.asarray(single.data))


# ---------------------------------------------------------------------------------------------
# Greedy action by the objective applied to c + Z.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("objective", sorted(NP_UTILITIES))
@pytest.mark.parametrize("critic", ["quantile", "categorical"])
def test_greedy_action_matches_numpy(objective, critic):
    rng = np.random.default_rng(1)
    batch, actions, k = 64, 4, 11
    stock = rng.uniform(-3, 3, size=batch)
    if critic == "quantile":
        atoms = np.sort(rng.normal(size=(batch, actions, k)) * 2.0, axis=-1)
        probs = np.full(atoms.shape, 1.0 / k)
        dist = Quantile(jnp.asarray(atoms, jnp.float32))
    else:
        support = np.linspace(-5, 5, k)
        probs = rng.dirichlet(np.ones(k), size=(batch, actions))
        atoms = np.broadcast_to(support, probs.shape)
        dist = Categorical(jnp.asarray(support, jnp.float32), jnp.asarray(probs, jnp.float32))
    # the stocks put c + z exactly at 0 nowhere (threshold ties are measure-zero here)
    ref_vals = (probs * NP_UTILITIES[objective](stock[:, None, None] + atoms)).sum(-1)
    f = deep.OBJECTIVES[objective]
    vals = np.asarray(deep.objective_values(dist, jnp.asarray(stock, jnp.float32), f))
    np.testing.assert_allclose(vals, ref_vals, rtol=1e-5, atol=1e-5)
    got = np.asarray(deep.greedy_action(dist, jnp.asarray(stock, jnp.float32), f))
    # where the top two values are not (numerically) tied, the argmax must agree
    top2 = np.sort(ref_vals, axis=-1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-4
    assert clear.sum() > batch // 2
    np.testing.assert_array_equal(got[clear], np.argmax(ref_vals, axis=-1)[clear])


def test_greedy_action_hand_made_gamble():
    # action 0: Z = 3 surely; action 1: Z = 12 or -6 w.p. 1/2 (mean 3 + 0.01 to break the tie).
    dist = Quantile(jnp.array([[3.0, 3.0], [-6.0, 12.02]]))
    pick = lambda obj, c: int(deep.greedy_action(dist, jnp.asarray(c), deep.OBJECTIVES[obj]))
    assert pick("mean", 0.0) == 1  # E Z: 3 < 3.01
    assert pick("cvar", -3.0) == 0  # E min(Z - 3, 0): 0 > -4.5
    assert pick("cvar", -13.0) == 1  # a high b favours the gamble: -10 < (-19 + 0) / 2
    assert pick("homeostatic", -3.0) == 0  # E|Z - 3|: 0 < 9
    assert pick("threshold", -10.0) == 1  # P(Z >= 10): 0 < 1/2
    assert pick("threshold", 0.0) == 0  # P(Z >= 0): 1 > 1/2


def test_objective_index_selects_the_utility():
    x = jnp.linspace(-2, 2, 9)
    u = deep.make_utility(("mean", "cvar", "homeostatic"))
    for i, name in enumerate(("mean", "cvar", "homeostatic")):
        np.testing.assert_allclose(
            u(x, {"objective_index": jnp.float32(i)}), deep.OBJECTIVES[name](x)
        )


def test_refused_and_bad_config_fail_clearly():
    with pytest.raises(ValueError, match="not an expected utility"):
        deep.check_objective("mean_variance")
    with pytest.raises(ValueError, match="outer max over b"):
        deep.check_objective("cvar_per_step")
    cfg = dataclasses.replace(_config(num_updates=10), num_atoms=0)
    with pytest.raises(ValueError, match=r"config\.num_atoms must be an integer >= 1, got 0"):
        deep.make_deep_dn(cfg)
    cfg = dataclasses.replace(_config(num_updates=10), critic="mixture")
    with pytest.raises(ValueError, match=r"config\.critic"):
        deep.make_deep_dn(cfg)
    with pytest.raises(ValueError, match=r"^config\.num_atoms must be an integer >= 2 for the "):
        deep.make_deep_dn(dataclasses.replace(_config(10), critic="categorical", num_atoms=1))


def test_hparams_come_from_the_marks_and_swept_values_are_checked():
    # The sweepable floats (the old hand-kept DEFAULT_HPARAMS names and values).
    expected = {"lr": 1e-3, "gamma": 1.0, "eps_start": 1.0, "eps_end": 0.05,
                "eps_decay_frac": 0.5, "target_tau": 0.01, "huber_kappa": 1.0, "v_min": -10.0,
                "v_max": 10.0, "stock_low": -5.0, "stock_high": 5.0, "stock_scale": 0.1,
                "max_grad_norm": 10.0, "objective_index": 0.0, "carry_stock": 1.0}
    algo = deep.make_deep_dn(deep.DeepDNConfig(num_updates=10))
    assert algo.hparams == pytest.approx(expected) and set(algo.hparams) == set(expected)
    cfg = _config(num_updates=10)
    with pytest.raises(ValueError, match=r"^config\.sweep\.gamma must be finite and in "
                                         r"\(0, 1\], got 1\.5$"):
        deep.validate_config(cfg, {"gamma": (0.9, 1.5)})
    with pytest.raises(ValueError, match=r"^config\.sweep\.v_max must be > v_min \(-8\)"):
        deep.validate_config(cfg, {"v_max": (14.0, -9.0)})
    with pytest.raises(ValueError, match=r"^config\.sweep\.objective_index must be <= 1"):
        deep.validate_config(cfg, {"objective_index": (0.0, 1.0, 2.0)})
    with pytest.raises(ValueError, match="not a sweepable field"):
        deep.validate_config(cfg, {"num_atoms": (4.0,)})
    assert deep.validate_config(cfg, {"objective_index": (0.0, 1.0)}) == cfg


def test_empirical_cvar_and_b_selection_match_numpy():
    rng = np.random.default_rng(3)
    g = rng.normal(size=(200,)).astype(np.float32)
    alpha = 0.1  # 20 worst samples exactly
    ref = np.sort(g)[:20].mean()
    np.testing.assert_allclose(float(deep.empirical_cvar(jnp.asarray(g), alpha)), ref, rtol=1e-5)
    # Rockafellar-Uryasev over a grid containing the samples: max_b b + E[min(g - b, 0)]/alpha.
    b_grid = np.sort(g)
    inner = np.minimum(g[None, :] - b_grid[:, None], 0).mean(1)
    b, val = deep.select_cvar_b(jnp.asarray(inner), jnp.asarray(b_grid), alpha)
    np.testing.assert_allclose(float(val), ref, rtol=1e-4)
    np.testing.assert_allclose(float(b), np.sort(g)[19], rtol=1e-6)  # the alpha-VaR


# ---------------------------------------------------------------------------------------------
# Environments.
# ---------------------------------------------------------------------------------------------


def test_gamble_env_dynamics():
    env, params = gamble_envs.gamble()
    keys = jax.random.split(jax.random.PRNGKey(0), 4000)
    obs, st = jax.vmap(env.reset, in_axes=(0, None))(keys, params)
    np.testing.assert_array_equal(np.asarray(obs[0]), [1, 0, 0, 1, 0, 0])  # s0, t = 0
    step = jax.vmap(env.step, in_axes=(0, 0, None, None))
    _, st1, r, term, _, _ = step(keys, st, 1, params)
    assert set(np.unique(np.asarray(r))) == {-2.0, 4.0}
    assert abs(float(jnp.mean(r == 4.0)) - 0.6) < 0.03
    assert not bool(term.any())
    _, st2, r, _, _, _ = step(keys, st1, 0, params)
    np.testing.assert_array_equal(np.asarray(r), 1.0)
    _, _, _, term, trunc, info = step(keys, st2, 0, params)
    assert bool(term.all()) and bool(trunc.all())
    np.testing.assert_array_equal(np.asarray(info["final_observation"][0, 3:]), 0.0)
    with pytest.raises(ValueError, match="p_win"):
        gamble_envs.gamble_mdp(p_win=1.5)


def test_registered_envs_are_plain_and_the_agent_wraps_them():
    from jaxrl import envs
    from jaxrl.envs.stock import StockAugmentation

    for name, size in (("Gamble-v0", 3 + 3), ("Homeostasis-v0", 3 + 6)):
        env, params = envs.make(name)
        obs, _ = env.reset(jax.random.PRNGKey(0), params)
        assert obs.shape == (size,)  # one_hot(s), one_hot(t): no stock
        assert env.default_params is params
        wrapped, inner_params = deep.make_env(name)
        assert isinstance(wrapped, StockAugmentation) and inner_params.P.shape == params.P.shape
        sp = deep.stock_params(inner_params, -2.5, -2.5, 1.0)
        obs, st = wrapped.reset(jax.random.PRNGKey(1), sp)
        assert obs.shape == (size + 1,) and float(obs[-1]) == -2.5
        obs2, _, r, _, _, _ = wrapped.step(jax.random.PRNGKey(2), st, 1, sp)
        np.testing.assert_allclose(float(obs2[-1]), -2.5 + float(r), atol=1e-6)


def test_homeostasis_mdp_rewards_and_probs():
    m = gamble_envs.homeostasis_mdp(horizon=4)
    np.testing.assert_allclose(m["P"].sum(-1), 1.0)
    for s, a, s2 in itertools.product(range(3), repeat=3):
        assert m["R"][s, a, s2] == (a - 1) + (s2 - 1)
    with pytest.raises(ValueError, match="disturbance_probs"):
        gamble_envs.homeostasis_mdp(disturbance_probs=(0.5, 0.5, 0.5))


# ---------------------------------------------------------------------------------------------
# The agent: vmapped seeds, and learning that depends on the objective.
# ---------------------------------------------------------------------------------------------


def _config(num_updates: int, objective=("mean", "cvar"), critic="quantile", **kw):
    fields = dict(env_name="Gamble-v0", env_kwargs={}, critic=critic, objective=objective,
                  num_atoms=8, hidden=(32, 32), num_envs=8, buffer_size=2000, batch_size=32,
                  learning_starts=64, num_updates=num_updates, stock_low=-10.0, stock_high=6.0,
                  v_min=-8.0, v_max=14.0)
    return deep.DeepDNConfig(**{**fields, **kw})


def test_vmapped_seed_equals_single_seed():
    # categorical critic here; the quantile critic is exercised by the learning test below
    cfg = _config(num_updates=24, critic="categorical", learning_starts=16)
    algo = deep.make_deep_dn(cfg)
    res = sweep.run(algo, seeds=[0, 1, 2], grid={"objective_index": [1.0]}, chunk_size=24,
                    progress=False)
    state, metrics = jax.jit(sweep.make_train(algo))(
        jax.random.PRNGKey(2), {"objective_index": 1.0}
    )
    for name in ("loss", "episode_return"):
        np.testing.assert_allclose(res.metrics[name][2], np.asarray(metrics[name]),
                                   rtol=1e-4, atol=1e-5)
    assert np.any(res.metrics["loss"][2] > 0)  # learning happened in the compared window
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(np.asarray(a[2]), np.asarray(b), rtol=1e-4,
                                                atol=1e-5),
        res.state.algo.params, state.params,
    )
    # The stock comes from the StockAugmentation wrapper: in every stored transition the next
    # stock is c + r (gamma = 1), and at t = 0 it lies in [stock_low, stock_high].
    buf = jax.tree.map(lambda x: np.asarray(x[2]), res.state.algo.buffer)
    n = int(buf.size)
    assert n == 24 * cfg.num_envs
    d = buf.data
    np.testing.assert_allclose(d.next_obs[:n, -1], d.obs[:n, -1] + d.reward[:n], atol=1e-5)
    first = d.obs[:n, 3] == 1.0  # time one-hot t = 0 (3 gamble states, then H = 3 time slots)
    c0 = d.obs[:n, -1][first]
    assert first.sum() >= cfg.num_envs and np.all((c0 >= -10.0) & (c0 <= 6.0))
    assert np.std(c0) > 1.0  # drawn, not fixed
    # terminal transitions end at t = H with an all-zero time part
    term = d.terminated[:n] == 1.0
    assert term.sum() > 0 and np.all(d.next_obs[:n][term][:, 3:6] == 0.0)


def test_cvar_agent_plays_safe_mean_agent_gambles():
    """Closed form: on the H = 3 gamble (safe +1; risky +4 / -2 w.p. 0.6 / 0.4) any policy that
    gambles on a path of probability q puts mass >= 0.4 q on a loss, and the lower tail below
    level 0.2 of always-gambling is -1.92, so CVaR_0.2 is maximized only by never gambling
    (G = 3 surely, CVaR = 3); the risk-neutral optimum always gambles (E G = 4.8).

    The agents are evaluated by the runtime (`Algorithm.evaluate`, once at the end); the same
    evaluation written out from `make_evaluate`'s rollout and estimate, with the runtime's key,
    is the reference for the evaluation's wiring."""
    cfg = _config(num_updates=700)
    b_grid = jnp.arange(-6.0, 13.0)
    evaluate = deep.make_greedy_evaluate(cfg, 500, cvar_alpha=0.2, b_grid=b_grid, num_states=4)
    algo = deep.make_deep_dn(cfg)._replace(evaluate=evaluate)
    res = sweep.run(algo, seeds=[0], grid={"objective_index": [0.0, 1.0]}, chunk_size=700,
                    eval_every=700, progress=False)
    assert res.eval_steps.tolist() == [700]
    ev = {k: v[:, -1] for k, v in res.evals.items()}
    mean_agent, cvar_agent = 0, 1
    assert float(ev["action_0_fraction"][cvar_agent]) > 0.95, ev
    assert float(ev["action_0_fraction"][mean_agent]) < 0.05, ev
    assert abs(float(ev["cvar"][cvar_agent]) - 3.0) <= 0.3  # within 10% of the exact optimum 3
    assert float(ev["cvar"][mean_agent]) < 0.0
    assert float(ev["mean_return"][mean_agent]) > 4.0  # near the risk-neutral optimum 4.8

    # reference: the evaluation spelled out (key of seed 0, evaluation index 0, for both runs)
    rollout, predicted = deep.make_evaluate(cfg)
    key = jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(0), experiment.EVAL_STREAM), 0)

    def reference(params, hp):
        k_pred, k_roll = jax.random.split(key)
        vals = jax.vmap(lambda b: predicted(params, k_pred, hp, -b, 4))(b_grid)
        b_star, _ = deep.select_cvar_b(vals, b_grid, 0.2)
        c0 = jnp.where(hp["objective_index"] > 0.5, -b_star, 0.0)  # the CVaR agent only
        out = rollout(params, k_roll, hp, c0, 500)
        acts = out["actions"]
        safe = jnp.sum(acts == 0) / jnp.maximum(jnp.sum(acts >= 0), 1)
        return deep.empirical_cvar(out["returns"], 0.2), safe, out["returns"].mean(), b_star

    cv, safe, mean, b_star = jax.jit(jax.vmap(reference))(res.state.algo.params,
                                                           res.state.hparams)
    np.testing.assert_allclose(ev["cvar"], cv, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ev["action_0_fraction"], safe, rtol=1e-6)
    np.testing.assert_allclose(ev["mean_return"], mean, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(ev["b_star"], b_star)


def test_set_point_evaluation_stock_path_identities():
    """With gamma = 1 and c_0 = -t the stock after the last step is G - t, so E|c_H| is
    E|G - t| (`abs_dev`) and E|c_0| is t; the action shares sum to one (an untrained critic)."""
    cfg = dataclasses.replace(_config(num_updates=10, objective=("mean", "homeostatic")),
                              env_name="Homeostasis-v0", stock_low=-4.0, stock_high=3.0)
    algo = deep.make_deep_dn(cfg)
    evaluate = deep.make_greedy_evaluate(cfg, 200, set_point=1.0)
    hp = {k: jnp.float32(v) for k, v in algo.hparams.items()}
    state = algo.init(jax.random.PRNGKey(0), hp)
    out = jax.jit(evaluate)(state, jax.random.PRNGKey(1), {**hp, "objective_index": 1.0})
    horizon = 6
    assert sorted(k for k in out if k.startswith("stock_abs_t")) == sorted(
        f"stock_abs_t{t}" for t in range(horizon + 1))
    np.testing.assert_allclose(float(out["stock_abs_t0"]), 1.0, rtol=1e-6)
    np.testing.assert_allclose(float(out[f"stock_abs_t{horizon}"]), float(out["abs_dev"]),
                               rtol=1e-5)
    shares = sum(float(out[f"action_{a}_fraction"]) for a in range(3))
    np.testing.assert_allclose(shares, 1.0, rtol=1e-6)


def test_experiment_config_validation():
    from experiments import dp_deep
    from experiments.configs import dp_deep as cfgs

    for variant in ("", "quick", "tiny"):
        dp_deep.validate(cfgs.get_config(variant))
    bad = cfgs.get_config("quick")
    bad.num_seeds = 0
    with pytest.raises(ValueError, match=r"^config\.num_seeds must be >= 1, got 0$"):
        dp_deep.validate(bad)
    bad = cfgs.get_config("quick")
    bad.gamble.objective = ("mean", "threshold")
    with pytest.raises(ValueError, match=r"config\.gamble\.objective"):
        dp_deep.validate(bad)
    bad = cfgs.get_config("quick")
    bad.gamble.gamma = 1.5  # out of the mark's bounds: one line, before anything is written
    with pytest.raises(ValueError, match=r"^config\.gamble\.gamma must be finite and in "
                                         r"\(0, 1\], got 1\.5$"):
        dp_deep.validate(bad)
    bad = cfgs.get_config("quick")
    bad.tasks = ("gamble", "gamble")
    with pytest.raises(ValueError, match=r"^config\.tasks must be distinct"):
        dp_deep.validate(bad)
    with pytest.raises(ValueError, match="unknown config variant"):
        cfgs.get_config("huge")


def test_stock_is_needed_on_the_stock_necessity_task():
    """Closed forms (`jaxrl.envs.gamble.stock_necessity_mdp`): P(G >= 1) is 0.75 for the best
    stock policy and at most 0.5 for any policy of (state, time). The same agent (network,
    objective, c_0 = -0.5: the returns are odd integers, so G >= 0.5 iff G >= 1) reaches ~0.75
    with the stock and stays at ~0.5 with the stock frozen at c_0 (`carry_stock = 0`); 1000
    evaluation episodes, binomial sd ~0.014."""
    cfg = deep.DeepDNConfig(env_name="StockNecessity-v0", critic="quantile", objective="threshold",
                            num_atoms=8, hidden=(32, 32), num_envs=8, buffer_size=2000,
                            batch_size=64, learning_starts=128, num_updates=600,
                            stock_low=-3.0, stock_high=1.0, v_min=-4.0, v_max=4.0,
                            stock_scale=0.5)
    algo = deep.make_deep_dn(cfg)._replace(
        evaluate=deep.make_greedy_evaluate(cfg, 1000, threshold=0.5))
    res = sweep.run(algo, seeds=[0, 1], grid={"carry_stock": [1.0, 0.0]}, chunk_size=600,
                    eval_every=600, progress=False)
    success = {(r["seed"], r["carry_stock"]): float(s)
               for r, s in zip(res.runs, res.evals["success"][:, -1], strict=True)}
    for seed in (0, 1):
        assert success[(seed, 1.0)] >= 0.70, success
        assert success[(seed, 0.0)] <= 0.55, success
