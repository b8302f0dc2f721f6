"""The returns a discovery's fitness is normalised by, per env: the random
policy's (normalization random_ppo) and PPO's with the same budget. Each comes from
the config, else the run directory's cache, else is measured once and cached, so a
resumed run divides by the same numbers."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

from driftlab import envs
from driftlab.algorithms import TrainConfig, Trainer, make_drift
from driftlab.algorithms.storage import read_json, write_json
from driftlab.discovery import fitness
from driftlab.discovery.config import DiscoveryConfig, DiscoveryError

RANDOM_STREAM = 0x2A4D  # the random-policy reference episodes


def resolve_random_returns(config: DiscoveryConfig,
                           run_dir: str | Path | None) -> dict[str, float]:
    """Random-policy return per scored env (normalization random_ppo): from the
    config, else the run directory's cache (random_returns.json), else measured
    (`evaluation.random_policy_return`, 256 episodes) and cached."""
    from driftlab.algorithms.evaluation import random_policy_return

    if config.normalization != "random_ppo":
        return {}
    values = dict(config.random_returns)
    cache = Path(run_dir) / "random_returns.json" if run_dir is not None else None
    if cache is not None and cache.is_file():
        values.update({k: float(v) for k, v in read_json(cache).items() if k not in values})
    missing = [e for e in config.scored_envs if e not in values]
    for env_id in missing:
        key = jax.random.fold_in(jax.random.key(config.seed), RANDOM_STREAM)
        try:
            values[env_id] = random_policy_return(_configured_env(config, env_id), key)
        except ValueError as err:
            raise DiscoveryError(f"random return of {env_id}: {err}") from None
    if missing and cache is not None and jax.process_index() == 0:
        write_json(cache, {e: values[e] for e in config.scored_envs})
    return values


def _configured_env(config: DiscoveryConfig, env_id: str):
    """The env `env_id` with its training options."""
    return envs.make(env_id, **TrainConfig.from_dict(config.train[env_id]).env_options)

def resolve_references(config: DiscoveryConfig, run_dir: str | Path | None,
                       random_returns: dict[str, float] | None = None) -> dict[str, float]:
    """Reference return per meta-training env: from the config, else the run
    directory's cache (reference_returns.json), else a PPO run with the same
    budget (`reference_seeds` seeds, final return measured as `config.fitness`),
    which is then cached. It must be positive (ppo_ratio) or above the env's
    random return (random_ppo, `random_returns`)."""
    if not config.normalized:
        return {}
    refs = dict(config.reference_returns)
    cache = Path(run_dir) / "reference_returns.json" if run_dir is not None else None
    if cache is not None and cache.is_file():
        cached = read_json(cache)
        refs.update({k: float(v) for k, v in cached.items() if k not in refs})
    missing = [e for e in config.envs if e not in refs]
    if not missing:
        return refs
    ppo = make_drift("ppo")
    for index, env_id in enumerate(missing):
        train_config = TrainConfig.from_dict(config.train[env_id])
        trainer = Trainer(envs.make(env_id, **train_config.env_options), train_config, ppo)
        key = jax.random.fold_in(jax.random.key(config.seed), 0xBEEF + index)
        try:
            value = fitness.reference_return(trainer, ppo.default_params, key,
                                             config.reference_seeds, config.final_fraction,
                                             config.fitness, config.eval_envs)
        except ValueError as err:
            raise DiscoveryError(f"reference return of {env_id}: {err}") from None
        if config.normalization == "random_ppo":
            random = (random_returns or {})[env_id]
            if not value > random:
                raise DiscoveryError(f"the PPO reference return of {env_id} is {value:.4g}, not "
                                     f"above the random policy's {random:.4g}, so it cannot "
                                     "normalise fitness; raise the env's budget (inner_per_env)")
        elif not value > 0:
            raise DiscoveryError(f"the PPO reference return of {env_id} is {value:.3g}, not "
                                 "positive, so it cannot normalise fitness; set "
                                 "normalization=random_ppo or give reference_returns for it")
        refs[env_id] = value
    if jax.process_count() > 1:  # every host must divide by the same numbers
        from jax.experimental import multihost_utils

        values = np.array([refs[e] for e in config.envs], np.float64)
        values = multihost_utils.broadcast_one_to_all(values)
        refs.update({e: float(v) for e, v in zip(config.envs, values, strict=True)})
    if cache is not None and jax.process_index() == 0:
        write_json(cache, {e: refs[e] for e in config.envs})
    return refs
