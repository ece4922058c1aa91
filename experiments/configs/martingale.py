"""Martingale policy evaluation (Jia & Zhou, JMLR 2022): configs.

Full run (16 seeds x 5 mesh sizes x 2000 paths: Ornstein-Uhlenbeck error vs dt with fitted
slopes, the Brownian-motion bias example, a Black-Scholes call; a few minutes on a 2-core CPU):
  python -m experiments.martingale --config=experiments/configs/martingale.py --workdir=/tmp/mart
Expected: ML, CTD(0) and CLSTD parameter errors fall like dt^1 (fitted slope ~1); the MSTDE
error does not fall (slope <= 0); on the Brownian example ML/CTD/CLSTD give theta ~ 0 and MSTDE
theta ~ -3/2. Also: the d-dimensional linear-quadratic OU (d in lq_dims, DIR/lq/metrics.csv) and
MLP values on the OU case by the martingale loss and by CTD(0) (DIR/mlp_ou/metrics.csv), both
one jitted computation vmapped over seeds.

Quick variant (`:quick`, 16 seeds, small batches, <= 60 s): same qualitative result.
Tiny variant (`:tiny`, 2 seeds x 2 mesh sizes, a few passes; seconds of compute, most of it
compiling; one update per chunk and a checkpoint after every chunk: the kill-and-resume test).

The iterative parts (CTD(0)/CGTD passes on the OU and Brownian studies, the MLP fitted on the
martingale loss) run on the one runtime (`jaxrl.experiment.run`) in DIR/ou, DIR/brownian and
DIR/black_scholes_mlp; re-running the same command resumes them from their checkpoints.

Ergodic LQ of the follow-up paper (`:ergodic_lq`, 8 seeds x one path of T = 10^6 at dt = 0.01,
a few minutes; `:ergodic_lq_tiny` for tests): TD(0) and ergodic CLSTD evaluation of its optimal
exploratory policy against the closed forms (`jaxrl.martingale.ergodic`):
  python -m experiments.martingale --config=experiments/configs/martingale.py:ergodic_lq \
      --workdir=DIR

Any OU case of the family dX = a (b - X) dt + sigma dW, reward x^2/2 + q x, discount rho
(`:ou`, one mesh size and seed; writes DIR/summary.json with `true_params` (A, B, C) of
J(x) = A x^2/2 + B x + C and the estimates of `ml`, `ctd0`, `clstd`, `mstde`, `cgtd`):
  python -m experiments.martingale --config=experiments/configs/martingale.py:ou --workdir=DIR \
      --config.a=1 --config.b=1 --config.sigma=0.5 --config.q=1 --config.rho=1.5 \
      --config.dt=0.01 --config.seed=0
"""

import ml_collections

