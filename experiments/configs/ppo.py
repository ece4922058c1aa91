"""PPO experiment configs (PureJaxRL hyperparameters). The algorithm's fields live under
`config.algo` (`jaxrl.ppo.PPOConfig`); every sweepable float has an entry under `config.sweep`.

Full CartPole run (64 seeds, 5e5 steps each; about 1-2 min on a 2-core CPU):
  python -m experiments.ppo --config=experiments/configs/ppo.py --workdir=/tmp/ppo \
      --config.num_seeds=64 --config.algo.env_name=CartPole-v1
Learning-rate x entropy sweep, one compiled program:
  python -m experiments.ppo --config=experiments/configs/ppo.py --workdir=/tmp/ppo_sweep \
      --config.sweep.lr="(1e-4, 3e-4, 1e-3)" --config.sweep.ent_coef="(0.0, 0.01)"
Variants: `:quick` (8 seeds x 1e5 steps, ~30 s: CartPole return rises well above 100),
`:pendulum` (continuous actions, normalized observations), `:pendulum_quick`, `:tiny` (seconds;
the kill-and-resume test).
"""

import dataclasses

import ml_collections

from experiments import common
from jaxrl import config as jconfig
from jaxrl import ppo

# Pendulum-v1 (issue 20 item 11): shared observation normalization, reward scaling, short
# horizon (gamma 0.95), no entropy bonus; 1e6 steps. Measured (8 seeds, IQM -153):
# experiments/benchmarks/RESULTS.md, PPO learning claims.
PENDULUM = dict(env_name="Pendulum-v1", num_envs=16, num_steps=128, total_timesteps=1_000_000,
                update_epochs=10, num_minibatches=8, lr=1e-3, ent_coef=0.0, gamma=0.95,
                gae_lambda=0.95, normalize_obs=True, normalize_reward=True,
                reward_norm_gamma=0.95, hidden=(64, 64))


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    algo = ppo.PPOConfig()
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.num_seeds = 8
    common.add_runtime_fields(c)
    if arg == "quick":
        algo = dataclasses.replace(algo, total_timesteps=100_000)
    elif arg == "pendulum":
        algo = dataclasses.replace(algo, **PENDULUM)
    elif arg == "pendulum_quick":
        algo = dataclasses.replace(algo, **{**PENDULUM, "total_timesteps": 400_000})
    elif arg == "tiny":
        algo = dataclasses.replace(algo, num_envs=2, num_steps=16, num_minibatches=2,
                                   update_epochs=1, total_timesteps=2 * 16 * 10, hidden=(8, 8))
        c.num_seeds, c.chunk_size, c.checkpoint_every = 3, 2, 1
    elif arg not in (None, ""):
        raise ValueError(f"unknown ppo config variant {arg!r}; valid: quick, pendulum, "
                         "pendulum_quick, tiny")
    c.algo = jconfig.to_config_dict(algo)
    c.sweep = jconfig.sweep_config(ppo.PPOConfig)
    return c
