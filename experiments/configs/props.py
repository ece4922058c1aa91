"""PROPS vs PPO-Buffer vs PPO (Corrado & Hanna), plus the fixed-target sampling-error experiment.

Full run (CartPole-v1, Acrobot-v1, Pendulum-v1; 16 seeds each; n = 1024, m = 256, b = 2; 1e5 /
1e5 / 3e5 env steps; far beyond a 2-core CPU's minutes, meant for an accelerator):
  python -m experiments.props --config=experiments/configs/props.py --workdir=/tmp/props
Quick variant (`:quick`, CartPole only, 4 seeds x 4,096 steps, n = 256, m = 64; about 45 s on a
quiet 2-core CPU): sampling error of PROPS below PPO-Buffer's at every update, most clearly
with the target fixed (target lr 0); returns barely start to rise, so the data-efficiency claim
cannot be judged from the quick run.
`:medium` = CartPole and Acrobot, 16 seeds, 10,240 steps, quick's sizes (~10 min, 2-core CPU).
"""

import ml_collections

from jaxrl import props


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    c = props.get_config()
    c.envs = ("CartPole-v1", "Acrobot-v1", "Pendulum-v1")
    c.num_seeds = 16
    c.seed = 0
    c.num_steps = 1024
    c.props_num_steps = 256
    c.buffer_batches = 2
    c.total_timesteps = 100_000
    c.fixed_target_env = "CartPole-v1"  # also run with target lr 0 ("" to skip)
    c.chunk_size = 0  # updates per jitted chunk; 0 = about 10 chunks per run
    c.progress = True
    # Per-environment overrides, keyed by the lower-case name before the first "-".
    c.cartpole = ml_collections.ConfigDict({})
    c.acrobot = ml_collections.ConfigDict({})
    c.pendulum = ml_collections.ConfigDict({
        "normalize_obs": True, "ent_coef": 0.0, "total_timesteps": 300_000,
    })
    if arg == "quick":
        c.envs = ("CartPole-v1",)
        c.num_seeds = 4
        c.num_steps = 256
        c.props_num_steps = 64
        c.total_timesteps = 256 * 16
        c.num_minibatches = 8
        c.props_num_minibatches = 8
        c.se_steps = 50
        c.unroll = 1
        c.progress = False
    elif arg == "medium":
        c.envs = ("CartPole-v1", "Acrobot-v1")
        c.num_steps = 256
        c.props_num_steps = 64
        c.total_timesteps = 256 * 40
        c.num_minibatches = 8
        c.props_num_minibatches = 8
        c.se_steps = 50
        c.unroll = 1
    elif arg not in (None, ""):
        raise ValueError(f"unknown props config variant {arg!r}; valid: quick, medium")
    return c
