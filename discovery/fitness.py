"""Fitness of drift parameters: inner training runs, final returns (three
measures, `run_score`), common random numbers, non-finite handling, and
multi-env normalisation. All pure JAX."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from driftlab.algorithms import Trainer, TrainResult
from driftlab.algorithms.evaluation import evaluate_policy, final_return

# Folded into a run's key for its final evaluation (fitness="final_eval"): the
# evaluation episodes are fixed by the run's key, and differ from its training ones.
FINAL_EVAL_STREAM = 0xE7A1


def run_score(trainer: Trainer, result: TrainResult, key: jax.Array, mode: str = "last_fraction",
              fraction: float = 0.1, eval_envs: int = 128) -> jax.Array:
    """The final return of one training run (`result`, started from `key`), ().

    - "last_fraction": mean episodic return over the last `fraction` of updates
      (`evaluation.final_return`).
    - "final_update": the mean return of the episodes that ended in the last
      update (carried over from earlier updates if none did), as Goldie et al.'s
      fitness `metrics["returned_episode_returns"][-1]` (learn-rl-algorithms,
      black_box_learning/lpo_bb.py).
    - "final_eval": the final policy's mean return on `eval_envs` fresh episodes
      with sampled actions (Lu et al., dpo/brax_drift.py run_eval; see
      algorithms/evaluation.py), keyed by `fold_in(key, FINAL_EVAL_STREAM)`.
    NaN when no episode counted (made worst by `clean_fitness`)."""
    if mode == "last_fraction":
        return final_return(result.metrics["episode_return"], fraction)
    if mode == "final_update":
        return result.metrics["episode_return"][..., -1]
    if mode == "final_eval":
        return evaluate_policy(trainer, result, jax.random.fold_in(key, FINAL_EVAL_STREAM),
                               eval_envs)
    raise ValueError(f"unknown fitness mode {mode!r}; use last_fraction, final_update "
                     "or final_eval")


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
                   fraction: float, mode: str = "last_fraction",
                   eval_envs: int = 128, member_batch: int | None = None,
                   groups: int = 1, hparams: Any = None) -> jax.Array:
    """Final returns of full training runs, (members, rollouts): one run per
    (member's drift params, key), measured by `run_score(mode)`.
    `population` leaves are (members, ...).

    `member_batch`: None trains every member in one vmapped batch; k trains the
    members k at a time in sequence (`lax.map`), each batch's runs vmapped (a
    member's rollouts always are). On CPU a cache-sized batch is faster than one
    large batch (benchmarks/discovery.py); accelerators want the whole population.
    `groups`: the member axis is first split into this many groups (one per
    device: the sharded axis), vmapped, each running its members in sequence.
    `hparams`: the runs' Hyperparams (None: the trainer config's own)."""

    def one(params: Any, key: jax.Array) -> jax.Array:
        result = trainer.train(key, params, hparams)
        return run_score(trainer, result, key, mode, fraction, eval_envs)

    per_member = jax.vmap(one, in_axes=(None, 0))  # over its rollouts
    members = keys.shape[0]
    if member_batch is None or member_batch * groups >= members:
        return jax.vmap(per_member)(population, keys)

    def group(params: Any, group_keys: jax.Array) -> jax.Array:
        return jax.lax.map(lambda xs: per_member(*xs), (params, group_keys),
                           batch_size=member_batch)

    def split(x: jax.Array) -> jax.Array:  # (members, ...) -> (groups, members // groups, ...)
        return x.reshape((groups, members // groups) + x.shape[1:])

    out = jax.vmap(group)(jax.tree.map(split, population), split(keys))
    return out.reshape((members,) + out.shape[2:])


def combine_env_returns(returns: jax.Array, references: jax.Array,
                        mask: jax.Array | None = None,
                        random: jax.Array | None = None) -> jax.Array:
    """Fitness (members,) from per-env returns (members, envs).

    Each env's return is normalised, R / R_ref (`random` None; use 1.0 for no
    normalisation) or (R - R_random) / (R_ref - R_random), and the normalised
    returns of the selected envs (`mask`, (envs,) bool; default all) are
    averaged. A non-finite return in a selected env makes that member's
    fitness non-finite."""
    if random is None:
        normalised = returns / references
    else:
        normalised = (returns - random) / (references - random)
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
                     fraction: float, mode: str = "last_fraction",
                     eval_envs: int = 128) -> float:
    """Mean final return of `seeds` PPO runs with the trainer's budget, measured
    like the members' (`run_score(mode)`): the fitness normaliser of an env;
    raises if no run finished an episode."""
    keys = jax.random.split(key, seeds)
    if mode == "final_eval":
        finals = jax.jit(jax.vmap(lambda k: run_score(
            trainer, trainer.train(k, ppo_params), k, mode, fraction, eval_envs)))(keys)
    else:  # kept as it was (outside the jit), so cached references of older runs match
        runs = jax.jit(jax.vmap(lambda k: trainer.train(k, ppo_params)))(keys)
        finals = run_score(trainer, runs, keys, mode, fraction, eval_envs)
    value = float(jnp.nanmean(finals))
    if not math.isfinite(value):
        raise ValueError("the PPO reference run finished no episode; raise total_timesteps")
    return value
