"""PROPS study (issue 20 item 9): the paper's n/m ratios, the fixed target at m = 64 and a
lr_PROPS x delta_PROPS x lambda grid, on CartPole-v1, every sampling error measured against
the on-policy reference re-simulated from PROPS's own target sequence (`ref_sampling_error`).

  nice -n 10 python -m experiments.props_study --config=experiments/configs/props_study.py \
      --workdir=/tmp/props_study

Programs (16 seeds each, n = 256 per target batch, b = 2, 24 target updates = 6,144 steps):
* `ratio_<k>` for n/m = k in `ratios` (m = 256 / k), PROPS with the authors' Hopper PROPS
  settings (lr_PROPS 1e-3, delta_PROPS 0.05, lambda 0.3; lr_PPO 1e-3);
* `ppo_buffer` (behavior "none"; with no behavior policy m only chunks the rollout, so one
  program serves every ratio): the return baseline, and a check that its reference matches;
* `fixed_target`: target lr 0 (the initial policy), m = 64, PROPS settings as the ratios;
* `grid`: n/m = `grid_ratio`, the cartesian grid `grid` (one compiled program);
* `fixed_grid`: the fixed target at m = 64 over the grid `fixed_grid` (one program; the other
  behavior fields as the ratios).
PROPS behavior update 16 epochs x 8 minibatches, PPO 10 epochs x 8 minibatches (the `:quick`
sizes of experiments/configs/props.py). `:tiny` is a seconds-long smoke run (2 seeds).
`:mb4`: the follow-up with 4 behavior minibatches (n/m = 4 only, fixed target over lr_PROPS).
`:acrobot`, `:pendulum`: the ratios and the fixed target on Acrobot-v1 / Pendulum-v1 (grid cut
to one point, no fixed grid).
"""

import dataclasses

import ml_collections

from experiments import common
from jaxrl import config as jconfig
from jaxrl import props


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    algo = dataclasses.replace(
        props.PROPSConfig(), num_steps=256, buffer_batches=2, num_minibatches=8,
        props_update_epochs=16, props_num_minibatches=8, total_timesteps=256 * 24, se_steps=30,
        lr=1e-3, props_lr=1e-3, props_target_kl=0.05, props_kl_coef=0.3, unroll=1)
    c = ml_collections.ConfigDict()
    c.num_seeds = 16
    c.seed = 0
    c.ratios = (2, 4, 8, 16)
    c.fixed_target_ratio = 4  # m = 64 at n = 256
    c.grid_ratio = 4
    c.grid = ml_collections.ConfigDict({"props_lr": (1e-4, 1e-3), "props_target_kl": (0.01, 0.05),
                                        "props_kl_coef": (0.0, 0.3)})
    # fixed target (lr 0, m = n / fixed_target_ratio) over behavior settings, one program
    # (after the others, so adding it resumed a finished run of the rest); {} to skip
    c.fixed_grid = ml_collections.ConfigDict({"props_lr": (1e-3, 1e-2), "props_kl_coef": (0.0, 0.1)})
    common.add_runtime_fields(c, checkpoint_every=1)
    c.chunk_size = 4
    c.progress = False
    if arg == "tiny":
        c.num_seeds = 2
        c.ratios = (2, 4)
        c.grid = ml_collections.ConfigDict({"props_lr": (1e-3,), "props_target_kl": (0.05,),
                                            "props_kl_coef": (0.0, 0.3)})
        algo = dataclasses.replace(algo, num_steps=32, num_minibatches=4, props_num_minibatches=2,
                                   props_update_epochs=2, update_epochs=2,
                                   total_timesteps=32 * 3, se_steps=5, hidden=(16, 16))
        c.fixed_grid = ml_collections.ConfigDict({"props_lr": (1e-3,)})
        c.chunk_size = 1
    elif arg == "mb4":
        # follow-up: 4 behavior minibatches of 112 (instead of 8 of 56) at n/m = 4, and the
        # fixed target over lr_PROPS at lambda 0.1 (the item-10 test's behavior settings)
        algo = dataclasses.replace(algo, props_num_minibatches=4)
        c.ratios = (4,)
        c.grid = ml_collections.ConfigDict({"props_lr": (3e-3,), "props_kl_coef": (0.1,)})
        c.fixed_grid = ml_collections.ConfigDict({"props_lr": (1e-3, 3e-3, 1e-2),
                                                  "props_kl_coef": (0.1,)})
    elif arg in ("acrobot", "pendulum"):
        # the n/m ratios and the fixed target on another task, same settings; the grid program
        # reduced to the ratio runs' own point and no fixed grid (CPU time)
        algo = dataclasses.replace(algo, env_name={"acrobot": "Acrobot-v1",
                                                   "pendulum": "Pendulum-v1"}[arg])
        c.grid = ml_collections.ConfigDict({"props_lr": (1e-3,)})
        c.fixed_grid = ml_collections.ConfigDict({})
    elif arg not in (None, ""):
        raise ValueError(f"unknown props_study config variant {arg!r}; valid: tiny, mb4, "
                         "acrobot, pendulum")
    c.algo = jconfig.to_config_dict(algo)
    return c
