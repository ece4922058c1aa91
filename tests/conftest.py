"""Shared fixtures: tiny configs that compile and run in seconds on a 2-core CPU."""

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def tiny_ppo_config(**overrides):
    from jaxrl import ppo

    c = ppo.get_config()
    c.num_envs = 2
    c.num_steps = 16
    c.num_minibatches = 2
    c.update_epochs = 2
    c.total_timesteps = 2 * 16 * 6  # 6 updates
    c.hidden = (16, 16)
    for k, v in overrides.items():
        c[k] = v
    return c


@pytest.fixture
def tiny_ppo():
    return tiny_ppo_config
