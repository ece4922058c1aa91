"""Experiment scripts (absl + ml_collections). Multi-process runs start here, before any JAX
device is touched (see `jaxrl.distributed`); so do the CPU devices: launched from the command
line (`python -m experiments.<name>`), a script exposes one XLA CPU device per core by default
and the runtime shards its runs over them (results are bit-identical whatever the device count;
the runtime prints the choice; `JAXRL_CPU_DEVICES=1` keeps one device, `=N` asks for N), and
compiled programs are kept in `~/.cache/jaxrl/xla` so a re-run or resume of the same config
skips compilation (`JAXRL_COMPILATION_CACHE=DIR` elsewhere, `=0` off; `jaxrl.distributed`).
Imported (tests, notebooks), nothing changes unless `JAXRL_CPU_DEVICES` /
`JAXRL_COMPILATION_CACHE` is set.

absl logging is set to WARNING so that library INFO lines (orbax's per-checkpoint messages)
do not bury the progress bars; `--verbosity=0` on any script brings them back."""

import sys

from absl import logging

from jaxrl.distributed import (
    configure_compilation_cache,
    configure_cpu_devices,
    maybe_initialize_distributed,
)

logging.set_verbosity(logging.WARNING)
# `python -m experiments.x` imports this package while sys.argv[0] is still "-m".
_SCRIPT = sys.argv[:1] == ["-m"]
configure_cpu_devices(default="auto" if _SCRIPT else None)
configure_compilation_cache(default="~/.cache/jaxrl/xla" if _SCRIPT else None)
maybe_initialize_distributed()
