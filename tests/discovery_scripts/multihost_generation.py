"""One discovery generation in process PROCESS_ID of NUM_PROCESSES joined through
jax.distributed.initialize on localhost:PORT (CPU, gloo collectives); with
NUM_PROCESSES=1 and no port it runs alone. Prints RESULT <json> of the fitness."""

import json
import sys

from driftlab.discovery.distributed import initialize_distributed

if __name__ == "__main__":
    num_processes, process_id = int(sys.argv[1]), int(sys.argv[2])
    port = sys.argv[3] if len(sys.argv) > 3 else None
    if num_processes > 1:
        initialize_distributed(f"localhost:{port}", num_processes, process_id)

    import jax
    import numpy as np
    from shard_generation import config

    from driftlab.discovery import sharding
    from driftlab.discovery.loop import Discovery

    disc = Discovery(config(8))
    state, info = disc.step(disc.init())
    pop = info["population"]["w_in"]
    print("RESULT " + json.dumps({
        "process": jax.process_index(), "processes": jax.process_count(),
        "devices": jax.device_count(), "fitness": np.asarray(
            sharding.to_host(info["fitness"])).tolist(),
        "local_rows": sum(s.data.shape[0] for s in pop.addressable_shards),
        "generation": int(sharding.to_host(state.generation))}), flush=True)
