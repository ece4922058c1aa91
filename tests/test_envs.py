"""The gymnax adapter: episode statistics, truncation vs termination, normalization, names."""

import dataclasses

import chex
import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct
from gymnax.environments import environment, spaces

from jaxrl import envs, ppo


@struct.dataclass
class _State(environment.EnvState):
    pos: jax.Array
    time: int


@struct.dataclass
class _Params(environment.EnvParams):
    max_steps_in_episode: int = 2


class TwoStep(environment.Environment):
    """Never terminates; reward 1 per step; truncated after 2 steps. Observation = [pos]."""

    @property
    def default_params(self):
        return _Params()

    def step_env(self, key, state, action, params):
        state = _State(pos=state.pos + 1.0, time=state.time + 1)
        return self.get_obs(state), state, jnp.float32(1.0), jnp.bool_(False), {}

    def reset_env(self, key, params):
        state = _State(pos=jnp.float32(0.0), time=0)
        return self.get_obs(state), state

    def get_obs(self, state, params=None, key=None):
        return jnp.array([state.pos])

    def is_terminated(self, state, params):
        return jnp.bool_(False)

    def action_space(self, params=None):
        return spaces.Discrete(2)

    def observation_space(self, params):
        return spaces.Box(-10.0, 10.0, (1,), jnp.float32)


def test_truncation_is_not_termination_and_final_obs_is_kept():
    env = envs.LogWrapper(TwoStep())
    params = env.default_params
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    out = []
    for _ in range(4):
        obs, state, r, term, trunc, info = env.step(jax.random.PRNGKey(1), state, 0, params)
        out.append((float(obs[0]), bool(term), bool(trunc), float(info["final_observation"][0]),
                    bool(info["returned_episode"]), float(info["returned_episode_returns"])))
    # Step 2 truncates: obs is the reset one (0), the final observation is 2, return 2.
    assert out[1] == (0.0, False, True, 2.0, True, 2.0)
    assert out[3] == (0.0, False, True, 2.0, True, 2.0)
    assert out[0][:3] == (1.0, False, False)


def test_gae_bootstraps_at_truncation_hand_computed():
    # Rollout of 4 steps on TwoStep with gamma=0.9, lam=1; V(s) = 10 = 1/(1-gamma), the true
    # value of the never-ending reward-1 process. With correct bootstrapping every target is
    # exactly r + gamma * 10 = 10 (a fixed point); treating truncation as termination gives 1.
    g = 0.9
    T = 4
    rewards = jnp.ones(T)
    values = jnp.full(T, 10.0)
    final_values = jnp.full(T, 10.0)
    trunc = jnp.array([False, True, False, True])
    term = jnp.zeros(T, bool)
    adv, targets = ppo.gae(rewards, values, jnp.float32(10.0), final_values, term, trunc, g, 1.0)
    np.testing.assert_allclose(targets, 10.0, rtol=1e-6)
    np.testing.assert_allclose(adv, 0.0, atol=1e-5)
    # Termination (not truncation) cuts the bootstrap: target = r = 1 at those steps.
    _, t2 = ppo.gae(rewards, values, jnp.float32(10.0), final_values, trunc, term, g, 1.0)
    np.testing.assert_allclose(t2, [1 + g * 1.0, 1.0, 1 + g * 1.0, 1.0], rtol=1e-6)


def test_gae_matches_numpy_reference():
    rng = np.random.default_rng(0)
    T, N = 12, 3
    r, v, fv = rng.normal(size=(T, N)), rng.normal(size=(T, N)), rng.normal(size=(T, N))
    nv = rng.normal(size=N)
    term, trunc = rng.random((T, N)) < 0.15, rng.random((T, N)) < 0.15
    g, lam = 0.97, 0.9
    adv_ref = np.zeros((T, N))
    nxt = np.zeros(N)
    for t in reversed(range(T)):
        v_next = nv if t == T - 1 else v[t + 1]
        tm = term[t].astype(float)
        tr = trunc[t] * (1 - tm)
        done = np.maximum(tm, tr)
        delta = r[t] + g * ((1 - done) * v_next + tr * fv[t]) - v[t]
        nxt = delta + g * lam * (1 - done) * nxt
        adv_ref[t] = nxt
    adv, ret = ppo.gae(*map(jnp.asarray, (r, v, nv, fv, term, trunc)), g, lam, unroll=4)
    np.testing.assert_allclose(adv, adv_ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ret, adv_ref + v, rtol=1e-5, atol=1e-5)


