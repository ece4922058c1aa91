"""PROPS vs PPO-Buffer vs PPO (Corrado & Hanna), plus the fixed-target sampling-error experiment.

The algorithm's fields live under `config.algo` (`jaxrl.props.PROPSConfig`, shared by every
environment); `config.<env>` (`cartpole`, `acrobot`, `pendulum`: the lower-case name before the
first "-") overrides fields of it for one environment.

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
with the target fixed, PROPS's sampling error was about half of on-policy sampling's (0.56 with
4 seeds, measured with the earlier 100-step estimator; see docs/results/props.md); during training about equal to PPO-Buffer's (0.97); final returns reach ~200-300 but
the 4-seed CIs of PROPS and PPO-Buffer overlap, so the data-efficiency claim cannot be judged
from the quick run. 16 updates in chunks of 4, a checkpoint after every chunk.
Full-run results (CartPole only finished on the shared CPU): docs/results/props.md.
`:medium` = CartPole and Acrobot, 16 seeds, 10,240 steps, quick's sizes.
`:tiny` = CartPole, 2 seeds x 3 updates of 64 steps, one program (PROPS, PPO-Buffer and the
fixed-target pair as grid points; no PPO baseline), a checkpoint after every update (the
kill-and-resume test; its time is the program's compilation).
"""

import dataclasses

import ml_collections

from experiments import common
from jaxrl import config as jconfig
from jaxrl import props

# quick's and medium's sizes
SMALL = dict(num_steps=256, props_num_steps=64, num_minibatches=8, props_num_minibatches=8,
             se_steps=50, unroll=1)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    algo = dataclasses.replace(props.PROPSConfig(), num_steps=512, props_num_steps=256,
                               buffer_batches=2, num_minibatches=16, total_timesteps=50_000)
    c = ml_collections.ConfigDict()
    c.envs = ("CartPole-v1", "Acrobot-v1", "Pendulum-v1")
    c.num_seeds = 16
    c.seed = 0
    c.fixed_target_env = "CartPole-v1"  # also run with target lr 0 ("" to skip)
    c.fixed_target_timesteps = 8_192
    # True: PPO-Buffer and the fixed-target pair are grid points of the PROPS program (fewer
    # compilations, more compute: the right trade for tiny runs only).
    c.share_program = False
    c.run_ppo = True  # False: leave out the PPO baseline (b = 1), one program fewer
    common.add_runtime_fields(c)
    # Per-environment overrides of config.algo, keyed by the lower-case name before the first "-".
    c.cartpole = ml_collections.ConfigDict({})
    c.acrobot = ml_collections.ConfigDict({})
    c.pendulum = ml_collections.ConfigDict({
        "normalize_obs": True, "ent_coef": 0.0, "gamma": 0.9, "num_envs": 4, "num_steps": 256,
        "props_num_steps": 128, "total_timesteps": 100_000,
    })
    if arg == "quick":
        c.envs = ("CartPole-v1",)
        c.num_seeds = 4
        algo = dataclasses.replace(algo, total_timesteps=256 * 16, **SMALL)
        c.fixed_target_timesteps = 256 * 16
        c.share_program = True
        c.progress = False
        c.chunk_size, c.checkpoint_every = 4, 1  # 16 updates: 4 checkpoints per program
    elif arg == "medium":
        c.envs = ("CartPole-v1", "Acrobot-v1")
        algo = dataclasses.replace(algo, total_timesteps=256 * 40, **SMALL)
        c.fixed_target_timesteps = 256 * 16
    elif arg == "tiny":
        c.envs = ("CartPole-v1",)
        c.num_seeds = 2
        algo = dataclasses.replace(
            algo, num_envs=2, num_steps=32, props_num_steps=8, buffer_batches=2,
            total_timesteps=64 * 3, update_epochs=2, num_minibatches=4, props_update_epochs=2,
            props_num_minibatches=4, se_steps=5, hidden=(16, 16), unroll=1)
        c.fixed_target_timesteps = 64 * 3
        c.share_program = True
        c.run_ppo = False  # one program: compile-bound (~20 s of XLA compile per program)
        c.progress = False
        c.chunk_size, c.checkpoint_every = 1, 1
    elif arg not in (None, ""):
        raise ValueError(f"unknown props config variant {arg!r}; valid: quick, medium, tiny")
    c.algo = jconfig.to_config_dict(algo)
    return c
