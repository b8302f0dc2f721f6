"""Wrappers: episode statistics, vectorisation, normalisation, action clipping.

Every wrapper keeps what it learns (running statistics, returns so far) in the
environment state, so a wrapped environment stays pure and vmappable.
Order used by the trainer: backend -> EpisodeStatistics -> ClipAction ->
Vectorized -> NormalizeObservation -> NormalizeReward / ScaleReward, so the
episode returns that are reported are always the raw, unscaled ones.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from driftlab.envs.base import Environment, StepResult, Wrapper
from driftlab.envs.spaces import Box


@struct.dataclass
class EpisodeStatisticsState:
    env_state: Any
    episode_return: jax.Array  # return of the running episode so far
    episode_length: jax.Array
    last_return: jax.Array  # return of the last completed episode
    last_length: jax.Array


class EpisodeStatistics(Wrapper):
    """Adds `info["episode_return"]`, `["episode_length"]` (of the last
    completed episode) and `info["episode_done"]` (an episode ended this step)."""

    def reset(self, key: jax.Array) -> tuple[jax.Array, EpisodeStatisticsState]:
        obs, env_state = self.env.reset(key)
        zero_f, zero_i = jnp.zeros((), jnp.float32), jnp.zeros((), jnp.int32)
        return obs, EpisodeStatisticsState(env_state, zero_f, zero_i, zero_f, zero_i)

    def step(self, key: jax.Array, state: EpisodeStatisticsState, action: jax.Array) -> StepResult:
        obs, env_state, reward, terminated, truncated, info = self.env.step(
            key, state.env_state, action
        )
        done = terminated | truncated
        ep_return = state.episode_return + reward
        ep_length = state.episode_length + 1
        new_state = EpisodeStatisticsState(
            env_state,
            jnp.where(done, 0.0, ep_return),
            jnp.where(done, 0, ep_length),
            jnp.where(done, ep_return, state.last_return),
            jnp.where(done, ep_length, state.last_length),
        )
        info = {
            **info,
            "episode_return": new_state.last_return,
            "episode_length": new_state.last_length,
            "episode_done": done,
        }
        return obs, new_state, reward, terminated, truncated, info


class ClipAction(Wrapper):
    """Clips continuous actions into the action-space bounds before stepping."""

    def step(self, key: jax.Array, state: Any, action: jax.Array) -> StepResult:
        space = self.env.action_space
        if isinstance(space, Box):
            action = jnp.clip(action, space.low_array, space.high_array)
        return self.env.step(key, state, action)


class Vectorized(Wrapper):
    """`num_envs` independent copies; every array gains a leading batch axis."""

    def __init__(self, env: Environment, num_envs: int):
        super().__init__(env)
        self.num_envs = int(num_envs)

    def reset(self, key: jax.Array) -> tuple[jax.Array, Any]:
        return jax.vmap(self.env.reset)(jax.random.split(key, self.num_envs))

    def step(self, key: jax.Array, state: Any, action: jax.Array) -> StepResult:
        keys = jax.random.split(key, self.num_envs)
        return jax.vmap(self.env.step)(keys, state, action)


@struct.dataclass
class RunningMeanStd:
    """Running mean/variance merged batch by batch (Chan et al.)."""

    mean: jax.Array
    var: jax.Array
    count: jax.Array

    @classmethod
    def zeros(cls, shape: tuple[int, ...]) -> RunningMeanStd:
        """Gymnasium's start: a prior of 1e-4 samples with mean 0, variance 1."""
        return cls(jnp.zeros(shape), jnp.ones(shape), jnp.asarray(1e-4))

    @classmethod
    def empty(cls, shape: tuple[int, ...]) -> RunningMeanStd:
        """Brax's start (`brax.training.acme.running_statistics.init_state`): no
        samples, mean 0 and variance 1 until the first batch, which then sets both."""
        return cls(jnp.zeros(shape), jnp.ones(shape), jnp.asarray(0.0))

    def update(self, batch: jax.Array) -> RunningMeanStd:
        batch_mean, batch_var = batch.mean(axis=0), batch.var(axis=0)
        batch_count = batch.shape[0]
        delta = batch_mean - self.mean
        total = self.count + batch_count
        mean = self.mean + delta * batch_count / total
        m2 = self.var * self.count + batch_var * batch_count
        m2 = m2 + jnp.square(delta) * self.count * batch_count / total
        return RunningMeanStd(mean, m2 / total, total)


