"""Bayesian policy gradient / Bayesian actor-critic (Ghavamzadeh, Engel & Valko, JMLR 2016).

Commands (from the repository root):

  Full study (gradient error vs M for M in 5..40 with 1000 repetitions and an MC reference
  curve up to M = 320, for G estimated per step (primary), per trajectory and exact (oracle),
  GP hyperparameters fitted per batch, calibration of the posteriors; policy learning MC /
  MC+baseline / BPG1 / BPG2 / BAC on the LQR with the papers' fixed step sizes, 16 seeds x
  `config.sweep.lr`, updates to reach the target `lqr_target`, IQM + 95% bootstrap CIs):
    python -m experiments.bayes_pg --config=experiments/configs/bayes_pg.py --workdir=/tmp/bpg
  Expected (docs/results/bayes_pg.md has the measured tables, 1000 repetitions): the main
  baseline is MC with a (leave-one-out) baseline, not plain MC. With G estimated from the batch
  and fitted GP hyperparameters, BPG Model 1 and BAC are more accurate than MC + baseline from
  about M = 10 on (at M = 5 MC + baseline is as good or better), Model 2 is about as accurate
  as plain MC (much worse than MC + baseline); the nominal 95% intervals of all three posteriors
  under-cover (see the calibration table). With the exact Fisher matrix (an oracle a
  model-free method lacks) the BPG figures improve slightly. Run time: see the results file.

  Quick (the report's section; 100 s on the shared 2-core machine, 4 Dec 2026):
    python -m experiments.bayes_pg --config=experiments/configs/bayes_pg.py:quick \
      --workdir=/tmp/bpgq

  Gradient check on any LQR of the family (writes DIR/summary.json with `true_gradient` and, for
  each estimator (`mc`, `mc_baseline`, `bpg1`, `bpg2`, `bac`), `mean_estimate` and
  `mean_angle_deg`; for those with a posterior `coverage_95` (the fraction of (repetition,
  component) pairs whose marginal 95% interval holds the true component), `angle_coverage_95`
  and the median fitted GP scale / noise):
    python -m experiments.bayes_pg --config=experiments/configs/bayes_pg.py:gradient \
      --workdir=DIR --config.lam=-0.2 --config.sigma=1.0 --config.horizon=20 \
      --config.num_episodes=10 --config.repetitions=1000 --config.seed=0
  Other constants as in the digest: transition noise variance 0.01, x_0 ~ N(0.3, 0.001),
  reward -(x^2 + 0.1 a^2), G estimated per step (`--config.fisher=exact|trajectory`), GP
  hyperparameters fitted (`--config.fit_gp=False`: the papers' fixed scale 1, noise 1). Takes
  seconds to a minute.

  Mountain car (`:mountaincar`, learning only: MC / MC+baseline / BPG1 / BPG2 / BAC, fixed
  steps lr in {1e-4, 3e-4, 1e-3, 3e-3, 1e-2}, 32 seeds x 300 updates of 10 episodes (<= 200
  steps each) from the uniform random policy; updates until the 10-update trailing mean return
  reaches -70; `jaxrl.envs.mountain_car`; about 10 minutes on the 2-core machine):
    python -m experiments.bayes_pg --config=experiments/configs/bayes_pg.py:mountaincar \
      --workdir=/tmp/bpg_mc
  Expected (docs/results/bayes_pg.md section 5, measured 7 Dec 2026): BAC reaches -70 first
  (median 68 updates, MC + baseline 96, P(faster) 0.66 [0.52, 0.80]); BPG Models 1 and 2 are
  slower than MC + baseline; with `--config.algo.fisher=states` BPG Model 1 catches up.
  (`:mountaincar_tiny`: the same with 2 seeds x 3 updates, for the tests.)

  Tiny (`:tiny`, seconds of compute, most of it compiling: the gradient study at M = 10 with 20
  repetitions and the learning runtime on the LQR, MC and MC+baseline x 2 seeds x 4 updates, one
  update per chunk and a checkpoint after every chunk; used by the kill-and-resume test).

Layout of a study workdir: `config.json`, `summary.json`, `plots/`, `gradient/metrics.csv` (the
gradient study in long form: run = repetition, step = M) and one runtime workdir per learning
program, `learning/<env>/<estimator>/` (`config.json`, `metrics.csv`, `summary.json`,
`plots/return.png`, `checkpoints/`), resumed by re-running the same command.

Policy learning settings shared by every program are `config.algo.*` (`jaxrl.bayes_pg.learn.
LearnConfig` less the per-program fields env / estimator / num_episodes / max_steps / num_updates
/ gamma, which come from `learn_envs`, `learn_estimators`, `lqr_*`, `cartpole_*`,
`mountaincar_*`; `<prefix>_algo` overrides config.algo for one environment); a grid over a
float is `config.sweep.<name>`, e.g. `--config.sweep.lr="(0.05, 0.1)"`: every estimator runs the
grid in one program and is reported at its best value.
"""

