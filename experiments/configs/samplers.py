"""Score-based samplers: quality vs NFE, analytical teleportation, warm-started denoising.

Command:
  python -m experiments.samplers --config=experiments/configs/samplers.py --workdir=/tmp/samplers
  python -m experiments.samplers --config=experiments/configs/samplers.py:quick --workdir=/tmp/sq
Bring your own mixture (npz with weights [M], means [M, D], covs [M, D, D]):
  python -m experiments.samplers --gmm=FILE.npz --sampler=heun --nfe=35 --num_samples=1000 \
      --seed=0 --out=SAMPLES.npy [--teleport=0.2]

The full config was shrunk (2026-11-23) to fit ~30 min on the shared 2-core CPU: NFE grid up to
64 (not 128), 1000 samples per seed (not 2000), 64 slicing projections, teleport schedules of 8
and 16 steps, a 128-wide score net trained 2000 DSM steps per seed, digits NFE up to 32.
Results of the full run: docs/results/samplers.md.

Expected result (8 seeds): with the exact GMM score the ODE samplers (Euler = DDIM,
DPM-Solver++(2M)) reach the exact-sample floor of sliced W2 by ~16-32 NFE; Heun with very few
steps from sigma 80 is far off; SDE samplers need the most NFE. Teleporting up to 38% of the
schedule (the largest fraction tried) keeps sliced W2 within 5% on both mixtures and digits.
Warm start (lane-tracking task, gripper scale 10; docs/results/samplers.md section 1): the
1-NFE Euler warm start from sigma 0.1 is collapsed (dispersion ratio ~0.09) and rejected; the
paper's ancestral protocol from t = 2 or 4 keeps the spread but never flips the scaled gripper
in time; the rule picks the 4-step cold start, the cheapest accepted warm start is ancestral
t = 8 (9 NFE). With `--config.denoiser=learned` (a DSM-trained conditional policy per seed;
docs/results/samplers.md section 1b; wall 785 s with training, gripper scale 10 only) the rule
picks the ancestral t = 2 warm start (3 NFE; SW 1.40 x floor), the deterministic ones stay
collapsed.
Tiny variant (`:tiny`, 2 seeds, 2 samplers x 2 NFE budgets on gmm2d and a 30-step digits net; no
warm-start part; seconds of compute, most of it compiling; the digits net runs one DSM step per
chunk with a checkpoint after every chunk: the kill-and-resume test).

Files: DIR/config.json, DIR/summary.json, DIR/plots/, one long-form metrics.csv per table
(DIR/<gmm2d|gmm16d|digits>/{quality,teleport}/metrics.csv, DIR/warm/metrics.csv; see
experiments/samplers.py for the columns) and the runtime workdir of the digits score nets,
DIR/digits/net/ (re-running the same command resumes their training).

Run time: full ~1860 s (warm 709 with one gripper scale + gmm 786 + digits 321, run as three `config.parts`) at nice 19
on the shared 2-core CPU (load 10-16); quick ~60 s CPU time on a quiet machine (~30 s of it the
warm-start study).
"""

import ml_collections

