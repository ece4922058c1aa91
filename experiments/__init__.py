"""Experiment scripts (absl + ml_collections). Multi-process runs start here, before any JAX
device is touched (see `jaxrl.distributed`)."""

from jaxrl.distributed import maybe_initialize_distributed

maybe_initialize_distributed()
