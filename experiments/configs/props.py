"""PROPS vs PPO-Buffer vs PPO (Corrado & Hanna), plus the fixed-target sampling-error experiment.

Full run (CartPole-v1, Acrobot-v1, Pendulum-v1; 16 seeds each; b = 2; PROPS behavior update
16 epochs x 16 minibatches; see docs/results/props.md for the measured wall time and results):
  nice -n 19 python -m experiments.props --config=experiments/configs/props.py --workdir=/tmp/props
Sizes: CartPole and Acrobot n = 512, m = 256 (n/m = 2, as the paper's HalfCheetah 1024/512;
Hopper used 8), 16 PPO minibatches (the paper's minibatch sizes at n = 1024 with 32), 50k
steps; Pendulum 4 envs x n = 256, m = 128, gamma 0.9, normalised observations, 100k steps;
fixed target (target lr 0, the initial policy) on CartPole, 8k steps. The cost is dominated by
the behavior update (16 x 16 minibatch steps every m steps: 16 (2n/m - 1) = 48
sample-gradients per environment step, vs 20 for PPO-Buffer's update), which scales linearly
with the number of vmapped runs on a CPU.
Quick variant (`:quick`, CartPole only, 4 seeds x 4,096 steps, n = 256, m = 64; PPO-Buffer and
the fixed target as grid points of the PROPS program (`share_program`), two compilations):
with the target fixed, PROPS's sampling error was about half of on-policy sampling's (0.52 with
4 seeds); during training about equal to PPO-Buffer's (1.00); returns barely start to rise, so
the data-efficiency claim cannot be judged from the quick run.
Full-run results (CartPole only finished on the shared CPU): docs/results/props.md.
`:medium` = CartPole and Acrobot, 16 seeds, 10,240 steps, quick's sizes.
"""

import ml_collections

from jaxrl import props


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    c = props.get_config()
    c.envs = ("CartPole-v1", "Acrobot-v1", "Pendulum-v1")
    c.num_seeds = 16
    c.seed = 0
    c.num_steps = 512
    c.props_num_steps = 256
    c.buffer_batches = 2
    c.num_minibatches = 16
    c.total_timesteps = 50_000
    c.fixed_target_env = "CartPole-v1"  # also run with target lr 0 ("" to skip)
    c.fixed_target_timesteps = 8_192
    # True: PPO-Buffer and the fixed-target pair are grid points of the PROPS program (fewer
    # compilations, more compute: the right trade for tiny runs only).
    c.share_program = False
    c.chunk_size = 0  # updates per jitted chunk; 0 = about 10 chunks per run
    c.progress = True
    # Per-environment overrides, keyed by the lower-case name before the first "-".
    c.cartpole = ml_collections.ConfigDict({})
    c.acrobot = ml_collections.ConfigDict({})
    c.pendulum = ml_collections.ConfigDict({
        "normalize_obs": True, "ent_coef": 0.0, "gamma": 0.9, "num_envs": 4, "num_steps": 256,
        "props_num_steps": 128, "total_timesteps": 100_000,
    })
    if arg == "quick":
        c.envs = ("CartPole-v1",)
        c.num_seeds = 4
        c.num_steps = 256
        c.props_num_steps = 64
        c.total_timesteps = 256 * 16
        c.fixed_target_timesteps = 256 * 16
        c.share_program = True
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
        c.fixed_target_timesteps = 256 * 16
        c.num_minibatches = 8
        c.props_num_minibatches = 8
        c.se_steps = 50
        c.unroll = 1
    elif arg not in (None, ""):
        raise ValueError(f"unknown props config variant {arg!r}; valid: quick, medium")
    return c
