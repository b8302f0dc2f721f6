"""Actor and critic MLPs and the policies (action distributions) over them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from driftlab.envs.spaces import Box, Discrete, Space

ACTIVATIONS = {"tanh": nn.tanh, "relu": nn.relu, "swish": nn.swish, "elu": nn.elu}
LOG_2PI = float(np.log(2 * np.pi))
LOG_2 = float(np.log(2.0))
BRAX_MIN_STD = 0.001  # brax.training.distribution.NormalTanhDistribution(min_std=0.001)


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
    """Hidden layers then a linear head of `out_dim` units. Input (..., obs_dim).

    `scheme="orthogonal"`: hidden kernels orthogonal with gain sqrt 2, the head's
    with gain `out_scale` (purejaxrl/CleanRL). `scheme="lecun_uniform"`: every
    kernel lecun-uniform, `out_scale` unused (Brax's `networks.MLP`). Biases
    start at zero either way."""

    hidden: Sequence[int]
    out_dim: int
    activation: str = "tanh"
    out_scale: float = 1.0
    scheme: str = "orthogonal"  # kernel init (`init` is flax's Module.init)

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        act = ACTIVATIONS[self.activation]
        if self.scheme == "lecun_uniform":
            lecun = nn.initializers.lecun_uniform()
            for width in self.hidden:
                x = act(nn.Dense(width, kernel_init=lecun)(x))
            return nn.Dense(self.out_dim, kernel_init=lecun)(x)
        for width in self.hidden:
            x = act(nn.Dense(width, kernel_init=orthogonal(np.sqrt(2)))(x))
        return nn.Dense(self.out_dim, kernel_init=orthogonal(self.out_scale))(x)


class GaussianActor(nn.Module):
    """Mean from an MLP plus a learned, state-independent log std."""

    hidden: Sequence[int]
    action_dim: int
    activation: str = "tanh"
    scheme: str = "orthogonal"

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        mean = MLP(self.hidden, self.action_dim, self.activation, 0.01, self.scheme)(x)
        log_std = self.param("log_std", nn.initializers.zeros, (self.action_dim,))
        return mean, jnp.broadcast_to(log_std, mean.shape)


def _tanh_log_det(x: jax.Array) -> jax.Array:
    """log|d tanh(x)/dx|, elementwise, as Brax's TanhBijector computes it."""
    return 2.0 * (jnp.log(2.0) - x - jax.nn.softplus(-2.0 * x))


@dataclass(frozen=True)
class Policy:
    """A stochastic policy over an action space.

    The rollout stores the policy's *raw* sample (for a tanh-squashed Gaussian
    the pre-squash value), so log-probabilities are recomputed exactly;
    `to_env_action` maps it to what the environment receives.
    `kind`: "categorical", "gaussian" (env clips), "tanh_gaussian" (state-
    independent log std) or "brax_tanh" (Brax's `NormalTanhDistribution`: the
    network's outputs are [loc, s], std = softplus(s) + BRAX_MIN_STD, and the
    entropy is estimated from a sample, tanh log-det included).
    `obs_clip`: observations are clipped to +-obs_clip before the network
    (Brax's normaliser clips at 5); None leaves them as they are.
    """

    kind: str
    network: nn.Module
    space: Space
    obs_clip: float | None = None

    def init(self, key: jax.Array, obs_dim: int) -> Any:
        return self.network.init(key, jnp.zeros((obs_dim,)))

    @property
    def samples_entropy(self) -> bool:
        """Whether `evaluate` estimates the entropy from a sample, so needs a key
        (brax_tanh: the tanh-squashed Gaussian's entropy has no closed form)."""
        return self.kind == "brax_tanh"

    def _apply(self, params: Any, obs: jax.Array) -> Any:
        if self.obs_clip is not None:
            obs = jnp.clip(obs, -self.obs_clip, self.obs_clip)
        out = self.network.apply(params, obs)
        if self.kind == "brax_tanh":
            loc, scale = jnp.split(out, 2, axis=-1)
            return loc, jax.nn.softplus(scale) + BRAX_MIN_STD
        return out

    def sample(self, params: Any, key: jax.Array, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Raw actions and their log-probabilities for a batch of observations."""
        out = self._apply(params, obs)
        if self.kind == "categorical":
            raw = jax.random.categorical(key, out)
        elif self.kind == "brax_tanh":
            loc, scale = out
            raw = jax.random.normal(key, shape=loc.shape) * scale + loc
        else:
            mean, log_std = out
            raw = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)
        return raw, self._log_prob(out, raw)

    def evaluate(self, params: Any, obs: jax.Array, raw: jax.Array,
                 key: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
        """(log pi(raw | obs), entropy) per observation.

        For "tanh_gaussian" the entropy is that of the Gaussian before squashing
        (the squashed one has no closed form). For "brax_tanh" it is Brax's
        estimate: the Gaussian's entropy plus log|d tanh(u)/du| at one sample u
        drawn with `key` (reparametrised, so its gradient reaches loc and std),
        which charges the policy for widening its std into tanh saturation."""
        out = self._apply(params, obs)
        if self.kind == "categorical":
            logp_all = jax.nn.log_softmax(out)
            entropy = -jnp.sum(jnp.exp(logp_all) * logp_all, -1)
        elif self.kind == "brax_tanh":
            if key is None:
                raise ValueError("the brax_tanh policy estimates its entropy from a sample: pass key")
            loc, scale = out
            # Brax's op order (distribution.py), so the parity test matches to rounding.
            entropy = 0.5 + (0.5 * jnp.log(2.0 * jnp.pi) + jnp.log(scale))
            sample = jax.random.normal(key, shape=loc.shape) * scale + loc
            entropy = jnp.sum(entropy + _tanh_log_det(sample), -1)
        else:
            entropy = jnp.sum(out[1] + 0.5 * (1.0 + LOG_2PI), -1)
        return self._log_prob(out, raw), entropy

    def _log_prob(self, out: Any, raw: jax.Array) -> jax.Array:
        if self.kind == "brax_tanh":
            loc, scale = out
            log_unnormalized = -0.5 * jnp.square(raw / scale - loc / scale)
            log_normalization = 0.5 * jnp.log(2.0 * jnp.pi) + jnp.log(scale)
            return jnp.sum(log_unnormalized - log_normalization - _tanh_log_det(raw), -1)
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
        if self.kind in ("tanh_gaussian", "brax_tanh"):
            low, high = self.space.low_array, self.space.high_array
            return low + (jnp.tanh(raw) + 1.0) * 0.5 * (high - low)
        return raw


def make_policy(space: Space, hidden: Sequence[int], activation: str, continuous: str,
                init: str = "orthogonal", obs_clip: float | None = None) -> Policy:
    """Categorical policy for a `Discrete` space; for a `Box`, a Gaussian whose
    actions are clipped by the env (`continuous="clip"`) or tanh-squashed into
    the bounds (`continuous="tanh"`), both with a state-independent log std, or
    Brax's tanh-squashed Gaussian with a state-dependent std
    (`continuous="brax_tanh"`: one MLP with 2 x action_dim outputs)."""
    if isinstance(space, Discrete):
        return Policy("categorical", MLP(tuple(hidden), space.n, activation, 0.01, init), space,
                      obs_clip)
    if isinstance(space, Box):
        if len(space.shape) != 1:
            raise ValueError(f"continuous actions must be vectors, got shape {space.shape}")
        if continuous == "brax_tanh":
            net = MLP(tuple(hidden), 2 * space.shape[0], activation, 0.01, init)
            return Policy("brax_tanh", net, space, obs_clip)
        kind = {"clip": "gaussian", "tanh": "tanh_gaussian"}[continuous]
        return Policy(kind, GaussianActor(tuple(hidden), space.shape[0], activation, init), space,
                      obs_clip)
    raise TypeError(f"unsupported action space {space!r}")


def make_critic(hidden: Sequence[int], activation: str, init: str = "orthogonal") -> nn.Module:
    """State-value MLP with one output (squeezed by the caller)."""
    return MLP(tuple(hidden), 1, activation, 1.0, init)