def test_log_wrapper_episode_returns_match_manual_sum():
    env, params = envs.make("CartPole-v1")
    venv = envs.VecEnv(envs.LogWrapper(env), 3)
    key = jax.random.PRNGKey(0)
    obs, state = venv.reset(key, params)
    running = np.zeros(3)
    seen = []
    for _ in range(60):
        key, k1, k2 = jax.random.split(key, 3)
        a = jax.random.randint(k1, (3,), 0, 2)
        obs, state, r, term, trunc, info = venv.step(k2, state, a, params)
        running += np.asarray(r)
        done = np.asarray(info["returned_episode"])
        for i in np.nonzero(done)[0]:
            assert float(info["returned_episode_returns"][i]) == pytest.approx(running[i])
            seen.append(running[i])
            running[i] = 0.0
    assert seen, "random CartPole episodes should end within 60 steps"


@struct.dataclass
class _CountState(environment.EnvState):
    left: jax.Array
    time: int


@struct.dataclass
class _CountParams(environment.EnvParams):
    gamma: float = 0.9
    max_steps_in_episode: int = 100


class Countdown(environment.Environment):
    """Terminates after `L ~ U{2, ..., 5}` steps (drawn at reset); reward `1 + time + 0.5 a`,
    so rewards differ within an episode and episodes differ in length. Observation = [left]."""

    @property
    def default_params(self):
        return _CountParams()

    def step_env(self, key, state, action, params):
        reward = 1.0 + state.time + 0.5 * action
        state = _CountState(left=state.left - 1, time=state.time + 1)
        return self.get_obs(state), state, jnp.float32(reward), state.left <= 0, {}

    def reset_env(self, key, params):
        state = _CountState(left=jax.random.randint(key, (), 2, 6), time=0)
        return self.get_obs(state), state

    def get_obs(self, state, params=None, key=None):
        return jnp.array([state.left], jnp.float32)

    def is_terminated(self, state, params):
        return state.left <= 0

    def action_space(self, params=None):
        return spaces.Discrete(2)

    def observation_space(self, params):
        return spaces.Box(0.0, 5.0, (1,), jnp.float32)


def _countdown_rollout(wrapper, params, steps=40, n=2):
    """Steps `VecEnv(wrapper, n)` (jit, params traced) with fixed keys and actions; per step
    the `(r, state, info)` outputs."""
    venv = envs.VecEnv(wrapper, n)
    step = jax.jit(venv.step)
    obs, state = venv.reset(jax.random.PRNGKey(0), params)
    out = []
    for t in range(steps):
        a = jax.random.randint(jax.random.PRNGKey(1000 + t), (n,), 0, 2)
        obs, state, r, term, trunc, info = step(jax.random.PRNGKey(t), state, a, params)
        out.append((obs, state, r, term, trunc, info))
    return out


@pytest.mark.parametrize("gamma", [0.9, 0.5])
def test_log_wrapper_discounted_return_matches_numpy_reference(gamma):
    """`G = sum_t gamma^t r_t` (t = 0 at the first step after a reset) of every episode, across
    auto-resets and episodes of different lengths; gamma is read from the params, a traced
    argument of the jitted step."""
    params = Countdown().default_params.replace(gamma=gamma)
    wrapper = envs.LogWrapper(Countdown(), gamma=lambda p: p.gamma)
    rewards, lengths = [[], []], [[], []]
    for *_, r, term, trunc, info in _countdown_rollout(wrapper, params):
        done = np.asarray(info["returned_episode"])
        np.testing.assert_array_equal(done, np.asarray(term) | np.asarray(trunc))
        for i in range(2):
            rewards[i].append(float(r[i]))
            if done[i]:
                rs = np.asarray(rewards[i], np.float64)
                ref = float(np.sum(gamma ** np.arange(len(rs)) * rs))
                got = float(info["returned_discounted_episode_returns"][i])
                assert got == pytest.approx(ref, rel=1e-6), (i, rs)
                assert float(info["returned_episode_returns"][i]) == pytest.approx(rs.sum())
                lengths[i].append(len(rs))
                rewards[i] = []
    assert min(len(x) for x in lengths) >= 3  # several auto-resets in each copy
    assert len(set(lengths[0] + lengths[1])) >= 2  # episodes of different lengths


