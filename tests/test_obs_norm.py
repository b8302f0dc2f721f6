"""Observation normalisation updated once per update (`obs_norm_update: update`),
as Brax's PPO does it, checked against Brax's own normaliser
(brax.training.acme.running_statistics)."""

from __future__ import annotations

import contextlib
import io

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from driftlab import envs
from driftlab.algorithms import TrainConfig, Trainer, make_drift
from driftlab.algorithms.evaluation import evaluate_policy
from driftlab.envs.wrappers import RunningMeanStd, normalize_observation_brax
from driftlab.training import resolve_settings

TINY = {"total_timesteps": 3 * 4 * 32, "num_envs": 4, "num_steps": 32, "num_minibatches": 2,
        "update_epochs": 2, "normalize_obs": True, "obs_norm_update": "update",
        "continuous": "tanh"}
# Two float32 formulas for the same statistics (Chan's merge here, Welford's batch update
# in Brax) agree to rounding, whatever the CPU: relative 1e-5 leaves two orders of margin
# over the differences seen (<= 2e-7 on the means, 4e-7 on the variances).
RTOL = 1e-5


def brax_statistics():
    with contextlib.redirect_stdout(io.StringIO()):  # mujoco's "Failed to import warp"
        from brax.training.acme import running_statistics, specs
    return running_statistics, specs


def test_per_update_statistics_are_braxs_running_statistics():
    running_statistics, specs = brax_statistics()
    keys = jax.random.split(jax.random.key(0), 4)
    # Features of very different scales and offsets, as a robot's joint angles and velocities.
    scale, offset = jnp.array([1e-2, 1.0, 30.0, 5.0]), jnp.array([0.0, -3.0, 100.0, 0.5])
    batches = [jax.random.normal(k, (512, 4)) * scale * (1 + i) + offset
               for i, k in enumerate(keys)]
    ours = RunningMeanStd.empty((4,))
    theirs = running_statistics.init_state(specs.Array((4,), jnp.float32))
    probe = batches[0][:8]
    # Before any data both leave observations as they are (mean 0, std 1).
    np.testing.assert_allclose(normalize_observation_brax(probe, ours),
                               running_statistics.normalize(probe, theirs), rtol=RTOL)
    for batch in batches:
        ours, theirs = ours.update(batch), running_statistics.update(theirs, batch)
        np.testing.assert_allclose(ours.mean, theirs.mean, rtol=RTOL, atol=1e-6)
        np.testing.assert_allclose(ours.var, jnp.square(theirs.std), rtol=RTOL)
        np.testing.assert_allclose(normalize_observation_brax(probe, ours),
                                   running_statistics.normalize(probe, theirs), rtol=RTOL,
                                   atol=1e-5)
    assert float(ours.count) == 4 * 512


def tiny(env_id: str = "gymnax/Pendulum-v1", **changes) -> tuple[Trainer, object]:
    drift = make_drift("ppo")
    return Trainer(envs.make(env_id), TrainConfig.from_dict({**TINY, **changes}), drift), drift


def test_each_rollout_enters_the_statistics_once_before_sgd_and_acting_uses_the_previous():
    running_statistics, specs = brax_statistics()
    trainer, drift = tiny()
    env = trainer._vector_env(trainer.config.hyperparams)
    update = jax.jit(lambda s: trainer.update(s, drift.default_params))
    collect = jax.jit(lambda s: trainer.collect(s, env))

    state = trainer.init(jax.random.key(0))
    assert state.obs_stats is not None and float(state.obs_stats.count) == 0
    theirs = running_statistics.init_state(specs.Array((trainer.obs_dim,), jnp.float32))
    for _ in range(3):
        _, traj, _ = collect(state)  # the rollout `update` collects: same state, same key
        raw = traj.obs.reshape(-1, trainer.obs_dim)
        # The policy acted on the statistics of the previous update, held for the rollout.
        acted = normalize_observation_brax(traj.obs, state.obs_stats)
        log_prob, _ = trainer.policy.evaluate(state.params["actor"], acted, traj.raw_action)
        np.testing.assert_allclose(log_prob, traj.log_prob, rtol=1e-5, atol=1e-5)
        previous = state.obs_stats
        state, _ = update(state)
        theirs = running_statistics.update(theirs, raw)
        # Exactly this rollout, once (to the rounding of two XLA programs: the update's
        # fused one and this eager one; another rollout or a second pass would differ in
        # the first digits), and Brax's statistics to rounding.
        expected = previous.update(raw)
        for ours, want in zip(jax.tree.leaves(state.obs_stats), jax.tree.leaves(expected),
                              strict=True):
            np.testing.assert_allclose(ours, want, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(state.obs_stats.mean, theirs.mean, rtol=RTOL, atol=1e-6)
        np.testing.assert_allclose(state.obs_stats.var, jnp.square(theirs.std), rtol=RTOL)
    assert float(state.obs_stats.count) == 3 * trainer.config.batch_size


def test_step_and_update_modes_differ_and_both_evaluate():
    results = {}
    for mode in ("step", "update"):
        trainer, drift = tiny(obs_norm_update=mode)
        result = jax.jit(trainer.train)(jax.random.key(0), drift.default_params)
        # "step": the env wrapper's count (4 resets' observations + every step's + a 1e-4
        # prior); "update": every acted-on observation, once.
        steps = trainer.config.num_updates * trainer.config.batch_size
        assert float(result.obs_stats.count) == pytest.approx(
            steps + (4 + 1e-4 if mode == "step" else 0))
        score = jax.jit(lambda r, k, t=trainer: evaluate_policy(t, r, k, 4))(
            result, jax.random.key(1))
        assert np.isfinite(float(score))
        results[mode] = result
    assert not np.allclose(results["step"].metrics["policy_loss"],
                           results["update"].metrics["policy_loss"])


def test_presets_choose_their_normaliser():
    assert resolve_settings("brax/ant")["obs_norm_update"] == "update"
    assert resolve_settings("gymnax/Pendulum-v1").get("obs_norm_update", "step") == "step"
    assert TrainConfig().obs_norm_update == "step"
