"""The pieces of the sweep engine: the algorithm protocol, runs, the compiled chunk.

An algorithm hands the engine an `Algorithm`: a pure `init(key, hparams) -> state`, a pure
`update(state, hparams) -> (state, metrics)` doing ONE update (collect data, learn) and returning
per-update scalar metrics, and optionally a pure `evaluate(state, key, hparams) -> metrics`. The
engine knows nothing of the algorithm and the algorithm knows nothing of sweeping:

* `make_train(algo)` gives the notebook form `train(key, hparams) -> (state, metrics)`: the whole
  run as one `lax.scan` (metrics `[num_updates]` per key).
* `jaxrl.experiment.run(algo, seeds, grid, workdir=...)` is the one host loop: every
  (hyperparameter point x seed) pair in fixed-width lanes, sharded over all devices of all
  processes, chunk by chunk, with evaluation, checkpoints and resume (`sweep.run` is the same loop
  without a workdir).

Seed rule: the run with seed `s` uses key `jax.random.PRNGKey(s)`, whatever grid point it belongs
to (common random numbers across hyperparameters). Through `experiment.run` the run is
bit-identical whatever else shares its program (see `jaxrl.experiment`); `make_train` unbatched
agrees with it only to float rounding (XLA compiles a different kernel for an unbatched run).

Failure isolation: after every update, a run whose metrics became NaN/inf is marked failed
(`failed_at` = the 0-based update index; its state is also checked at the end of each chunk) and
its state is frozen at the start of that chunk (or, with `freeze="update"`, at the last finite
update); the other runs continue untouched (runs are independent under `vmap`). With
`halt_on_nan=True` the host raises `NonFiniteError` at the end of the chunk instead.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

Hparams = dict[str, jax.Array]
Metrics = dict[str, jax.Array]


class Algorithm(NamedTuple):
    """What an algorithm hands to the sweep engine.

    Attributes:
      init: `init(key, hparams) -> state`; `key` is a PRNG key, `hparams` a dict of float32
        scalars (the dynamic hyperparameters). `state` is any pytree (it must carry its own keys).
      update: `update(state, hparams) -> (state, metrics)`; one update, `metrics` a dict of
        float32 scalars (already reduced over envs/steps inside the update).
      num_updates: number of updates of a full run.
      env_steps_per_update: environment steps one update consumes (for steps/s and the `env_steps`
        column); 0 for algorithms without an environment.
      hparams: default values of the dynamic float hyperparameters; only these can be swept.
      name: a short name used in file names and reports.
      evaluate: optional `evaluate(state, key, hparams) -> metrics` (pure, one run, scalar
        metrics); the runtime calls it every `eval_every` updates with a key that depends only on
        the run's seed and the evaluation index (common random numbers across grid points).
    """

    init: Callable[[jax.Array, Hparams], Any]
    update: Callable[[Any, Hparams], tuple[Any, Metrics]]
    num_updates: int
    env_steps_per_update: int = 0
    hparams: Mapping[str, float] = {}
    name: str = "algo"
    evaluate: Callable[[Any, jax.Array, Hparams], Metrics] | None = None


class NonFiniteError(FloatingPointError):
    """Raised by the host loop when `halt_on_nan` is set and a run produced NaN/inf."""


def _as_hparams(algo: Algorithm, overrides: Mapping[str, Any] | None) -> Hparams:
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(algo.hparams))
    if unknown:
        raise ValueError(
            f"unknown hyperparameter(s) {unknown} for {algo.name}; "
            f"sweepable: {sorted(algo.hparams)}"
        )
    merged = {**algo.hparams, **overrides}
    return {k: jnp.asarray(v, jnp.float32) for k, v in merged.items()}


def make_train(algo: Algorithm) -> Callable[..., tuple[Any, Metrics]]:
    """The whole run as one function: `train(key, hparams=None) -> (state, metrics)`.

    `metrics[name]` has shape `[num_updates]`. Jit and vmap it as you like, e.g.
    `jax.jit(jax.vmap(make_train(algo)))(jax.random.split(key, 64))`.
    """

    def train(key: jax.Array, hparams: Mapping[str, Any] | None = None):
        hp = _as_hparams(algo, hparams)
        state = algo.init(key, hp)

        def body(s, _):
            return algo.update(s, hp)

        return jax.lax.scan(body, state, None, length=algo.num_updates)

    return train


# ---------------------------------------------------------------------------------------------
# Runs: the cartesian product of the grid and the seeds, flattened into one axis.
# ---------------------------------------------------------------------------------------------


def expand_runs(seeds: Sequence[int], grid: Mapping[str, Sequence[float]] | None) -> list[dict]:
    """All (grid point x seed) pairs as dicts `{"seed": s, name: value, ...}`, grid-major.

    Run `i` has grid point `i // len(seeds)` and seed `seeds[i % len(seeds)]`.
    """
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds is empty: give at least one seed")
    bad = [s for s in seeds if s < 0]
    if bad:
        raise ValueError(f"seeds must be >= 0, got {bad}")
    grid = {k: tuple(float(x) for x in v) for k, v in (grid or {}).items()}
    for k, v in grid.items():
        if not v:
            raise ValueError(f"sweep.{k} is empty: give at least one value")
    names = sorted(grid)
    runs = []
    for point in itertools.product(*(grid[n] for n in names)):
        for s in seeds:
            runs.append({"seed": s, **dict(zip(names, point, strict=True))})
    return runs


def run_keys(runs: Sequence[Mapping[str, Any]]) -> jax.Array:
    """`PRNGKey(seed)` for each run: `[runs, 2]` uint32 keys."""
    seeds = np.asarray([int(r["seed"]) for r in runs], np.int64)
    return jax.vmap(jax.random.PRNGKey)(jnp.asarray(seeds))


def run_hparams(algo: Algorithm, runs: Sequence[Mapping[str, Any]]) -> Hparams:
    """Per-run hyperparameters `{name: [runs] float32}`: the algorithm's defaults, overridden by
    each run's swept values."""
    swept = {k for r in runs for k in r if k != "seed"}
    _as_hparams(algo, dict.fromkeys(swept, 0.0))  # validates names
    return {
        k: jnp.asarray([float(r.get(k, v)) for r in runs], jnp.float32)
        for k, v in algo.hparams.items()
    }


