"""Training configuration: structural settings (static) and hyperparameters
(pytree leaves, so a sweep over them is a `vmap`)."""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from flax import struct


class ConfigError(ValueError):
    """A configuration value that cannot work; the message names the fix."""


@struct.dataclass
class Hyperparams:
    """Numeric hyperparameters; every field is a leaf (scalar or batched array)."""

    learning_rate: Any = 2.5e-4
    gamma: Any = 0.99
    gae_lambda: Any = 0.95
    ent_coef: Any = 0.01
    vf_coef: Any = 0.5
    vf_clip: Any = 0.2  # used when clip_value_loss is on
    max_grad_norm: Any = 0.5
    reward_scale: Any = 1.0


HYPERPARAM_NAMES = tuple(f.name for f in dataclasses.fields(Hyperparams))


@dataclass(frozen=True)
class TrainConfig:
    """Everything `make_train` needs besides the env and the drift.

    Sizes: each update collects `num_envs * num_steps` transitions and runs
    `update_epochs` passes over them in `num_minibatches` minibatches.
    """

    total_timesteps: int = 500_000
    num_envs: int = 4
    num_steps: int = 128
    update_epochs: int = 4
    num_minibatches: int = 4
    actor_hidden: tuple[int, ...] = (64, 64)
    critic_hidden: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    # "clip": Gaussian clipped by the env; "tanh": squashed (both a state-independent log
    # std); "brax_tanh": Brax's squashed Gaussian, std = softplus(net) + 0.001 per state
    continuous: str = "clip"
    anneal_lr: bool = True
    normalize_advantages: bool = True
    normalize_obs: bool = False
    normalize_reward: bool = False
    clip_value_loss: bool = True
    adam_eps: float = 1e-5
    # Adam's moment decays. The defaults are optax's, so presets that do not set them
    # train exactly as before; Goldie et al.'s MinAtar PPO (learn-rl-algorithms,
    # algorithms/utils/configs.py, B1/B2) sets b2 = 0.99 for most games.
    adam_b1: float = 0.9
    adam_b2: float = 0.999
    # Brax's PPO (brax.training.agents.ppo; the LPO/DPO paper's dpo/brax_drift.py). The
    # defaults are the purejaxrl-style loop; configs/train/brax.yaml sets the Brax ones.
    # "rollout": one GAE over each env's whole rollout, once per update, truncations
    # bootstrapped from the pre-reset observation. "unroll": the rollout is cut into
    # unrolls of `unroll_length` steps and GAE / value targets are recomputed inside every
    # minibatch with the current critic, bootstrapped at each unroll's end, a truncated
    # step masked out (Brax's compute_gae).
    advantages: str = "rollout"
    unroll_length: int = 5  # used when advantages == "unroll"
    init: str = "orthogonal"  # network kernels: "orthogonal" or "lecun_uniform" (Brax)
    obs_clip: float | None = None  # clip network inputs to +-obs_clip (Brax: 5)
    # "floor": total_timesteps // (num_envs * num_steps) updates. "brax": as Brax counts
    # (ppo/train.py), ceil(total_timesteps / (num_envs * num_steps * action_repeat)).
    budget: str = "floor"
    env_options: dict = field(default_factory=dict)  # passed to envs.make
    hyperparams: Hyperparams = field(default_factory=Hyperparams)

    # ---- derived sizes ----
    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def minibatch_size(self) -> int:
        return self.batch_size // self.num_minibatches

    @property
    def num_updates(self) -> int:
        if self.budget == "brax":
            steps = self.batch_size * int(self.env_options.get("action_repeat", 1))
            return -(-self.total_timesteps // steps)
        return self.total_timesteps // self.batch_size

    # ---- construction ----
    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build from a flat dict (YAML preset plus overrides); hyperparameters
        may be given flat or under `hyperparams:`. Unknown keys are errors."""
        values = dict(values)
        hp = dict(values.pop("hyperparams", None) or {})
        struct_names = {f.name for f in dataclasses.fields(cls)} - {"hyperparams"}
        kwargs: dict[str, Any] = {}
        for key, value in values.items():
            if key in HYPERPARAM_NAMES:
                hp[key] = value
            elif key in struct_names:
                kwargs[key] = value
            else:
                close = difflib.get_close_matches(key, [*struct_names, *HYPERPARAM_NAMES], n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ConfigError(f"unknown training setting {key!r}{hint}")
        for key in hp:
            if key not in HYPERPARAM_NAMES:
                raise ConfigError(f"unknown hyperparameter {key!r}; known: {', '.join(HYPERPARAM_NAMES)}")
        for key in ("actor_hidden", "critic_hidden"):
            if key in kwargs:
                kwargs[key] = tuple(int(w) for w in kwargs[key])
        for key in ("total_timesteps", "num_envs", "num_steps", "update_epochs", "num_minibatches"):
            if key in kwargs:
                kwargs[key] = _as_int(key, kwargs[key])
        for key in ("adam_eps", "adam_b1", "adam_b2"):
            if key in kwargs:
                kwargs[key] = _as_float(key, kwargs[key])
        hyper = Hyperparams(**{k: float(v) for k, v in hp.items()})
        config = cls(**kwargs, hyperparams=hyper)
        config.validate()
        return config

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["actor_hidden"] = list(self.actor_hidden)
        out["critic_hidden"] = list(self.critic_hidden)
        out["hyperparams"] = {k: float(getattr(self.hyperparams, k)) for k in HYPERPARAM_NAMES}
        return out

    def replace(self, **changes: Any) -> TrainConfig:
        merged = self.to_dict()
        merged.update(changes)
        return TrainConfig.from_dict(merged)

    def _validate_brax_mode(self) -> None:
        """The Brax-mode settings (advantages, unroll_length, init, obs_clip, budget)."""
        for key, allowed in (("advantages", ("rollout", "unroll")),
                             ("init", ("orthogonal", "lecun_uniform")),
                             ("budget", ("floor", "brax"))):
            if getattr(self, key) not in allowed:
                raise ConfigError(f"{key} must be one of {', '.join(allowed)}, "
                                  f"got {getattr(self, key)!r}")
        if self.obs_clip is not None and not self.obs_clip > 0:
            raise ConfigError(f"obs_clip must be positive (or null for none), got {self.obs_clip}")
        if self.advantages != "unroll":
            return
        if self.unroll_length < 1 or self.num_steps % self.unroll_length:
            raise ConfigError(f"num_steps={self.num_steps} must be a multiple of unroll_length="
                              f"{self.unroll_length} (>= 1) with advantages: unroll")
        unrolls = self.num_envs * (self.num_steps // self.unroll_length)
        if unrolls % self.num_minibatches:
            raise ConfigError(
                f"{unrolls} unrolls (num_envs x num_steps / unroll_length) are not divisible by "
                f"num_minibatches={self.num_minibatches}; with advantages: unroll a minibatch "
                "holds whole unrolls")
        if self.clip_value_loss:
            raise ConfigError("clip_value_loss needs the rollout's values, which advantages: "
                              "unroll recomputes per minibatch; set clip_value_loss: false")

    def validate(self) -> None:
        """Raise ConfigError for settings that cannot work."""
        for key in ("num_envs", "num_steps", "update_epochs", "num_minibatches"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be >= 1, got {getattr(self, key)}")
        if self.batch_size % self.num_minibatches:
            raise ConfigError(
                f"batch of num_envs x num_steps = {self.num_envs} x {self.num_steps} = "
                f"{self.batch_size} is not divisible by num_minibatches={self.num_minibatches}; "
                "change num_minibatches to a divisor of the batch"
            )
        if self.num_updates < 1:
            raise ConfigError(
                f"total_timesteps={self.total_timesteps} is less than one batch "
                f"({self.batch_size} steps); raise total_timesteps or shrink num_envs/num_steps"
            )
        if self.activation not in ("tanh", "relu", "swish", "elu"):
            raise ConfigError(f"unknown activation {self.activation!r}; use tanh, relu, swish or elu")
        for key in ("adam_b1", "adam_b2"):
            if not 0.0 <= getattr(self, key) < 1.0:
                raise ConfigError(f"{key} must be in [0, 1) (an Adam moment decay such as 0.9), "
                                  f"got {getattr(self, key)}")
        if self.continuous not in ("clip", "tanh", "brax_tanh"):
            raise ConfigError(f"continuous must be 'clip', 'tanh' or 'brax_tanh', "
                              f"got {self.continuous!r}")
        self._validate_brax_mode()
        hp = self.hyperparams
        checks = {
            "learning_rate": (0, math.inf, "a positive number such as 3e-4"),
            "gamma": (0, 1, "a value in (0, 1]"),
            "gae_lambda": (-1e-12, 1, "a value in [0, 1]"),
        }
        for key, (low, high, fix) in checks.items():
            values = np.asarray(getattr(hp, key))
            if np.any(~np.isfinite(values) | (values <= low) | (values > high)):
                raise ConfigError(f"{key} must be {fix}, got {getattr(hp, key)}")
        # inf is allowed here: the Brax presets train without gradient clipping.
        if np.any(np.isnan(np.asarray(hp.max_grad_norm)) | (np.asarray(hp.max_grad_norm) <= 0)):
            raise ConfigError(f"max_grad_norm must be positive (inf disables clipping), got {hp.max_grad_norm}")


def _as_float(key: str, value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key} must be a number, got {value!r}") from None


def _as_int(key: str, value: Any) -> int:
    number = float(value)
    if not number.is_integer():
        raise ConfigError(f"{key} must be a whole number, got {value!r}")
    return int(number)
