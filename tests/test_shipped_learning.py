"""The shipped drift earns its place: on its meta-training env, at its
meta-training budget and settings (drifts/lpo-cartpole/train.yaml: CartPole,
8 envs x 64 steps, 32,768 steps, lr 3e-3, 8 epochs), it trains at least as well
as PPO, and its distilled formula within 5% of it. 64 seeds each, the same
seed keys for every drift; final return = mean return over the last 10% of
updates, as `driftlab train` / `compare` report it."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from driftlab import envs
from driftlab.algorithms import TrainConfig, Trainer, make_drift
from driftlab.algorithms.drift_io import load_drift
from driftlab.algorithms.evaluation import final_return
from driftlab.algorithms.shipped import shipped_dir
from driftlab.training import resolve_settings

SEEDS = 64


def finals(drift, params, keys: jax.Array | None = None) -> np.ndarray:
    env_id = "gymnax/CartPole-v1"
    config = TrainConfig.from_dict(resolve_settings(
        env_id, str(shipped_dir("lpo-cartpole") / "train.yaml")))
    assert config.total_timesteps == 32768
    trainer = Trainer(envs.make(env_id), config, drift)
    keys = jax.random.split(jax.random.key(0), SEEDS) if keys is None else keys
    runs = jax.jit(jax.vmap(lambda k: trainer.train(k, params).metrics["episode_return"]))(keys)
    return final_return(np.asarray(runs))


@pytest.mark.slow
def test_shipped_drift_trains_cartpole_at_least_as_well_as_ppo():
    ppo = make_drift("ppo")
    shipped, shipped_params = load_drift("lpo-cartpole")
    formula, formula_params = load_drift("lpo-cartpole-formula")
    base = finals(ppo, ppo.default_params)
    learned = finals(shipped, shipped_params)
    distilled = finals(formula, formula_params)
    assert learned.mean() >= base.mean(), (learned.mean(), base.mean())
    assert distilled.mean() >= 0.95 * learned.mean(), (distilled.mean(), learned.mean())
