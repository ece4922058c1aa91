"""RiskyPointMass dynamics and the bias estimators' soft returns against hand/NumPy references."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.envs.risky_point_mass import EnvState, make_risky_point_mass
from jaxrl.stac.bias import soft_returns_backward


def test_risky_point_mass_reward_move_and_termination():
    env, p = make_risky_point_mass()
    s = EnvState(pos=jnp.array([0.9, 0.2]), time=0)
    obs, s2, r, term, info = env.step_env(jax.random.PRNGKey(0), s, jnp.array([1.0, -0.5]), p)
    np.testing.assert_allclose(float(r), -np.hypot(0.9, 0.2) - 0.1, rtol=1e-6)  # outside disc
    assert float(info["danger"]) == 0.0 and not bool(term)
    assert 1.0 - 0.1 * 0.02 - 1e-6 <= float(obs[0]) <= 1.0  # 0.9 + 0.1 (1 + slip), clipped at 1
    assert abs(float(obs[1]) - 0.15) <= 0.1 * 0.02 + 1e-6
    g = EnvState(pos=jnp.array([0.02, 0.03]), time=5)
    _, _, r, term, _ = env.step_env(jax.random.PRNGKey(1), g, jnp.zeros(2), p)
    assert bool(term)
    np.testing.assert_allclose(float(r), -np.hypot(0.02, 0.03) - 0.1, rtol=1e-6)


def test_risky_point_mass_penalty_probability_and_safe_starts():
    env, p = make_risky_point_mass()
    pos = jnp.array([0.6, 0.55])  # inside the disc
    d2 = 0.1**2 + 0.05**2
    prob = 0.1 * np.exp(-4 * d2 / 0.3**2)
    keys = jax.random.split(jax.random.PRNGKey(0), 40_000)
    s = EnvState(pos=pos, time=0)
    _, _, r, _, info = jax.vmap(lambda k: env.step_env(k, s, jnp.zeros(2), p))(keys)
    hits = np.asarray(info["penalty"])
    assert np.all(np.asarray(info["danger"]) == 1.0)
    se = np.sqrt(prob * (1 - prob) / len(keys))
    assert abs(hits.mean() - prob) < 4 * se
    np.testing.assert_allclose(np.asarray(r)[hits == 1] - np.asarray(r)[hits == 0][0], -10.0,
                               rtol=1e-5)
    starts, _ = jax.vmap(lambda k: env.reset(k, p))(jax.random.split(jax.random.PRNGKey(1), 2000))
    starts = np.asarray(starts)
    assert np.all(np.hypot(starts[:, 0] - 0.5, starts[:, 1] - 0.5) > 0.3)
    assert starts.min() >= 0.3 and starts.max() <= 1.0


def test_soft_returns_backward_matches_numpy_loop():
    rng = np.random.default_rng(0)
    T, gamma, alpha = 12, 0.9, 0.3
    r, lp, boot = rng.normal(size=T), rng.normal(size=T), rng.normal(size=T)
    term = np.zeros(T)
    last = np.zeros(T)
    last[-1] = 1.0
    term[5] = 1.0  # an episode ends after step 5; a new stream starts at 6 (auto-reset)
    y = np.zeros(T)
    g_next = 0.0
    for t in reversed(range(T)):
        g = 0.0 if term[t] else (boot[t] if last[t] else g_next)
        y[t] = r[t] + gamma * g
        g_next = y[t] - alpha * lp[t]
    got = soft_returns_backward(*(jnp.asarray(x, jnp.float32) for x in (r, lp, term, last, boot)),
                                gamma, alpha)
    np.testing.assert_allclose(np.asarray(got), y, rtol=1e-5, atol=1e-5)


def test_reference_bias_of_one_episode_by_hand():
    """The reference code's estimator (rlwarehouse/agent.py `Agent.eval`): V_t = q_t - alpha
    logp_t, G_{T-1} = V_{T-1}, G_t = r_t - alpha logp_t + gamma G_{t+1}, bias = mean(V - G)."""
    from jaxrl.stac.bias import reference_bias_from_episode

    q, r, lp = jnp.array([1.0, 2.0, 3.0]), jnp.full(3, 0.5), jnp.array([0.1, 0.2, 0.3])
    # V = (0.95, 1.9, 2.85); G2 = 2.85; G1 = 0.5 - 0.1 + 0.9 * 2.85 = 2.965;
    # G0 = 0.5 - 0.05 + 0.9 * 2.965 = 3.1185; errors (-2.1685, -1.065, 0) -> mean -1.0778333
    got = reference_bias_from_episode(q, r, lp, jnp.ones(3), 0.9, 0.5)
    np.testing.assert_allclose(float(got), -3.2335 / 3, rtol=1e-5)
    # an episode that ends after step 1 (step 2 is padding): G1 = V1 = 1.9, G0 = 0.45 + 1.71
    got = reference_bias_from_episode(q, r, lp, jnp.array([1.0, 1.0, 0.0]), 0.9, 0.5)
    np.testing.assert_allclose(float(got), (0.95 - 2.16 + 0.0) / 2, rtol=1e-5)


def test_reference_bias_uses_the_twin_average_and_is_in_the_evaluation():
    """`bias_reference` is measured on the evaluation episodes with the AVERAGE of the twins
    (the reference's `0.5 * (q1 + q2)`), ours with their min; `evaluate` without gamma keeps
    its old outputs."""
    from jaxrl.stac import STACConfig, evaluate, make_learner
    from jaxrl.stac import networks as nets

    L = make_learner(STACConfig(variant="sac", actor_hidden=(8,), critic_hidden=(8,),
                                total_env_steps=300, warmup_steps=100, buffer_size=300))
    mu = jnp.array([[1.0, -2.0], [3.0, 0.0]])
    np.testing.assert_allclose(np.asarray(L.q_reference(mu)), [2.0, -1.0])
    np.testing.assert_allclose(np.asarray(L.q_estimate(mu)), [1.0, -2.0])
    o0, a0, z = jnp.zeros((1, L.obs_dim)), jnp.zeros((1, L.action_dim)), jnp.zeros(())

    @jax.jit
    def run(key):
        actor = L.actor.init(jax.random.PRNGKey(0), o0, z, False)
        critic = nets.init_stacked(L.critic, jax.random.PRNGKey(1), 2, o0, a0, z, False)
        from jaxrl.stac.stac import AgentState

        state = AgentState(actor, critic, critic, None, None, jnp.log(0.2), None, None, None,
                           None, None, None)
        return evaluate(L, state, key, 2, gamma=0.99), evaluate(L, state, key, 2)

    with_b, without = run(jax.random.PRNGKey(3))
    assert sorted(with_b) == ["bias_reference", "danger_frac", "return"]
    assert sorted(without) == ["danger_frac", "return"]
    assert float(with_b["return"]) == float(without["return"])  # same episodes
    assert np.isfinite(float(with_b["bias_reference"]))