from __future__ import annotations

import dataclasses

import ml_collections

from experiments import common
from jaxrl import config as jconfig
from jaxrl.bayes_pg import learn

VARIANTS = ("full", "quick", "gradient", "tiny", "mountaincar", "mountaincar_tiny")
# LearnConfig fields set per program by the study (not by config.algo).
PER_PROGRAM = ("env", "estimator", "num_episodes", "max_steps", "num_updates", "gamma")


def algo_defaults(**overrides) -> ml_collections.ConfigDict:
    """`config.algo`: the shared LearnConfig fields (see PER_PROGRAM for the others)."""
    cfg = dataclasses.replace(learn.LearnConfig(), **overrides)
    d = jconfig.to_config_dict(cfg).to_dict()
    return ml_collections.ConfigDict({k: v for k, v in d.items() if k not in PER_PROGRAM})


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """`arg`: None (full), `quick`, `gradient`, `tiny`, `mountaincar` or `mountaincar_tiny`."""
    variant = arg or "full"
    if variant not in VARIANTS:
        raise ValueError(f"config variant must be one of {', '.join(VARIANTS)}; got {arg!r}")
    c = ml_collections.ConfigDict()
    c.variant = variant
    c.mode = "gradient" if variant == "gradient" else "study"
    c.seed = 0
    c.float64 = False
    # The LQR of the paper (digest Part B, ground truth 1) and the evaluation point.
    c.lam = -0.2
    c.sigma = 1.0
    c.horizon = 20
    c.noise_var = 0.01
    c.init_mean = 0.3
    c.init_var = 0.001
    c.action_cost = 0.1
    # Gradient estimation.
    # The Fisher information G of the kernels: `steps` (sum_t u_t u_t^T / M from the batch, the
    # model-free primary result), `trajectory` (u u^T / M) or `exact` (the LQR's closed form:
    # side information a model-free method does not have; an oracle). The study repeats the
    # gradient part for every mode in `other_fisher` (workdir/gradient_fisher_<mode>/).
    c.fisher = "steps"
    c.other_fisher = ("trajectory", "exact")
    c.gp_noise = 1.0  # Sigma = gp_noise * I when fit_gp is False
    # Fit the GP signal scale and noise (BPG; BAC's GPTD noise) per batch by maximizing the
    # log evidence; False = the papers' fixed kernel scale 1 and noise gp_noise (BAC: 1).
    c.fit_gp = True
    c.bac_capacity = 64  # BAC dictionary capacity in the gradient study
    c.num_episodes = 10  # gradient mode: M
    c.repetitions = 1000
    c.episode_counts = (5, 10, 20, 40)
    c.mc_reference_counts = (80, 160, 320)
    # Policy learning.
    c.learn_envs = ("LQR-v0",)  # or "CartPole-v1", "MountainCarNormalized-v0" (variant below)
    c.learn_estimators = ("mc", "mc_baseline", "bpg1", "bpg2", "bac")
    c.num_seeds = 16
    c.lqr_updates = 50
    c.lqr_episodes = 10
    c.cartpole_updates = 60
    c.cartpole_episodes = 10
    c.cartpole_max_steps = 500
    c.cartpole_gamma = 0.99
    # Mountain car (`jaxrl.envs.mountain_car`: gymnax dynamics, start uniform over the state
    # space, observations in [0, 1]^2; Boltzmann policy on a 4 x 4 RBF grid, 34 parameters,
    # from the uniform random policy). Return = -steps to the goal, capped at max_steps.
    c.mountaincar_updates = 300
    c.mountaincar_episodes = 10
    c.mountaincar_max_steps = 200
    c.mountaincar_gamma = 1.0
    # Returns from the uniform start (4000 episodes): uniform random policy -163, always right
    # -87, "pump" (accelerate along the velocity) -52; the target needs more than always-right.
    c.mountaincar_target = -70.0
    c.mountaincar_target_window = 10  # trailing mean: the metric is a 10-episode batch mean
    # LearnConfig overrides for the mountain-car programs (state kernel on [0, 1]^2).
    # fisher_ridge 1e-3: the batch Fisher matrix of the RBF-softmax policy becomes near-singular
    # (eigenvalues over 8 decades) and float32 Cholesky fails at the default 1e-6 (NaN in 7-15 of
    # 16 seeds of BPG / BAC at lr 1e-2, measured; none at 1e-4 or 1e-3).
    c.mountaincar_algo = ml_collections.ConfigDict({"bac_lengthscale": 0.3, "fisher_ridge": 1e-3})
    # Targets for "updates to reach the target" (None: not reported; then the best grid point
    # is the best final IQM, else the fastest median time to the target).
    c.lqr_target = -1.0  # optimum -0.3635 (sigma >= 0.05), initial -50.77
    c.cartpole_target = None
    c.lqr_target_window = 1  # the LQR's metric is the exact expected return (no noise)
    c.cartpole_target_window = 1
    # The papers' protocol: a fixed step theta += lr * E[grad | D] (sgd), not Adam (which
    # rescales per coordinate and hides differences in gradient magnitude).
    c.algo = algo_defaults(lr=1e-3, optimizer="sgd", fit_gp=True, bac_capacity=64)
    # Grids over LearnConfig floats (one program per estimator); unset = not swept. The report
    # shows each estimator at its best step size (fastest to the target) and every step size.
    c.sweep = jconfig.sweep_config(learn.LearnConfig)
    c.sweep.lr = (3e-4, 1e-3, 3e-3, 1e-2)
    common.add_runtime_fields(c)
    if variant == "quick":
        c.other_fisher = ("exact",)
        c.repetitions = 200
        c.mc_reference_counts = (80, 160)
        c.learn_envs = ("LQR-v0",)
        c.learn_estimators = ("mc_baseline", "bpg1", "bac")
        c.lqr_updates = 20
        c.lqr_episodes = 5
        c.cartpole_updates = 15
        c.cartpole_episodes = 5
        c.cartpole_max_steps = 100
        c.algo.bac_capacity = 32
        c.sweep.lr = None
        c.algo.lr = 3e-3
        c.progress = False
    if variant == "tiny":
        c.other_fisher = ()
        c.repetitions = 20
        c.episode_counts = (10,)
        c.mc_reference_counts = ()
        c.learn_envs = ("LQR-v0",)
        c.learn_estimators = ("mc", "mc_baseline")
        c.num_seeds = 2
        c.algo.optimizer, c.algo.lr, c.algo.fit_gp = "adam", 0.05, False
        c.lqr_updates = 4
        c.lqr_episodes = 4
        c.sweep.lr = None
        c.chunk_size = 1
        c.checkpoint_every = 1
        c.progress = False
    if variant == "gradient":
        c.learn_envs = ()
    if variant in ("mountaincar", "mountaincar_tiny"):
        c.mode = "learn"
        c.learn_envs = ("MountainCarNormalized-v0",)
        c.num_seeds = 32
        c.sweep.lr = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)
    if variant == "mountaincar_tiny":
        c.learn_estimators = ("mc", "mc_baseline", "bac")
        c.num_seeds = 2
        c.mountaincar_updates = 3
        c.mountaincar_episodes = 3
        c.mountaincar_max_steps = 30
        c.algo.bac_capacity = 8
        c.sweep.lr = (1e-3, 3e-3)
        c.chunk_size = 1
        c.checkpoint_every = 1
        c.progress = False
    return c
