"""The iterative martingale estimators as `jaxrl.sweep.Algorithm`s for the one runtime.

* `linear_policy_evaluation`: one update = one pass of the online methods over the paths,
  CTD(0) (`ctd_epoch`) and CGTD (`cgtd_epoch`), from where the previous pass ended; the metrics
  of an update are each online method's estimate (the Polyak average of that pass) and its error
  `|theta_hat - theta*|`. `evaluate` adds the closed-form estimators (ML, CLSTD, MSTDE, ...) on
  the same paths. The state holds the simulation key, not the paths: every update re-simulates
  them (the same key, so the same paths), which keeps checkpoints a few numbers per run at the
  price of one simulation per pass. `dt` is a run-time hyperparameter, so a grid over the mesh
  size is one compiled program (`num_steps` covers the smallest `dt`; longer meshes are masked).
* `mlp_fit`: one update = one Adam step on the martingale loss of a time-dependent MLP value on
  paths simulated at `init` (held in the state); `evaluate` is the RMSE of the fitted values
  against a closed form on the simulated points.

Configs follow `jaxrl.config`: `PEConfig` and `MLPFitConfig` mark shapes `static` and the floats
`sweepable`, and `Algorithm.hparams` is derived from the marks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxrl import config as jconfig
from jaxrl import optim, sweep
from jaxrl.config import static, sweepable
from jaxrl.envs.diffusions import Trajectory
from jaxrl.martingale.objectives import martingale_loss, path_values
from jaxrl.martingale.online import cgtd_epoch, ctd_epoch
from jaxrl.martingale.values import LinearValue, mlp_value


def _at_least(lo: int):
    return lambda v: None if isinstance(v, int) and v >= lo else f"must be an integer >= {lo}"


@dataclasses.dataclass(frozen=True)
class PEConfig:
    """Policy evaluation with a linear value family (`linear_policy_evaluation`)."""

    num_paths: int = static(2000, check=_at_least(1), doc="paths per run")
    num_steps: int = static(100, check=_at_least(1), doc="mesh steps (covers the smallest dt)")
    ctd_epochs: int = static(10, check=_at_least(0), doc="CTD(0) passes; 0 = no CTD")
    cgtd_epochs: int = static(10, check=_at_least(0), doc="CGTD passes; 0 = no CGTD")
    dt: float = sweepable(0.01, lo=0.0, lo_open=True, doc="mesh size")
    ctd_lr: float = sweepable(1.0, lo=0.0, lo_open=True, doc="CTD step size per unit time")
    cgtd_alpha: float = sweepable(0.5, lo=0.0, lo_open=True, doc="CGTD slow step size")
    cgtd_beta: float = sweepable(2.0, lo=0.0, lo_open=True, doc="CGTD fast step size")

    @property
    def num_updates(self) -> int:
        return max(self.ctd_epochs, self.cgtd_epochs)


@dataclasses.dataclass(frozen=True)
class MLPFitConfig:
    """A time-dependent MLP value fitted on the martingale loss (`mlp_fit`)."""

    num_paths: int = static(256, check=_at_least(1))
    num_steps: int = static(100, check=_at_least(1))
    num_iters: int = static(400, check=_at_least(1), doc="Adam steps (= updates)")
    hidden: tuple[int, ...] = static((16, 16))
    lr: float = sweepable(1e-2, lo=0.0, lo_open=True, doc="Adam step size")


class PEState(NamedTuple):
    key: jax.Array  # simulation key: every update re-simulates the same paths
    ctd: jax.Array  # last CTD iterate
    ctd_avg: jax.Array  # Polyak average of the last CTD pass (the estimate)
    cgtd: jax.Array
    cgtd_w: jax.Array
    cgtd_avg: jax.Array
    passes: jax.Array  # passes done


def linear_policy_evaluation(
    cfg: PEConfig,
    simulate: Callable[[jax.Array, jax.Array], Trajectory],
    value: LinearValue,
    truth: Sequence[float],
    closed_form: Mapping[str, Callable[[Trajectory], jax.Array]],
    param_names: Sequence[str],
    name: str = "policy_evaluation",
) -> sweep.Algorithm:
    """The online estimators as an `Algorithm` (see the module docstring).

    Args:
      cfg: the `PEConfig` (validated here).
      simulate: `simulate(key, dt) -> Trajectory` with `cfg.num_paths` paths of `cfg.num_steps`.
      value: the linear value family; truth: its true parameters `[p]` (for the errors).
      closed_form: `{method: fn(traj) -> [p]}` evaluated by `evaluate` on the same paths.
      param_names: names of the `p` parameters (metric columns `<method>_<param>`).

    Metrics: `<method>_<param>` and `<method>_error` for `ctd0` / `cgtd` per update (training)
    and for every method at the evaluation.
    """
    jconfig.validate(cfg)
    if cfg.num_updates < 1:
        raise ValueError("config.ctd_epochs or config.cgtd_epochs must be >= 1")
    truth = jnp.asarray(truth, jnp.float32)
    p = truth.shape[0]
    if len(param_names) != p:
        raise ValueError(f"param_names has {len(param_names)} names for {p} parameters")

    def named(method: str, theta: jax.Array) -> dict[str, jax.Array]:
        out = {f"{method}_{n}": theta[i] for i, n in enumerate(param_names)}
        out[f"{method}_error"] = jnp.linalg.norm(theta - truth)
        return out

    def init(key, hp):
        z = jnp.zeros(p, jnp.float32)
        return PEState(key, z, z, z, z, z, jnp.zeros((), jnp.int32))

    def update(s: PEState, hp):
        traj = simulate(s.key, hp["dt"])
        metrics = {}
        ctd, ctd_avg, th, w, cg_avg = s.ctd, s.ctd_avg, s.cgtd, s.cgtd_w, s.cgtd_avg
        if cfg.ctd_epochs:
            new, avg = ctd_epoch(s.ctd, value, traj, hp["ctd_lr"])
            on = s.passes < cfg.ctd_epochs
            ctd, ctd_avg = jnp.where(on, new, ctd), jnp.where(on, avg, ctd_avg)
            metrics |= named("ctd0", ctd_avg)
        if cfg.cgtd_epochs:
            new_th, new_w, avg = cgtd_epoch(s.cgtd, s.cgtd_w, value, traj, hp["cgtd_alpha"],
                                            hp["cgtd_beta"])
            on = s.passes < cfg.cgtd_epochs
            th, w = jnp.where(on, new_th, th), jnp.where(on, new_w, w)
            cg_avg = jnp.where(on, avg, cg_avg)
            metrics |= named("cgtd", cg_avg)
        return PEState(s.key, ctd, ctd_avg, th, w, cg_avg, s.passes + 1), metrics

    def evaluate(s: PEState, key, hp):
        del key  # the paths are the run's own (its simulation key)
        traj = simulate(s.key, hp["dt"])
        out = {}
        for method, fn in closed_form.items():
            out |= named(method, fn(traj))
        if cfg.ctd_epochs:
            out |= named("ctd0", s.ctd_avg)
        if cfg.cgtd_epochs:
            out |= named("cgtd", s.cgtd_avg)
        return out

    return sweep.Algorithm(init=init, update=update, num_updates=cfg.num_updates,
                           env_steps_per_update=0, hparams=jconfig.hparams(cfg), name=name,
                           evaluate=evaluate)


class MLPState(NamedTuple):
    traj: Trajectory
    params: Any
    opt_state: Any


def mlp_fit(
    cfg: MLPFitConfig,
    simulate: Callable[[jax.Array], Trajectory],
    truth_fn: Callable[[Trajectory], jax.Array],
    name: str = "mlp_martingale_loss",
) -> sweep.Algorithm:
    """Martingale-loss fit of a time-dependent MLP value (see the module docstring).

    `init(key)` splits `key` into (simulation, network init) keys as `fit_loss`'s callers did;
    `truth_fn(traj) -> [N, K]` is the true value on the mesh points `traj.x[:, :-1]`.
    Metrics: `loss` (the martingale loss before each step); evaluation: `rmse`.
    """
    jconfig.validate(cfg)
    _, vfn = mlp_value(jax.random.PRNGKey(0), hidden=cfg.hidden, time_dependent=True)
    adam = optim.adam()  # the run's learning rate hp["lr"] is written in per step

    def init(key, hp):
        k_sim, k_init = jax.random.split(key)
        traj = simulate(k_sim)
        p0, _ = mlp_value(k_init, hidden=cfg.hidden, time_dependent=True)
        return MLPState(traj, p0, adam.init(p0))

    def update(s: MLPState, hp):
        loss, g = jax.value_and_grad(lambda p: martingale_loss(p, vfn, s.traj))(s.params)
        params, opt_state = optim.step(adam, g, s.opt_state, s.params, learning_rate=hp["lr"])
        return MLPState(s.traj, params, opt_state), {"loss": loss}

    def evaluate(s: MLPState, key, hp):
        del key
        j = path_values(vfn, s.params, s.traj)[:, :-1]
        return {"rmse": jnp.sqrt(jnp.mean((j - truth_fn(s.traj)) ** 2))}

    return sweep.Algorithm(init=init, update=update, num_updates=cfg.num_iters,
                           env_steps_per_update=0, hparams=jconfig.hparams(cfg), name=name,
                           evaluate=evaluate)
