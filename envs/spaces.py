"""Action and observation space descriptions shared by every backend."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp


@dataclass(frozen=True)
class Discrete:
    """`n` actions, encoded as int32 scalars in [0, n)."""

    n: int

    @property
    def shape(self) -> tuple[int, ...]:
        return ()

    def sample(self, key: jax.Array) -> jax.Array:
        return jax.random.randint(key, (), 0, self.n, dtype=jnp.int32)


@dataclass(frozen=True)
class Box:
    """Real vectors of `shape` with elementwise bounds `low` <= x <= `high`."""

    low: tuple[float, ...]
    high: tuple[float, ...]
    shape: tuple[int, ...]

    @classmethod
    def uniform(cls, low: float, high: float, shape: tuple[int, ...]) -> Box:
        size = 1
        for dim in shape:
            size *= dim
        return cls((float(low),) * size, (float(high),) * size, tuple(shape))

    @property
    def low_array(self) -> jax.Array:
        return jnp.asarray(self.low, jnp.float32).reshape(self.shape)

    @property
    def high_array(self) -> jax.Array:
        return jnp.asarray(self.high, jnp.float32).reshape(self.shape)

    def sample(self, key: jax.Array) -> jax.Array:
        return jax.random.uniform(
            key, self.shape, minval=self.low_array, maxval=self.high_array
        )


Space = Discrete | Box
