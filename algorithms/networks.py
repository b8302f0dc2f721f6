"""Actor and critic MLPs and the policies (action distributions) over them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from envs.spaces import Box, Discrete, Space

ACTIVATIONS = {"tanh": nn.tanh, "relu": nn.relu, "swish": nn.swish, "elu": nn.elu}
LOG_2PI = float(np.log(2 * np.pi))
LOG_2 = float(np.log(2.0))


def orthogonal(scale: float = 1.0, iterations: int = 40):
    """Orthogonal initialiser without LAPACK: the polar factor of a Gaussian
    matrix (Haar-distributed, like the QR-based one), by Newton-Schulz
    iterations, i.e. matmuls only.

    Why not `nn.initializers.orthogonal`: its batched QR (under `vmap` over
    seeds) deadlocks XLA's CPU runtime on 2-core machines with jax 0.10."""

    def init(key: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> jax.Array:
        n_in, n_out = shape
        transpose = n_in < n_out  # iterate on the tall orientation: X^T X is the small side
        rows, cols = (n_out, n_in) if transpose else (n_in, n_out)
        x = jax.random.normal(key, (rows, cols), jnp.float32)
        x = x / jnp.linalg.norm(x)  # all singular values in (0, 1]: the iteration converges

        def newton_schulz(x, _):
            return 1.5 * x - 0.5 * x @ (x.T @ x), None

        x, _ = jax.lax.scan(newton_schulz, x, None, iterations)
        return (scale * (x.T if transpose else x)).astype(dtype)

    return init


class MLP(nn.Module):
    """Hidden layers (orthogonal init, gain sqrt 2) then a linear head of
    `out_dim` units with init gain `out_scale`. Input (..., obs_dim)."""

    hidden: Sequence[int]
    out_dim: int
    activation: str = "tanh"
    out_scale: float = 1.0

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        act = ACTIVATIONS[self.activation]
        for width in self.hidden:
            x = act(nn.Dense(width, kernel_init=orthogonal(np.sqrt(2)))(x))
        return nn.Dense(self.out_dim, kernel_init=orthogonal(self.out_scale))(x)


class GaussianActor(nn.Module):
    """Mean from an MLP plus a learned, state-independent log std."""

    hidden: Sequence[int]
    action_dim: int
    activation: str = "tanh"

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        mean = MLP(self.hidden, self.action_dim, self.activation, 0.01)(x)
        log_std = self.param("log_std", nn.initializers.zeros, (self.action_dim,))
        return mean, jnp.broadcast_to(log_std, mean.shape)


@dataclass(frozen=True)
class Policy:
    """A stochastic policy over an action space.

    The rollout stores the policy's *raw* sample (for a tanh-squashed Gaussian
    the pre-squash value), so log-probabilities are recomputed exactly;
    `to_env_action` maps it to what the environment receives.
    `kind`: "categorical", "gaussian" (env clips) or "tanh_gaussian".
    """

    kind: str
    network: nn.Module
    space: Space

    def init(self, key: jax.Array, obs_dim: int) -> Any:
        return self.network.init(key, jnp.zeros((obs_dim,)))

    def sample(self, params: Any, key: jax.Array, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Raw actions and their log-probabilities for a batch of observations."""
        out = self.network.apply(params, obs)
        if self.kind == "categorical":
            raw = jax.random.categorical(key, out)
        else:
            mean, log_std = out
            raw = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)
        return raw, self._log_prob(out, raw)

    def evaluate(self, params: Any, obs: jax.Array, raw: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(log pi(raw | obs), entropy) per observation.

        For the tanh-squashed Gaussian the entropy is that of the Gaussian
        before squashing (the squashed one has no closed form)."""
        out = self.network.apply(params, obs)
        if self.kind == "categorical":
            logp_all = jax.nn.log_softmax(out)
            entropy = -jnp.sum(jnp.exp(logp_all) * logp_all, -1)
        else:
            entropy = jnp.sum(out[1] + 0.5 * (1.0 + LOG_2PI), -1)
        return self._log_prob(out, raw), entropy

    def _log_prob(self, out: Any, raw: jax.Array) -> jax.Array:
        if self.kind == "categorical":
            logp_all = jax.nn.log_softmax(out)
            return jnp.take_along_axis(logp_all, raw[..., None], -1)[..., 0]
        mean, log_std = out
        z = (raw - mean) * jnp.exp(-log_std)
        logp = jnp.sum(-0.5 * jnp.square(z) - log_std - 0.5 * LOG_2PI, -1)
        if self.kind == "tanh_gaussian":
            # Change of variables a = tanh(u): subtract log|da/du|, computed stably.
            logp = logp - jnp.sum(2.0 * (LOG_2 - raw - jax.nn.softplus(-2.0 * raw)), -1)
        return logp

    def to_env_action(self, raw: jax.Array) -> jax.Array:
        if self.kind == "tanh_gaussian":
            low, high = self.space.low_array, self.space.high_array
            return low + (jnp.tanh(raw) + 1.0) * 0.5 * (high - low)
        return raw


def make_policy(space: Space, hidden: Sequence[int], activation: str, continuous: str) -> Policy:
    """Categorical policy for a `Discrete` space; for a `Box`, a Gaussian whose
    actions are clipped by the env (`continuous="clip"`) or tanh-squashed into
    the bounds (`continuous="tanh"`)."""
    if isinstance(space, Discrete):
        return Policy("categorical", MLP(tuple(hidden), space.n, activation, 0.01), space)
    if isinstance(space, Box):
        if len(space.shape) != 1:
            raise ValueError(f"continuous actions must be vectors, got shape {space.shape}")
        kind = {"clip": "gaussian", "tanh": "tanh_gaussian"}[continuous]
        return Policy(kind, GaussianActor(tuple(hidden), space.shape[0], activation), space)
    raise TypeError(f"unsupported action space {space!r}")


def make_critic(hidden: Sequence[int], activation: str) -> nn.Module:
    """State-value MLP with one output (squeezed by the caller)."""
    return MLP(tuple(hidden), 1, activation, 1.0)
