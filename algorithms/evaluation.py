"""How well a trained agent ended: `final_return` (its training curve's last
updates) and `evaluate_policy` (its final policy on new episodes).

`evaluate_policy` is the fitness of the original LPO code (Lu et al., NeurIPS 2022,
discovered-policy-optimisation `dpo/brax_drift.py`, `run_eval`; the fitness in
`dpo/main_drift_brax.py` is the eval env's completed-episode mean reward after
training): `num_eval_envs=128` fresh environments run for one episode length
with the final policy parameters and the final, *frozen* observation normaliser.
Actions are *sampled* from the policy there
(`parametric_action_distribution.sample(logits, key)`), not taken at the mode,
and so they are here.
"""

from __future__ import annotations

import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from driftlab.algorithms.trainer import Trainer, TrainResult
from driftlab.envs import ClipAction, Environment, Vectorized


def final_return(episode_return: Any, fraction: float = 0.1) -> Any:
    """Mean episodic return over the last `fraction` of updates (at least one):
    the discovery fitness and every summary's and comparison's final return.

    episode_return: (..., num_updates), NaN until the first episode ends.
    Returns (...); NaN when no episode finished in that window. A JAX array
    (traced too) gives a JAX array (`jnp.nanmean`, in its dtype); anything else
    is read as float64 numpy and gives numpy."""
    if isinstance(episode_return, jax.Array):
        nanmean = jnp.nanmean
    else:
        episode_return, nanmean = np.asarray(episode_return, np.float64), np.nanmean
    tail = max(1, int(round(episode_return.shape[-1] * fraction)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy: no episode in the window
        return nanmean(episode_return[..., -tail:], axis=-1)


def evaluate_policy(trainer: Trainer, result: TrainResult, key: jax.Array,
                    num_envs: int) -> jax.Array:
    """Mean raw episode return, shape (), of `result`'s final policy over
    `num_envs` fresh episodes (one per env, each at most `max_episode_steps`).

    Pure and jittable (one `lax.scan` over `max_episode_steps` steps), vmappable
    over `result` and `key`. The env is wrapped as in training
    (`Trainer._vector_env`: ClipAction for a clipped Gaussian, then Vectorized),
    observations are normalised with `result.obs_stats` held fixed (as the
    original evaluates with the trained normaliser, not updating it), and the
    returns come from the episode statistics (`info["episode_return"]`), which
    sit under every reward wrapper, so they are unscaled. An env's first
    finished episode is counted; NaN if no env finished one (cannot happen for
    an env that truncates at `max_episode_steps`)."""
    limit = int(getattr(trainer.env, "max_episode_steps", 0) or 0)
    if limit < 1:
        raise ValueError(f"{trainer.env.env_id} states no max_episode_steps, so one full "
                         "episode has no length; set episode_length in env_options")
    policy, cfg = trainer.policy, trainer.config
    env = ClipAction(trainer.env) if policy.kind == "gaussian" else trainer.env
    env = Vectorized(env, num_envs)
    stats = result.obs_stats if cfg.normalize_obs else None
    if stats is not None:  # flat, like the observations: "step" keeps the env's obs shape
        stats = stats.replace(mean=stats.mean.reshape(-1), var=stats.var.reshape(-1))

    def observe(obs: jax.Array) -> jax.Array:  # (num_envs, *obs_shape) -> (num_envs, obs_dim)
        obs = obs.reshape(num_envs, trainer.obs_dim)
        # The same clip and epsilon as in training, with either obs_norm_update.
        return obs if stats is None else trainer.normalize_obs(obs, stats)

    def step(carry, _):
        state, obs, key, returns, finished = carry
        key, k_act, k_env = jax.random.split(key, 3)
        raw, _ = policy.sample(result.params["actor"], k_act, observe(obs))
        obs, state, _, _, _, info = env.step(k_env, state, policy.to_env_action(raw))
        first = info["episode_done"] & ~finished  # later episodes after auto-reset are ignored
        returns = jnp.where(first, info["episode_return"], returns)
        return (state, obs, key, returns, finished | info["episode_done"]), None

    k_reset, k_run = jax.random.split(key)
    obs, state = env.reset(k_reset)
    zeros = jnp.zeros((num_envs,), jnp.float32)
    carry = (state, obs, k_run, zeros, jnp.zeros((num_envs,), bool))
    (_, _, _, returns, finished), _ = jax.lax.scan(step, carry, None, limit)
    count = finished.sum()
    return jnp.where(count > 0, (returns * finished).sum() / jnp.maximum(count, 1), jnp.nan)


def random_policy_return(env: Environment, key: jax.Array, num_envs: int = 256) -> float:
    """Mean raw return of one full episode in each of `num_envs` envs under
    uniformly random actions (`env.action_space.sample`): the 0 of the
    normalised score (R - R_random) / (R_PPO - R_random). Independent of every
    training setting but the env's own options. Each env runs its first episode
    to the end (at most `max_episode_steps`)."""
    limit = int(getattr(env, "max_episode_steps", 0) or 0)
    if limit < 1:
        raise ValueError(f"{env.env_id} states no max_episode_steps, so one full "
                         "episode has no length; set episode_length in env_options")
    vector = Vectorized(env, num_envs)

    def step(carry, key):
        state, returns, finished = carry
        k_act, k_env = jax.random.split(key)
        action = jax.vmap(env.action_space.sample)(jax.random.split(k_act, num_envs))
        _, state, _, _, _, info = vector.step(k_env, state, action)
        first = info["episode_done"] & ~finished
        returns = jnp.where(first, info["episode_return"], returns)
        return (state, returns, finished | info["episode_done"]), None

    @jax.jit
    def run(key: jax.Array) -> tuple[jax.Array, jax.Array]:
        k_reset, k_run = jax.random.split(key)
        _, state = vector.reset(k_reset)
        carry = (state, jnp.zeros((num_envs,), jnp.float32), jnp.zeros((num_envs,), bool))
        (_, returns, finished), _ = jax.lax.scan(step, carry, jax.random.split(k_run, limit))
        return returns, finished

    returns, finished = (np.asarray(x) for x in run(key))
    if not finished.any():
        raise ValueError(f"no random-policy episode of {env.env_id} ended within "
                         f"{limit} steps")
    return float(returns[finished].mean())
