"""Multi-process start-up and CPU devices; call these before anything touches a JAX device.

Launch N processes with `JAX_COORDINATOR_ADDRESS=host:port JAX_NUM_PROCESSES=N JAX_PROCESS_ID=i`
(localhost, a cluster), or set `JAXRL_DISTRIBUTED=1` on managed clusters (TPU pods, SLURM) where
`jax.distributed.initialize()` detects the topology itself.

On a CPU-only host, `JAXRL_CPU_DEVICES=auto` (or a number) exposes the cores as that many XLA
CPU devices (`configure_cpu_devices`; the experiment scripts do this by default when launched as
`python -m experiments.<name>`, and `JAXRL_CPU_DEVICES=1` keeps one device), so the sweep
engine shards its vmapped runs over them and several runs' programs execute at once; one CPU
device leaves cores idle between the small ops of an RL update
(experiments/benchmarks/RESULTS_stac.md: 1.7x more SAC updates/s on 2 cores).
"""

from __future__ import annotations

import hashlib
import os
import platform

import jax

_COUNT_FLAG = "--xla_force_host_platform_device_count"
# The count the scripts' default put in XLA_FLAGS (0: none; an explicit count replaces it), the
# compilation cache the scripts' default chose (None: none) and whether the runtime has printed
# them.
_DEFAULT = {"count": 0, "cache": None, "noted": False}
_OFF = ("0", "off", "false", "no", "none")
CACHE_MAX_BYTES = 2 * 2**30  # least recently used entries are evicted above this