from experiments import common


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.mode = "full"  # "full" (all experiments) or "ou" (one OU case)
    # Ornstein-Uhlenbeck family (digest Part 1, closed form checked in the tests).
    c.a = 1.0
    c.b = 1.0
    c.sigma = 0.5
    c.q = 1.0
    c.rho = 1.5
    c.x0_mean = 1.0
    c.x0_std = 1.0
    c.t_fit = 2.0  # ML regresses the reward-to-go of mesh points with t < t_fit ...
    c.tail = 8.0  # ... and simulates tail / rho more time units (truncation error e^{-tail})
    # Single OU case (mode "ou").
    c.dt = 0.01
    c.seed = 0
    c.num_paths = 2000
    # Error-vs-dt sweep (mode "full").
    c.num_seeds = 16
    c.dts = (0.4, 0.2, 0.1, 0.05, 0.025)
    c.sweep_paths = 2000
    # Online / gradient methods.
    c.ctd_lr = 1.0  # per unit time
    c.ctd_epochs = 10
    c.cgtd_alpha = 0.5
    c.cgtd_beta = 2.0
    c.cgtd_epochs = 10
    # Brownian-motion example (finite horizon T = 1, h(x) = x, J(t, x) = x).
    c.bm_dts = (0.1, 0.05, 0.02, 0.01)
    c.bm_paths = 2000
    c.bm_ctd_lr = 2.0
    c.bm_ctd_epochs = 20
    # Black-Scholes call example.
    c.bs_dt = 0.01
    c.bs_paths = 2000
    c.bs_mlp_iters = 400
    c.bs_mlp_paths = 256
    c.bs_mlp_lr = 1e-2
    # d-dimensional linear-quadratic OU (same a, b, sigma, q, rho per coordinate, skew coupling
    # 0.3 of neighbours in the drift, 0.25 in the reward): closed-form fits per dimension.
    c.lq_dims = (1, 2, 5, 10)
    c.lq_dt = 0.1
    c.lq_paths = 1000
    c.lq_seeds = 8
    # MLP values on the 1-d OU case (martingale loss by Adam; CTD(0) online passes).
    c.mlp_dt = 0.1
    c.mlp_paths = 500
    c.mlp_hidden = (32, 32)
    c.mlp_iters = 800
    c.mlp_lr = 5e-3
    c.mlp_ctd_epochs = 20
    c.mlp_ctd_lr = 0.5
    c.mlp_seeds = 8
    # Ergodic LQ of the follow-up (arXiv:2111.11232v2 Sec. 5.2): (A, B, C, D, M, R, N, P, Q),
    # temperature, mesh, TD(0) step sizes (the paper gives 0.001 for theta; lr_v is ours),
    # one path of erg_chunks x erg_chunk steps per seed; estimates reported after these chunks.
    c.erg_model = (-1.0, 0.0, 0.0, 1.0, 2.0, 1.0, 2.0, 1.0, 2.0)
    c.erg_gamma = 0.1
    c.erg_dt = 0.01
    c.erg_lr = 1e-3
    c.erg_lr_v = 1e-3
    c.erg_seeds = 8
    c.erg_chunk = 10_000
    c.erg_chunks = 10_000  # T = 10^6 time units at dt = 0.01, the paper's length
    c.erg_report_chunks = (1, 10, 100, 1000, 10_000)
    common.add_runtime_fields(c)
    if arg == "quick":
        c.dts = (0.4, 0.2, 0.1, 0.05)
        c.sweep_paths = 256
        c.ctd_epochs = 6
        c.cgtd_epochs = 6
        c.tail = 7.0
        c.bm_dts = (0.1, 0.05, 0.02)
        c.bm_paths = 512
        c.bs_dt = 0.02
        c.bs_paths = 512
        c.bs_mlp_iters = 200
        c.bs_mlp_paths = 128
        c.lq_paths = 500
        c.lq_seeds = 4
        c.mlp_paths = 256
        c.mlp_iters = 300
        c.mlp_ctd_epochs = 5
        c.mlp_seeds = 4
    elif arg == "tiny":
        c.num_seeds = 2
        c.dts = (0.4, 0.2)
        c.sweep_paths = 64
        c.ctd_epochs = 3
        c.cgtd_epochs = 3
        c.tail = 4.0
        c.bm_dts = (0.1, 0.05)
        c.bm_paths = 64
        c.bm_ctd_epochs = 3
        c.bs_dt = 0.05
        c.bs_paths = 64
        c.bs_mlp_iters = 4
        c.bs_mlp_paths = 32
        c.lq_dims = (1, 2)
        c.lq_dt = 0.2
        c.lq_paths = 32
        c.lq_seeds = 2
        c.mlp_dt = 0.2
        c.mlp_paths = 32
        c.mlp_hidden = (8,)
        c.mlp_iters = 3
        c.mlp_ctd_epochs = 1
        c.mlp_seeds = 2
        c.chunk_size = 1
        c.checkpoint_every = 1
        c.progress = False
    elif arg in ("ergodic_lq", "ergodic_lq_tiny"):
        c.mode = "ergodic_lq"
        c.progress = False
        if arg == "ergodic_lq_tiny":
            c.erg_seeds = 2
            c.erg_chunk = 1000
            c.erg_chunks = 20
            c.erg_report_chunks = (10, 20)
    elif arg == "ou":
        c.mode = "ou"
        c.lane_width = 0  # one run: plain vmap, no lane of 8 copies
        c.progress = False
    elif arg not in (None, ""):
        raise ValueError(f"unknown martingale config variant {arg!r}; valid: quick, tiny, ou, "
                         "ergodic_lq, ergodic_lq_tiny")
    return c
