"""A straightforward single-file PPO on a gymnax env: the yardstick for the trainer's speed.

Deliberately independent of driftlab (gymnax, flax, optax only), written the way
a one-file PPO usually is: an actor-critic module evaluated inside the rollout,
GAE, then epochs of shuffled minibatch updates of the clipped surrogate, with
episode-return logging. `benchmarks/throughput.py` times it against driftlab's
trainer on the same settings, in the same process, so their ratio is robust to
a noisy machine.

    python benchmarks/reference_ppo.py gymnax/CartPole-v1 --timesteps 500000
    python benchmarks/reference_ppo.py gymnax/Breakout-MinAtar --timesteps 1e6 --num-envs 64
"""

from __future__ import annotations

import argparse
from typing import NamedTuple

import flax.linen as nn
import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import optax


class ActorCritic(nn.Module):
    """Categorical actor and value critic, separate MLPs (64x64 tanh by default)."""

    num_actions: int
    hidden: int = 64

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        # Scaled Gaussian init, not orthogonal: the speed is the same, and a vmapped QR
        # stalls XLA's CPU runtime on 2-core machines (see algorithms/networks.py).
        def init(gain):
            return nn.initializers.variance_scaling(gain ** 2, "fan_in", "normal")

        x = obs
        for _ in range(2):
            x = nn.tanh(nn.Dense(self.hidden, kernel_init=init(np.sqrt(2)))(x))
        logits = nn.Dense(self.num_actions, kernel_init=init(0.01))(x)
        v = obs
        for _ in range(2):
            v = nn.tanh(nn.Dense(self.hidden, kernel_init=init(np.sqrt(2)))(v))
        value = nn.Dense(1, kernel_init=init(1.0))(v)[..., 0]
        return logits, value


class Step(NamedTuple):
    obs: jax.Array
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    reward: jax.Array
    done: jax.Array
    episode_return: jax.Array  # return of episodes that ended at this step, else 0
    episode_done: jax.Array