@struct.dataclass
class NormalizeObservationState:
    env_state: Any
    stats: RunningMeanStd


def normalize_observation(obs: jax.Array, stats: RunningMeanStd,
                          clip: float = 10.0) -> jax.Array:
    """Gymnasium's: (obs - mean) / sqrt(var + 1e-8), clipped to +-clip;
    obs (..., *stats.mean.shape)."""
    obs = (obs - stats.mean) / jnp.sqrt(stats.var + 1e-8)
    return jnp.clip(obs, -clip, clip)


def normalize_observation_brax(obs: jax.Array, stats: RunningMeanStd) -> jax.Array:
    """Brax's (brax/training/acme/running_statistics.py, `update`'s std and
    `normalize`): (obs - mean) / std, std = sqrt(var) clipped to [1e-6, 1e6]; no
    clip of the result (Brax's PPO passes none; `obs_clip` does it in the networks)."""
    return (obs - stats.mean) / jnp.clip(jnp.sqrt(stats.var), 1e-6, 1e6)


class NormalizeObservation(Wrapper):
    """Standardises observations of a *vectorised* env with running statistics
    over all envs, updated at every step (Gymnasium's NormalizeObservation, the
    `obs_norm_update: step` of TrainConfig); also normalises `info["final_obs"]`
    with the same statistics."""

    def __init__(self, env: Environment, clip: float = 10.0):
        super().__init__(env)
        self.clip = clip

    def _normalize(self, obs: jax.Array, stats: RunningMeanStd) -> jax.Array:
        return normalize_observation(obs, stats, self.clip)

    def reset(self, key: jax.Array) -> tuple[jax.Array, NormalizeObservationState]:
        obs, env_state = self.env.reset(key)
        stats = RunningMeanStd.zeros(obs.shape[1:]).update(obs)
        return self._normalize(obs, stats), NormalizeObservationState(env_state, stats)

    def step(self, key: jax.Array, state: NormalizeObservationState, action: jax.Array) -> StepResult:
        obs, env_state, reward, terminated, truncated, info = self.env.step(
            key, state.env_state, action
        )
        stats = state.stats.update(obs)
        info = {**info, "final_obs": self._normalize(info["final_obs"], stats)}
        new_state = NormalizeObservationState(env_state, stats)
        return self._normalize(obs, stats), new_state, reward, terminated, truncated, info


@struct.dataclass
class NormalizeRewardState:
    env_state: Any
    discounted_return: jax.Array  # (num_envs,)
    stats: RunningMeanStd


class NormalizeReward(Wrapper):
    """Divides rewards of a *vectorised* env by the running standard deviation
    of the discounted return (as in Gymnasium's NormalizeReward)."""

    def __init__(self, env: Environment, gamma: float | jax.Array):
        super().__init__(env)
        self.gamma = gamma

    def reset(self, key: jax.Array) -> tuple[jax.Array, NormalizeRewardState]:
        obs, env_state = self.env.reset(key)
        returns = jnp.zeros(obs.shape[:1])
        return obs, NormalizeRewardState(env_state, returns, RunningMeanStd.zeros(()))

    def step(self, key: jax.Array, state: NormalizeRewardState, action: jax.Array) -> StepResult:
        obs, env_state, reward, terminated, truncated, info = self.env.step(
            key, state.env_state, action
        )
        done = terminated | truncated
        returns = state.discounted_return * self.gamma + reward
        stats = state.stats.update(returns)
        returns = jnp.where(done, 0.0, returns)
        reward = reward / jnp.sqrt(stats.var + 1e-8)
        return obs, NormalizeRewardState(env_state, returns, stats), reward, terminated, truncated, info


class ScaleReward(Wrapper):
    """Multiplies rewards by a constant (the Brax presets' `reward_scaling`)."""

    def __init__(self, env: Environment, scale: float | jax.Array):
        super().__init__(env)
        self.scale = scale

    def step(self, key: jax.Array, state: Any, action: jax.Array) -> StepResult:
        obs, state, reward, terminated, truncated, info = self.env.step(key, state, action)
        return obs, state, reward * self.scale, terminated, truncated, info
