"""The Mirror-Learning trainer: one on-policy actor-critic loop that every
drift plugs into.

    objective = mean(r * A - D(r, A))        (PPO, DPO, LPO, ... differ only in D)
    loss      = -objective + vf_coef * value_loss - ent_coef * entropy

One update is four named steps (`Trainer.update`):

    collect   num_steps steps of num_envs envs under the current policy (one scan)
              (with obs_norm_update "update": then the observation statistics take
              in the rollout and normalise it, `normalize_rollout`)
    batch     advantages and value targets: the advantage mode's batch
    learn     update_epochs epochs, each a scan of minibatch steps (grad of `loss`)
    metrics   the loss's metrics averaged, plus the episodes that ended

Two ways to get advantages (`TrainConfig.advantages`), each an object chosen once
in `Trainer.__init__` (algorithms/advantages.py): "rollout" (purejaxrl: one GAE
over each env's whole rollout, once per update) and "unroll" (Brax's PPO, as the
LPO/DPO paper's Brax results were trained: the rollout is cut into unrolls of
`unroll_length` steps and GAE is recomputed in every minibatch with the current
critic, `brax_gae`). The policy distribution is the other choice
(`TrainConfig.continuous`, algorithms/networks.py); a policy whose entropy is
sampled (`Policy.samples_entropy`) gets one key per minibatch.

`Trainer.train(key, drift_params, hparams)` is pure: jit it, vmap it over keys,
drift parameters and hyperparameters. `init` / `run` expose the same loop in
chunks so a caller can show progress or checkpoint between jitted pieces;
chunked and unchunked runs agree to float rounding (they are different XLA
programs); the same program with the same key is bitwise reproducible.

Longer than ~300 lines: the one loop every drift plugs into, as its four steps and
the per-update observation normaliser; the modes themselves are small objects in
algorithms/advantages.py and algorithms/networks.py.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from driftlab.algorithms.advantages import ADVANTAGES, Cuts, Transition
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
from driftlab.envs.wrappers import (
    NormalizeObservationState,
    RunningMeanStd,
    normalize_observation,
    normalize_observation_brax,
)


@struct.dataclass
class RunnerState:
    params: Any  # {"actor": ..., "critic": ...}
    opt_state: Any
    env_state: Any
    obs: jax.Array  # (num_envs, obs_dim)
    key: jax.Array
    update: jax.Array  # updates done so far (int32)
    last_return: jax.Array  # latest mean episodic return (NaN until one ends)
    # The normaliser with obs_norm_update "update" (`obs` above is then raw); None
    # otherwise ("step" keeps it in the env state, NormalizeObservation).
    obs_stats: RunningMeanStd | None = None


@struct.dataclass
class TrainResult:
    metrics: dict[str, jax.Array]  # each (num_updates,) (plus any vmapped axes in front)
    params: Any  # final {"actor", "critic"} parameters
    obs_stats: RunningMeanStd | None  # observation normaliser, when enabled


class Trainer:
    """Builds the training loop for one env, config and drift family."""

    def __init__(self, env: Environment, config: TrainConfig, drift: Drift):
        config.validate()
        self.env, self.config, self.drift = env, config, drift
        self.policy = make_policy(env.action_space, config.actor_hidden, config.activation,
                                  config.continuous, config.init, config.obs_clip)
        self.critic = make_critic(config.critic_hidden, config.activation, config.init)
        self.obs_dim = math.prod(env.observation_shape)
        # Observations normalised once per update (Brax) rather than in the env wrapper.
        self.per_update_norm = config.normalize_obs and config.obs_norm_update == "update"
        # The one choice of advantage mode (algorithms/advantages.py); the policy's kind
        # (networks.make_policy) is the other.
        self.advantages = ADVANTAGES[config.advantages](config, self.value)

    # ---- pieces built per call, so hyperparameters may be traced values ----
    def _vector_env(self, hp: Hyperparams) -> Environment:
        cfg, env = self.config, self.env
        if self.policy.kind == "gaussian":
            env = ClipAction(env)
        env = Vectorized(env, cfg.num_envs)
        if cfg.normalize_obs and not self.per_update_norm:
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
            obs_stats=RunningMeanStd.empty((self.obs_dim,)) if self.per_update_norm else None,
        )

    def update(self, state: RunnerState, drift_params: Any,
               hparams: Hyperparams | None = None) -> tuple[RunnerState, dict[str, jax.Array]]:
        """One rollout of num_envs x num_steps, then the epochs of minibatch updates:
        collect -> advantages (the batch) -> learn (SGD epochs) -> metrics."""
        hp = self.config.hyperparams if hparams is None else hparams
        state, traj, cuts = self.collect(state, self._vector_env(hp))
        last_obs = state.obs
        if self.per_update_norm:
            state, traj, cuts, last_obs = self.normalize_rollout(state, traj, cuts)
        progress = state.update.astype(jnp.float32) / self.config.num_updates
        batch, batch_metrics = self.advantages.batch(state.params, traj, last_obs, cuts, hp)
        state, aux = self.learn(state, batch, drift_params, hp, progress)
        metrics, last_return = self.metrics(traj, aux, batch_metrics, state.last_return)
        return state.replace(update=state.update + 1, last_return=last_return), metrics

    def collect(self, state: RunnerState, env: Environment) -> tuple[RunnerState, Transition, Cuts]:
        """num_steps steps of every env under the current policy: (state with env
        state, observations and key advanced, the rollout (num_steps, num_envs, ...),
        the truncation cuts the advantage mode kept)."""
        cfg, policy = self.config, self.policy

        def env_step(carry, step):
            env_state, obs, cuts, key = carry
            key, k_act, k_env = jax.random.split(key, 3)
            raw, log_prob = policy.sample(state.params["actor"], k_act, self._observe(state, obs))
            next_obs, env_state, reward, terminated, truncated, info = env.step(
                k_env, env_state, policy.to_env_action(raw))
            cuts = self.advantages.record(cuts, step, truncated, self._flat(info["final_obs"]))
            transition = Transition(obs, raw, log_prob, reward, terminated, truncated,
                                    info["episode_return"], info["episode_done"])
            return (env_state, self._flat(next_obs), cuts, key), transition

        # An env that states no time limit may be cut at any step: one slot per step.
        # (The unroll mode carries the buffer unfilled.)
        limit = getattr(self.env, "max_episode_steps", None) or 1
        cuts = Cuts.empty(cfg.num_steps, limit, cfg.num_envs, self.obs_dim)
        (env_state, obs, cuts, key), traj = jax.lax.scan(
            env_step, (state.env_state, state.obs, cuts, state.key), jnp.arange(cfg.num_steps))
        return state.replace(env_state=env_state, obs=obs, key=key), traj, cuts

    def _observe(self, state: RunnerState, obs: jax.Array) -> jax.Array:
        """What the networks see while acting: with per-update normalisation, `obs`
        normalised with the statistics of the last update (held for the rollout)."""
        return self.normalize_obs(obs, state.obs_stats) if self.per_update_norm else obs

    def normalize_obs(self, obs: jax.Array, stats: RunningMeanStd) -> jax.Array:
        """`obs` (..., *stats.mean.shape) normalised as this config's normaliser does
        (obs_norm_update "step": Gymnasium's formula, "update": Brax's)."""
        if self.per_update_norm:
            return normalize_observation_brax(obs, stats)
        return normalize_observation(obs, stats)

    def normalize_rollout(self, state: RunnerState, traj: Transition, cuts: Cuts
                          ) -> tuple[RunnerState, Transition, Cuts, jax.Array]:
        """obs_norm_update "update" (Brax's PPO, brax/training/agents/ppo/train.py,
        `training_step`): the statistics take in every observation the rollout acted
        on, (num_steps * num_envs) rows, once, before the SGD epochs; the rollout,
        its truncation cuts and the bootstrap observation are then normalised with
        them (Brax's formula, `normalize_observation_brax`). Returns (state with
        the new statistics, traj, cuts, last obs)."""
        stats = state.obs_stats.update(traj.obs.reshape(-1, self.obs_dim))
        traj = traj._replace(obs=normalize_observation_brax(traj.obs, stats))
        cuts = cuts._replace(obs=normalize_observation_brax(cuts.obs, stats))
        return (state.replace(obs_stats=stats), traj, cuts,
                normalize_observation_brax(state.obs, stats))

    def learn(self, state: RunnerState, batch: Any, drift_params: Any, hp: Hyperparams,
              progress: jax.Array) -> tuple[RunnerState, dict[str, jax.Array]]:
        """`update_epochs` passes over `batch` (rows along axis 0), each in
        `num_minibatches` shuffled minibatches: (state with parameters, optimiser
        and key advanced, the loss's metrics (update_epochs, num_minibatches))."""
        cfg, optimizer = self.config, self._optimizer(hp)
        rows = batch.obs.shape[0]

        def minibatch_step(carry, inputs):
            params, opt_state = carry
            rows_mb, k_loss = inputs
            # Gathered here, one minibatch at a time, not the whole batch per epoch: the
            # rows are used while still in cache (3-5% faster on Breakout; same numbers).
            minibatch = jax.tree.map(lambda x: x[rows_mb], batch)
            grads, aux = jax.grad(self.loss, has_aux=True)(params, minibatch, drift_params, hp,
                                                           progress, k_loss)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), aux

        def epoch(carry, _):
            params, opt_state, key = carry
            key, k_perm, loss_keys = self._epoch_keys(key)
            order = jax.random.permutation(k_perm, rows)
            shuffled = order.reshape(cfg.num_minibatches, rows // cfg.num_minibatches)
            (params, opt_state), aux = jax.lax.scan(minibatch_step, (params, opt_state),
                                                    (shuffled, loss_keys))
            return (params, opt_state, key), aux

        (params, opt_state, key), aux = jax.lax.scan(
            epoch, (state.params, state.opt_state, state.key), None, cfg.update_epochs)
        return state.replace(params=params, opt_state=opt_state, key=key), aux

    def _epoch_keys(self, key: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array | None]:
        """(next key, permutation key, the loss's key per minibatch (num_minibatches,)
        or None): a policy that samples its entropy gets one key per minibatch."""
        if not self.policy.samples_entropy:
            key, k_perm = jax.random.split(key)
            return key, k_perm, None
        key, k_perm, k_loss = jax.random.split(key, 3)
        return key, k_perm, jax.random.split(k_loss, self.config.num_minibatches)

    def metrics(self, traj: Transition, aux: dict[str, jax.Array], batch_metrics: dict[str, Any],
                last_return: jax.Array) -> tuple[dict[str, jax.Array], jax.Array]:
        """(the update's scalar metrics, the latest mean episodic return): the loss's
        metrics averaged over epochs and minibatches, the advantage mode's, and the
        return of the episodes that ended in this rollout (the previous one if none did)."""
        finished = traj.episode_done.sum()
        mean_return = (traj.episode_return * traj.episode_done).sum() / jnp.maximum(finished, 1)
        last_return = jnp.where(finished > 0, mean_return, last_return)
        metrics = {k: v.mean() for k, v in aux.items()}
        metrics.update(episode_return=last_return, episodes_finished=finished, **batch_metrics)
        return metrics, last_return

    def loss(self, params: Any, minibatch: Any, drift_params: Any, hp: Hyperparams,
             progress: jax.Array, key: jax.Array | None = None) -> tuple[jax.Array, dict]:
        """(loss, metrics) of one minibatch; `jax.grad` of it is the update direction.

        `minibatch`: rows of the advantage mode's batch: for advantages "rollout"
        `Samples` (obs, raw_action, log_prob, value, advantage, target), each with
        one leading batch axis; for "unroll" `Unrolls`, whose advantages and
        targets are computed here with the current critic (algorithms/advantages.py).
        `key`: the entropy sample of a policy that samples it (brax_tanh; else unused)."""
        cfg = self.config
        terms = self.advantages.terms(params, minibatch, hp)
        log_prob, entropy = self.policy.evaluate(params["actor"], terms.obs, terms.raw_action, key)
        log_ratio = log_prob - terms.old_log_prob
        ratio = jnp.exp(log_ratio)
        adv = terms.advantage
        if cfg.normalize_advantages:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        drift = self.drift.fn(drift_params, ratio, log_ratio, adv, progress)
        objective = jnp.mean(ratio * adv - drift)
        value_loss = jnp.square(terms.value - terms.target)
        if cfg.clip_value_loss:  # only with rollout advantages (TrainConfig.validate)
            old = terms.old_value
            clipped = old + jnp.clip(terms.value - old, -hp.vf_clip, hp.vf_clip)
            value_loss = jnp.maximum(value_loss, jnp.square(clipped - terms.target))
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
            **terms.metrics,
        }

    def run(self, state: RunnerState, drift_params: Any, hparams: Hyperparams | None,
            num_updates: int) -> tuple[RunnerState, dict[str, jax.Array]]:
        """`num_updates` updates in one scan; metrics stacked along axis 0."""
        return jax.lax.scan(lambda s, _: self.update(s, drift_params, hparams), state, None,
                            num_updates)

    def result(self, state: RunnerState, metrics: dict[str, jax.Array]) -> TrainResult:
        stats = state.obs_stats if self.per_update_norm else find_obs_stats(state.env_state)
        return TrainResult(metrics, state.params, stats)

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
