"""Experiment scripts (absl + ml_collections). Multi-process runs start here, before any JAX
device is touched (see `jaxrl.distributed`); so does `JAXRL_CPU_DEVICES=auto`, which shards
every script's runs over the cores of a CPU-only host.

absl logging is set to WARNING so that library INFO lines (orbax's per-checkpoint messages)
do not bury the progress bars; `--verbosity=0` on any script brings them back."""

from absl import logging

from jaxrl.distributed import configure_cpu_devices, maybe_initialize_distributed

logging.set_verbosity(logging.WARNING)
configure_cpu_devices()
maybe_initialize_distributed()
