"""DηN (stock-augmented distributional DQN) on two finite-horizon tasks with exact answers.

  python -m experiments.dp_deep --config=experiments/configs/dp_deep.py --workdir=/tmp/dp_deep
Quick variant (`:quick`, 8 seeds, about 30-60 s on a quiet 2-core CPU):
  python -m experiments.dp_deep --config=experiments/configs/dp_deep.py:quick --workdir=/tmp/dpq

Each task trains a risk-neutral agent (objective `mean`) and a risk-aware one (`cvar` on the
gamble, `homeostatic` on the regulation task) as ONE vmapped program (the float hyperparameter
`objective_index` picks the objective per run). Expected result: on the gamble the CVaR agent
never gambles and its achieved CVaR_0.2 (estimated from 2000 greedy evaluation episodes) is 3.0,
the exact optimum of `jaxrl.dp.tabular` (within 10% on every seed), while the mean agent always
gambles (CVaR_0.2 = -1.92, mean 4.8); on the regulation task the homeostatic agent ends
E|G - set point| ~ 0.7 (exact optimum 0.7) while the mean agent drifts to ~3.2.
"""

import ml_collections


def _agent(env_name: str, objective: tuple[str, str], num_updates: int, hparams: dict):
    return ml_collections.ConfigDict(
        {
            "env_name": env_name,
            "env_kwargs": {},
            "critic": "quantile",
            "objective": objective,
            "num_atoms": 16,
            "hidden": (64, 64),
            "num_envs": 8,
            "buffer_size": 4000,
            "batch_size": 64,
            "learning_starts": 256,
            "num_updates": num_updates,
            "hparams": hparams,
        }
    )


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.num_seeds = 8
    c.num_evals = 5  # evaluation points along training (the learning curve)
    c.eval_episodes = 2000  # greedy episodes per run and evaluation point
    c.alpha = 0.2  # CVaR level on the gamble
    c.set_point = 1.0  # homeostatic target: c_0 = -set_point
    c.b_min = -6.0  # CVaR threshold candidates b in [b_min, b_max] (step b_step); the gamble's
    c.b_max = 12.0  # achievable returns are the multiples of 3 in [-6, 12]
    c.b_step = 1.0
    c.progress = True
    c.gamble = _agent(
        "Gamble-v0",
        ("mean", "cvar"),
        2000,
        {"stock_low": -12.0, "stock_high": 6.0, "v_min": -8.0, "v_max": 14.0},
    )
    c.homeostasis = _agent(
        "Homeostasis-v0",
        ("mean", "homeostatic"),
        2000,
        {"stock_low": -4.0, "stock_high": 3.0, "v_min": -8.0, "v_max": 8.0},
    )
    if arg == "quick":
        c.num_evals = 8
        c.gamble.num_updates = 800
        c.homeostasis.num_updates = 1200
        for t in (c.gamble, c.homeostasis):
            t.hidden = (32, 32)
            t.num_atoms = 8
    elif arg not in (None, ""):
        raise ValueError(f"unknown config variant {arg!r}; valid: '' or 'quick'")
    return c