def test_log_wrapper_without_gamma_keeps_the_undiscounted_path():
    """With `gamma` off the state is the plain `LogEnvState` (the checkpoint structure of PPO,
    PROPS and STAC) and the info has no discounted entry; every shared output is bit-identical
    to the discounted wrapper's, and with gamma = 1 the discounted return is the undiscounted
    one exactly."""
    params = Countdown().default_params
    off = _countdown_rollout(envs.LogWrapper(Countdown()), params)
    on = _countdown_rollout(envs.LogWrapper(Countdown(), gamma=1.0), params)
    fields = ("env_state", "episode_return", "episode_length", "returned_episode_return",
              "returned_episode_length")
    for (o0, s0, *rest0, i0), (o1, s1, *rest1, i1) in zip(off, on, strict=True):
        assert type(s0) is envs.wrappers.LogEnvState
        assert tuple(f.name for f in dataclasses.fields(s0)) == fields
        assert "returned_discounted_episode_returns" not in i0
        assert set(i1) - set(i0) == {"returned_discounted_episode_returns"}
        chex.assert_trees_all_equal((o0, rest0, i0, [getattr(s0, f) for f in fields]),
                                    (o1, rest1, {k: i1[k] for k in i0},
                                     [getattr(s1, f) for f in fields]))
        np.testing.assert_array_equal(i1["returned_discounted_episode_returns"],
                                      i1["returned_episode_returns"])
    assert sum(int(x[-1]["returned_episode"].sum()) for x in off) >= 4


def test_normalize_observation_tracks_running_moments():
    env, params = envs.make("Pendulum-v1")
    nenv = envs.NormalizeObservation(env)
    raw_env = env
    key = jax.random.PRNGKey(0)
    _, state = nenv.reset(key, params)
    _, raw_state = raw_env.reset(key, params)
    raws = [np.asarray(raw_env.get_obs(raw_state))]
    for t in range(30):
        k = jax.random.PRNGKey(t + 1)
        a = jnp.array([0.5])
        _, state, *_ = nenv.step(k, state, a, params)
        raw_obs, raw_state, *_ = raw_env.step(k, raw_state, a, params)
        raws.append(np.asarray(raw_obs))
    raws = np.stack(raws)
    np.testing.assert_allclose(state.mean, raws.mean(0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(state.var, raws.var(0), rtol=1e-3, atol=1e-5)


def test_unknown_env_lists_valid_names():
    with pytest.raises(ValueError, match="unknown environment 'NoSuchEnv-v0'.*CartPole-v1"):
        envs.make("NoSuchEnv-v0")
    assert set(gymnax.registered_envs) <= set(envs.registered())


def test_registered_linear_quadratic_ou_is_the_factory_env():
    """`make("LinearQuadraticOU", dim=3)` is `diffusions.make_lq_ou(3)`: same params, and one
    step from the same key gives the same observation `[x_1..x_3, t]` (t = dt after one step)."""
    from jaxrl.envs import diffusions

    env, params = envs.make("LinearQuadraticOU", dim=3, sigma=0.2)
    ref_env, ref_params = diffusions.make_lq_ou(3, sigma=0.2)
    assert "LinearQuadraticOU" in envs.registered() and env.dim == 3
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(ref_params), strict=True):
        np.testing.assert_array_equal(a, b)
    k0, k1 = jax.random.split(jax.random.PRNGKey(0))
    obs, state = env.reset(k0, params)
    obs2, *_ = env.step(k1, state, jnp.zeros(3), params)
    ref_obs, ref_state = ref_env.reset(k0, ref_params)
    ref_obs2, *_ = ref_env.step(k1, ref_state, jnp.zeros(3), ref_params)
    assert obs.shape == (4,)
    np.testing.assert_array_equal(obs2, ref_obs2)
    np.testing.assert_allclose(obs2[-1], float(params.dt), rtol=1e-6)
