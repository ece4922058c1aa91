"""Optimizers whose hyperparameters are run-time values, so a sweep over them compiles once.

The one idiom of the library for run-time learning rates (and any other numeric optimizer
hyperparameter): an optax transformation wrapped by `optax.inject_hyperparams`, whose state holds
the hyperparameters as arrays; before each update the run's values (from the sweep's `hparams`)
are written into that state.

* `injectable(factory, static_args, **defaults)`:
  `optax.inject_hyperparams(factory, static_args=static_args)(**defaults)`; the defaults only fix
  the state's structure (and dtypes), the values used are those given to `step` /
  `set_hparams`. Arguments named in `static_args` stay Python constants.
* `adam(**constants)`: Adam whose learning rate alone is injected; `b1`, `b2`, `eps`,
  `eps_root` stay constants (injected, they would be float32 arrays and Adam's bias correction
  would round differently in the last bit from `optax.scale_by_adam()`).
* `clipped_adam(**constants)`: global-norm clipping then Adam
  (`optax.chain(optax.clip_by_global_norm(max_grad_norm), optax.adam(learning_rate, ...))`, the
  PPO optimizer) with `learning_rate` and `max_grad_norm` injected.
* `cosine_adam(decay_steps, alpha, **constants)`: Adam on the cosine-decay schedule
  `optax.cosine_decay_schedule(learning_rate, decay_steps, alpha)` (Loshchilov & Hutter 2017)
  with the peak `learning_rate` injected.
* `set_hparams(opt_state, **values)`: the state with those hyperparameters replaced (pure).
* `step(opt, grads, opt_state, params, **values)`: one update with those values:
  `(new_params, new_opt_state)`.

Example (Adam with a swept learning rate `hp["lr"]`)::

    opt = adam()  # = injectable(optax.adam, ("b1", "b2", "eps", "eps_root"), learning_rate=0.0)
    state = opt.init(params)
    params, state = step(opt, grads, state, params, learning_rate=hp["lr"])

`optax.adam` with learning rate `lr` updates `p <- p + (-lr) u` with `u` Adam's scaled direction
(Kingma & Ba 2015, Algorithm 1), which is bit for bit `p - lr u` when `b1`, `b2`, `eps` are
constants (`adam`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import optax

ADAM_CONSTANTS = ("b1", "b2", "eps", "eps_root")


def injectable(factory: Callable[..., optax.GradientTransformation] = optax.adam,
               static_args: tuple[str, ...] = (), **defaults: Any
               ) -> optax.GradientTransformation:
    """`optax.inject_hyperparams(factory, static_args=static_args)(**defaults)`: the numeric
    keyword arguments of `factory` not in `static_args` (e.g. `learning_rate`) become arrays in
    the optimizer state, set per update by `set_hparams` / `step`."""
    return optax.inject_hyperparams(factory, static_args=static_args)(**defaults)


def _check_constants(name: str, constants: dict[str, float]) -> None:
    unknown = sorted(set(constants) - set(ADAM_CONSTANTS))
    if unknown:
        raise TypeError(f"optim.{name} takes constants {list(ADAM_CONSTANTS)}, got {unknown}")


def adam(**constants: float) -> optax.GradientTransformation:
    """Adam (Kingma & Ba 2015) with a run-time `learning_rate` (pass it to `step`); `constants`
    (`b1`, `b2`, `eps`, `eps_root`; optax's defaults otherwise) are compile-time constants.
    Bit for bit `optax.scale_by_adam(**constants)` followed by `p <- p - lr u`."""
    _check_constants("adam", constants)
    return injectable(optax.adam, ADAM_CONSTANTS, learning_rate=0.0, **constants)


def _clipped_adam(learning_rate: Any, max_grad_norm: Any, b1: float = 0.9, b2: float = 0.999,
                  eps: float = 1e-8, eps_root: float = 0.0) -> optax.GradientTransformation:
    return optax.chain(optax.clip_by_global_norm(max_grad_norm),
                       optax.adam(learning_rate, b1=b1, b2=b2, eps=eps, eps_root=eps_root))


def clipped_adam(**constants: float) -> optax.GradientTransformation:
    """Global-norm clipping (`max_grad_norm`) then Adam (`learning_rate`), both run-time values
    (pass them to `step`); `constants` as in `adam`. The state is an `inject_hyperparams` state
    whose `inner_state` is the chain's `(clip state, adam state)`."""
    _check_constants("clipped_adam", constants)
    return injectable(_clipped_adam, ADAM_CONSTANTS, learning_rate=0.0, max_grad_norm=0.0,
                      **constants)


def _cosine_adam(learning_rate: Any, decay_steps: int, alpha: float = 0.0, b1: float = 0.9,
                 b2: float = 0.999, eps: float = 1e-8, eps_root: float = 0.0
                 ) -> optax.GradientTransformation:
    return optax.adam(optax.cosine_decay_schedule(learning_rate, decay_steps, alpha),
                      b1=b1, b2=b2, eps=eps, eps_root=eps_root)


def cosine_adam(decay_steps: int, alpha: float = 0.0, **constants: float
                ) -> optax.GradientTransformation:
    """Adam whose step size at update `k` (counted from 0) is the cosine decay
    `lr ((1 - alpha) (1 + cos(pi min(k, decay_steps) / decay_steps)) / 2 + alpha)` of the
    run-time peak `learning_rate` (pass it to `step`); `decay_steps`, `alpha` and `constants`
    (as in `adam`) are compile-time constants."""
    _check_constants("cosine_adam", constants)
    return injectable(_cosine_adam, ("decay_steps", "alpha", *ADAM_CONSTANTS), learning_rate=0.0,
                      decay_steps=int(decay_steps), alpha=float(alpha), **constants)


def set_hparams(opt_state: Any, **values: jax.Array | float) -> Any:
    """`opt_state` (an `inject_hyperparams` state) with the named hyperparameters replaced by
    `values` (scalars; a name the state does not hold is a `KeyError`)."""
    hp = opt_state.hyperparams
    unknown = sorted(set(values) - set(hp))
    if unknown:
        raise KeyError(f"optimizer has no hyperparameter(s) {unknown}; it has {sorted(hp)}")
    return opt_state._replace(hyperparams={**hp, **values})


def step(opt: optax.GradientTransformation, grads: Any, opt_state: Any, params: Any,
         **values: jax.Array | float) -> tuple[Any, Any]:
    """One update of `params` (a pytree; `grads` the same structure) by `opt` with the run-time
    hyperparameters `values`: returns `(new_params, new_opt_state)`."""
    opt_state = set_hparams(opt_state, **values)
    updates, opt_state = opt.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state
