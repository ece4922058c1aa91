"""The seed-and-hyperparameter sweep engine.

An algorithm hands the engine an `Algorithm`: a pure `init(key, hparams) -> state` and a pure
`update(state, hparams) -> (state, metrics)` doing ONE update (collect data, learn) and returning
per-update scalar metrics. The engine knows nothing of the algorithm and the algorithm knows
nothing of sweeping:

* `make_train(algo)` gives the notebook form `train(key, hparams) -> (state, metrics)`: the whole
  run as one `lax.scan` (metrics `[num_updates]` per key).
* `run(algo, seeds, grid)` runs every (hyperparameter point x seed) pair as ONE compiled program:
  the flattened run axis is `vmap`ped and sharded over every device of every process with
  `NamedSharding(mesh, P("runs"))`. Long runs execute as jitted chunks of `chunk_size` updates
  (a `lax.scan`), returning to the host between chunks for the progress bar, metric files and
  checkpoints; the chunk function is traced once (see `SweepRunner.num_traces`).

Seed rule: the run with seed `s` uses key `jax.random.PRNGKey(s)`, whatever grid point it belongs
to (common random numbers across hyperparameters). Hence seed 3 of a sweep over seeds 0..7 equals
`make_train(algo)(PRNGKey(3), hparams)` to float tolerance.

Failure isolation: after every update, a run whose metrics became NaN/inf is marked failed
(`failed_at` = the 0-based update index; its state is also checked at the end of each chunk) and
its state is frozen at the start of that chunk (or, with `freeze="update"`, at the last finite
update); the other runs continue untouched (runs are independent under `vmap`). With
`halt_on_nan=True` the host raises `NonFiniteError` at the end of the chunk instead.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

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
    """

    init: Callable[[jax.Array, Hparams], Any]
    update: Callable[[Any, Hparams], tuple[Any, Metrics]]
    num_updates: int
    env_steps_per_update: int = 0
    hparams: Mapping[str, float] = {}
    name: str = "algo"


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
    return jnp.stack([jax.random.PRNGKey(int(r["seed"])) for r in runs])


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
    """`chunk(SweepState) -> (SweepState, metrics {name: [runs, chunk_size]})`, unjitted.

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

    def one_run(state, hp, step, failed_at):
        state0 = state

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
            body, (state, step, failed_at), None, length=chunk_size
        )
        if check_finite and not per_update:
            failed_at = jnp.where((failed_at < 0) & ~_all_finite(state), step - 1, failed_at)
            failed = failed_at >= 0
            state = jax.tree.map(lambda a, b: jnp.where(failed, b, a), state, state0)
        return state, step, failed_at, ms

    def chunk(ss: SweepState):
        algo_state, step, failed_at, ms = jax.vmap(one_run)(
            ss.algo, ss.hparams, ss.step, ss.failed_at
        )
        return SweepState(algo_state, ss.hparams, step, failed_at), ms

    return chunk


# ---------------------------------------------------------------------------------------------
# Devices.
# ---------------------------------------------------------------------------------------------


def make_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh named `runs` over all devices of all processes (or the given ones)."""
    devices = list(jax.devices() if devices is None else devices)
    return Mesh(np.asarray(devices), ("runs",))


def padded_size(n: int, mesh: Mesh) -> int:
    """`n` rounded up to a multiple of the mesh size (extra runs repeat the last one)."""
    d = mesh.devices.size
    return int(math.ceil(n / d) * d)


def _global_array(x: np.ndarray, sharding: NamedSharding) -> jax.Array:
    """A global array sharded along axis 0 built from the full host value (works multi-process)."""
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])


