"""Training configuration: structural settings (static) and hyperparameters
(pytree leaves, so a sweep over them is a `vmap`).

Settings from presets, config files and `--set key=value` pass one typed step,
`coerce`, driven by the dataclasses' field annotations: a value of the wrong
type is a ConfigError naming the key, the value and the expected type (the
CLI prints it as one line). Numbers may arrive as strings (YAML reads `3e-4`
as a string), whole numbers as floats (`1e6`); booleans must be true/false.
A bare whole number where a list of layer widths is expected (`actor_hidden:
64`) means one layer of that width, `[64]`.

Longer than ~300 lines: every training setting with its type, check and
one-line error (the typed `coerce` step is shared with discovery/config.py).
"""

from __future__ import annotations

import dataclasses
import math
import reprlib
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from flax import struct

from driftlab.hints import did_you_mean


class ConfigError(ValueError):
    """A configuration value that cannot work; the message names the fix."""


# The training modes, declared once: `coerce` checks a setting against its Literal.
Activation = typing.Literal["tanh", "relu", "swish", "elu"]
# "clip": Gaussian clipped by the env; "tanh": squashed (both a state-independent log
# std); "brax_tanh": Brax's squashed Gaussian, std = softplus(net) + 0.001 per state
ContinuousPolicy = typing.Literal["clip", "tanh", "brax_tanh"]
AdvantageMode = typing.Literal["rollout", "unroll"]
KernelInit = typing.Literal["orthogonal", "lecun_uniform"]
BudgetCount = typing.Literal["floor", "brax"]
# When the observation normaliser learns: "step" after every env step (Gymnasium's
# NormalizeObservation, purejaxrl); "update" once per update from the whole rollout,
# before the SGD epochs, the policy acting on the previous update's statistics (Brax's
# PPO, brax/training/agents/ppo/train.py; the LPO/DPO paper's dpo/brax_drift.py).
ObsNormUpdate = typing.Literal["step", "update"]


# ---- the typed step -----------------------------------------------------------

def describe_type(hint: Any) -> str:
    """`hint` in words, with the Python type: "a whole number (int)"."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Literal:
        return "one of " + ", ".join(map(str, args))
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        text = " or ".join(describe_type(a) for a in options)
        return f"{text} or null" if len(options) < len(args) else text
    if hint is bool:
        return "true or false (bool)"
    if hint is int:
        return "a whole number (int)"
    if hint is float:
        return "a number (float)"
    if hint is str:
        return "a string (str)"
    if origin is tuple and args and args[-1] is Ellipsis:
        if args[0] is int:
            return "a list of whole numbers such as [64, 64] (list[int])"
        if args[0] is str:
            return "a name or a list of names (list[str])"
        return f"a list of {describe_type(args[0])}"
    if hint is dict or origin is dict or hint is Mapping:
        if len(args) == 2 and args[1] is float:
            return "a mapping of names to numbers such as {name: 1.0} (dict[str, float])"
        if len(args) == 2 and typing.get_origin(args[1]) is dict:
            return "a mapping of names to mappings of settings (dict[str, dict])"
        return "a mapping such as {key: value} (dict)"
    return getattr(hint, "__name__", str(hint))


# Seeds are whole numbers in [0, 2^31): jax.random.key keeps the low 32 bits of a
# larger seed (2^32 would alias 0) and refuses 2^63 and up.
SEED_MAX = 2**31 - 1


def check_seed(value: object, name: str = "seed",
               error: type[ConfigError] = ConfigError) -> int:
    """`value` as a seed, or `error` stating the accepted range."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= SEED_MAX:
        raise error(f"{name} must be a whole number from 0 to {SEED_MAX} (2^31 - 1; larger "
                    f"seeds would alias smaller ones), got {value!r}")
    return value


def check_adam_betas(b1: float, b2: float, error: type[ConfigError] = ConfigError) -> None:
    """Adam's moment decays (inner optimiser and ES alike) must lie in [0, 1)."""
    for key, value in (("adam_b1", b1), ("adam_b2", b2)):
        if not 0.0 <= value < 1.0:
            raise error(f"{key} must be in [0, 1) (an Adam moment decay such as 0.9), got {value}")


_SHOWN = reprlib.Repr()  # attributes, not keywords: Python 3.11's Repr takes none
_SHOWN.maxlevel, _SHOWN.maxlist, _SHOWN.maxtuple, _SHOWN.maxdict = 3, 6, 6, 6
_SHOWN.maxstring = _SHOWN.maxother = 80


