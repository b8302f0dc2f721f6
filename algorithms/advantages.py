"""The two ways the trainer gets advantages and value targets
(`TrainConfig.advantages`), each an object the `Trainer` chooses once:

- `RolloutAdvantages` ("rollout", purejaxrl): one GAE over each env's whole
  rollout, once per update, with the critic of the rollout's start; a truncated
  episode bootstraps from its pre-reset observation (kept in `Cuts`).
- `UnrollAdvantages` ("unroll", Brax's PPO, as the LPO/DPO paper's Brax results
  were trained): the rollout is cut into unrolls of `unroll_length` steps and GAE
  is recomputed in every minibatch with the current critic (`brax_gae`); a
  truncated step is masked out instead of bootstrapped.

A mode (`AdvantageMode`) answers three questions for the trainer: what to keep
while collecting (`record`), what batch the SGD epochs shuffle (`batch`), and
what one minibatch gives the loss (`terms`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from driftlab.algorithms.config import Hyperparams, TrainConfig

Critic = Callable[[Any, jax.Array], jax.Array]  # V(params, obs (..., obs_dim)) -> (...)


class Transition(NamedTuple):
    """One rollout step of every env; the collected rollout stacks them: (num_steps, num_envs, ...)."""

    obs: jax.Array  # (num_envs, obs_dim)
    raw_action: jax.Array  # (num_envs, ...) the policy's raw sample (networks.Policy)
    log_prob: jax.Array  # (num_envs,) behaviour log-probability
    reward: jax.Array  # (num_envs,)
    terminated: jax.Array  # (num_envs,) bool
    truncated: jax.Array  # (num_envs,) bool
    episode_return: jax.Array  # (num_envs,) return of the episode that ended here
    episode_done: jax.Array  # (num_envs,) bool


class Cuts(NamedTuple):
    """The observations truncated episodes ended on, kept during a rollout to
    bootstrap their value. Time limits come at least `max_episode_steps` apart,
    so an env is cut at most `slots = ceil(num_steps / max_episode_steps)` times
    per rollout: a small buffer instead of a (num_steps, num_envs, obs) array."""

    obs: jax.Array  # (slots, num_envs, obs_dim)
    step: jax.Array  # (slots, num_envs) rollout step of each cut; num_steps where unused
    count: jax.Array  # (num_envs,) cuts recorded so far

    @classmethod
    def empty(cls, num_steps: int, max_episode_steps: int, num_envs: int, obs_dim: int) -> Cuts:
        slots = min(num_steps, -(-num_steps // max(1, max_episode_steps)))
        return cls(jnp.zeros((slots, num_envs, obs_dim)), jnp.full((slots, num_envs), num_steps),
                   jnp.zeros((num_envs,), jnp.int32))

    def record(self, step: jax.Array, truncated: jax.Array, final_obs: jax.Array) -> Cuts:
        """Keeps `final_obs` (num_envs, obs_dim) of the envs truncated at `step`."""
        if self.step.shape[0] == 1:  # the usual case; a select is cheaper than a scatter
            return Cuts(jnp.where(truncated[None, :, None], final_obs[None], self.obs),
                        jnp.where(truncated[None], step, self.step), self.count + truncated)
        slot, envs = jnp.minimum(self.count, self.step.shape[0] - 1), jnp.arange(truncated.shape[0])
        obs = jnp.where(truncated[:, None], final_obs, self.obs[slot, envs])
        when = jnp.where(truncated, step, self.step[slot, envs])
        return Cuts(self.obs.at[slot, envs].set(obs), self.step.at[slot, envs].set(when),
                    self.count + truncated)


class Samples(NamedTuple):
    """The rollout flattened to batch_size = num_steps * num_envs rows (advantages: rollout)."""

    obs: jax.Array  # (B, obs_dim)
    raw_action: jax.Array  # (B, ...)
    log_prob: jax.Array  # (B,) behaviour log-probabilities
    value: jax.Array  # (B,) V at collection (the clipped value loss's anchor)
    advantage: jax.Array  # (B,)
    target: jax.Array  # (B,) value target, advantage + value


class Unrolls(NamedTuple):
    """A rollout cut into unrolls of `unroll_length` steps (advantages: unroll), one
    row per (unroll, env): leading axes (num_unrolls, unroll_length)."""

    obs: jax.Array  # (N, L, obs_dim)
    raw_action: jax.Array  # (N, L, ...)
    log_prob: jax.Array  # (N, L) behaviour log-probabilities
    reward: jax.Array  # (N, L), scaled as the env wrappers scale it
    terminated: jax.Array  # (N, L)
    truncated: jax.Array  # (N, L)
    next_obs: jax.Array  # (N, obs_dim) observation after the unroll's last step (bootstrap)


class LossTerms(NamedTuple):
    """What the loss needs of one minibatch, whichever mode made it; every array
    has the same leading axes M: (minibatch rows,) or, for unrolls, time-major (L, N)."""

    obs: jax.Array  # (*M, obs_dim)
    raw_action: jax.Array  # (*M, ...)
    old_log_prob: jax.Array  # (*M,)
    value: jax.Array  # (*M,) V under the parameters being differentiated
    advantage: jax.Array  # (*M,) not yet normalised
    target: jax.Array  # (*M,) value target
    old_value: jax.Array | None  # (*M,) V at collection; None where the mode has none
    metrics: dict[str, jax.Array]  # the mode's own scalars, averaged like the loss's


def brax_gae(truncation: jax.Array, termination: jax.Array, rewards: jax.Array,
             values: jax.Array, bootstrap_value: jax.Array, lambda_: Any, discount: Any):
    """Value targets and advantages, time-major (T, B), exactly as Brax computes them
    (brax.training.agents.ppo.losses.compute_gae): a truncated step's delta is masked
    to 0 and the recursion restarts there (so its advantage is 0 and its target its
    own value), and the advantage is r + gamma * (1 - term) * vs_{t+1} - V_t."""
    truncation_mask = 1 - truncation
    values_t_plus_1 = jnp.concatenate([values[1:], jnp.expand_dims(bootstrap_value, 0)], axis=0)
    deltas = rewards + discount * (1 - termination) * values_t_plus_1 - values
    deltas *= truncation_mask

    def step(acc, inputs):
        mask, delta, term = inputs
        acc = delta + discount * (1 - term) * mask * lambda_ * acc
        return acc, acc

    _, vs_minus_v = jax.lax.scan(step, jnp.zeros_like(bootstrap_value),
                                 (truncation_mask, deltas, termination), reverse=True)
    vs = vs_minus_v + values
    vs_t_plus_1 = jnp.concatenate([vs[1:], jnp.expand_dims(bootstrap_value, 0)], axis=0)
    advantages = (rewards + discount * (1 - termination) * vs_t_plus_1 - values) * truncation_mask
    return jax.lax.stop_gradient(vs), jax.lax.stop_gradient(advantages)


class AdvantageMode:
    """What the trainer asks of an advantage mode; `critic` is the trainer's V."""

    def __init__(self, config: TrainConfig, critic: Critic):
        self.config, self.critic = config, critic

    def record(self, cuts: Cuts, step: jax.Array, truncated: jax.Array,
               final_obs: jax.Array) -> Cuts:
        """During collection, at rollout step `step`: `cuts` with what the mode keeps
        of the envs truncated there (`final_obs`: their pre-reset observations)."""
        raise NotImplementedError

    def batch(self, params: Any, traj: Transition, last_obs: jax.Array, cuts: Cuts,
              hp: Hyperparams) -> tuple[Any, dict[str, jax.Array]]:
        """After collection: (the batch the SGD epochs shuffle, a NamedTuple of arrays
        with rows along axis 0 and an `obs` field; the update's own scalar metrics)."""
        raise NotImplementedError

    def terms(self, params: Any, minibatch: Any, hp: Hyperparams) -> LossTerms:
        """Inside the loss, under the parameters being differentiated: what one
        minibatch (rows of `batch`) gives the objective and the value loss."""
        raise NotImplementedError