def host_cores() -> int:
    """Cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def configure_cpu_devices(n: int | str | None = None, *, default: str | int | None = None
                          ) -> int:
    """Expose `n` XLA CPU devices (`"auto"`: one per core) by setting `XLA_FLAGS`.

    Must run before JAX initialises its backends (before the first `jax.devices()` or array):
    XLA reads the flag then. Accelerators are unaffected (their devices are the default ones;
    only the CPU platform grows). `n=None` reads `JAXRL_CPU_DEVICES`; unset, `default` is used
    (None: do nothing; the scripts pass `"auto"` when launched from the command line, see
    `experiments/__init__.py`), and the runtime prints the choice once (`default_note`).
    A device count already in `XLA_FLAGS` wins, except one that the default put there, which an
    explicit `n` replaces while the backends are not up. Returns the count requested, 0 for no
    change.

    Raises `ValueError` naming the bad value for anything but a positive integer or `"auto"`,
    and `RuntimeError` when the backends are already up with another device count.
    """
    chosen_by_default = False
    if n is None:
        n = os.environ.get("JAXRL_CPU_DEVICES", "")
        if n == "":
            if default is None:
                return 0
            n, chosen_by_default = default, True
    if isinstance(n, str) and n.strip() == "auto":
        count = host_cores()
    elif isinstance(n, str) and n.strip().isdigit():
        count = int(n.strip())
    elif isinstance(n, int) and not isinstance(n, bool):
        count = n
    else:
        count = 0
    if count < 1:
        raise ValueError(f"CPU device count must be a positive integer or 'auto', got {n!r}")
    from jax._src import xla_bridge

    flags = os.environ.get("XLA_FLAGS", "")
    if _COUNT_FLAG in flags:
        ours = f"{_COUNT_FLAG}={_DEFAULT['count']}"
        if (chosen_by_default or not _DEFAULT["count"] or ours not in flags.split()
                or xla_bridge.backends_are_initialized()):
            return 0
        # An explicit count (e.g. a benchmark's --cpu_devices=1) replaces the scripts' default.
        flags = " ".join(f for f in flags.split() if f != ours)
        _DEFAULT["count"] = 0

    if xla_bridge.backends_are_initialized():
        if chosen_by_default:
            return 0
        have = len(jax.devices("cpu"))
        if have != count:
            raise RuntimeError(
                f"configure_cpu_devices({n!r}) after JAX started with {have} CPU device(s): "
                "call it (or set JAXRL_CPU_DEVICES) before the first JAX computation")
        return 0
    os.environ["XLA_FLAGS"] = f"{flags} {_COUNT_FLAG}={count}".strip()
    if chosen_by_default:
        _DEFAULT.update(count=count, noted=False)
    return count


def host_tag() -> str:
    """`machine-jaxversion-hash` of this host's instruction-set features (the `flags` of
    /proc/cpuinfo): compiled CPU programs are only reused on hosts with the same tag, so a
    cache in a home directory shared by different nodes never hands one node's AVX-512 code to
    another."""
    feats = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            feats = next((ln for ln in f if ln.startswith(("flags", "Features"))), feats)
    except OSError:
        pass
    digest = hashlib.sha1(" ".join(sorted(feats.split())).encode()).hexdigest()[:10]
    return f"{platform.machine()}-jax{jax.__version__}-{digest}"


def configure_compilation_cache(path: str | None = None, *, default: str | None = None
                                ) -> str | None:
    """Keep compiled XLA programs on disk (JAX's persistent compilation cache), so a re-run, a
    resumed run or a sweep of the same program skips compilation (on a 2-core CPU most of a
    short RL run is compilation: experiments/benchmarks/RESULTS.md). The executable is the same
    program, so results are bit-identical with and without the cache.

    `path=None` reads `JAXRL_COMPILATION_CACHE` (a directory; `0`/`off` turns the cache off);
    unset, `default` is used (None: do nothing; the scripts pass `~/.cache/jaxrl/xla` when
    launched from the command line, see `experiments/__init__.py`, and the runtime prints the
    choice once). Programs land in `<path>/<host_tag()>`, at most `CACHE_MAX_BYTES` (least
    recently used evicted); only programs that took >= 1 s to compile are kept (JAX's
    default). A cache set by JAX's own `JAX_COMPILATION_CACHE_DIR` / `jax.config` wins.
    Returns the directory in use, or None.
    """
    chosen_by_default = False
    explicit = jax.config.jax_compilation_cache_dir or os.environ.get("JAX_COMPILATION_CACHE_DIR")
    if explicit:
        return explicit
    if path is None:
        path = os.environ.get("JAXRL_COMPILATION_CACHE", "")
        if path.strip().lower() in _OFF:
            return None
        if path == "":
            path, chosen_by_default = default, True
    if not path:
        return None
    where = os.path.join(os.path.expanduser(path), host_tag())
    jax.config.update("jax_compilation_cache_dir", where)
    jax.config.update("jax_compilation_cache_max_size", CACHE_MAX_BYTES)
    if chosen_by_default:
        _DEFAULT.update(cache=where, noted=False)
    return where


def default_note() -> str | None:
    """The lines saying what the scripts' defaults chose: the CPU device count (when it is > 1
    on a CPU backend) and the compilation cache; None if no default chose anything. Printed
    once by `jaxrl.experiment.run`."""
    if _DEFAULT["noted"]:
        return None
    lines = []
    count = _DEFAULT["count"]
    if count >= 2 and jax.default_backend() == "cpu":
        lines.append(f"[jaxrl] {count} CPU devices (one per core; runs are bit-identical "
                     "whatever the device count; JAXRL_CPU_DEVICES=1 for one device)")
    if _DEFAULT["cache"]:
        lines.append(f"[jaxrl] compiled programs cached in {_DEFAULT['cache']} (a re-run or "
                     "resume of the same config skips compilation; JAXRL_COMPILATION_CACHE=0 "
                     "turns it off)")
    if not lines:
        return None
    _DEFAULT["noted"] = True
    return "\n".join(lines)


def maybe_initialize_distributed() -> bool:
    """Call `jax.distributed.initialize` when the environment asks for it; True if it did."""
    if jax.distributed.is_initialized():
        return False
    addr = os.environ.get("JAX_COORDINATOR_ADDRESS")
    if addr:
        # Cross-process collectives between CPU devices (no effect on accelerators).
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(
            coordinator_address=addr,
            num_processes=int(os.environ["JAX_NUM_PROCESSES"]),
            process_id=int(os.environ["JAX_PROCESS_ID"]),
        )
        return True
    if os.environ.get("JAXRL_DISTRIBUTED") == "1":
        jax.distributed.initialize()
        return True
    return False
