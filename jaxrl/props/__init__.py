"""PROPS (Corrado & Hanna, arXiv 2311.08290): adaptive behavior sampling for PPO.

* `jaxrl.props.algorithm`: the algorithm (`PROPSConfig`, `make_props`, the behavior loss and
  update, the bandit); its docstring describes the update cycle. PPO's rollout and epoch /
  minibatch update are `jaxrl.ppo.rollout` and `jaxrl.ppo.update_epochs`, called here with
  PROPS's masks and KL stop.
* `jaxrl.props.sampling_error`: estimators of the sampling error `KL(pi_D || pi_theta)`.
"""

from jaxrl.props import sampling_error
from jaxrl.props.algorithm import (
    BEHAVIORS,
    FLOAT_HPARAMS,
    ROS_HPARAMS,
    Buffer,
    PROPSConfig,
    PROPSState,
    as_config,
    bandit_actions,
    behavior_update,
    buffer_gae,
    get_config,
    make_props,
    policy_sampling_error,
    props_loss,
    push,
    reference_rollouts,
    set_opt_hparams,
    validate_config,
)

__all__ = [
    "BEHAVIORS", "FLOAT_HPARAMS", "ROS_HPARAMS", "Buffer", "PROPSConfig", "PROPSState",
    "as_config", "bandit_actions", "behavior_update", "buffer_gae", "get_config", "make_props",
    "policy_sampling_error", "props_loss", "push", "reference_rollouts", "sampling_error",
    "set_opt_hparams", "validate_config",
]
