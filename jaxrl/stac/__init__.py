"""Stochastic Actor-Critic (STAC) and SAC-family baselines (Özalp 2026, arXiv 2601.00737)."""

from jaxrl.stac.stac import (
    QUANTILE_VARIANTS,
    VARIANTS,
    AgentState,
    Learner,
    STACConfig,
    default_hparams,
    evaluate,
    gaussian_nll,
    make_evaluate,
    make_learner,
    make_stac,
    quantile_huber_loss,
    quantile_midpoints,
    soft_target,
)

__all__ = [
    "QUANTILE_VARIANTS",
    "VARIANTS",
    "AgentState",
    "Learner",
    "STACConfig",
    "default_hparams",
    "evaluate",
    "gaussian_nll",
    "make_evaluate",
    "make_learner",
    "make_stac",
    "quantile_huber_loss",
    "quantile_midpoints",
    "soft_target",
]
