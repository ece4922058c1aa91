"""Distributional DP with stock augmentation: bring your own MDP (paper: "Optimizing Return
Distributions with Distributional Dynamic Programming", 2025).

  python -m experiments.dp --mdp=FILE.npz --objective=cvar --alpha=0.1 --workdir=DIR
  python -m experiments.dp --config=experiments/configs/dp.py:quick --workdir=DIR

FILE.npz holds P [S,A,S'], R [S,A,S'], mu0 [S], scalar gamma and integer horizon (0 = infinite),
and optionally terminal [S] (bool): entering a terminal state ends the episode, its transition's
reward counts and nothing after it (DP makes it absorbing with zero reward); mu0 may not put
mass on a terminal state.
Objectives: mean | cvar --alpha=A | var --alpha=A (finite horizon) | threshold --threshold=T | target --target=T |
utility --utility=exp --risk=BETA. Finite horizons are solved exactly over history-dependent
policies (stock-augmented, time-indexed greedy; CVaR searches b over all achievable returns);
horizon 0 uses categorical DP on a stock grid (approximate). Without --mdp a built-in MDP is used
(`config.builtin`: "random" seeded small MDP, or "stock_necessity", the digest's example).
Writes DIR/config.json, DIR/summary.json (objective_value, policy over time x state x stock),
DIR/plots/return_distribution.png (optimal vs risk-neutral law of G).
Quick variant (`:quick`): CVaR_0.1 on the built-in random MDP (S=4, A=3, H=4); < 20 s on CPU.
Expected: CVaR of the optimal policy above the risk-neutral policy's CVaR.
"""

import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.seed = 4  # a seed where the CVaR-optimal and risk-neutral policies differ clearly
    c.mdp = ""  # path to an .npz; empty = config.builtin
    c.builtin = "random"  # "random" | "stock_necessity"
    c.num_states = 4
    c.num_actions = 3
    c.horizon = 4
    c.gamma = 1.0
    c.objective = "cvar"
    c.alpha = 0.1
    c.threshold = 1.0
    c.target = 0.0
    c.utility = "exp"
    c.risk = 1.0
    # finite horizon: "exact" (distributional, also gives the law of every stock) or "scalar"
    # (scalar stock-augmented DP, linear memory; the law of the chosen policy by forward_law).
    # --objective=var always uses the scalar threshold DP with the outer search (dp.solve_var).
    c.solver = "exact"
    # grid solver (horizon 0 only)
    c.num_stocks = 64
    c.num_atoms = 101
    c.max_sweeps = 500
    c.tol = 1e-6
    if arg == "quick":
        c.horizon = 4
    elif arg not in (None, ""):
        raise ValueError(f"unknown config variant {arg!r}; known: quick")
    return c
