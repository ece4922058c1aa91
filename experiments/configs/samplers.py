"""Score-based samplers: quality vs NFE, analytical teleportation, warm-started denoising.

Command:
  python -m experiments.samplers --config=experiments/configs/samplers.py --workdir=/tmp/samplers
  python -m experiments.samplers --config=experiments/configs/samplers.py:quick --workdir=/tmp/sq
Bring your own mixture (npz with weights [M], means [M, D], covs [M, D, D]):
  python -m experiments.samplers --gmm=FILE.npz --sampler=heun --nfe=35 --num_samples=1000 \
      --seed=0 --out=SAMPLES.npy [--teleport=0.2]

Expected result (measured on the quick variant, 8 seeds): with the exact GMM score the ODE
samplers (Euler = DDIM, DPM-Solver++(2M)) are at the exact-sample floor of sliced W2 by ~32 NFE;
Heun with only 4 steps from sigma 80 (7 NFE) is far off, SDE samplers need the most NFE;
teleporting the first 17-33% of a 12-step Heun schedule (23 -> 15-19 NFE) leaves sliced W2
unchanged within the seed CI on the 2-D/16-D mixtures and the digits net; on the bimodal
reach-and-grasp task a 1-NFE warm start beats a 3-NFE cold start but does not reach the 20-NFE
full solve's action error within 10% (the full config's grid shows where it does).
Run time: full ~20-40 min on 2 CPU cores (not timed on a quiet machine); quick ~60 s CPU time.
"""

import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.num_seeds = 8
    c.samplers = ("euler_maruyama", "predictor_corrector", "euler", "heun", "ddim", "dpmpp_2m")
    c.nfe_grid = (4, 8, 16, 32, 64, 128)
    c.num_samples = 2000
    c.sigma_max = 80.0
    c.num_projections = 128
    c.gmm16_components = 6
    c.datasets = ("gmm2d", "gmm16d")  # which mixtures to run
    # Teleportation: EDM schedule steps for each sampler budget, fractions of the schedule skipped.
    c.teleport_samplers = ("heun", "dpmpp_2m")
    c.teleport_steps = (8, 16, 32)
    c.teleport_fractions = (0.0, 0.1, 0.2, 0.3, 0.4)
    # Digits (sklearn 8x8): score network trained per seed by DSM.
    c.digits = True
    c.digits_nfe_grid = (4, 8, 16, 32, 64)
    c.digits_samplers = ("euler_maruyama", "euler", "heun", "dpmpp_2m")
    c.net = ml_collections.ConfigDict(dict(
        hidden=256, depth=3, num_freqs=16, num_steps=4000, batch_size=256, learning_rate=2e-3,
        sigma_data=0.5, p_mean=-1.2, p_std=1.2))
    # Warm start (RTI) on the reach-and-grasp task.
    c.warm_control_steps = 40
    c.warm_full_steps = 20
    c.warm_cold_steps = (1, 2, 3, 4, 6, 8, 12, 20)
    c.warm_tail_steps = (1, 2, 3, 4)
    c.warm_start_sigmas = (0.05, 0.1, 0.2, 0.5, 1.0)
    c.warm_factor = 10.0
    c.warm_tolerance = 1.1  # "equal action error": within 10% of the full solve's error
    if arg == "quick":
        c.num_seeds = 8
        c.samplers = ("euler_maruyama", "predictor_corrector", "euler", "heun", "ddim",
                      "dpmpp_2m")
        c.nfe_grid = (8, 32)
        c.datasets = ("gmm2d",)
        c.num_samples = 500
        c.teleport_samplers = ("heun",)
        c.teleport_steps = (12,)
        c.teleport_fractions = (0.0, 0.2, 0.3)
        c.digits_nfe_grid = (8, 32)
        c.digits_samplers = ("euler", "heun")
        c.net.hidden = 64
        c.net.depth = 2
        c.net.num_steps = 200
        c.net.batch_size = 128
        c.warm_control_steps = 15
        c.warm_cold_steps = (3,)
        c.warm_tail_steps = (1, 2)
        c.warm_start_sigmas = (0.1, 0.3)
    elif arg not in (None, ""):
        raise ValueError(f"unknown config variant {arg!r}; use '' or 'quick'")
    return c