def shown(value: Any) -> str:
    """`repr(value)`, cut short for a one-line message (a list of a million values
    is shown as its first six)."""
    return _SHOWN.repr(value)


def coerce(key: str, value: Any, hint: Any, error: type[ConfigError] = ConfigError) -> Any:
    """`value` as the annotated type `hint`, or `error` naming `key`, the value and
    the expected type. Handles bool, int, float, str, Literal[...] (a mode: one of
    the names), X | None, tuple[X, ...] and dict / dict[str, X]; Any passes through."""

    def fail() -> ConfigError:
        return error(f"{key} must be {describe_type(hint)}, got {shown(value)}")

    if hint is Any or hint is object:
        return value
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Literal:
        if isinstance(value, str) and value in args:
            return value
        hint_text = did_you_mean(value, map(str, args)) if isinstance(value, str) else ""
        raise error(f"{key} must be {describe_type(hint)}, got {shown(value)}{hint_text}")
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        if value is None and len(options) < len(args):
            return None
        for option in options:
            try:
                return coerce(key, value, option, error)
            except ConfigError:
                continue
        raise fail()
    if hint is bool:
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        raise fail()
    if hint in (int, float):
        if isinstance(value, (bool, np.bool_)) or value is None:
            raise fail()
        if isinstance(value, (int, np.integer)):
            return hint(value)
        if isinstance(value, (float, np.floating, str)):
            try:
                number = float(value)
            except ValueError:
                raise fail() from None
            if hint is float:
                return number
            if number.is_integer():
                return int(number)
        raise fail()
    if hint is str:
        if isinstance(value, str):
            return value
        raise fail()
    if origin is tuple and args and args[-1] is Ellipsis:
        element = args[0]
        if isinstance(value, (list, tuple)):
            items = value
        elif element is str and isinstance(value, str):
            items = [value]  # one name for a list of names
        elif element is int and isinstance(value, (int, np.integer)) and not isinstance(
                value, (bool, np.bool_)):
            items = [value]  # one width for a list of widths: 64 means [64]
        else:
            raise fail()
        try:
            return tuple(coerce(key, item, element, error) for item in items)
        except ConfigError:
            raise fail() from None
    if hint is dict or origin is dict or hint is Mapping:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise fail()
        key_type, value_type = args if len(args) == 2 else (str, Any)
        out = {}
        for name, item in value.items():
            if key_type is str and not isinstance(name, str):
                if not isinstance(name, (int, float)) or isinstance(name, bool):
                    raise fail()
                name = str(name)  # YAML reads some names (e.g. `2048:`) as numbers
            out[name] = coerce(f"{key}.{name}", item, value_type, error)
        return out
    raise TypeError(f"coerce: unsupported annotation {hint!r} for {key}")  # a bug, not input


