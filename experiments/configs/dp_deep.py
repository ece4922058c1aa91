"""DηN (stock-augmented distributional DQN) on two finite-horizon tasks with exact answers.

  python -m experiments.dp_deep --config=experiments/configs/dp_deep.py --workdir=/tmp/dp_deep
Quick variant (`:quick`, 8 seeds, about 30-60 s on a quiet 2-core CPU):
  python -m experiments.dp_deep --config=experiments/configs/dp_deep.py:quick --workdir=/tmp/dpq
Tiny variant (`:tiny`, the gamble only, 2 seeds x 60 updates, a checkpoint after every chunk of
10 updates; the kill-and-resume test, its time is the program's compilation).

`config.gamble` and `config.homeostasis` are the agents' configs (`jaxrl.dp.deep.DeepDNConfig`,
every field a flag, e.g. `--config.gamble.lr=3e-4`). Each task trains a risk-neutral agent
(objective `mean`) and a risk-aware one (`cvar` on the gamble, `homeostatic` on the regulation
task) as ONE program (the sweepable `objective_index` picks the objective per run). Expected
result: on the gamble the CVaR agent never gambles and its achieved CVaR_0.2 (estimated from 2000
greedy evaluation episodes) is 3.0, the exact optimum of `jaxrl.dp.tabular` (within 10% on every
seed), while the mean agent always gambles (CVaR_0.2 = -1.92, mean 4.8); on the regulation task
the homeostatic agent ends E|G - set point| ~ 0.7 (exact optimum 0.7) while the mean agent drifts
to ~3.2.
"""

import dataclasses

import ml_collections

from experiments import common
from jaxrl import config as jconfig
from jaxrl.dp.deep import DeepDNConfig


def _agent(env_name: str, objective: str | tuple[str, ...], num_updates: int,
           **hparams: float) -> DeepDNConfig:
    return DeepDNConfig(env_name=env_name, env_kwargs={}, critic="quantile", objective=objective,
                        num_atoms=16, hidden=(64, 64), num_envs=8, buffer_size=4000,
                        batch_size=64, learning_starts=256, num_updates=num_updates, **hparams)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.num_seeds = 8
    c.tasks = ("gamble", "homeostasis", "necessity")  # which tasks to run
    c.num_evals = 5  # evaluation points along training (every num_updates // num_evals updates)
    c.eval_episodes = 2000  # greedy episodes per run and evaluation point
    c.alpha = 0.2  # CVaR level on the gamble
    c.set_point = 1.0  # homeostatic target: c_0 = -set_point
    # necessity task: maximize P(G >= threshold) (c_0 = -threshold); its returns are odd
    # integers, so 0.5 asks for G >= 1 with a margin that float rounding of the critic cannot flip
    c.threshold = 0.5
    c.b_min = -6.0  # CVaR threshold candidates b in [b_min, b_max] (step b_step); the gamble's
    c.b_max = 12.0  # achievable returns are the multiples of 3 in [-6, 12]
    c.b_step = 1.0
    # chunk_size 0: one chunk per evaluation interval
    common.add_runtime_fields(c, checkpoint_every=2)
    gamble = _agent("Gamble-v0", ("mean", "cvar"), 2000,
                    stock_low=-12.0, stock_high=6.0, v_min=-8.0, v_max=14.0)
    homeostasis = _agent("Homeostasis-v0", ("mean", "homeostatic"), 2000,
                         stock_low=-4.0, stock_high=3.0, v_min=-8.0, v_max=8.0)
    necessity = dataclasses.replace(
        _agent("StockNecessity-v0", "threshold", 1000, stock_low=-3.0, stock_high=1.0,
               v_min=-4.0, v_max=4.0, stock_scale=0.5),
        hidden=(32, 32), num_atoms=8, buffer_size=2000, learning_starts=128)
    if arg == "quick":
        c.num_evals = 8
        gamble = dataclasses.replace(gamble, num_updates=800, hidden=(32, 32), num_atoms=8)
        homeostasis = dataclasses.replace(homeostasis, num_updates=1200, hidden=(32, 32),
                                          num_atoms=8)
        necessity = dataclasses.replace(necessity, num_updates=600)
    elif arg == "tiny":
        c.tasks = ("gamble",)  # one program: compile-bound (init, chunk and evaluation)
        c.num_seeds = 2
        c.num_evals = 2
        c.eval_episodes = 50
        c.progress = False
        c.chunk_size, c.checkpoint_every = 10, 1
        small = dict(num_updates=60, hidden=(16, 16), num_atoms=4, num_envs=4, buffer_size=256,
                     batch_size=16, learning_starts=16)
        gamble = dataclasses.replace(gamble, **small)
        homeostasis = dataclasses.replace(homeostasis, **small)
        necessity = dataclasses.replace(necessity, **small)
    elif arg not in (None, ""):
        raise ValueError(f"unknown config variant {arg!r}; valid: '', 'quick', 'tiny'")
    c.gamble = jconfig.to_config_dict(gamble)
    c.homeostasis = jconfig.to_config_dict(homeostasis)
    c.necessity = jconfig.to_config_dict(necessity)
    return c
