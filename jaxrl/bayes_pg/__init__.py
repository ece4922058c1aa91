"""Bayesian policy gradient and Bayesian actor-critic with Gaussian processes.

Ghavamzadeh & Engel (NIPS 2006, ICML 2007); Ghavamzadeh, Engel & Valko (JMLR 17, 2016).
Modules: `gp` (kernels incl. the Fisher kernel, jittered Cholesky, GP / Bayesian-quadrature
posteriors, ALD sparsification), `bpg` (MC-PG, BPG Models 1 and 2, natural gradient), `gptd`
(Monte-Carlo GPTD critic, sparse version, BAC gradient), `policies` (policies, episode
collection), `gradient_study` (LQR gradient-estimation study), `learn` (policy learners for
`jaxrl.sweep`).
"""

from jaxrl.bayes_pg import bpg, gp, gptd, gradient_study, learn, policies
from jaxrl.bayes_pg.bpg import (
    GradientPosterior,
    bpg_model1,
    bpg_model2,
    mc_gradient,
    natural_gradient,
)
from jaxrl.bayes_pg.gp import NotPositiveDefiniteError

__all__ = [
    "GradientPosterior",
    "NotPositiveDefiniteError",
    "bpg",
    "bpg_model1",
    "bpg_model2",
    "gp",
    "gptd",
    "gradient_study",
    "learn",
    "mc_gradient",
    "natural_gradient",
    "policies",
]
