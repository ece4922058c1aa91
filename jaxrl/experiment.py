"""The one runtime: every experiment's host loop (chunks, evaluation, checkpoints, resume).

`run(algo, seeds, grid, workdir=None, ...)` runs every (grid point x seed) pair of `algo`:

* **Lanes.** Runs are laid out in fixed-width lanes: groups of `lane_width` runs, each group one
  call of the same single-device `jit(vmap(...))` program, spread round-robin over all devices of
  all processes. Every group of every sweep is computed by the same kernel, so the bits of run
  (seed s, grid point g) do not depend on how many runs share the sweep, on their order, on the
  device count or on the process count. XLA compiles different code for different batch widths
  (an unbatched run, a width-1 or a width-32 vmap round differently), which is why the width is
  fixed per backend (`LANE_WIDTH`) and recorded in the config. `lane_width=0` gives plain vmap over
  all runs (one group: fastest for large sweeps, bits then depend on the sweep's size). Padding
  lanes repeat the last run and are never written or checkpointed.
* **Chunks.** The host calls jitted chunks of `chunk_size` updates (a `lax.scan`); the last chunk
  is shortened so that the state has done exactly `num_updates` updates, and chunk boundaries also
  fall on every evaluation point. Each chunk length is compiled once.
* **Evaluation.** `evaluate(state, key, hparams) -> {name: scalar}` (the algorithm's, or the
  `evaluate=` argument) runs after every `eval_every` updates and at the end, jitted and vmapped
  the same way. Its key is `fold_in(fold_in(PRNGKey(seed), EVAL_STREAM), index)`: it depends only
  on the run's seed and the evaluation index, so two grid points of one seed are evaluated on the
  same start states (common random numbers) and a resumed run re-evaluates identically.
* **Workdir** (optional): `config.json`; `metrics.csv` and `eval.csv` in long form
  (`run, seed, <swept hparams>, step, env_steps, <metrics>`, one block per chunk); checkpoints
  (`jaxrl.checkpoint`: real runs only, content-hashed) every `checkpoint_every` chunks and at the
  end; an exclusive lock; SIGTERM/SIGINT finish the chunk in flight, checkpoint and raise
  `Preempted`. A re-run with the same workdir compares the stored config BEFORE reading any array,
  then resumes from the newest verified checkpoint, drops metric rows after it (and any torn
  row), and prints `resuming from update N of M`. Resumed == uninterrupted, byte for byte.
* **Summaries.** `summarize` (on `jaxrl.stats`) gives per-run final values and per-grid-point IQM
  with a 95% stratified-bootstrap CI, failures counted, `null` for what is missing.

Multi-process (pods, or 2 processes on localhost):
`jaxrl.distributed.maybe_initialize_distributed()` runs first (the `experiments` package calls
it on import); only process 0 writes files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import math
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxrl import distributed, sweep
from jaxrl.checkpoint import Checkpointer, CheckpointError  # noqa: F401 (re-export)
from jaxrl.distributed import maybe_initialize_distributed  # noqa: F401 (re-export)
from jaxrl.metrics import BackgroundWrites, MetricWriter, read_metrics, write_json

# Lanes per device by backend. CPU: 8 (the width at which a vmapped RL update was measured to
# round identically for every position; see README "The one runtime" for the measured cost).
LANE_WIDTH = {"cpu": 8, "gpu": 128, "cuda": 128, "rocm": 128, "tpu": 128}
EVAL_STREAM = 0x6576616C  # "eval": the fold_in tag of evaluation keys
PREEMPTED_EXIT = 75  # exit status of a script stopped by SIGTERM/SIGINT after checkpointing

# Config fields that may change between a run and its resumption without changing the numbers.
RESUME_INSENSITIVE = frozenset({"progress", "checkpoint_every", "keep_checkpoints", "force_resume",
                                "halt_on_nan", "plot", "tensorboard", "wandb", "log_per_run"})


class ConfigMismatchError(ValueError):
    """The workdir holds a run with a different config."""


class WorkdirLockedError(RuntimeError):
    """Another process holds the workdir."""


class Preempted(RuntimeError):  # noqa: N818 - it is a state, not a failure
    """SIGTERM/SIGINT arrived; the chunk in flight finished and was checkpointed."""

    def __init__(self, step: int, num_updates: int, workdir: str):
        super().__init__(f"stopped by signal at update {step} of {num_updates}; checkpoint "
                         f"written, re-run the same command to resume ({workdir})")
        self.step = step


def config_to_dict(config: ml_collections.ConfigDict | Mapping[str, Any] | None) -> dict[str, Any]:
    """A JSON-normalized plain dict (tuples become lists)."""
    if config is None:
        return {}
    if isinstance(config, ml_collections.ConfigDict):
        d = config.to_dict()
    elif dataclasses.is_dataclass(config):
        d = dataclasses.asdict(config)
    else:
        d = dict(config)
    return json.loads(json.dumps(d, default=lambda x: np.asarray(x).tolist()))


def diff_configs(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Dotted names of fields that differ (resume-insensitive fields ignored)."""
    out = []
    for k in sorted(set(old) | set(new)):
        if k.split(".")[-1] in RESUME_INSENSITIVE:
            continue
        a, b = old.get(k, "<missing>"), new.get(k, "<missing>")
        if isinstance(a, dict) and isinstance(b, dict):
            out += diff_configs(a, b, prefix + k + ".")
        elif a != b:
            out.append(f"{prefix}{k}: {a!r} -> {b!r}")
    return out


