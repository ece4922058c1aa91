"""Multi-process start-up; import this before anything touches a JAX device.

Launch N processes with `JAX_COORDINATOR_ADDRESS=host:port JAX_NUM_PROCESSES=N JAX_PROCESS_ID=i`
(localhost, a cluster), or set `JAXRL_DISTRIBUTED=1` on managed clusters (TPU pods, SLURM) where
`jax.distributed.initialize()` detects the topology itself.
"""

from __future__ import annotations

import os

import jax


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
