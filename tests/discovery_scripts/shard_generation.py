"""One discovery generation on a 1-device mesh and on an all-device mesh (run in a
subprocess with XLA_FLAGS=--xla_force_host_platform_device_count=N); prints JSON:
fitness on both meshes and the population's sharding on the big mesh."""

import json
import sys

import jax
import numpy as np

from driftlab.discovery.config import DiscoveryConfig
from driftlab.discovery.loop import Discovery
from driftlab.discovery.sharding import make_mesh

TRAIN = dict(total_timesteps=1024, num_envs=4, num_steps=32, update_epochs=2,
             num_minibatches=2, learning_rate=1e-3, actor_hidden=[16], critic_hidden=[16])


def config(population: int) -> DiscoveryConfig:
    return DiscoveryConfig.from_dict(dict(
        envs=["gymnax/CartPole-v1"], train={"gymnax/CartPole-v1": TRAIN},
        population=population, generations=1, sigma=0.5, seed=3, final_fraction=1.0,
        population_padding="pad"))


def generation(population: int, devices) -> dict:
    disc = Discovery(config(population), mesh=make_mesh(devices))
    state, info = disc.step(disc.init())
    pop = info["population"]["w_in"]
    return {"fitness": np.asarray(info["fitness"]).tolist(),
            "mean": np.asarray(jax.device_get(state.es_state.mean)).tolist()[:8],
            "spec": str(pop.sharding.spec), "shape": list(pop.shape),
            "shard_devices": sorted({s.device.id for s in pop.addressable_shards}),
            "shard_rows": sorted({s.data.shape[0] for s in pop.addressable_shards})}


if __name__ == "__main__":
    population = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    out = {"devices": jax.device_count(),
           "one": generation(population, jax.devices()[:1]),
           "all": generation(population, jax.devices())}
    print("RESULT " + json.dumps(out))