def default_lane_width(backend: str | None = None) -> int:
    """Lanes per device on `backend` (default: the default backend)."""
    return LANE_WIDTH.get(backend or jax.default_backend(), 8)


# ---------------------------------------------------------------------------------------------
# The lane engine: compiled programs over groups of runs.
# ---------------------------------------------------------------------------------------------


class Engine:
    """The compiled programs of one sweep, laid out in lanes.

    Runs are cut into groups of `lane_width` (the last padded by repeating the last run). Every
    group is computed by the same single-device program, `jit(vmap(f))` of width `lane_width`,
    placed on one device: group `g` belongs to process `g % P` and, there, to local device
    `(g // P) % D_local` (P processes). Groups on different devices run concurrently (async
    dispatch). No SPMD partitioning is involved: a partitioned program for D devices was measured
    to round differently from the 1-device program (3e-9 after one PPO update), whereas the same
    single-device program gives the same bits on every device.

    Args:
      algo: the algorithm.
      runs: from `sweep.expand_runs`.
      lane_width: runs per group (0: one group holding every run).
      devices: the devices to use (default all devices of all processes).
      check_finite, freeze: NaN/inf isolation (see `sweep.make_chunk`).
      evaluate: `evaluate(state, key, hparams) -> metrics` or None.
    """

    def __init__(self, algo: sweep.Algorithm, runs: Sequence[Mapping[str, Any]],
                 lane_width: int, devices: Sequence[jax.Device] | None = None,
                 check_finite: bool = True, freeze: str = "chunk",
                 evaluate: Callable | None = None):
        self.algo, self.runs = algo, [dict(r) for r in runs]
        self.num_runs = len(self.runs)
        devices = list(jax.devices() if devices is None else devices)
        self.num_processes = len({d.process_index for d in devices})
        me = jax.process_index()
        self.local_devices = [d for d in devices if d.process_index == me]
        self.lane_width = int(lane_width) or self.num_runs
        g = math.ceil(self.num_runs / self.lane_width)
        self.num_groups = math.ceil(g / self.num_processes) * self.num_processes
        self.num_padded = self.num_groups * self.lane_width
        self.mine = [i for i in range(self.num_groups) if i % self.num_processes == me]
        self.check_finite, self.freeze, self.evaluate = check_finite, freeze, evaluate
        padded = self.runs + [self.runs[-1]] * (self.num_padded - self.num_runs)
        self.keys = np.asarray(sweep.run_keys(padded))
        self.hparams = {k: np.asarray(v) for k, v in sweep.run_hparams(algo, padded).items()}
        self.num_traces = 0
        self._compiled: dict[tuple, Any] = {}

        def init_one(key, hp):
            return sweep.SweepState(algo.init(key, hp), hp, jnp.zeros((), jnp.int32),
                                    jnp.full((), -1, jnp.int32))

        self._init_one = init_one
        self._fns: dict[Any, Callable] = {"init": jax.jit(jax.vmap(init_one))}
        if evaluate is not None:
            def eval_one(ss, key, index):
                k = jax.random.fold_in(jax.random.fold_in(key, EVAL_STREAM), index)
                m = evaluate(ss.algo, k, ss.hparams)
                m = {n: jnp.asarray(v, jnp.float32) for n, v in m.items()}
                return {n: jnp.where(ss.failed_at < 0, v, jnp.nan) for n, v in m.items()}

            self._fns["eval"] = jax.jit(jax.vmap(eval_one, in_axes=(0, 0, None)))

    def device_of(self, group: int) -> jax.Device:
        return self.local_devices[(group // self.num_processes) % len(self.local_devices)]

    def _call_fn(self, name: Any) -> None:
        if name not in self._fns:  # a chunk length
            one = sweep.make_chunk(self.algo, name, self.check_finite, self.freeze)

            def traced(ss):
                self.num_traces += 1  # Python side effect: runs only while tracing.
                return jax.vmap(one)(ss)

            self._fns[name] = jax.jit(traced, donate_argnums=0)

    def _call(self, name: Any, group: int, *args: Any) -> Any:
        """Run program `name` on the group's device (compiled once per device and shape)."""
        self._call_fn(name)
        dev = self.device_of(group)
        key = (name, dev.id)
        if key not in self._compiled:
            self._compiled[key] = self._fns[name].lower(*args).compile()
        return self._compiled[key](*args)

    def _slice(self, x: np.ndarray, group: int) -> np.ndarray:
        return x[group * self.lane_width:(group + 1) * self.lane_width]

    def init(self) -> dict[int, sweep.SweepState]:
        """Fresh states of this process's groups, `{group: state}` on their devices."""
        out = {}
        for g in self.mine:
            dev = self.device_of(g)
            keys = jax.device_put(self._slice(self.keys, g), dev)
            hp = {k: jax.device_put(self._slice(v, g), dev) for k, v in self.hparams.items()}
            out[g] = self._call("init", g, keys, hp)
        return out

    def run_template(self) -> Any:
        """Shapes/dtypes of the host state of the real runs (leading axis `num_runs`)."""
        key = jax.ShapeDtypeStruct(self.keys.shape[1:], self.keys.dtype)
        hp = {k: jax.ShapeDtypeStruct((), v.dtype) for k, v in self.hparams.items()}
        one = jax.eval_shape(self._init_one, key, hp)
        return jax.tree.map(lambda s: jax.ShapeDtypeStruct((self.num_runs, *s.shape), s.dtype),
                            one)

    def compile(self, name: Any, args_of: Callable[[int], tuple]) -> None:
        """Compile program `name` for every local device not yet compiled, in parallel threads
        (XLA compiles release the GIL), so D devices cost about one compile of wall time."""
        todo = {}
        for g in self.mine:
            dev = self.device_of(g)
            if (name, dev.id) not in self._compiled and dev.id not in todo:
                todo[dev.id] = g
        if len(todo) <= 1:
            return
        self._call_fn(name)
        from concurrent.futures import ThreadPoolExecutor

        def one(g):
            return self._fns[name].lower(*args_of(g)).compile()

        with ThreadPoolExecutor(len(todo)) as pool:
            done = dict(zip(todo, pool.map(one, todo.values()), strict=True))
        for dev_id, exe in done.items():
            self._compiled[(name, dev_id)] = exe

    def chunk(self, groups: dict, length: int) -> tuple[dict, dict[str, np.ndarray]]:
        """Run `length` updates on every group; metrics `[num_runs, length]` on the host."""
        self.compile(length, lambda g: (groups[g],))
        outs = {g: self._call(length, g, s) for g, s in groups.items()}
        return {g: o[0] for g, o in outs.items()}, self._gather({g: o[1] for g, o in outs.items()})

    def eval(self, groups: dict, index: int) -> dict[str, np.ndarray]:
        """Evaluation metrics `[num_runs]` of every run (NaN for failed runs)."""
        outs = {}
        for g, s in groups.items():
            keys = jax.device_put(self._slice(self.keys, g), self.device_of(g))
            outs[g] = self._call("eval", g, s, keys, np.int32(index))
        return self._gather(outs)

    def _gather(self, trees: dict) -> Any:
        """Host arrays of every real run from this process's groups (all-gathered)."""
        local = [jax.tree.map(np.asarray, trees[g]) for g in self.mine]
        if self.num_processes > 1:
            from jax.experimental import multihost_utils

            stacked = jax.tree.map(lambda *xs: np.stack(xs), *local)
            every = multihost_utils.process_allgather(stacked)  # [P, G/P, W, ...]
            order = lambda x: np.swapaxes(x, 0, 1).reshape(-1, *x.shape[3:])  # g = j*P + p
            return jax.tree.map(lambda x: order(x)[: self.num_runs], every)
        return jax.tree.map(lambda *xs: np.concatenate(xs, axis=0)[: self.num_runs], *local)

    def to_host(self, groups: dict) -> sweep.SweepState:
        """The real runs' state as one host pytree (leading axis `num_runs`)."""
        return self._gather(groups)

    def from_host(self, state: Any) -> dict:
        """This process's groups from a host state of the real runs, padded as at init."""
        def pad(x):
            x = np.asarray(x)
            reps = np.repeat(x[-1:], self.num_padded - self.num_runs, axis=0)
            return np.concatenate([x, reps], axis=0)

        full = jax.tree.map(pad, state)
        return {g: jax.device_put(jax.tree.map(lambda x, g=g: self._slice(x, g), full),
                                  self.device_of(g)) for g in self.mine}

    def failed_at(self, groups: dict) -> np.ndarray:
        return self._gather({g: s.failed_at for g, s in groups.items()})


# ---------------------------------------------------------------------------------------------
# The result.
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Result:
    """What `run` returns.

    Attributes:
      runs: one dict per run (`seed` and the swept values).
      metrics: `{name: [runs, num_updates]}` training metrics (NaN after a failure).
      steps: `[num_updates]` update counts 1..num_updates; env_steps likewise.
      evals: `{name: [runs, num_evals]}` evaluation metrics; eval_steps `[num_evals]`.
      failed_at: `[runs]` update index of failure, -1 for healthy runs.
      state: the final `SweepState` of the real runs on the host (None if interrupted).
      env_steps_per_update: as in the algorithm.
      interrupted_at: the update count where `stop_after_chunks` stopped the run, else None.
      timings: per chunk of this call, seconds (`[chunks]` arrays): `compute` (dispatch, the
        device's work and the metrics' transfer to the host), `host` (metric writing, progress,
        loggers, failure check: the engine's host overhead), `eval` and `checkpoint`.
    """

    runs: list[dict]
    metrics: dict[str, np.ndarray]
    steps: np.ndarray
    env_steps: np.ndarray
    evals: dict[str, np.ndarray]
    eval_steps: np.ndarray
    failed_at: np.ndarray
    state: Any
    env_steps_per_update: int
    interrupted_at: int | None = None
    timings: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

    @property
    def num_failed(self) -> int:
        return int(np.sum(self.failed_at >= 0))

    def final(self, name: str, last: int = 1) -> np.ndarray:
        """`[runs]` mean of the last `last` values of training metric `name`."""
        with np.errstate(all="ignore"):
            return np.nanmean(self.metrics[name][:, -last:], axis=1)

    def data(self, source: str = "train") -> dict[str, Any]:
        """`{"runs", "steps", "env_steps", name: [runs, T]}` as `read_metrics` gives it."""
        if source == "eval":
            steps = np.asarray(self.eval_steps)
            return {"runs": self.runs, "steps": steps,
                    "env_steps": steps * self.env_steps_per_update, **self.evals}
        return {"runs": self.runs, "steps": self.steps, "env_steps": self.env_steps,
                **self.metrics}


# ---------------------------------------------------------------------------------------------
# Workdir plumbing: lock, signals.
# ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def workdir_lock(workdir: str) -> Iterator[None]:
    """Exclusive `fcntl.flock` on `workdir/lock` (released on exit or when the process dies)."""
    path = os.path.join(workdir, "lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            raise WorkdirLockedError(f"workdir {workdir} is in use by {holder}; wait for it "
                                     "or use another --workdir") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on host {socket.gethostname()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


class _Signals:
    """Record SIGTERM/SIGINT instead of dying; the loop checkpoints and raises `Preempted`."""

    def __init__(self, enabled: bool):
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.received: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self):
        if self.enabled:
            for s in (signal.SIGTERM, signal.SIGINT):
                self._old[s] = signal.signal(s, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C stops at once
        self.received = signum
        if jax.process_index() == 0:
            print(f"[jaxrl] {signal.Signals(signum).name}: finishing the chunk in flight, then "
                  "checkpointing", flush=True)

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)
        return False


def _memory_check(algo: sweep.Algorithm, num_runs: int, lane_width: int,
                  devices: Sequence[jax.Device] | None) -> None:
    """Refuse, before any run list is built or anything compiles, a sweep whose state cannot fit
    the devices (one line saying how many runs fit). Counts the sweep state only (from
    `jax.eval_shape` of `init`), so it is a lower bound on what the sweep needs."""
    devices = list(jax.devices() if devices is None else devices)
    local = [d for d in devices if d.process_index == jax.process_index()] or devices
    num_dev = len(devices)
    hp = {k: jax.ShapeDtypeStruct((), jnp.float32) for k in algo.hparams}
    one = jax.eval_shape(algo.init, jax.ShapeDtypeStruct((2,), jnp.uint32), hp)
    per_run = int(sum(np.prod(s.shape) * np.dtype(s.dtype).itemsize
                      for s in jax.tree.leaves(one))) + 16
    limit = None
    try:
        limit = (local[0].memory_stats() or {}).get("bytes_limit")
    except Exception:  # noqa: BLE001 - backends without memory stats
        limit = None
    if limit is None:  # CPU: the host's memory, shared by its devices
        try:
            limit = (os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")) // len(local)
        except (ValueError, OSError):
            return
    w = lane_width or math.ceil(num_runs / num_dev)
    groups_per_device = math.ceil(math.ceil(num_runs / w) / num_dev)
    need = per_run * w * (groups_per_device + 1)  # +1: a donated chunk's input and output
    if need > 0.8 * limit:
        fit = max(int(0.8 * limit // (per_run * w)) - 1, 0) * w * num_dev
        raise ValueError(
            f"the sweep state needs {need / 2**30:.2f} GiB per device for {num_runs} runs "
            f"({per_run / 2**20:.3f} MiB per run) but a device holds {limit / 2**30:.2f} GiB: "
            f"about {fit} runs fit; use fewer seeds or grid points")


def auto_chunk_size(num_updates: int, eval_every: int | None = None, chunks: int = 20) -> int:
    """The default chunk length: about `num_updates / chunks` updates, chosen so that every chunk
    has the same length when possible, so one chunk program is compiled instead of two or three
    (a remainder chunk or an evaluation point off the chunk grid is a new length, a new compile:
    on PPO CartPole's 976 updates, 48-update chunks plus a 16-update tail compiled twice, ~9 s
    of CPU each on the 2-core CPU).

    It is the divisor `d` of `m = gcd(num_updates, eval_every)` (`m = num_updates` without
    evaluation) nearest to the target `max(1, num_updates // chunks)` within `[target / 2,
    2 target]` (the longer on a tie); if no divisor lies there, the target itself.
    """
    target = max(1, num_updates // chunks)
    m = math.gcd(num_updates, int(eval_every)) if eval_every else num_updates
    divisors = [d for d in range(max(1, -(-target // 2)), min(m, 2 * target) + 1) if m % d == 0]
    if not divisors:
        return target
    return min(divisors, key=lambda d: (abs(d - target), -d))  # ties: the longer chunk


def _plan(num_updates: int, chunk_size: int, eval_every: int | None) -> list[int]:
    """Chunk end points: multiples of chunk_size and of eval_every, and num_updates."""
    ends = set(range(chunk_size, num_updates + 1, chunk_size)) | {num_updates}
    if eval_every:
        ends |= set(range(eval_every, num_updates + 1, eval_every))
    return sorted(ends)


# ---------------------------------------------------------------------------------------------
# The host loop.
# ---------------------------------------------------------------------------------------------


def run(
    algo: sweep.Algorithm,
    seeds: Sequence[int] = (0,),
    grid: Mapping[str, Sequence[float]] | None = None,
    *,
    workdir: str | None = None,
    config: Any = None,
    evaluate: Callable | None = None,
    eval_every: int | None = None,
    chunk_size: int | None = None,
    checkpoint_every: int = 5,
    keep_checkpoints: int = 3,
    lane_width: int | str = "auto",
    devices: Sequence[jax.Device] | None = None,
    progress: bool = True,
    progress_metric: str | None = None,
    halt_on_nan: bool = False,
    freeze: str = "chunk",
    force_resume: bool = False,
    callback: Callable[[int, dict[str, np.ndarray]], None] | None = None,
    loggers: Sequence[Any] = (),
    tensorboard: bool = False,
    wandb: str = "",
    log_per_run: bool = False,
    stop_after_chunks: int | None = None,
    handle_signals: bool = True,
    log: Callable[[str], None] | None = None,
) -> Result:
    """Run (or, with a workdir, resume) every (grid point x seed) run of `algo`.

    Args:
      algo: the algorithm (`jaxrl.sweep.Algorithm`).
      seeds: seeds; the run with seed `s` uses `PRNGKey(s)`.
      grid: `{hparam: values}`; the cartesian product is swept (names from `algo.hparams`).
      workdir: results directory; None runs in memory (notebooks) and writes nothing.
      config: the experiment's config (ConfigDict, dataclass or dict), stored in `config.json`
        and compared on resume.
      evaluate: `evaluate(state, key, hparams) -> {name: scalar}`; default `algo.evaluate`.
      eval_every: updates between evaluations (and one at the end); None: no evaluation.
      chunk_size: updates per jitted chunk (default `auto_chunk_size`: about 20 equal chunks).
      checkpoint_every: chunks between checkpoints (and one at the end).
      keep_checkpoints: complete checkpoints kept.
      lane_width: runs per device per group; "auto" = `LANE_WIDTH[backend]`; 0 = plain vmap.
      devices: devices to spread the groups over (default all devices of all processes).
      progress: tqdm bar (updates, env-steps/s, `progress_metric`).
      halt_on_nan: raise `sweep.NonFiniteError` when a run fails (after checkpointing).
      freeze: where a failed run's state is frozen, "chunk" or "update".
      force_resume: resume despite config differences (printed).
      callback: `callback(updates_done, chunk_metrics)` on the host after each chunk.
      loggers: objects with `write(kind, steps, runs, metrics)` and `close()`
        (`jaxrl.loggers`), called on process 0 after each chunk ("train") and evaluation ("eval").
      tensorboard: with a workdir, TensorBoard event files in `<workdir>/tensorboard`
        (`jaxrl.loggers.TensorBoardLogger`: per grid point IQM and CI band).
      wandb: with a workdir, "offline" or "online" Weights & Biases logging ("" = off).
      log_per_run: the backends also log every run's scalars.
      stop_after_chunks: stop (as if interrupted, after checkpointing) after this many chunks.
      handle_signals: with a workdir, turn SIGTERM/SIGINT into checkpoint + `Preempted`.
      log: where one-line messages go (default print on process 0).

    Returns:
      A `Result` (from the files when a workdir is given, so a resumed run returns it whole).

    Raises:
      ValueError: a bad argument (one line naming it), or a sweep too large for the devices.
      ConfigMismatchError: the workdir holds a different config and not force_resume.
      WorkdirLockedError: another process is writing the workdir.
      Preempted: SIGTERM/SIGINT arrived; a checkpoint was written.
    """
    is_main = jax.process_index() == 0
    log = log or ((lambda s: print(s, flush=True)) if is_main else (lambda s: None))
    evaluate = evaluate or algo.evaluate
    for name, v in (("checkpoint_every", checkpoint_every), ("keep_checkpoints", keep_checkpoints)):
        if int(v) < 1:
            raise ValueError(f"{name} must be >= 1, got {v}")
    if algo.num_updates < 1:
        raise ValueError(f"num_updates must be >= 1, got {algo.num_updates}")
    if eval_every is not None and int(eval_every) < 1:
        raise ValueError(f"eval_every must be >= 1, got {eval_every}")
    if chunk_size is None or int(chunk_size) == 0:
        chunk_size = auto_chunk_size(algo.num_updates, eval_every)
    if int(chunk_size) < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    chunk_size = min(int(chunk_size), algo.num_updates)
    if eval_every is not None and evaluate is None:
        raise ValueError(f"eval_every={eval_every} given but {algo.name} has no evaluate")
    if lane_width == "auto":
        lane_width = default_lane_width()
    if int(lane_width) < 0:
        raise ValueError(f"lane_width must be >= 0 (0 = plain vmap), got {lane_width}")
    seeds = [int(s) for s in seeds]
    _memory_check(algo, len(seeds) * math.prod(len(v) for v in (grid or {}).values()),
                  int(lane_width), devices)
    runs = sweep.expand_runs(seeds, grid)
    sweep.run_hparams(algo, runs)  # validates grid names
    engine = Engine(algo, runs, int(lane_width), devices, freeze=freeze,
                    evaluate=evaluate if eval_every else None)
    note = distributed.default_note()
    if note:
        log(note)
    plan = _plan(algo.num_updates, chunk_size, eval_every)
    if workdir is None:
        return _loop(engine, plan, eval_every, None, progress, progress_metric, halt_on_nan,
                     callback, loggers, stop_after_chunks, checkpoint_every, None, None, log)

    loggers = list(loggers)
    if is_main and tensorboard:
        from jaxrl.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(os.path.join(workdir, "tensorboard"), log_per_run))
    if is_main and wandb:
        from jaxrl.loggers import WandbLogger

        loggers.append(WandbLogger(workdir, wandb, config_to_dict(config)))
    stored = {**config_to_dict(config), "runtime": {
        "algo": algo.name, "num_updates": algo.num_updates, "runs": runs,
        "chunk_size": chunk_size, "eval_every": eval_every, "lane_width": engine.lane_width
        if lane_width else 0, "freeze": freeze}}
    os.makedirs(workdir, exist_ok=True)
    lock = workdir_lock(workdir) if is_main else contextlib.nullcontext()
    with lock, _Signals(handle_signals) as sig:
        ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), keep_checkpoints)
        template = engine.run_template()

        def accept(meta):
            diffs = diff_configs(meta["config"], stored)
            if diffs and not force_resume:
                raise ConfigMismatchError(
                    f"workdir {workdir} holds a run with a different config "
                    f"({'; '.join(diffs)}); use a new --workdir, or force_resume to continue")
            if diffs:
                shape = [d for d in diffs if d.startswith("runtime.")]
                want = [list(s.shape) for s in jax.tree.leaves(template)]
                if not shape and meta.get("shapes") != want:
                    shape = diffs  # the state's shapes changed with these fields
                if shape:
                    raise ConfigMismatchError(
                        f"cannot force_resume across a change of the runs or their layout "
                        f"({'; '.join(shape)}); use a new --workdir")
                log(f"[jaxrl] force_resume despite config differences: {'; '.join(diffs)}")

        restored = ckpt.restore(template, accept, log)
        if restored is not None:
            step, host_state, _ = restored
            groups = engine.from_host(host_state)
            log(f"[jaxrl] resuming from update {step} of {algo.num_updates} ({workdir})")
        else:
            step, groups = 0, None
        if is_main:
            write_json(os.path.join(workdir, "config.json"), stored)
        return _loop(engine, plan, eval_every, workdir, progress, progress_metric, halt_on_nan,
                     callback, loggers, stop_after_chunks, checkpoint_every, ckpt, sig, log,
                     step=step, groups=groups, stored=stored)


def _loop(engine: Engine, plan: list[int], eval_every: int | None, workdir: str | None,
          progress: bool, progress_metric: str | None, halt_on_nan: bool, callback, loggers,
          stop_after_chunks: int | None, checkpoint_every: int, ckpt: Checkpointer | None,
          sig: _Signals | None, log, step: int = 0, groups: list | None = None,
          stored: dict | None = None) -> Result:
    algo = engine.algo
    is_main = jax.process_index() == 0
    if groups is None:
        groups = engine.init()
    writers = {}
    if workdir is not None:
        metric_names = _metric_names(engine)
        writers["train"] = MetricWriter(os.path.join(workdir, "metrics.csv"), engine.runs,
                                        metric_names, algo.env_steps_per_update)
        if eval_every:
            writers["eval"] = MetricWriter(os.path.join(workdir, "eval.csv"), engine.runs,
                                           _eval_names(engine), algo.env_steps_per_update)
        if is_main:
            for w in writers.values():
                w.truncate_after(step)
    for lg in loggers:
        if hasattr(lg, "start"):
            lg.start(step)
    collected: dict[str, list[np.ndarray]] = {}
    collected_eval: dict[str, list[np.ndarray]] = {}
    eval_steps: list[int] = []
    chunks = 0
    stopped = None
    timings: dict[str, list[float]] = {"compute": [], "host": [], "eval": [], "checkpoint": []}
    clock = time.perf_counter
    ends = [e for e in plan if e > step]
    writes = BackgroundWrites()
    with contextlib.closing(writes), sweep.ProgressBar(algo, engine.num_runs, progress,
                                                      progress_metric, step) as bar:
        for end in ends:
            length = end - step
            t0 = clock()
            groups, ms = engine.chunk(groups, length)
            t1 = clock()
            t_eval = t_ckpt = 0.0
            steps = list(range(step + 1, end + 1))
            step = end
            chunks += 1
            done = step == algo.num_updates
            if workdir is not None and is_main:
                writes.submit(writers["train"].append, steps, ms, _intact(ckpt))
            else:
                for k, v in ms.items():
                    collected.setdefault(k, []).append(v)
            bar.update(length, ms)
            if is_main:
                for lg in loggers:
                    lg.write("train", steps, engine.runs, ms)
            if callback is not None:
                callback(step, ms)
            if eval_every and (step % eval_every == 0 or done):
                t_eval = clock()
                index = (step - 1) // eval_every if step % eval_every else step // eval_every - 1
                ev = engine.eval(groups, index)
                if workdir is not None and is_main:
                    writes.submit(writers["eval"].append, [step],
                                  {k: v[:, None] for k, v in ev.items()}, _intact(ckpt))
                else:
                    eval_steps.append(step)
                    for k, v in ev.items():
                        collected_eval.setdefault(k, []).append(v[:, None])
                if is_main:
                    for lg in loggers:
                        lg.write("eval", [step], engine.runs,
                                 {k: v[:, None] for k, v in ev.items()})
                t_eval = clock() - t_eval
            failed = bool(np.any(engine.failed_at(groups) >= 0)) if halt_on_nan else False
            signalled = sig is not None and sig.received is not None
            stop = stop_after_chunks is not None and chunks >= stop_after_chunks and not done
            if ckpt is not None and (done or chunks % checkpoint_every == 0 or failed
                                     or signalled or stop):
                t_ckpt = clock()
                host = engine.to_host(groups)
                if is_main:
                    writes.wait()  # the rows up to `step` are on disk before its checkpoint
                    ckpt.save(step, host, stored)
                _barrier(f"ckpt{step}")
                t_ckpt = clock() - t_ckpt
            timings["compute"].append(t1 - t0)
            timings["eval"].append(t_eval)
            timings["checkpoint"].append(t_ckpt)
            timings["host"].append(clock() - t1 - t_eval - t_ckpt)
            if failed:
                sweep.check_halt(groups_failed(engine, groups))
            if signalled:
                raise Preempted(step, algo.num_updates, workdir or "")
            if stop:
                stopped = step
                break
    for lg in loggers:
        lg.close()
    if workdir is not None:
        data = read_metrics(writers["train"].path)
        ev = (read_metrics(writers["eval"].path) if "eval" in writers
              else {"steps": np.zeros(0, int)})
        metrics = {k: v for k, v in data.items() if k not in ("runs", "steps", "env_steps")}
        evals = {k: v for k, v in ev.items() if k not in ("runs", "steps", "env_steps")}
        steps_arr, env_steps, eval_steps_arr = data["steps"], data["env_steps"], ev["steps"]
    else:
        metrics = {k: np.concatenate(v, axis=1) for k, v in collected.items()}
        evals = {k: np.concatenate(v, axis=1) for k, v in collected_eval.items()}
        steps_arr = np.arange(1, step + 1)
        env_steps = steps_arr * algo.env_steps_per_update
        eval_steps_arr = np.asarray(eval_steps, int)
    final_state = None if stopped is not None else engine.to_host(groups)
    failed_at = engine.failed_at(groups)
    return Result(engine.runs, metrics, np.asarray(steps_arr), np.asarray(env_steps), evals,
                  np.asarray(eval_steps_arr), np.asarray(failed_at), final_state,
                  algo.env_steps_per_update, stopped,
                  {k: np.asarray(v) for k, v in timings.items()})


def groups_failed(engine: Engine, groups: dict) -> sweep.SweepState:
    """A stand-in state holding only `failed_at` of the real runs (for `sweep.check_halt`)."""
    return sweep.SweepState(None, {}, None, engine.failed_at(groups))


def _intact(ckpt: Checkpointer | None) -> str:
    if ckpt is None or not ckpt.steps():
        return ""
    return f"the last complete checkpoint in {ckpt.directory} is intact"


def _barrier(name: str) -> None:
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def _metric_names(engine: Engine) -> list[str]:
    """Training metric columns, from an abstract trace of one chunk (no compile)."""
    one = sweep.make_chunk(engine.algo, 1, engine.check_finite, engine.freeze)
    t = engine.run_template()
    lane = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape[1:], s.dtype), t)
    _, ms = jax.eval_shape(one, lane)
    return sorted(ms)


def _eval_names(engine: Engine) -> list[str]:
    t = engine.run_template()
    lane = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape[1:], s.dtype), t)
    key = jax.ShapeDtypeStruct((2,), jnp.uint32)
    ms = jax.eval_shape(engine.evaluate, lane.algo, key, lane.hparams)
    return sorted(ms)


# ---------------------------------------------------------------------------------------------
# Summaries.
# ---------------------------------------------------------------------------------------------


def _finite_or_none(x: float) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None


def summarize(data: Mapping[str, Any] | Result, metric: str = "return", last_frac: float = 0.1,
              source: str = "train", reps: int = 2000) -> dict[str, Any]:
    """Final figures per run and per grid point: mean, IQM and 95% stratified-bootstrap CI.

    Args:
      data: a `Result`, or `read_metrics` output (`{"runs", "steps", name: [runs, T]}`).
      metric: the metric summarized.
      last_frac: the final value of a run is the mean of `metric` over the last `last_frac` of
        its logged points (at least one: `last_frac=0` takes the last point only).
      source: "train" or "eval" (for a `Result`).
      reps: bootstrap resamples.

    Returns:
      A JSON-ready dict: `per_run` (final value, failed flag), `aggregate` (one entry per grid
      point: num_runs, num_failed, mean, iqm, iqm_ci95, min, max; null when every run failed),
      `num_failed`. Failed runs (NaN) are counted and left out of the aggregates.
    """
    from jaxrl import stats

    if isinstance(data, Result):
        failed_at = data.failed_at
        data = data.data(source)
    else:
        failed_at = None
    y = np.asarray(data[metric], np.float64) if metric in data else None
    runs = list(data["runs"])
    n = len(runs)
    if y is None or y.size == 0:
        y = np.full((n, 1), np.nan)
    k = max(1, int(round(last_frac * y.shape[1])))
    with np.errstate(all="ignore"), __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("ignore", RuntimeWarning)
        final = np.nanmean(y[:, -k:], axis=1)
    if failed_at is not None:
        run_failed = np.asarray(failed_at) >= 0
    elif "failed" in data:
        run_failed = np.nanmax(np.nan_to_num(np.asarray(data["failed"]), nan=1.0), axis=1) > 0
    else:
        run_failed = np.zeros(n, bool)
    run_failed = run_failed | ~np.isfinite(final)
    groups: dict[tuple, list[int]] = {}
    for i, r in enumerate(runs):
        key = tuple((h, v) for h, v in sorted(r.items()) if h != "seed")
        groups.setdefault(key, []).append(i)
    agg = []
    for key, idx in groups.items():
        vals = np.asarray([final[i] for i in idx if not run_failed[i]])
        entry: dict[str, Any] = {**dict(key), "num_runs": len(idx),
                                 "num_failed": int(sum(bool(run_failed[i]) for i in idx)),
                                 "mean": None, "iqm": None, "iqm_ci95": None, "min": None,
                                 "max": None}
        if vals.size:
            lo, hi = (stats.bootstrap_ci(vals, statistic="iqm", reps=reps, seed=0)
                      if vals.size > 1 else (vals[0], vals[0]))
            entry |= {"mean": float(vals.mean()), "iqm": float(stats.iqm(vals)),
                      "iqm_ci95": [_finite_or_none(lo), _finite_or_none(hi)],
                      "min": float(vals.min()), "max": float(vals.max())}
        agg.append(entry)
    return {
        "metric": metric,
        "source": source,
        "final_window": k,
        "per_run": [{**r, f"final_{metric}": _finite_or_none(final[i]),
                     "failed": bool(run_failed[i])} for i, r in enumerate(runs)],
        "aggregate": agg,
        "num_failed": int(np.sum(run_failed)),
    }


def grid_label(run: Mapping[str, Any]) -> str:
    """`lr=0.001 ent_coef=0` for a run dict (seed left out); `all` when nothing is swept."""
    parts = [f"{k}={v:g}" for k, v in sorted(run.items())
             if k != "seed" and isinstance(v, int | float)]
    return " ".join(parts) or "all"


def plot_curves(data: Mapping[str, Any] | Result, metric: str, path: str, title: str,
                source: str = "train", xlabel: str = "environment steps") -> list[str]:
    """Learning curves of `metric`, one IQM line + 95% CI band per grid point; grid points
    whose runs all failed are skipped (returned by label)."""
    from jaxrl import plotting

    if isinstance(data, Result):
        data = data.data(source)
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(data["runs"]):
        groups.setdefault(grid_label(r), []).append(i)
    x = np.asarray(data["env_steps"]) if np.any(data["env_steps"]) else np.asarray(data["steps"])
    y = np.asarray(data[metric], np.float64)
    curves, skipped = {}, []
    for label, idx in groups.items():
        if not np.any(np.isfinite(y[idx])):
            skipped.append(label)
            continue
        curves[label] = (x, y[idx])
    if curves:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        plotting.plot_curves(path, curves, xlabel=xlabel, ylabel=metric, title=title)
    return skipped


def finish(workdir: str | None, result: Result | None, summary: Mapping[str, Any]
           ) -> None:
    """Write `summary.json` (process 0)."""
    if workdir is not None and jax.process_index() == 0:
        write_json(os.path.join(workdir, "summary.json"), summary)
