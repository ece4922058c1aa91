"""Environments: gymnax is the protocol; our own environments are gymnax `Environment`s.

`make(name, **kwargs) -> (env, params)` resolves gymnax's registered names and ours. An unknown
name fails with the list of valid ones. `brax/NAME` wraps a Brax environment (optional extra
`jaxrl[brax]`; see `jaxrl.envs.brax_env`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

# First: defers the plotting modules gymnax imports only to render (~1.3 s per process).
from jaxrl.envs import _deferred  # noqa: F401

# isort: split
import gymnax

from jaxrl.envs.wrappers import (
    ClipAction,
    LogWrapper,
    NormalizeObservation,
    VecEnv,
    action_dim,
    is_discrete,
)

# Our environments: name -> "module:factory" (imported lazily). A factory takes **kwargs and
# returns (env, params).
_OURS: dict[str, str] = {
    # Continuous-time diffusions with closed-form values (martingale policy evaluation).
    "BrownianTerminal": "jaxrl.envs.diffusions:make_brownian",
    "ControlledOU": "jaxrl.envs.diffusions:make_ou",
    "BlackScholesCall": "jaxrl.envs.diffusions:make_black_scholes",
    "LinearQuadraticOU": "jaxrl.envs.diffusions:make_lq_ou",
    # Finite MDPs (distributional DP and its deep agent).
    "FiniteMDP-random": "jaxrl.envs.finite_mdp:random_mdp_env",
    "Gamble-v0": "jaxrl.envs.gamble:gamble",
    "Homeostasis-v0": "jaxrl.envs.gamble:homeostasis",
    "StockNecessity-v0": "jaxrl.envs.gamble:stock_necessity",
    # The risk demonstration of Stochastic Actor-Critic.
    "RiskyPointMass-v0": "jaxrl.envs.risky_point_mass:make_risky_point_mass",
    # The linear-quadratic regulator of Bayesian policy gradient (closed-form gradient).
    "LQR-v0": "jaxrl.envs.lqr:make_lqr",
    # gymnax's mountain car with a start over the whole state space, observations in [0, 1]^2
    # (Bayesian actor-critic learning).
    "MountainCarNormalized-v0": "jaxrl.envs.mountain_car:make_mountain_car",
}


def register(name: str, target: str | Callable[..., tuple[Any, Any]]) -> None:
    """Register an environment factory under `name` (`"module:attr"` string or callable)."""
    if name in _OURS or name in gymnax.registered_envs:
        raise ValueError(f"environment {name!r} is already registered")
    _OURS[name] = target  # type: ignore[assignment]


def registered() -> list[str]:
    """All valid environment names (ours and gymnax's), sorted."""
    return sorted(set(_OURS) | set(gymnax.registered_envs))


def make(name: str, **kwargs: Any) -> tuple[Any, Any]:
    """Build an environment and its default params by name.

    Raises:
      ValueError: for an unknown name, listing the valid ones.
    """
    if name in _OURS:
        target = _OURS[name]
        if isinstance(target, str):
            module, attr = target.split(":")
            target = getattr(importlib.import_module(module), attr)
        return target(**kwargs)
    if name in gymnax.registered_envs:
        return gymnax.make(name, **kwargs)
    if name.startswith("brax/"):
        from jaxrl.envs.brax_env import make_brax

        return make_brax(name[len("brax/"):], **kwargs)
    raise ValueError(f"unknown environment {name!r}; valid names: {', '.join(registered())} "
                     "and brax/NAME")


__all__ = [
    "ClipAction",
    "LogWrapper",
    "NormalizeObservation",
    "VecEnv",
    "action_dim",
    "is_discrete",
    "make",
    "register",
    "registered",
]
