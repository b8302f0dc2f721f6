"""Fitness of drift parameters: inner training runs, final returns, common random
numbers, non-finite handling, and multi-env normalisation. All pure JAX."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from algorithms import Trainer


def final_return(episode_return: jax.Array, fraction: float) -> jax.Array:
    """Mean episodic return over the last `fraction` of updates.

    episode_return: (..., num_updates), NaN until the first episode ends.
    Returns (...); NaN when no episode finished in that window."""
    num_updates = episode_return.shape[-1]
    tail = max(1, int(round(num_updates * fraction)))
    return jnp.nanmean(episode_return[..., -tail:], axis=-1)


def rollout_keys(key: jax.Array, members: int, rollouts: int, common: bool) -> jax.Array:
    """Keys for the inner runs, (members, rollouts).

    Common random numbers (`common=True`): every member gets the same
    `rollouts` keys, so fitness differences within a generation come from the
    drift, not from the environment's luck."""
    if common:
        keys = jax.random.split(key, rollouts)
        return jnp.broadcast_to(keys[None], (members, rollouts) + keys.shape[1:])
    return jax.random.split(key, members * rollouts).reshape(members, rollouts, *key.shape)


def member_returns(trainer: Trainer, population: Any, keys: jax.Array,
                   fraction: float) -> jax.Array:
    """Final returns of full training runs, (members, rollouts): one run per
    (member's drift params, key). `population` leaves are (members, ...)."""

    def one(params: Any, key: jax.Array) -> jax.Array:
        result = trainer.train(key, params)
        return final_return(result.metrics["episode_return"], fraction)

    return jax.vmap(jax.vmap(one, in_axes=(None, 0)), in_axes=(0, 0))(population, keys)


def combine_env_returns(returns: jax.Array, references: jax.Array,
                        mask: jax.Array | None = None) -> jax.Array:
    """Fitness (members,) from per-env returns (members, envs).

    Each env's return is divided by its reference return (use 1.0 for no
    normalisation) and the normalised returns of the selected envs
    (`mask`, (envs,) bool; default all) are averaged. A non-finite return in
    a selected env makes that member's fitness non-finite."""
    normalised = returns / references
    if mask is None:
        return normalised.mean(axis=-1)
    weights = mask.astype(normalised.dtype)
    # where(): an unselected env's NaN placeholder must not poison the sum.
    summed = jnp.where(mask, normalised, 0.0).sum(axis=-1)
    return summed / jnp.maximum(weights.sum(), 1.0)


def clean_fitness(fitness: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(fitness with NaN/inf replaced by a value just below the worst finite one,
    number replaced). Higher is better. evosax's z-score shaping would spread a
    NaN over every member and an inf would dominate, so non-finite members are
    made strictly worst here, before shaping; all-non-finite gives all zeros
    (a zero ES gradient: the generation is skipped, not the run)."""
    finite = jnp.isfinite(fitness)
    worst = jnp.min(jnp.where(finite, fitness, jnp.inf))
    fill = jnp.where(jnp.any(finite), worst - 1e-3 * (1.0 + jnp.abs(worst)), 0.0)
    return jnp.where(finite, fitness, fill), jnp.sum(~finite)


def subset_mask(key: jax.Array, num_envs: int, chosen: int | None) -> jax.Array:
    """(num_envs,) bool: `chosen` envs drawn without replacement (all if None)."""
    if chosen is None or chosen >= num_envs:
        return jnp.ones((num_envs,), bool)
    picks = jax.random.choice(key, num_envs, (chosen,), replace=False)
    return jnp.zeros((num_envs,), bool).at[picks].set(True)


def reference_return(trainer: Trainer, ppo_params: Any, key: jax.Array, seeds: int,
                     fraction: float) -> float:
    """Mean final return of `seeds` PPO runs with the trainer's budget (the
    fitness normaliser of an env); raises if no run finished an episode."""
    keys = jax.random.split(key, seeds)
    runs = jax.jit(jax.vmap(lambda k: trainer.train(k, ppo_params)))(keys)
    finals = final_return(runs.metrics["episode_return"], fraction)
    value = float(jnp.nanmean(finals))
    if not math.isfinite(value):
        raise ValueError("the PPO reference run finished no episode; raise total_timesteps")
    return value
