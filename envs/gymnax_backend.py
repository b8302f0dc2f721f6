"""gymnax environments behind the driftlab contract."""

from __future__ import annotations

import contextlib
import importlib
import sys
import types
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from driftlab.envs.base import Environment, StepResult
from driftlab.envs.spaces import Box, Discrete, Space


@contextlib.contextmanager
def _deferred_import(name: str):
    """While the block runs, `import NAME` binds a stand-in that imports the real
    module on first attribute use. gymnax imports seaborn (and with it scipy.stats
    and pandas, ~1 s) only to render Pong; training never touches it."""
    if name in sys.modules:
        yield
        return
    stub = types.ModuleType(name)

    def load(attr: str) -> Any:
        if sys.modules.get(name) is stub:
            del sys.modules[name]
        return getattr(importlib.import_module(name), attr)

    stub.__getattr__ = load
    sys.modules[name] = stub
    try:
        yield
    finally:
        if sys.modules.get(name) is stub:
            del sys.modules[name]


with _deferred_import("seaborn"):
    import gymnax
from gymnax.environments import spaces as gymnax_spaces  # noqa: E402

GYMNAX_IDS: tuple[str, ...] = tuple(gymnax.registered_envs)


class EnvironmentUnavailableError(ValueError):
    """A registered environment that cannot be built on this machine."""


def _convert_space(space: Any) -> Space:
    if isinstance(space, gymnax_spaces.Discrete):
        return Discrete(int(space.n))
    if isinstance(space, gymnax_spaces.Box):
        shape = tuple(int(d) for d in space.shape) if space.shape else ()
        low = np.broadcast_to(np.asarray(space.low, np.float32), shape).ravel()
        high = np.broadcast_to(np.asarray(space.high, np.float32), shape).ravel()
        return Box(tuple(map(float, low)), tuple(map(float, high)), shape)
    raise TypeError(f"unsupported gymnax action space {space!r}")


class GymnaxEnv(Environment):
    """A gymnax environment with its parameters fixed at construction.

    gymnax 1.x already auto-resets, separates terminated from truncated and
    returns the pre-reset observation as `info["final_observation"]`.
    """

    def __init__(self, name: str, episode_length: int | None = None, **env_kwargs: Any):
        try:
            self._env, params = gymnax.make(name, **env_kwargs)
        except OSError as err:  # MNISTBandit downloads MNIST when built (URLError is an OSError)
            raise EnvironmentUnavailableError(
                f"gymnax/{name} could not load its data set ({err}); build it once on a "
                "machine with network access so the download is cached") from None
        if episode_length is not None:
            # Keep the field's own type: some envs (the bandits) declare it a float.
            limit = type(params.max_steps_in_episode)(int(episode_length))
            params = params.replace(max_steps_in_episode=limit)
        self._params = params
        self.env_id = f"gymnax/{name}"
        self.action_space = _convert_space(self._env.action_space(params))
        obs_shape = self._env.observation_space(params).shape
        self.observation_shape = tuple(int(d) for d in obs_shape)
        self.max_episode_steps = int(params.max_steps_in_episode)

    def reset(self, key: jax.Array) -> tuple[jax.Array, Any]:
        obs, state = self._env.reset(key, self._params)
        return jnp.asarray(obs, jnp.float32), state

    def step(self, key: jax.Array, state: Any, action: jax.Array) -> StepResult:
        obs, state, reward, terminated, truncated, info = self._env.step(
            key, state, action, self._params
        )
        info = {"final_obs": jnp.asarray(info["final_observation"], jnp.float32)}
        return (
            jnp.asarray(obs, jnp.float32),
            state,
            jnp.asarray(reward, jnp.float32),
            jnp.asarray(terminated, bool),
            jnp.logical_and(truncated, jnp.logical_not(terminated)),
            info,
        )