# ---------------------------------------------------------------------------------------------
# The compiled chunk.
# ---------------------------------------------------------------------------------------------


class SweepState(NamedTuple):
    """Everything a sweep carries between chunks; every leaf has the leading `[runs]` axis.

    Attributes:
      algo: the algorithm's state (params, optimizer, env states, keys, ...).
      hparams: `{name: [runs]}` dynamic hyperparameters.
      step: `[runs]` int32, number of updates done.
      failed_at: `[runs]` int32, update index at which a run went non-finite, -1 if healthy.
    """

    algo: Any
    hparams: Hparams
    step: jax.Array
    failed_at: jax.Array


def _all_finite(tree: Any) -> jax.Array:
    leaves = [
        jnp.all(jnp.isfinite(x))
        for x in jax.tree.leaves(tree)
        if jnp.issubdtype(jnp.asarray(x).dtype, jnp.inexact)
    ]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


def make_chunk(algo: Algorithm, chunk_size: int, check_finite: bool = True,
               freeze: str = "chunk"):
    """`chunk(SweepState) -> (SweepState, metrics {name: [chunk_size]})` for ONE run, unjitted
    (the runtime vmaps it over the lanes of a group).

    With `check_finite`, each update's metrics are checked; a run whose metrics turn NaN/inf is
    marked failed at that update (`failed_at`, 0-based) and its metrics are NaN from then on
    (the engine adds a `failed` 0/1 metric). Its state is frozen:
      * `freeze="chunk"` (default): at the end of the chunk the whole state is also checked, and
        a failed run's state is reset to its value at the start of the chunk (the last checked
        finite state). Cost: one pass over the state per chunk, so large replay buffers in the
        state stay cheap.
      * `freeze="update"`: state checked and frozen after every update at the last finite
        value. Cost: one pass over the whole state per update.
    """
    if freeze not in ("chunk", "update"):
        raise ValueError(f"freeze must be 'chunk' or 'update', got {freeze!r}")
    per_update = check_finite and freeze == "update"

    def chunk(ss: SweepState) -> tuple[SweepState, Metrics]:
        state0, hp = ss.algo, ss.hparams

        def body(carry, _):
            s, n, f = carry
            new_s, m = algo.update(s, hp)
            m = {k: jnp.asarray(v, jnp.float32) for k, v in m.items()}
            if check_finite:
                ok = _all_finite(m)
                if per_update:
                    ok = ok & _all_finite(new_s)
                f = jnp.where((f < 0) & ~ok, n, f)
                alive = f < 0
                if per_update:
                    new_s = jax.tree.map(lambda a, b: jnp.where(alive, a, b), new_s, s)
                m = {k: jnp.where(alive, v, jnp.nan) for k, v in m.items()}
                m["failed"] = (~alive).astype(jnp.float32)
            return (new_s, n + 1, f), m

        (state, step, failed_at), ms = jax.lax.scan(
            body, (state0, ss.step, ss.failed_at), None, length=chunk_size
        )
        if check_finite and not per_update:
            failed_at = jnp.where((failed_at < 0) & ~_all_finite(state), step - 1, failed_at)
            failed = failed_at >= 0
            state = jax.tree.map(lambda a, b: jnp.where(failed, b, a), state, state0)
        return SweepState(state, hp, step, failed_at), ms

    return chunk


