"""Bayesian policy gradient / Bayesian actor-critic (Ghavamzadeh, Engel & Valko, JMLR 2016).

Commands (from the repository root):

  Full study (gradient error vs M for M in 5..40 with 1000 repetitions and an MC reference
  curve up to M = 320; policy learning BPG1 / BPG2 / BAC / MC / MC+baseline on the LQR and on
  CartPole-v1, 16 seeds, IQM + 95% bootstrap CIs):
    python -m experiments.bayes_pg --config=experiments/configs/bayes_pg.py --workdir=/tmp/bpg
  Expected: BPG Model 1 has a much smaller gradient angle than plain MC at equal M (about 23 vs
  50 degrees at M = 10, digest Part B item 6); Model 2 is close to plain MC; MC with a baseline
  is in between for small M. Run time: 17 min on the 2-core CPU shared with other jobs (each
  estimator runs over `config.sweep.lr` x 16 seeds in one program). Measured result:
  docs/results/bayes_pg.md.

  Quick (the report's section; <= 60 s on a quiet 2-core machine):
    python -m experiments.bayes_pg --config=experiments/configs/bayes_pg.py:quick \
      --workdir=/tmp/bpgq

  Gradient check on any LQR of the family (writes DIR/summary.json with `true_gradient` and, for
  `mc`, `bpg1`, `bpg2` (and `mc_baseline`), `mean_estimate` and `mean_angle_deg`):
    python -m experiments.bayes_pg --config=experiments/configs/bayes_pg.py:gradient \
      --workdir=DIR --config.lam=-0.2 --config.sigma=1.0 --config.horizon=20 \
      --config.num_episodes=10 --config.repetitions=1000 --config.seed=0
  Other constants as in the digest: transition noise variance 0.01, x_0 ~ N(0.3, 0.001),
  reward -(x^2 + 0.1 a^2), exact Fisher information, GP noise Sigma = I. Takes seconds.

  Tiny (`:tiny`, seconds of compute, most of it compiling: the gradient study at M = 10 with 20
  repetitions and the learning runtime on the LQR, MC and MC+baseline x 2 seeds x 4 updates, one
  update per chunk and a checkpoint after every chunk; used by the kill-and-resume test).

Layout of a study workdir: `config.json`, `summary.json`, `plots/`, `gradient/metrics.csv` (the
gradient study in long form: run = repetition, step = M) and one runtime workdir per learning
program, `learning/<env>/<estimator>/` (`config.json`, `metrics.csv`, `summary.json`,
`plots/return.png`, `checkpoints/`), resumed by re-running the same command.

Policy learning settings shared by every program are `config.algo.*` (`jaxrl.bayes_pg.learn.
LearnConfig` less the per-program fields env / estimator / num_episodes / max_steps / num_updates
/ gamma, which come from `learn_envs`, `learn_estimators`, `lqr_*`, `cartpole_*`); a grid over a
float is `config.sweep.<name>`, e.g. `--config.sweep.lr="(0.05, 0.1)"`: every estimator runs the
grid in one program and is reported at its best value.
"""

from __future__ import annotations

import dataclasses

import ml_collections

from experiments import common
from jaxrl import config as jconfig
from jaxrl.bayes_pg import learn

VARIANTS = ("full", "quick", "gradient", "tiny")
# LearnConfig fields set per program by the study (not by config.algo).
PER_PROGRAM = ("env", "estimator", "num_episodes", "max_steps", "num_updates", "gamma")


def algo_defaults(**overrides) -> ml_collections.ConfigDict:
    """`config.algo`: the shared LearnConfig fields (see PER_PROGRAM for the others)."""
    cfg = dataclasses.replace(learn.LearnConfig(), **overrides)
    d = jconfig.to_config_dict(cfg).to_dict()
    return ml_collections.ConfigDict({k: v for k, v in d.items() if k not in PER_PROGRAM})


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """`arg`: None (full), `quick`, `gradient` or `tiny`."""
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
    c.learn_envs = ("LQR-v0", "CartPole-v1")
    c.learn_estimators = ("mc", "mc_baseline", "bpg1", "bpg2", "bac")
    c.num_seeds = 16
    c.lqr_updates = 50
    c.lqr_episodes = 10
    c.cartpole_updates = 60
    c.cartpole_episodes = 10
    c.cartpole_max_steps = 500
    c.gamma_cartpole = 0.99
    # Targets for "updates to reach the target" (None: not reported; then the best grid point
    # is the best final IQM, else the fastest median time to the target).
    c.lqr_target = None
    c.cartpole_target = None
    c.algo = algo_defaults(lr=0.05, bac_capacity=64)
    # Grids over LearnConfig floats (one program per estimator); unset = not swept. The report
    # shows each estimator at its best learning rate and the final IQM at every rate.
    c.sweep = jconfig.sweep_config(learn.LearnConfig)
    c.sweep.lr = (0.05, 0.1, 0.2, 0.4, 0.8)
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
        c.progress = False
    if variant == "tiny":
        c.other_fisher = ()
        c.repetitions = 20
        c.episode_counts = (10,)
        c.mc_reference_counts = ()
        c.learn_envs = ("LQR-v0",)
        c.learn_estimators = ("mc", "mc_baseline")
        c.num_seeds = 2
        c.lqr_updates = 4
        c.lqr_episodes = 4
        c.sweep.lr = None
        c.chunk_size = 1
        c.checkpoint_every = 1
        c.progress = False
    if variant == "gradient":
        c.learn_envs = ()
    return c
