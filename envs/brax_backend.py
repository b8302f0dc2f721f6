"""Brax environments behind the driftlab contract.

Brax's own training wrappers merge termination and time limits into one
`done` flag; this adapter keeps them apart and auto-resets itself.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from envs.base import Environment, StepResult
from envs.spaces import Box

BRAX_NAMES: tuple[str, ...] = (
    "ant",
    "halfcheetah",
    "hopper",
    "humanoid",
    "humanoidstandup",
    "inverted_pendulum",
    "inverted_double_pendulum",
    "pusher",
    "reacher",
    "swimmer",
    "walker2d",
)
BRAX_BACKENDS: tuple[str, ...] = ("spring", "positional", "generalized", "mjx")


@struct.dataclass
class BraxState:
    pipeline: Any  # brax.envs.State of the running episode
    first: Any  # brax.envs.State the episode restarts from
    time: jax.Array  # steps taken in the running episode


class BraxEnv(Environment):
    """A Brax environment with a time limit of `episode_length` steps.

    On episode end the environment restarts from the state drawn at `reset`
    (as Brax's own training wrapper does): re-running the physics reset at
    every step would double the cost of stepping on CPU.
    """

    def __init__(
        self,
        name: str,
        backend: str = "spring",
        episode_length: int | None = None,
        action_repeat: int = 1,
        **env_kwargs: Any,
    ):
        from brax import envs as brax_envs

        if backend not in BRAX_BACKENDS:
            raise ValueError(
                f"unknown Brax backend {backend!r}; choose one of {', '.join(BRAX_BACKENDS)}"
            )
        self._env = brax_envs.get_environment(name, backend=backend, **env_kwargs)
        self.env_id = f"brax/{name}"
        self.backend = backend
        self.action_repeat = int(action_repeat)
        self.max_episode_steps = int(episode_length or 1000)
        self.action_space = Box.uniform(-1.0, 1.0, (int(self._env.action_size),))
        obs_size = self._env.observation_size
        self.observation_shape = (int(obs_size),)

    def reset(self, key: jax.Array) -> tuple[jax.Array, BraxState]:
        first = self._env.reset(key)
        state = BraxState(first, first, jnp.zeros((), jnp.int32))
        return first.obs, state

    def step(self, key: jax.Array, state: BraxState, action: jax.Array) -> StepResult:
        del key  # Brax dynamics are deterministic.

        def physics_step(pipeline: Any, _: Any) -> tuple[Any, jax.Array]:
            nxt = self._env.step(pipeline, action)
            return nxt, nxt.reward

        pipeline, rewards = jax.lax.scan(
            physics_step, state.pipeline, None, length=self.action_repeat
        )
        time = state.time + 1
        terminated = pipeline.done > 0.5
        truncated = jnp.logical_and(time >= self.max_episode_steps, ~terminated)
        done = terminated | truncated
        next_state = jax.tree.map(
            lambda first, cur: jnp.where(done, first, cur), state.first, pipeline
        )
        next_state = next_state.replace(done=jnp.zeros_like(pipeline.done))
        info = {"final_obs": pipeline.obs}
        new_state = BraxState(next_state, state.first, jnp.where(done, 0, time))
        return next_state.obs, new_state, rewards.sum(), terminated, truncated, info
