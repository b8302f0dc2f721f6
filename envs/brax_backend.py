"""Brax environments behind the driftlab contract.

Brax's own training wrappers merge termination and time limits into one
`done` flag; this adapter keeps them apart and auto-resets itself.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from driftlab.envs.base import Environment, StepResult
from driftlab.envs.spaces import Box

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
# Envs whose Brax implementation supports only some backends.
ONLY_BACKENDS: dict[str, tuple[str, ...]] = {"swimmer": ("generalized",)}
DEFAULT_BACKEND = "spring"  # the fastest on CPU


@struct.dataclass
class BraxState:
    pipeline: Any  # brax.envs.State of the running episode
    first: Any  # brax.envs.State the episode restarts from
    time: jax.Array  # steps taken in the running episode


def _patch_brax_fluid() -> None:
    """brax 0.14.2's fluid model (used by swimmer) calls `jnp.clip(x, a_min=...)`,
    a keyword jax 0.10 removed. Give that one module a `clip` that accepts it."""
    import types

    import brax.fluid

    if getattr(brax.fluid.jp, "_driftlab_compat", False):
        return

    def clip(x, min=None, max=None, *, a_min=None, a_max=None):  # noqa: A002 - jnp's names
        return jnp.clip(x, a_min if min is None else min, a_max if max is None else max)

    brax.fluid.jp = types.SimpleNamespace(**{**vars(jnp), "clip": clip, "_driftlab_compat": True})


class BraxEnv(Environment):
    """A Brax environment with a time limit of `episode_length` steps.

    On episode end the environment restarts from the state drawn at `reset`
    (as Brax's own training wrapper does): re-running the physics reset at
    every step would double the cost of stepping on CPU.
    """

    def __init__(
        self,
        name: str,
        backend: str | None = None,
        episode_length: int | None = None,
        action_repeat: int = 1,
        **env_kwargs: Any,
    ):
        # Importing brax pulls in mujoco's MJX, which prints "Failed to import warp"
        # (a GPU extra) to stdout, and brax warns it is unmaintained on every build.
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            from brax import envs as brax_envs

            _patch_brax_fluid()

        supported = ONLY_BACKENDS.get(name, BRAX_BACKENDS)
        backend = backend or (DEFAULT_BACKEND if DEFAULT_BACKEND in supported else supported[0])
        if backend not in supported:
            raise ValueError(
                f"Brax backend {backend!r} is not available for brax/{name}; "
                f"choose one of {', '.join(supported)}"
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
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
