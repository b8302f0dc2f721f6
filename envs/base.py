"""The environment contract every backend and wrapper implements.

`reset(key) -> (obs, state)` and
`step(key, state, action) -> (obs, state, reward, terminated, truncated, info)`
are pure functions. Environments reset themselves: after a step that ends an
episode, `obs` is the first observation of the next episode and
`info["final_obs"]` the observation the episode ended on (used to bootstrap
the value of a truncated episode). `terminated` means a true terminal state
(value 0); `truncated` means the time limit of `max_episode_steps` cut the
episode short, so an env's truncations come at least that many steps apart
(the trainer sizes its buffer of truncation observations on this).
"""

from __future__ import annotations

from typing import Any

import jax

from driftlab.envs.spaces import Space

StepResult = tuple[jax.Array, Any, jax.Array, jax.Array, jax.Array, dict[str, Any]]


class Environment:
    """Base class: subclasses set `env_id`, `action_space`, `observation_shape`."""

    env_id: str
    action_space: Space
    observation_shape: tuple[int, ...]
    max_episode_steps: int

    def reset(self, key: jax.Array) -> tuple[jax.Array, Any]:
        raise NotImplementedError

    def step(self, key: jax.Array, state: Any, action: jax.Array) -> StepResult:
        raise NotImplementedError

    @property
    def is_discrete(self) -> bool:
        from driftlab.envs.spaces import Discrete

        return isinstance(self.action_space, Discrete)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.env_id} action_space={self.action_space}>"


class Wrapper(Environment):
    """Delegates everything it does not override to the wrapped environment."""

    def __init__(self, env: Environment):
        self.env = env

    def __getattr__(self, name: str) -> Any:
        # Only reached for attributes not found on the wrapper itself.
        return getattr(self.env, name)

    def reset(self, key: jax.Array) -> tuple[jax.Array, Any]:
        return self.env.reset(key)

    def step(self, key: jax.Array, state: Any, action: jax.Array) -> StepResult:
        return self.env.step(key, state, action)

    @property
    def unwrapped(self) -> Environment:
        env = self.env
        while isinstance(env, Wrapper):
            env = env.env
        return env

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.env!r})"
