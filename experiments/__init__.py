"""Experiment scripts (absl + ml_collections). Multi-process runs start here, before any JAX
device is touched (see `jaxrl.distributed`).

absl logging is set to WARNING so that library INFO lines (orbax's per-checkpoint messages)
do not bury the progress bars; `--verbosity=0` on any script brings them back."""

from absl import logging

from jaxrl.distributed import maybe_initialize_distributed

logging.set_verbosity(logging.WARNING)
maybe_initialize_distributed()