def field_types(cls: type) -> dict[str, Any]:
    """{field name: resolved annotation} of a dataclass."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def require_mapping(values: Any, what: str, example: str,
                    error: type[ConfigError] = ConfigError) -> dict[str, Any]:
    """A copy of `values` as a dict, or `error`: "<what> must be a mapping such as <example>"."""
    if not isinstance(values, Mapping):
        raise error(f"{what} must be a mapping such as {example}, got {values!r}")
    return dict(values)


def typed_fields(cls: type, values: Mapping[str, Any], what: str,
                 error: type[ConfigError] = ConfigError, skip: Iterable[str] = (),
                 known_elsewhere: Iterable[str] = ()) -> dict[str, Any]:
    """`values` as keyword arguments of the dataclass `cls` (leaving out the fields in
    `skip`): an unknown key is `error` "unknown <what> 'key'" with the nearest known
    name (of the fields and `known_elsewhere`), and every value passes `coerce` with
    its field's annotation. The one mapping -> settings step of every config class."""
    types_ = {k: v for k, v in field_types(cls).items() if k not in set(skip)}
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key not in types_:
            hint = did_you_mean(key, [*types_, *known_elsewhere], quote=True)
            raise error(f"unknown {what} {key!r}{hint}")
        out[key] = coerce(key, value, types_[key], error)
    return out


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
    activation: Activation = "tanh"
    continuous: ContinuousPolicy = "clip"  # see ContinuousPolicy
    anneal_lr: bool = True
    normalize_advantages: bool = True
    normalize_obs: bool = False
    obs_norm_update: ObsNormUpdate = "step"  # see ObsNormUpdate; used with normalize_obs
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
    advantages: AdvantageMode = "rollout"
    unroll_length: int = 5  # used when advantages == "unroll"
    init: KernelInit = "orthogonal"  # network kernels; lecun_uniform is Brax's
    obs_clip: float | None = None  # clip network inputs to +-obs_clip (Brax: 5)
    # "floor": total_timesteps // (num_envs * num_steps) updates. "brax": as Brax counts
    # (ppo/train.py), ceil(total_timesteps / (num_envs * num_steps * action_repeat)).
    budget: BudgetCount = "floor"
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
    def from_dict(cls, values: Mapping[str, Any]) -> TrainConfig:
        """Build from a flat dict (YAML preset plus overrides); hyperparameters
        may be given flat or under `hyperparams:`. Unknown keys are errors, and
        every value passes the typed step (`coerce`) of its field's annotation;
        hyperparameters are numbers."""
        values = require_mapping(values, "training settings", "{num_envs: 4}")
        hp_raw = values.pop("hyperparams", None)
        if hp_raw is not None and not isinstance(hp_raw, Mapping):
            raise ConfigError(f"hyperparams must be a mapping of hyperparameters such as "
                              f"{{learning_rate: 3e-4}} (dict), got {hp_raw!r}")
        hp = dict(hp_raw or {})
        flat_hp = {key: values.pop(key) for key in list(values) if key in HYPERPARAM_NAMES}
        kwargs = typed_fields(cls, values, "training setting", skip=["hyperparams"],
                              known_elsewhere=HYPERPARAM_NAMES)
        for key in hp:
            if key not in HYPERPARAM_NAMES:
                raise ConfigError(f"unknown hyperparameter {key!r}; known: {', '.join(HYPERPARAM_NAMES)}")
        # Hyperparameters are annotated Any (a leaf may be a batched array); a setting is a number.
        hyper_values = {k: coerce(k, v, float) for k, v in hp.items()}
        for key, value in flat_hp.items():
            if key in hyper_values and hyper_values[key] != coerce(key, value, float):
                raise ConfigError(f"{key} is set twice, as {key} ({value!r}) and as "
                                  f"hyperparams.{key} ({hp[key]!r}); set it once (e.g. --set "
                                  f"{key}=...)")
            hyper_values[key] = coerce(key, value, float)
        hyper = Hyperparams(**hyper_values)
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
        hyper = dict(merged.pop("hyperparams"))
        hyper.update(changes.pop("hyperparams", None) or {})
        hyper.update({k: changes.pop(k) for k in list(changes) if k in HYPERPARAM_NAMES})
        merged.update(changes)
        merged["hyperparams"] = hyper
        return TrainConfig.from_dict(merged)

    def _validate_brax_mode(self) -> None:
        """The Brax-mode settings (unroll_length, obs_clip; the modes are Literals)."""
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
        for key in ("actor_hidden", "critic_hidden"):
            if any(width < 1 for width in getattr(self, key)):
                raise ConfigError(f"{key} must list layer widths >= 1 such as [64, 64], "
                                  f"got {list(getattr(self, key))}")
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
        steps = self.num_updates * self.update_epochs * self.num_minibatches
        if steps >= 2**31:
            raise ConfigError(
                f"total_timesteps={self.total_timesteps} makes {steps:,} optimiser steps "
                f"({self.num_updates:,} updates x {self.update_epochs} epochs x "
                f"{self.num_minibatches} minibatches), more than the 2^31 - 1 the trainer "
                "counts; lower total_timesteps")
        if not (math.isfinite(self.adam_eps) and self.adam_eps >= 0):
            raise ConfigError(f"adam_eps must be a small non-negative number such as 1e-5, "
                              f"got {self.adam_eps}")
        check_adam_betas(self.adam_b1, self.adam_b2, ConfigError)
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
        for key in ("ent_coef", "vf_coef", "vf_clip", "reward_scale"):
            if not np.all(np.isfinite(np.asarray(getattr(hp, key)))):
                raise ConfigError(f"{key} must be a finite number, got {getattr(hp, key)}")
        # inf is allowed here: the Brax presets train without gradient clipping.
        if np.any(np.isnan(np.asarray(hp.max_grad_norm)) | (np.asarray(hp.max_grad_norm) <= 0)):
            raise ConfigError(f"max_grad_norm must be positive (inf disables clipping), got {hp.max_grad_norm}")