class RolloutAdvantages(AdvantageMode):
    """GAE once per update over the whole rollout (purejaxrl); minibatches are rows."""

    def record(self, cuts: Cuts, step: jax.Array, truncated: jax.Array,
               final_obs: jax.Array) -> Cuts:
        """Keeps the pre-reset observations of truncated envs, to bootstrap them."""
        return cuts.record(step, truncated, final_obs)

    def batch(self, params: Any, traj: Transition, last_obs: jax.Array, cuts: Cuts,
              hp: Hyperparams) -> tuple[Samples, dict[str, jax.Array]]:
        """The rollout's `Samples` and the update's value_mean."""
        values, advantages, targets = self.gae(params, traj, last_obs, cuts, hp)
        samples = Samples(traj.obs, traj.raw_action, traj.log_prob, values, advantages, targets)
        size = self.config.batch_size  # (num_steps, num_envs, ...) -> (batch_size, ...)
        samples = jax.tree.map(lambda x: x.reshape((size,) + x.shape[2:]), samples)
        return samples, {"value_mean": values.mean()}

    def terms(self, params: Any, minibatch: Samples, hp: Hyperparams) -> LossTerms:
        obs, raw_action, log_prob, old_value, advantage, target = minibatch
        return LossTerms(obs, raw_action, log_prob, self.critic(params, obs), advantage, target,
                         old_value, {})

    def gae(self, params: Any, traj: Transition, last_obs: jax.Array, cuts: Cuts,
            hp: Hyperparams) -> tuple[jax.Array, jax.Array, jax.Array]:
        """Values, advantages and value targets, (num_steps, num_envs) each.

        The critic is evaluated here, after the rollout, in one large batch (far
        cheaper on CPU than num_steps small ones inside the rollout). A
        truncated episode is cut like a terminated one, but its reward gets
        gamma * V(pre-reset observation) added, so a time limit does not look
        like a terminal state to the critic."""
        steps, num_envs = traj.truncated.shape
        all_values = self.critic(params, jnp.concatenate([traj.obs, last_obs[None], cuts.obs], 0))
        values, next_value = all_values[:steps], all_values[1:steps + 1]
        final_value = jnp.zeros_like(values).at[cuts.step, jnp.arange(num_envs)].set(
            all_values[steps + 1:], mode="drop")  # unused slots point past the end
        reward = traj.reward + hp.gamma * final_value * traj.truncated
        done = (traj.terminated | traj.truncated).astype(jnp.float32)
        delta = reward + hp.gamma * next_value * (1.0 - done) - values

        def backward(gae, inputs):
            delta_t, done_t = inputs
            gae = delta_t + hp.gamma * hp.gae_lambda * (1.0 - done_t) * gae
            return gae, gae

        _, advantages = jax.lax.scan(backward, jnp.zeros_like(values[0]), (delta, done),
                                     reverse=True)
        return values, advantages, advantages + values


