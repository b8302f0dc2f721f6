"""Joining a multi-host run. Kept free of driftlab/algorithms imports: it must
run before anything touches a JAX backend (some env libraries do at import)."""

from __future__ import annotations

import jax


def initialize_distributed(coordinator_address: str | None = None,
                           num_processes: int | None = None,
                           process_id: int | None = None) -> None:
    """`jax.distributed.initialize()`, so several processes/hosts share one
    population. Without arguments JAX reads the cluster from the environment
    (SLURM, TPU, JAX_COORDINATOR_ADDRESS, ...). CPU collectives across
    processes need gloo, selected here (harmless on accelerators)."""
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=coordinator_address,
                               num_processes=num_processes, process_id=process_id)
