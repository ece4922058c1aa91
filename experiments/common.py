"""Helpers shared by the experiment scripts: seeds and grids from configs, workdir outputs."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import ml_collections
import numpy as np


def seeds_from_config(config: ml_collections.ConfigDict) -> list[int]:
    """`range(seed, seed + num_seeds)`, validated (one-line errors naming the field)."""
    if int(config.seed) < 0:
        raise ValueError(f"config.seed must be >= 0, got {config.seed!r}")
    if int(config.num_seeds) < 1:
        raise ValueError(f"config.num_seeds must be >= 1, got {config.num_seeds!r}")
    return list(range(int(config.seed), int(config.seed) + int(config.num_seeds)))


def grid_from_config(config: ml_collections.ConfigDict) -> dict[str, tuple[float, ...]]:
    """The swept values: every `config.sweep.<name>` that is set (a tuple or a scalar)."""
    grid = {}
    for name, values in (config.get("sweep") or {}).items():
        if values is None:
            continue
        vals = tuple(values) if isinstance(values, tuple | list) else (values,)
        if not vals:
            raise ValueError(f"config.sweep.{name} is empty")
        for v in vals:
            if not isinstance(v, int | float) or not np.isfinite(v):
                raise ValueError(f"config.sweep.{name} must hold finite numbers, got {values!r}")
        grid[name] = tuple(float(v) for v in vals)
    return grid


def grid_label(run: Mapping[str, Any]) -> str:
    """`lr=0.001 ent_coef=0` for a run dict (seed left out); `all` when nothing is swept."""
    parts = [f"{k}={v:g}" for k, v in sorted(run.items()) if k != "seed"]
    return " ".join(parts) or "all"


def plot_learning_curves(data: Mapping[str, Any], metric: str, path: str, title: str) -> None:
    """Learning curves of `metric` vs env steps, one IQM line + 95% CI band per grid point."""
    from jaxrl import plotting

    groups: dict[str, list[int]] = {}
    for i, r in enumerate(data["runs"]):
        groups.setdefault(grid_label(r), []).append(i)
    x = np.asarray(data["env_steps"]) if np.any(data["env_steps"]) else np.asarray(data["steps"])
    curves = {label: (x, np.asarray(data[metric])[idx]) for label, idx in groups.items()}
    os.makedirs(os.path.dirname(path), exist_ok=True)
    plotting.plot_curves(path, curves, xlabel="environment steps", ylabel=metric, title=title)
