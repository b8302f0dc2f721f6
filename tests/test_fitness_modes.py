"""The three fitness measures of discovery (`fitness: last_fraction | final_update |
final_eval`) on tiny CartPole runs (4 envs x 16 steps, 4 updates), and the fresh
policy evaluation behind `final_eval` (algorithms/evaluation.py)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from driftlab import envs
from driftlab.algorithms import TrainConfig, Trainer, TrainResult, make_drift
from driftlab.algorithms.evaluation import evaluate_policy
from driftlab.cli import main
from driftlab.discovery import fitness
from driftlab.discovery.config import FITNESS_MODES, DiscoveryConfig, DiscoveryError
from driftlab.discovery.loop import Discovery
from driftlab.envs.wrappers import RunningMeanStd

ENV = "gymnax/CartPole-v1"
TINY = {"total_timesteps": 256, "num_envs": 4, "num_steps": 16}  # 4 updates


def tiny_trainer(drift_kind: str = "lpo", **changes) -> Trainer:
    config = TrainConfig.from_dict({**TINY, **changes})
    drift = make_drift(drift_kind, ppo_init=True) if drift_kind == "lpo" else make_drift(drift_kind)
    return Trainer(envs.make(ENV), config, drift)


def balancing_actor(actor: dict) -> dict:
    """Actor parameters of the classic CartPole controller: push towards the side
    the pole falls to (sign of angle + angular velocity), nearly deterministic
    (logits +-1000 * tanh(tanh(.))). Scores ~450 where an untrained net gets ~20-30."""
    p = jax.tree.map(jnp.zeros_like, actor)
    layers = p["params"]
    layers["Dense_0"]["kernel"] = layers["Dense_0"]["kernel"].at[2, 0].set(1.0).at[3, 0].set(1.0)
    layers["Dense_1"]["kernel"] = layers["Dense_1"]["kernel"].at[0, 0].set(1.0)
    layers["Dense_2"]["kernel"] = layers["Dense_2"]["kernel"].at[0].set(jnp.array([-1e3, 1e3]))
    return p


def with_actor(trainer: Trainer, actor: dict | None, obs_stats: RunningMeanStd | None = None
               ) -> TrainResult:
    params = trainer.init(jax.random.key(0)).params  # untrained networks
    if actor is not None:
        params = {**params, "actor": actor}
    return TrainResult(metrics={}, params=params, obs_stats=obs_stats)


@pytest.mark.parametrize("mode", FITNESS_MODES)
def test_each_mode_runs_one_generation_with_finite_fitness(mode):
    config = DiscoveryConfig.from_dict({
        "envs": [ENV], "train": {ENV: TINY}, "population": 4, "generations": 1,
        "fitness": mode, "eval_envs": 8, "eval_seeds": 2, "drift": {"ppo_init": True}})
    discovery = Discovery(config)
    state, info = discovery.step(discovery.init())
    values = np.asarray(info["fitness"])
    assert values.shape == (4,) and np.all(np.isfinite(values)), values
    assert int(state.generation) == 1
    report = discovery.evaluate(discovery.mean_params(state), 1)[ENV]
    assert np.isfinite(report["return_mean"]), report


@pytest.mark.slow
def test_final_update_is_last_updates_return_and_last_fraction_is_unchanged():
    trainer = tiny_trainer()
    base = trainer.drift.default_params
    population = jax.tree.map(lambda x: jnp.stack([x, x + 0.05]), base)  # 2 members
    keys = fitness.rollout_keys(jax.random.key(3), 2, 2, common=False)  # (2, 2)
    runs = jax.jit(jax.vmap(jax.vmap(trainer.train, in_axes=(0, None)), in_axes=(0, 0)))(
        keys, population)
    last = np.asarray(runs.metrics["episode_return"][..., -1])

    def returns(mode: str) -> np.ndarray:
        return np.asarray(jax.jit(lambda p, k: fitness.member_returns(
            trainer, p, k, 0.5, mode))(population, keys))

    np.testing.assert_array_equal(returns("final_update"), last)
    assert np.all(np.isfinite(last))

    # The default path is the code as it was before fitness modes existed, bit for bit
    # (runs in progress resume with the new code).
    def before(p, k):
        def one(params, key):
            metrics = trainer.train(key, params).metrics
            return fitness.final_return(metrics["episode_return"], 0.5)
        return jax.vmap(jax.vmap(one, in_axes=(None, 0)), in_axes=(0, 0))(p, k)

    np.testing.assert_array_equal(returns("last_fraction"),
                                  np.asarray(jax.jit(before)(population, keys)))


def test_final_eval_is_deterministic_and_reflects_the_policy():
    trainer = tiny_trainer("ppo")
    evaluate = jax.jit(lambda result, key: evaluate_policy(trainer, result, key, 8))
    untrained = with_actor(trainer, None)
    balancer = with_actor(trainer, balancing_actor(untrained.params["actor"]))
    key = jax.random.key(11)
    low, high = float(evaluate(untrained, key)), float(evaluate(balancer, key))
    assert low < 60 < 200 < high, (low, high)
    assert float(evaluate(balancer, key)) == high  # same key, same episodes
    # vmappable over keys; each entry is the single-key evaluation
    keys = jax.random.split(key, 2)
    batched = np.asarray(jax.jit(jax.vmap(evaluate, in_axes=(None, 0)))(balancer, keys))
    np.testing.assert_allclose(batched, [float(evaluate(balancer, k)) for k in keys], rtol=1e-6)


def test_final_eval_normalises_with_the_frozen_final_statistics():
    """With obs normalisation on, the policy sees (obs - mean) / std of the run's
    final statistics: identity statistics keep the balancer balancing; a mean
    that shifts the pole angle by 5 makes it always push right (episodes of ~10)."""
    trainer = tiny_trainer("ppo", normalize_obs=True)
    actor = balancing_actor(with_actor(trainer, None).params["actor"])
    identity = RunningMeanStd(jnp.zeros(4), jnp.ones(4), jnp.asarray(1e4))
    shifted = identity.replace(mean=jnp.array([0.0, 0.0, -5.0, 0.0]))
    evaluate = jax.jit(lambda result: evaluate_policy(trainer, result, jax.random.key(5), 8))
    good = float(evaluate(with_actor(trainer, actor, identity)))
    bad = float(evaluate(with_actor(trainer, actor, shifted)))
    assert bad < 30 < 200 < good, (bad, good)


def test_final_eval_of_a_run_is_keyed_by_the_run():
    trainer = tiny_trainer()
    result = jax.jit(trainer.train)(jax.random.key(2), trainer.drift.default_params)
    score = jax.jit(lambda r, k: fitness.run_score(trainer, r, k, "final_eval", eval_envs=8))
    a, b = score(result, jax.random.key(2)), score(result, jax.random.key(2))
    assert np.isfinite(float(a)) and float(a) == float(b)


def test_bad_fitness_mode_is_a_one_line_error(capsys, tmp_path):
    with pytest.raises(DiscoveryError) as err:
        DiscoveryConfig.from_dict({"envs": [ENV], "train": {ENV: TINY}, "fitness": "best"})
    message = str(err.value)
    assert len(message.splitlines()) == 1
    assert all(mode in message for mode in FITNESS_MODES), message
    with pytest.raises(DiscoveryError, match="eval_envs must be >= 1"):
        DiscoveryConfig.from_dict({"envs": [ENV], "train": {ENV: TINY}, "eval_envs": 0})
    assert main(["discover", "--preset", "cartpole-tiny", "--set", "fitness=final",
                 "--out", str(tmp_path / "run")]) == 2
    line = capsys.readouterr().err.strip()
    assert len(line.splitlines()) == 1 and "final_eval" in line, line