def make_train(env_name: str, num_envs: int = 4, num_steps: int = 128, total_timesteps: int = 500_000,
               update_epochs: int = 4, num_minibatches: int = 4, lr: float = 2.5e-4, gamma: float = 0.99,
               gae_lambda: float = 0.95, clip_eps: float = 0.2, ent_coef: float = 0.01,
               vf_coef: float = 0.5, max_grad_norm: float = 0.5):
    """`train(key) -> per-update mean episodic return`, (num_updates,)."""
    env, env_params = gymnax.make(env_name)
    num_updates = total_timesteps // (num_envs * num_steps)
    batch_size = num_envs * num_steps
    minibatch_size = batch_size // num_minibatches
    network = ActorCritic(env.action_space(env_params).n)
    obs_dim = int(np.prod(env.observation_space(env_params).shape))

    def schedule(count):
        return lr * (1.0 - (count // (num_minibatches * update_epochs)) / num_updates)

    tx = optax.chain(optax.clip_by_global_norm(max_grad_norm), optax.adam(schedule, eps=1e-5))

    def train(key: jax.Array) -> jax.Array:
        key, k_net, k_env = jax.random.split(key, 3)
        params = network.init(k_net, jnp.zeros(obs_dim))
        opt_state = tx.init(params)
        obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k_env, num_envs),
                                                                env_params)
        obs = obs.reshape(num_envs, obs_dim)  # MinAtar observations are images
        running_return = jnp.zeros(num_envs)

        def rollout_step(carry, _):
            params, env_state, obs, running_return, key = carry
            key, k_act, k_step = jax.random.split(key, 3)
            logits, value = network.apply(params, obs)
            action = jax.random.categorical(k_act, logits)
            log_prob = jnp.take_along_axis(jax.nn.log_softmax(logits), action[:, None], -1)[:, 0]
            next_obs, env_state, reward, terminated, truncated, _ = jax.vmap(
                env.step, in_axes=(0, 0, 0, None))(jax.random.split(k_step, num_envs), env_state,
                                                   action, env_params)
            done = jnp.logical_or(terminated, truncated).astype(jnp.float32)
            next_obs = next_obs.reshape(num_envs, obs_dim)
            running_return = running_return + reward
            step = Step(obs, action, log_prob, value, reward, done, running_return * done, done)
            running_return = running_return * (1.0 - done)
            return (params, env_state, next_obs, running_return, key), step

        def loss_fn(params, obs, action, old_log_prob, advantage, target, old_value):
            logits, value = network.apply(params, obs)
            log_probs = jax.nn.log_softmax(logits)
            log_prob = jnp.take_along_axis(log_probs, action[:, None], -1)[:, 0]
            entropy = -jnp.sum(jnp.exp(log_probs) * log_probs, -1).mean()
            value_clipped = old_value + jnp.clip(value - old_value, -clip_eps, clip_eps)
            value_loss = 0.5 * jnp.maximum(jnp.square(value - target),
                                           jnp.square(value_clipped - target)).mean()
            ratio = jnp.exp(log_prob - old_log_prob)
            advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
            surrogate = jnp.minimum(ratio * advantage,
                                    jnp.clip(ratio, 1 - clip_eps, 1 + clip_eps) * advantage)
            return -surrogate.mean() + vf_coef * value_loss - ent_coef * entropy

        def update(carry, _):
            params, opt_state, env_state, obs, running_return, key = carry
            (params, env_state, obs, running_return, key), traj = jax.lax.scan(
                rollout_step, (params, env_state, obs, running_return, key), None, num_steps)
            _, last_value = network.apply(params, obs)

            def gae_step(carry, step):
                advantage, next_value = carry
                not_done = 1.0 - step.done
                delta = step.reward + gamma * next_value * not_done - step.value
                advantage = delta + gamma * gae_lambda * not_done * advantage
                return (advantage, step.value), advantage

            _, advantages = jax.lax.scan(gae_step, (jnp.zeros_like(last_value), last_value), traj,
                                         reverse=True)
            targets = advantages + traj.value
            batch = (traj.obs, traj.action, traj.log_prob, advantages, targets, traj.value)
            batch = jax.tree.map(lambda x: x.reshape((batch_size,) + x.shape[2:]), batch)

            def epoch(carry, _):
                params, opt_state, key = carry
                key, k_perm = jax.random.split(key)
                perm = jax.random.permutation(k_perm, batch_size)
                minibatches = jax.tree.map(
                    lambda x: x[perm].reshape((num_minibatches, minibatch_size) + x.shape[1:]), batch)

                def minibatch_step(carry, mb):
                    params, opt_state = carry
                    grads = jax.grad(loss_fn)(params, *mb)
                    updates, opt_state = tx.update(grads, opt_state, params)
                    return (optax.apply_updates(params, updates), opt_state), None

                (params, opt_state), _ = jax.lax.scan(minibatch_step, (params, opt_state), minibatches)
                return (params, opt_state, key), None

            (params, opt_state, key), _ = jax.lax.scan(epoch, (params, opt_state, key), None,
                                                       update_epochs)
            finished = traj.episode_done.sum()
            mean_return = traj.episode_return.sum() / jnp.maximum(finished, 1)
            return (params, opt_state, env_state, obs, running_return, key), mean_return

        carry = (params, opt_state, env_state, obs, running_return, key)
        _, returns = jax.lax.scan(update, carry, None, num_updates)
        return returns

    return train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("env", help="a gymnax id, e.g. gymnax/CartPole-v1")
    parser.add_argument("--timesteps", type=float, default=500_000)
    parser.add_argument("--num-envs", type=int, default=4)
    parser.add_argument("--num-steps", type=int, default=128)
    parser.add_argument("--update-epochs", type=int, default=4)
    parser.add_argument("--num-minibatches", type=int, default=4)
    parser.add_argument("--lr", type=float, default=2.5e-4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    train = jax.jit(make_train(args.env.removeprefix("gymnax/"), num_envs=args.num_envs,
                               num_steps=args.num_steps, total_timesteps=int(args.timesteps),
                               update_epochs=args.update_epochs,
                               num_minibatches=args.num_minibatches, lr=args.lr))
    returns = np.asarray(train(jax.random.key(args.seed)))
    tail = returns[-max(1, len(returns) // 10):]
    print(f"{args.env}: mean return over the last 10% of updates {np.nanmean(tail):.1f}")


if __name__ == "__main__":
    main()