from experiments import common


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.num_seeds = 8
    c.samplers = ("euler_maruyama", "predictor_corrector", "euler", "heun", "ddim", "dpmpp_2m")
    c.nfe_grid = (4, 8, 16, 32, 64)
    c.num_samples = 1000
    c.sigma_max = 80.0
    c.num_projections = 64
    c.gmm16_components = 6
    c.parts = ("gmm", "digits", "warm")  # which studies to run
    c.datasets = ("gmm2d", "gmm16d")  # which mixtures to run
    # Teleportation: EDM schedule steps for each sampler budget, fractions of the schedule skipped.
    c.teleport_samplers = ("heun", "dpmpp_2m")
    c.teleport_steps = (8, 16)
    c.teleport_fractions = (0.0, 0.1, 0.2, 0.3, 0.4)
    # Digits (sklearn 8x8): score network trained per seed by DSM.
    c.digits = True
    c.digits_nfe_grid = (4, 8, 16, 32)
    c.digits_samplers = ("euler_maruyama", "euler", "heun", "dpmpp_2m")
    c.net = ml_collections.ConfigDict(dict(
        hidden=128, depth=3, num_freqs=16, num_steps=2000, batch_size=256, learning_rate=2e-3,
        sigma_data=0.5, p_mean=-1.2, p_std=1.2))
    # Mixture of many well-separated modes (the hard teleport case, config.datasets "gmm_sep").
    c.sep_components = 32
    c.sep_dim = 32
    c.sep_distance = 6.0
    c.sep_std = 0.1
    # Warm start (RTI) on the lane-tracking task (time-consistent expert; "reach" = the old
    # reach-and-grasp task, kept as the counter-example). Candidates (experiments.samplers.
    # parse_candidate): "full" (the reference), "cold:N", "ddpm:K" (RTI-DP's ancestral steps
    # K..0 of a 100-step DDPM schedule), "ddim:K" (deterministic), "euler:S0:N".
    c.warm_task = "lane"
    c.warm_speed = 0.05  # target angular speed (rad per control step) of the lane task
    c.warm_control_steps = 30
    c.warm_full_steps = 20
    c.warm_candidates = ("full", "cold:4", "cold:8", "euler:0.1:1", "ddpm:2", "ddpm:4", "ddpm:8",
                         "ddpm:16", "ddim:2", "ddim:16")
    c.warm_ddpm_schedule = "linear"  # diffusers' DDPMScheduler default (RTI-DP's eval configs)
    c.warm_particles = 32
    c.warm_episodes = 8
    c.warm_success_pos = 0.075
    c.warm_success_grip = 0.1
    c.warm_thresholds = ml_collections.ConfigDict(dict(
        sw_ratio=1.5, mode_diff=0.1, dispersion_lo=0.8, dispersion_hi=1.25, closed_diff=0.05,
        success_drop=0.1))
    c.warm_factors = (10.0, 1.0)  # gripper scale (the paper's factor; 1 = no scaling)
    # The policy's denoiser: "exact" (the task's closed-form mixture denoiser) or "learned" (a
    # conditional diffusion policy per seed, DSM on expert chunks of the lane task, observation
    # -> chunk relative to the state; experiments.samplers.train_warm_policies).
    c.denoiser = "exact"
    c.warm_demo_episodes = 256  # expert episodes (of warm_control_steps steps) per seed
    c.warm_net = ml_collections.ConfigDict(dict(
        hidden=256, depth=3, num_freqs=16, num_steps=4000, batch_size=256, learning_rate=2e-3,
        sigma_data=0.25, p_mean=-1.2, p_std=1.2))
    c.warm_gap_sigmas = (0.03, 0.1, 1.0)  # levels of the learned-vs-exact denoiser gap
    common.add_runtime_fields(c)  # the digits nets' training runs on the runtime
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
        c.warm_candidates = ("full", "cold:4", "euler:0.1:1", "ddpm:2", "ddim:2")
        c.warm_particles = 32
        c.warm_episodes = 4
        c.warm_demo_episodes = 64
        c.warm_net.hidden = 64
        c.warm_net.num_steps = 300
    elif arg == "tiny":
        c.parts = ("gmm", "digits")  # warm starts: tests/test_diffusion_rti.py, :quick
        c.num_seeds = 2
        c.samplers = ("euler", "heun")
        c.nfe_grid = (4, 8)
        c.datasets = ("gmm2d",)
        c.num_samples = 64
        c.num_projections = 16
        c.teleport_samplers = ("heun",)
        c.teleport_steps = (4,)
        c.teleport_fractions = (0.0, 0.25)
        c.digits_nfe_grid = (4,)
        c.digits_samplers = ("euler",)
        c.net.hidden = 16
        c.net.depth = 1
        c.net.num_steps = 30  # 30 chunks of one step: a SIGKILL lands mid-training
        c.net.batch_size = 16
        c.warm_control_steps = 4
        c.warm_full_steps = 4
        c.warm_candidates = ("full", "euler:0.1:1", "ddpm:2")
        c.warm_particles = 8
        c.warm_episodes = 2
        c.warm_demo_episodes = 8
        c.warm_net.hidden = 16
        c.warm_net.depth = 1
        c.warm_net.num_steps = 30
        c.chunk_size = 1
        c.checkpoint_every = 1
        c.progress = False
    elif arg not in (None, ""):
        raise ValueError(f"unknown config variant {arg!r}; use '', 'quick' or 'tiny'")
    return c
