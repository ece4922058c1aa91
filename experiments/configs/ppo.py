"""PPO configs (PureJaxRL hyperparameters).

Full CartPole run (64 seeds, 5e5 steps each; about 1-2 min on a 2-core CPU; every seed reaches
a mean return of ~500):
  python -m experiments.ppo --config=experiments/configs/ppo.py --workdir=/tmp/ppo \
      --config.num_seeds=64 --config.env_name=CartPole-v1
Learning-rate x entropy sweep, one compiled program:
  python -m experiments.ppo --config=experiments/configs/ppo.py --workdir=/tmp/ppo_sweep \
      --config.sweep.lr="(1e-4, 3e-4, 1e-3)" --config.sweep.ent_coef="(0.0, 0.01)"
Pendulum (continuous actions, normalized observations):
  `--config=experiments/configs/ppo.py:pendulum`.
Quick variant (`:quick`, 8 seeds x 1e5 steps, ~30 s): CartPole return rises well above 100.
"""

import ml_collections
from ml_collections import config_dict

from jaxrl import ppo


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    c = ppo.get_config()
    c.num_seeds = 8
    c.chunk_size = 0  # updates per jitted chunk; 0 = about 20 chunks per run
    c.checkpoint_every = 5  # chunks between checkpoints
    c.keep_checkpoints = 3
    c.halt_on_nan = False
    c.force_resume = False
    c.progress = True
    # Grid of float hyperparameters: set any to a tuple to sweep it (cartesian product).
    c.sweep = ml_collections.ConfigDict(
        {k: config_dict.placeholder(tuple) for k in ppo.FLOAT_HPARAMS}
    )
    if arg == "quick":
        c.total_timesteps = 100_000
    elif arg == "pendulum":
        c.env_name = "Pendulum-v1"
        c.num_envs = 16
        c.num_steps = 256
        c.total_timesteps = 2_000_000
        c.update_epochs = 10
        c.num_minibatches = 32
        c.lr = 1e-3
        c.ent_coef = 0.0
        c.gae_lambda = 0.95
        c.normalize_obs = True
        c.hidden = (128, 128)
    elif arg == "pendulum_quick":
        c = get_config("pendulum")
        c.total_timesteps = 400_000
    elif arg not in (None, ""):
        raise ValueError(f"unknown ppo config variant {arg!r}; valid: quick, pendulum, "
                         "pendulum_quick")
    return c
