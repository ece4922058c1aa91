"""Stochastic Actor-Critic (STAC) and SAC-family baselines (Özalp 2026, arXiv 2601.00737)."""

from jaxrl.stac.stac import (
    VARIANTS,
    AgentState,
    Learner,
    STACConfig,
    evaluate,
    gaussian_nll,
    make_learner,
    make_stac,
    soft_target,
)

__all__ = [
    "VARIANTS",
    "AgentState",
    "Learner",
    "STACConfig",
    "evaluate",
    "gaussian_nll",
    "make_learner",
    "make_stac",
    "soft_target",
]