# ---------------------------------------------------------------------------------------------
# Devices.
# ---------------------------------------------------------------------------------------------


def make_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh named `runs` over all devices of all processes (or the given ones)."""
    devices = list(jax.devices() if devices is None else devices)
    return Mesh(np.asarray(devices), ("runs",))


def to_host(tree: Any) -> Any:
    """Fetch a (possibly multi-process sharded) pytree fully onto every host as NumPy."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        return multihost_utils.process_allgather(tree, tiled=True)
    return jax.tree.map(np.asarray, tree)


def run(algo: Algorithm, seeds: Sequence[int] = (0,),
        grid: Mapping[str, Sequence[float]] | None = None, **kwargs: Any):
    """The notebook form of `jaxrl.experiment.run` (no workdir): every (grid point x seed) run
    of `algo` as one compiled program; returns a `jaxrl.experiment.Result`."""
    from jaxrl import experiment

    return experiment.run(algo, seeds, grid, **kwargs)


def check_halt(ss: SweepState) -> None:
    """Raise `NonFiniteError` naming the failed runs, if any."""
    failed_at = np.asarray(to_host(ss.failed_at))
    if np.any(failed_at >= 0):
        idx = np.nonzero(failed_at >= 0)[0].tolist()
        raise NonFiniteError(
            f"halt_on_nan: run(s) {idx} produced NaN/inf at update(s) {failed_at[idx].tolist()}"
        )


class ProgressBar:
    """tqdm bar over updates showing env-steps/s and the mean of one metric (host side only)."""

    def __init__(self, algo: Algorithm, num_runs: int, enabled: bool, metric: str | None,
                 initial: int = 0):
        self.algo, self.num_runs, self.metric = algo, num_runs, metric
        self.enabled = enabled and jax.process_index() == 0
        self.bar = None
        self.initial = initial

    def __enter__(self):
        if self.enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.algo.num_updates, initial=self.initial, unit="upd",
                            desc=self.algo.name, dynamic_ncols=True)
        return self

    def update(self, n: int, ms: Mapping[str, np.ndarray]) -> None:
        if self.bar is None:
            return
        self.bar.update(n)
        rate = self.bar.format_dict.get("rate") or 0.0
        post = {}
        if self.algo.env_steps_per_update:
            post["env_steps/s"] = f"{rate * self.algo.env_steps_per_update * self.num_runs:,.0f}"
        name = self.metric or next((k for k in ms if k != "failed"), None)
        if name is not None and name in ms:
            post[name] = f"{np.nanmean(ms[name][:, -1]):.4g}"
        self.bar.set_postfix(post, refresh=False)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()
        return False
