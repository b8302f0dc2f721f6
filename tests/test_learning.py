"""Learning runs with the presets: budgets and the returns they must reach.

Each test trains 4 seeds in one vmapped jit and scores a run by the mean
episodic return over the last 10% of updates, averaged over the seeds.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

from driftlab import envs
from driftlab.algorithms.evaluation import final_return, random_policy_return
from driftlab.algorithms.storage import read_yaml
from driftlab.presets import CONFIG_DIR
from driftlab.training import build, resolve_settings

SEEDS = 4


def train_seeds(env_id: str, algo: str, timesteps: int, keys: jax.Array | None = None,
                **overrides) -> np.ndarray:
    """Final return per seed, (len(keys),); the tests' SEEDS keys by default (the
    calibration script in tests/calibration/ passes many more)."""
    settings = resolve_settings(env_id, overrides=overrides, timesteps=timesteps)
    env, config, drift, params = build(env_id, algo, settings)
    from driftlab.algorithms import Trainer

    trainer = Trainer(env, config, drift)
    keys = jax.random.split(jax.random.key(0), SEEDS) if keys is None else keys
    result = jax.jit(jax.vmap(trainer.train, in_axes=(0, None)))(keys, params)
    return final_return(np.asarray(result.metrics["episode_return"]))


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["ppo", "dpo"])
def test_cartpole_reaches_450_within_5e5_steps(algo):
    finals = train_seeds("gymnax/CartPole-v1", algo, 500_000)
    assert finals.mean() >= 450, finals


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["ppo", "dpo"])
def test_pendulum_reaches_minus_400_within_1e6_steps(algo):
    finals = train_seeds("gymnax/Pendulum-v1", algo, 1_000_000)
    assert finals.mean() >= -400, finals


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["ppo", "dpo"])
def test_breakout_minatar_beats_random_within_1e6_steps(algo):
    # The random policy scores about 0.4 per episode (one full episode in each of 256
    # envs, the 0 of driftlab's normalised score); PPO/DPO reach about 20 at 1e6 steps
    # (32-seed calibration, tests/calibration/). "A clear margin": at least 5x random
    # and +3 points.
    random_return = random_policy_return(envs.make("gymnax/Breakout-MinAtar"),
                                         jax.random.key(1))
    finals = train_seeds("gymnax/Breakout-MinAtar", algo, 1_000_000)
    print(f"Breakout-MinAtar {algo}: random {random_return:.2f}, trained {finals}")
    assert finals.mean() >= max(5 * random_return, random_return + 3.0), (random_return, finals)


# CPU budget for brax/inverted_pendulum, from the shipped CPU config (the preset's 2048
# envs need an accelerator): PPO, 4 seeds x 1e6 steps, about 75 s on the 2-core CPU.
# Bar from 32 other seeds (issue 17, tests/calibration/): final returns mean 943, lowest
# 625; over 100,000 bootstrap sets of 4 seeds the mean's 1% quantile is 802 and its 0.1%
# quantile 739. The old bar, 800, passed 99.15% of seed sets; 750 passes 99.87%.
INVERTED_PENDULUM_CPU = CONFIG_DIR / "train" / "cpu" / "brax-inverted-pendulum.yaml"
INVERTED_PENDULUM_BAR = 750.0


@pytest.mark.slow
def test_brax_inverted_pendulum_reaches_750_within_1e6_steps():
    settings = read_yaml(INVERTED_PENDULUM_CPU)
    assert settings["total_timesteps"] == 1_000_000
    finals = train_seeds("brax/inverted_pendulum", "ppo", 1_000_000, **settings)
    assert finals.mean() >= INVERTED_PENDULUM_BAR, finals