def to_host(tree: Any) -> Any:
    """Fetch a (possibly multi-process sharded) pytree fully onto every host as NumPy."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        return multihost_utils.process_allgather(tree, tiled=True)
    return jax.tree.map(np.asarray, tree)


@dataclasses.dataclass
class SweepResult:
    """Outcome of `run`.

    Attributes:
      runs: one dict per run (`seed` and the swept values), padding removed.
      metrics: `{name: [runs, updates_done]}` NumPy arrays (NaN after a failure).
      state: the final `SweepState` (device arrays, padded runs included).
      failed_at: `[runs]` update index of failure, -1 for healthy runs.
      env_steps_per_update: as in the algorithm.
    """

    runs: list[dict]
    metrics: dict[str, np.ndarray]
    state: SweepState
    failed_at: np.ndarray
    env_steps_per_update: int

    @property
    def num_failed(self) -> int:
        return int(np.sum(self.failed_at >= 0))

    def final(self, name: str, last: int = 1) -> np.ndarray:
        """`[runs]` mean of the last `last` values of metric `name`."""
        return np.nanmean(self.metrics[name][:, -last:], axis=1)


class SweepRunner:
    """Compiles the sweep once and runs it chunk by chunk.

    Args:
      algo: the algorithm.
      runs: from `expand_runs`.
      chunk_size: updates per jitted chunk (must divide nothing: the last chunk of a run whose
        length is not a multiple reuses the same program and the extra updates are dropped
        from the metrics; prefer a divisor of `num_updates`).
      mesh: device mesh, default all devices.
      check_finite: NaN/inf isolation (see `make_chunk`).
      freeze: "chunk" or "update", where a failed run's state is frozen (see `make_chunk`).
    """

    def __init__(
        self,
        algo: Algorithm,
        runs: Sequence[Mapping[str, Any]],
        chunk_size: int,
        mesh: Mesh | None = None,
        check_finite: bool = True,
        freeze: str = "chunk",
    ):
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        if algo.num_updates < 1:
            raise ValueError(f"num_updates must be >= 1, got {algo.num_updates}")
        self.algo = algo
        self.runs = [dict(r) for r in runs]
        self.mesh = mesh or make_mesh()
        self.num_runs = len(self.runs)
        self.num_padded = padded_size(self.num_runs, self.mesh)
        self.chunk_size = min(chunk_size, algo.num_updates)
        self.sharding = NamedSharding(self.mesh, P("runs"))
        self.num_traces = 0
        padded = self.runs + [self.runs[-1]] * (self.num_padded - self.num_runs)
        self._keys = np.asarray(run_keys(padded))
        self._hparams = {k: np.asarray(v) for k, v in run_hparams(algo, padded).items()}
        chunk = make_chunk(algo, self.chunk_size, check_finite, freeze)
        self.chunk_fn = chunk  # unjitted, e.g. for jax.eval_shape

        def traced_chunk(ss):
            self.num_traces += 1  # Python side effect: runs only while tracing.
            return chunk(ss)

        self._chunk = jax.jit(
            traced_chunk, in_shardings=self.sharding, out_shardings=self.sharding, donate_argnums=0
        )

        def init(keys, hp):
            algo_state = jax.vmap(algo.init)(keys, hp)
            n = keys.shape[0]
            return SweepState(
                algo_state, hp, jnp.zeros((n,), jnp.int32), jnp.full((n,), -1, jnp.int32)
            )

        self._init = jax.jit(init, in_shardings=self.sharding, out_shardings=self.sharding)

    def init(self) -> SweepState:
        keys = _global_array(self._keys, self.sharding)
        hp = {k: _global_array(v, self.sharding) for k, v in self._hparams.items()}
        return self._init(keys, hp)

    def abstract_state(self) -> Any:
        """Shapes/dtypes/shardings of the sweep state, for restoring checkpoints."""
        keys = jax.ShapeDtypeStruct(self._keys.shape, self._keys.dtype, sharding=self.sharding)
        hp = {
            k: jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=self.sharding)
            for k, v in self._hparams.items()
        }
        return jax.eval_shape(self._init, keys, hp)

    def chunk(self, ss: SweepState) -> tuple[SweepState, dict[str, np.ndarray]]:
        """One jitted chunk; returns the new state and host metrics `[runs, chunk]` (unpadded)."""
        ss, ms = self._chunk(ss)
        ms = to_host(ms)
        return ss, {k: v[: self.num_runs] for k, v in ms.items()}


def run(
    algo: Algorithm,
    seeds: Sequence[int] = (0,),
    grid: Mapping[str, Sequence[float]] | None = None,
    *,
    chunk_size: int | None = None,
    mesh: Mesh | None = None,
    progress: bool = True,
    halt_on_nan: bool = False,
    progress_metric: str | None = None,
    callback: Callable[[int, SweepState, dict[str, np.ndarray]], None] | None = None,
    freeze: str = "chunk",
) -> SweepResult:
    """Run `algo` for every seed and grid point as one compiled program, in chunks.

    Args:
      algo: the algorithm.
      seeds: seeds; run with seed `s` uses `PRNGKey(s)`.
      grid: `{hparam: values}`, the cartesian product is swept.
      chunk_size: updates per jitted chunk (default: about 20 chunks per run).
      mesh: device mesh (default: all devices of all processes).
      progress: show a tqdm bar with updates, env-steps/s and `progress_metric`.
      halt_on_nan: raise `NonFiniteError` when any run fails.
      progress_metric: metric shown in the bar (mean over runs), default the first one.
      callback: called on the host after each chunk with (updates_done, state, chunk metrics).
      freeze: where a failed run's state is frozen, "chunk" or "update" (see `make_chunk`).

    Returns:
      A `SweepResult` with metrics `[runs, num_updates]`.

    For checkpointed, resumable runs writing a workdir, use `jaxrl.experiment.run_sweep`.
    """
    runs = expand_runs(seeds, grid)
    if chunk_size is None:
        chunk_size = max(1, algo.num_updates // 20)
    runner = SweepRunner(algo, runs, chunk_size, mesh, freeze=freeze)
    ss = runner.init()
    collected: dict[str, list[np.ndarray]] = {}
    with ProgressBar(algo, runner.num_runs, progress, progress_metric) as bar:
        done = 0
        while done < algo.num_updates:
            ss, ms = runner.chunk(ss)
            take = min(runner.chunk_size, algo.num_updates - done)
            ms = {k: v[:, :take] for k, v in ms.items()}
            for k, v in ms.items():
                collected.setdefault(k, []).append(v)
            done += take
            bar.update(take, ms)
            if callback is not None:
                callback(done, ss, ms)
            if halt_on_nan:
                check_halt(ss)
    metrics = {k: np.concatenate(v, axis=1) for k, v in collected.items()}
    failed_at = np.asarray(to_host(ss.failed_at))[: runner.num_runs]
    return SweepResult(runs, metrics, ss, failed_at, algo.env_steps_per_update)


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
