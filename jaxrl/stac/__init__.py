"""Stochastic Actor-Critic (STAC) and SAC-family baselines (Özalp 2026, arXiv 2601.00737).

Variants are entries of `VARIANTS` (`jaxrl.stac.variants`); critic families are records of pure
functions (`jaxrl.stac.families`; the generalized-Gaussian one in `jaxrl.stac.ggd`).
"""

from jaxrl.stac.families import CriticFamily
from jaxrl.stac.ggd import generalized_gaussian_nll, generalized_gaussian_variance
from jaxrl.stac.stac import (
    ALPHA_UPDATES,
    DSAC_TARGETS,
    AgentState,
    Learner,
    STACConfig,
    Transition,
    default_hparams,
    evaluate,
    gaussian_nll,
    make_evaluate,
    make_learner,
    make_stac,
    quantile_huber_loss,
    quantile_midpoints,
    resolved_alpha_update,
    soft_target,
)
from jaxrl.stac.variants import VARIANTS, Variant

__all__ = [
    "ALPHA_UPDATES",
    "DSAC_TARGETS",
    "VARIANTS",
    "AgentState",
    "CriticFamily",
    "Learner",
    "STACConfig",
    "Transition",
    "Variant",
    "default_hparams",
    "evaluate",
    "gaussian_nll",
    "generalized_gaussian_nll",
    "generalized_gaussian_variance",
    "make_evaluate",
    "make_learner",
    "make_stac",
    "quantile_huber_loss",
    "quantile_midpoints",
    "resolved_alpha_update",
    "soft_target",
]