class UnrollAdvantages(AdvantageMode):
    """Brax's PPO: minibatches of unrolls, GAE per minibatch with the current critic."""

    def record(self, cuts: Cuts, step: jax.Array, truncated: jax.Array,
               final_obs: jax.Array) -> Cuts:
        """Nothing: Brax's unrolls mask truncated steps instead of bootstrapping them."""
        return cuts

    def batch(self, params: Any, traj: Transition, last_obs: jax.Array, cuts: Cuts,
              hp: Hyperparams) -> tuple[Unrolls, dict[str, jax.Array]]:
        """The rollout's `Unrolls`; value_mean comes from the minibatches (`terms`)."""
        return self.unrolls(traj, last_obs), {}

    def terms(self, params: Any, minibatch: Unrolls, hp: Hyperparams) -> LossTerms:
        """Advantages and targets of the unrolls under `params`' critic, time-major
        (L, N) as Brax's compute_ppo_loss has them. No old values: the value loss
        is never clipped in this mode (TrainConfig.validate refuses it)."""
        time_major = lambda x: jnp.swapaxes(x, 0, 1)  # noqa: E731 - (N, L) -> (L, N), as Brax
        obs = time_major(minibatch.obs)
        value = self.critic(params, obs)
        target, advantage = brax_gae(
            truncation=time_major(minibatch.truncated).astype(jnp.float32),
            termination=time_major(minibatch.terminated).astype(jnp.float32),
            rewards=time_major(minibatch.reward), values=value,
            bootstrap_value=self.critic(params, minibatch.next_obs),
            lambda_=hp.gae_lambda, discount=hp.gamma)
        return LossTerms(obs, time_major(minibatch.raw_action), time_major(minibatch.log_prob),
                         value, advantage, target, None, {"value_mean": value.mean()})

    def unrolls(self, traj: Transition, last_obs: jax.Array) -> Unrolls:
        """The rollout (num_steps, num_envs, ...) cut into unrolls of unroll_length
        steps, ordered as Brax orders them (unroll index major, env minor)."""
        length = self.config.unroll_length
        count = self.config.num_steps // length

        def cut(x: jax.Array) -> jax.Array:  # (num_steps, E, ...) -> (count * E, L, ...)
            x = jnp.swapaxes(x.reshape((count, length) + x.shape[1:]), 1, 2)
            return x.reshape((count * x.shape[1], length) + x.shape[3:])

        next_obs = jnp.concatenate([traj.obs[length::length], last_obs[None]], 0)
        return Unrolls(cut(traj.obs), cut(traj.raw_action), cut(traj.log_prob),
                       cut(traj.reward), cut(traj.terminated), cut(traj.truncated),
                       next_obs.reshape((-1,) + next_obs.shape[2:]))


ADVANTAGES: dict[str, type[AdvantageMode]] = {"rollout": RolloutAdvantages,
                                               "unroll": UnrollAdvantages}
