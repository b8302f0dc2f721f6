"""The Mirror-Learning trainer: one on-policy actor-critic loop that every
drift plugs into.

    objective = mean(r * A - D(r, A))        (PPO, DPO, LPO, ... differ only in D)
    loss      = -objective + vf_coef * value_loss - ent_coef * entropy

Two ways to get advantages (`TrainConfig.advantages`): "rollout" (purejaxrl: one
GAE over each env's whole rollout, once per update) and "unroll" (Brax's PPO, as
the LPO/DPO paper's Brax results were trained: the rollout is cut into unrolls of
`unroll_length` steps and GAE is recomputed in every minibatch with the current
critic, `brax_gae`). The policy distribution is the other choice
(`TrainConfig.continuous`, algorithms/networks.py).

`Trainer.train(key, drift_params, hparams)` is pure: jit it, vmap it over keys,
drift parameters and hyperparameters. `init` / `run` expose the same loop in
chunks so a caller can show progress or checkpoint between jitted pieces;
chunked and unchunked runs agree to float rounding (they are different XLA
programs); the same program with the same key is bitwise reproducible.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from driftlab.algorithms.config import Hyperparams, TrainConfig
from driftlab.algorithms.drifts import Drift
from driftlab.algorithms.networks import make_critic, make_policy
from driftlab.envs import (
    ClipAction,
    Environment,
    NormalizeObservation,
    NormalizeReward,
    ScaleReward,
    Vectorized,
)
from driftlab.envs.wrappers import NormalizeObservationState, RunningMeanStd


@struct.dataclass
class RunnerState:
    params: Any  # {"actor": ..., "critic": ...}
    opt_state: Any
    env_state: Any
    obs: jax.Array  # (num_envs, obs_dim)
    key: jax.Array
    update: jax.Array  # updates done so far (int32)
    last_return: jax.Array  # latest mean episodic return (NaN until one ends)


@struct.dataclass
class TrainResult:
    metrics: dict[str, jax.Array]  # each (num_updates,) (plus any vmapped axes in front)
    params: Any  # final {"actor", "critic"} parameters
    obs_stats: RunningMeanStd | None  # observation normaliser, when enabled


class Transition(NamedTuple):
    obs: jax.Array
    raw_action: jax.Array
    log_prob: jax.Array
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    episode_return: jax.Array
    episode_done: jax.Array


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


class Trainer:
    """Builds the training loop for one env, config and drift family."""

    def __init__(self, env: Environment, config: TrainConfig, drift: Drift):
        config.validate()
        self.env, self.config, self.drift = env, config, drift
        self.policy = make_policy(env.action_space, config.actor_hidden, config.activation,
                                  config.continuous, config.init, config.obs_clip)
        self.critic = make_critic(config.critic_hidden, config.activation, config.init)
        self.obs_dim = math.prod(env.observation_shape)

    # ---- pieces built per call, so hyperparameters may be traced values ----
    def _vector_env(self, hp: Hyperparams) -> Environment:
        cfg, env = self.config, self.env
        if self.policy.kind == "gaussian":
            env = ClipAction(env)
        env = Vectorized(env, cfg.num_envs)
        if cfg.normalize_obs:
            env = NormalizeObservation(env)  # clips at 10; obs_clip (Brax: 5) in the networks
        if cfg.normalize_reward:
            env = NormalizeReward(env, hp.gamma)
        return ScaleReward(env, hp.reward_scale)

    def _optimizer(self, hp: Hyperparams) -> optax.GradientTransformation:
        cfg = self.config
        steps_per_update = cfg.update_epochs * cfg.num_minibatches

        def learning_rate(count: jax.Array) -> jax.Array:
            if not cfg.anneal_lr:
                return hp.learning_rate
            return hp.learning_rate * (1.0 - (count // steps_per_update) / cfg.num_updates)

        return optax.chain(
            optax.clip_by_global_norm(hp.max_grad_norm),
            # b1/b2 as in Goldie et al.'s optax.adam(b1=B1, b2=B2, eps=1e-5) (learn-rl-algorithms,
            # black_box_learning/lpo_bb.py); the defaults 0.9/0.999 are optax's own.
            optax.scale_by_adam(b1=cfg.adam_b1, b2=cfg.adam_b2, eps=cfg.adam_eps),
            optax.scale_by_schedule(lambda count: -learning_rate(count)),
        )

    def _flat(self, obs: jax.Array) -> jax.Array:
        return obs.reshape(obs.shape[0], self.obs_dim)

    def value(self, params: Any, obs: jax.Array) -> jax.Array:
        """V(obs) for observations (..., obs_dim): shape (...)."""
        clip = self.config.obs_clip
        if clip is not None:
            obs = jnp.clip(obs, -clip, clip)
        return self.critic.apply(params["critic"], obs)[..., 0]

    # ---- the loop ----
    def init(self, key: jax.Array, hparams: Hyperparams | None = None) -> RunnerState:
        """Fresh networks, optimiser and environments."""
        hp = self.config.hyperparams if hparams is None else hparams
        key, k_actor, k_critic, k_env = jax.random.split(key, 4)
        params = {
            "actor": self.policy.init(k_actor, self.obs_dim),
            "critic": self.critic.init(k_critic, jnp.zeros((self.obs_dim,))),
        }
        obs, env_state = self._vector_env(hp).reset(k_env)
        return RunnerState(
            params=params,
            opt_state=self._optimizer(hp).init(params),
            env_state=env_state,
            obs=self._flat(obs),
            key=key,
            update=jnp.zeros((), jnp.int32),
            last_return=jnp.full((), jnp.nan, jnp.float32),
        )

    def update(self, state: RunnerState, drift_params: Any,
               hparams: Hyperparams | None = None) -> tuple[RunnerState, dict[str, jax.Array]]:
        """One rollout of num_envs x num_steps, then the epochs of minibatch updates."""
        cfg = self.config
        hp = cfg.hyperparams if hparams is None else hparams
        env, optimizer, policy = self._vector_env(hp), self._optimizer(hp), self.policy
        unroll = cfg.advantages == "unroll"

        def env_step(carry, step):
            env_state, obs, cuts, key = carry
            key, k_act, k_env = jax.random.split(key, 3)
            raw, log_prob = policy.sample(state.params["actor"], k_act, obs)
            next_obs, env_state, reward, terminated, truncated, info = env.step(
                k_env, env_state, policy.to_env_action(raw))
            if not unroll:  # Brax's unrolls mask truncated steps instead of bootstrapping them
                cuts = cuts.record(step, truncated, self._flat(info["final_obs"]))
            transition = Transition(obs, raw, log_prob, reward, terminated, truncated,
                                    info["episode_return"], info["episode_done"])
            return (env_state, self._flat(next_obs), cuts, key), transition

        # An env that states no time limit may be cut at any step: one slot per step.
        limit = getattr(self.env, "max_episode_steps", None) or 1
        cuts = Cuts.empty(cfg.num_steps, limit, cfg.num_envs, self.obs_dim)
        (env_state, obs, cuts, key), traj = jax.lax.scan(
            env_step, (state.env_state, state.obs, cuts, state.key), jnp.arange(cfg.num_steps))

        progress = state.update.astype(jnp.float32) / cfg.num_updates
        if unroll:
            batch = self._unrolls(traj, obs)
            rows = cfg.batch_size // cfg.unroll_length
        else:
            values, advantages, targets = self._gae(state.params, self.value, traj, obs, cuts, hp)
            batch = (traj.obs, traj.raw_action, traj.log_prob, values, advantages, targets)
            batch = jax.tree.map(lambda x: x.reshape((cfg.batch_size,) + x.shape[2:]), batch)
            rows = cfg.batch_size
        # The brax_tanh policy estimates its entropy from a sample: one key per minibatch.
        sampled_entropy = policy.kind == "brax_tanh"

        def minibatch_step(carry, inputs):
            params, opt_state = carry
            rows_mb, k_loss = inputs if sampled_entropy else (inputs, None)
            # Gathered here, one minibatch at a time, not the whole batch per epoch: the
            # rows are used while still in cache (3-5% faster on Breakout; same numbers).
            minibatch = jax.tree.map(lambda x: x[rows_mb], batch)
            grads, aux = jax.grad(self.loss, has_aux=True)(params, minibatch, drift_params, hp,
                                                           progress, k_loss)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), aux

        def epoch(carry, _):
            params, opt_state, key = carry
            if sampled_entropy:
                key, k_perm, k_loss = jax.random.split(key, 3)
            else:
                key, k_perm = jax.random.split(key)
            order = jax.random.permutation(k_perm, rows)
            shuffled = order.reshape(cfg.num_minibatches, rows // cfg.num_minibatches)
            if sampled_entropy:
                shuffled = (shuffled, jax.random.split(k_loss, cfg.num_minibatches))
            (params, opt_state), aux = jax.lax.scan(minibatch_step, (params, opt_state), shuffled)
            return (params, opt_state, key), aux

        (params, opt_state, key), aux = jax.lax.scan(
            epoch, (state.params, state.opt_state, key), None, cfg.update_epochs)

        finished = traj.episode_done.sum()
        mean_return = (traj.episode_return * traj.episode_done).sum() / jnp.maximum(finished, 1)
        last_return = jnp.where(finished > 0, mean_return, state.last_return)
        metrics = {k: v.mean() for k, v in aux.items()}
        metrics.update(episode_return=last_return, episodes_finished=finished)
        if not unroll:  # with unrolls, value_mean is the minibatches' mean (in aux)
            metrics["value_mean"] = values.mean()
        new_state = RunnerState(params, opt_state, env_state, obs, key, state.update + 1,
                                last_return)
        return new_state, metrics

    def loss(self, params: Any, minibatch: Any, drift_params: Any, hp: Hyperparams,
             progress: jax.Array, key: jax.Array | None = None) -> tuple[jax.Array, dict]:
        """(loss, metrics) of one minibatch; `jax.grad` of it is the update direction.

        `minibatch`: for advantages "rollout" the tuple (obs, raw_action, log_prob,
        value, advantage, target), each with one leading batch axis; for "unroll" an
        `Unrolls`, whose advantages and targets are computed here with the current
        critic. `key`: the entropy sample of the brax_tanh policy (else unused)."""
        cfg, policy = self.config, self.policy
        if cfg.advantages == "unroll":
            time_major = lambda x: jnp.swapaxes(x, 0, 1)  # noqa: E731 - (N, L) -> (L, N), as Brax
            obs_mb, raw_mb = time_major(minibatch.obs), time_major(minibatch.raw_action)
            old_log_prob = time_major(minibatch.log_prob)
            value = self.value(params, obs_mb)
            target, adv = brax_gae(
                truncation=time_major(minibatch.truncated).astype(jnp.float32),
                termination=time_major(minibatch.terminated).astype(jnp.float32),
                rewards=time_major(minibatch.reward), values=value,
                bootstrap_value=self.value(params, minibatch.next_obs),
                lambda_=hp.gae_lambda, discount=hp.gamma)
            old_value = None
        else:
            obs_mb, raw_mb, old_log_prob, old_value, adv, target = minibatch
            value = None
        if policy.kind == "brax_tanh":
            log_prob, entropy = policy.evaluate(params["actor"], obs_mb, raw_mb, key)
        else:
            log_prob, entropy = policy.evaluate(params["actor"], obs_mb, raw_mb)
        log_ratio = log_prob - old_log_prob
        ratio = jnp.exp(log_ratio)
        if cfg.normalize_advantages:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        drift = self.drift.fn(drift_params, ratio, log_ratio, adv, progress)
        objective = jnp.mean(ratio * adv - drift)
        extra = {}
        if value is None:
            value = self.value(params, obs_mb)
        else:
            extra["value_mean"] = value.mean()
        value_loss = jnp.square(value - target)
        if cfg.clip_value_loss:
            clipped = old_value + jnp.clip(value - old_value, -hp.vf_clip, hp.vf_clip)
            value_loss = jnp.maximum(value_loss, jnp.square(clipped - target))
        value_loss = 0.5 * value_loss.mean()
        entropy = entropy.mean()
        loss = -objective + hp.vf_coef * value_loss - hp.ent_coef * entropy
        return loss, {
            "policy_loss": -objective,
            "value_loss": value_loss,
            "entropy": entropy,
            "approx_kl": jnp.mean((ratio - 1.0) - log_ratio),
            "drift": drift.mean(),
            # A threshold, not > 0: smooth drifts (DPO) are ~x^3 near r = 1, so
            # "> 0" would count float noise.
            "drift_active_frac": jnp.mean(drift > 1e-6),
            **extra,
        }

    def _unrolls(self, traj: Transition, last_obs: jax.Array) -> Unrolls:
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

    def _gae(self, params, critic, traj: Transition, last_obs: jax.Array, cuts: Cuts,
             hp: Hyperparams):
        """Values, advantages and value targets, (num_steps, num_envs) each.

        The critic is evaluated here, after the rollout, in one large batch (far
        cheaper on CPU than num_steps small ones inside the rollout). A
        truncated episode is cut like a terminated one, but its reward gets
        gamma * V(pre-reset observation) added, so a time limit does not look
        like a terminal state to the critic."""
        steps, num_envs = traj.truncated.shape
        all_values = critic(params, jnp.concatenate([traj.obs, last_obs[None], cuts.obs], 0))
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

    def run(self, state: RunnerState, drift_params: Any, hparams: Hyperparams | None,
            num_updates: int) -> tuple[RunnerState, dict[str, jax.Array]]:
        """`num_updates` updates in one scan; metrics stacked along axis 0."""
        return jax.lax.scan(lambda s, _: self.update(s, drift_params, hparams), state, None,
                            num_updates)

    def result(self, state: RunnerState, metrics: dict[str, jax.Array]) -> TrainResult:
        return TrainResult(metrics, state.params, find_obs_stats(state.env_state))

    def train(self, key: jax.Array, drift_params: Any,
              hparams: Hyperparams | None = None) -> TrainResult:
        """A whole training run: pure, jittable, vmappable over every argument."""
        state = self.init(key, hparams)
        state, metrics = self.run(state, drift_params, hparams, self.config.num_updates)
        return self.result(state, metrics)


def find_obs_stats(env_state: Any) -> RunningMeanStd | None:
    """The observation normaliser's statistics inside a wrapped env state."""
    while env_state is not None:
        if isinstance(env_state, NormalizeObservationState):
            return env_state.stats
        env_state = getattr(env_state, "env_state", None)
    return None


def make_train(env: Environment, config: TrainConfig, drift: Drift):
    """`train(key, drift_params, hparams=None) -> TrainResult` (see Trainer.train)."""
    return Trainer(env, config, drift).train
