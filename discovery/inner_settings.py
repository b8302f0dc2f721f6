"""Randomised inner-run settings: ranges instead of values for the inner training
runs of a discovery, so that a drift cannot learn one setting's quirks.

A discovery config's `randomize:` block maps a training setting to a range:

    randomize:
      learning_rate: {low: 0.25, high: 4.0, scale: log, relative: true}
      update_epochs: {choices: [2, 4, 8]}
      total_timesteps: {choices: [0.5, 1.0], relative: true}

- A numeric hyperparameter (any field of `algorithms.config.Hyperparams`: a pytree
  leaf of the trainer) takes `{low, high, scale: log | linear}`: sampled
  continuously, log-uniformly by default (the learning rate as DiscoRL varies it;
  lifetimes as GROOVE samples them, Jackson et al. 2023).
- A structural setting (`update_epochs`, `num_minibatches`, `total_timesteps`: the
  trainer's scan lengths, static under jit) takes `{choices: [...]}`; every
  combination is its own compiled trainer, picked per rollout with `lax.switch`
  (only the chosen one runs).
- `relative: true` multiplies the env's own preset value, so one range suits
  envs whose presets differ (MinAtar's lr 1e-2 against classic control's 2.5e-4).

Settings are drawn per (generation, env, rollout) from the generation's key and
shared by every member of the generation (common random numbers: members are
compared on equal terms); the PPO reference of that rollout uses the same
settings and key (discovery/loop.py).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp

from driftlab.algorithms import TrainConfig
from driftlab.algorithms.config import HYPERPARAM_NAMES, ConfigError, Hyperparams
from driftlab.hints import did_you_mean

STRUCTURAL = ("update_epochs", "num_minibatches", "total_timesteps")
SCALES = ("log", "linear")


class RandomizeError(ConfigError):
    """A `randomize:` entry that cannot work; the message names the fix."""


@dataclass(frozen=True)
class SettingRange:
    """One randomised setting: continuous (low, high, scale) or discrete choices."""

    name: str
    low: float | None = None
    high: float | None = None
    scale: str = "log"
    choices: tuple[float, ...] | None = None
    relative: bool = False

    def to_dict(self) -> dict[str, Any]:
        if self.choices is not None:
            return {"choices": list(self.choices), "relative": self.relative}
        return {"low": self.low, "high": self.high, "scale": self.scale, "relative": self.relative}


def _number(name: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise RandomizeError(f"randomize.{name}.{key} must be a number, got {value!r}")
    try:
        out = float(value)
    except ValueError:
        raise RandomizeError(f"randomize.{name}.{key} must be a number, got {value!r}") from None
    if not math.isfinite(out):
        raise RandomizeError(f"randomize.{name}.{key} must be finite, got {value!r}")
    return out


def parse_randomize(block: Mapping[str, Any] | None) -> tuple[SettingRange, ...]:
    """The `randomize:` mapping as SettingRanges (sorted by name), checked."""
    if not block:
        return ()
    if not isinstance(block, Mapping):
        raise RandomizeError(f"randomize must be a mapping of settings to ranges such as "
                             f"{{learning_rate: {{low: 1e-4, high: 1e-3}}}}, got {block!r}")
    known = (*HYPERPARAM_NAMES, *STRUCTURAL)
    out = []
    for name in sorted(block):
        spec = block[name]
        if name not in known:
            hint = did_you_mean(name, known)
            raise RandomizeError(f"randomize: {name!r} cannot be randomised{hint}; numeric "
                                 f"hyperparameters ({', '.join(HYPERPARAM_NAMES)}) take "
                                 f"{{low, high}}, {', '.join(STRUCTURAL)} take {{choices}}")
        if not isinstance(spec, Mapping):
            raise RandomizeError(f"randomize.{name} must be a mapping such as "
                                 f"{{low: 1e-4, high: 1e-3}} or {{choices: [2, 4]}}, got {spec!r}")
        spec = dict(spec)
        relative = spec.pop("relative", False)
        if not isinstance(relative, bool):
            raise RandomizeError(f"randomize.{name}.relative must be true or false, "
                                 f"got {relative!r}")
        if name in STRUCTURAL:
            choices = spec.pop("choices", None)
            if spec:
                raise RandomizeError(f"randomize.{name} takes {{choices: [...], relative}} (a "
                                     f"structural setting is compiled per value), not "
                                     f"{sorted(spec)}")
            if not isinstance(choices, list | tuple) or not choices:
                raise RandomizeError(f"randomize.{name}.choices must be a non-empty list, "
                                     f"got {choices!r}")
            values = tuple(_number(name, "choices", c) for c in choices)
            if any(v <= 0 for v in values) or len(set(values)) < len(values):
                raise RandomizeError(f"randomize.{name}.choices must be distinct positive "
                                     f"numbers, got {list(choices)}")
            if not relative and any(v != int(v) for v in values):
                raise RandomizeError(f"randomize.{name}.choices must be whole numbers "
                                     f"(or set relative: true), got {list(choices)}")
            out.append(SettingRange(name, choices=values, relative=relative))
            continue
        scale = spec.pop("scale", "log")
        low, high = spec.pop("low", None), spec.pop("high", None)
        if spec:
            raise RandomizeError(f"randomize.{name} takes {{low, high, scale, relative}}, "
                                 f"not {sorted(spec)}")
        if low is None or high is None:
            raise RandomizeError(f"randomize.{name} needs both low and high")
        low, high = _number(name, "low", low), _number(name, "high", high)
        if scale not in SCALES:
            raise RandomizeError(f"randomize.{name}.scale must be log or linear, got {scale!r}")
        if not low < high:
            raise RandomizeError(f"randomize.{name} needs low < high, got {low} and {high}")
        if scale == "log" and low <= 0:
            raise RandomizeError(f"randomize.{name}: a log scale needs low > 0, got {low}")
        out.append(SettingRange(name, low, high, scale, relative=relative))
    return tuple(out)


class InnerSettings:
    """The randomised settings of one env: its structural variants (each a
    TrainConfig) and the sampling of a rollout's settings.

    `base`: the env's resolved training settings (preset + overrides)."""

    def __init__(self, ranges: tuple[SettingRange, ...], base: Mapping[str, Any], env_id: str):
        self.base = dict(base)
        self.env_id = env_id
        base_config = TrainConfig.from_dict(self.base)
        self.base_hyperparams: Hyperparams = base_config.hyperparams
        self.continuous = tuple(r for r in ranges if r.choices is None)
        structural = [r for r in ranges if r.choices is not None]
        options = [[self._structural_value(r, c) for c in r.choices] for r in structural]
        self.combos: list[dict[str, int]] = [
            dict(zip((r.name for r in structural), values, strict=True))
            for values in itertools.product(*options)]
        self.configs: list[TrainConfig] = []
        for combo in self.combos:
            try:
                self.configs.append(TrainConfig.from_dict({**self.base, **combo}))
            except ConfigError as err:
                raise RandomizeError(f"randomize: the inner settings {combo} of {env_id} "
                                     f"cannot train: {err}") from None

    def _structural_value(self, setting: SettingRange, choice: float) -> int:
        value = choice * float(self.base[setting.name]) if setting.relative else choice
        return max(1, int(round(value)))

    def sample(self, key: jax.Array, rollouts: int) -> tuple[jax.Array, dict[str, jax.Array]]:
        """(variant index (rollouts,) int32, {hyperparameter: (rollouts,) float32})."""
        k_combo, k_values = jax.random.split(key)
        combo = jax.random.randint(k_combo, (rollouts,), 0, len(self.combos))
        values = {}
        for index, setting in enumerate(self.continuous):
            u = jax.random.uniform(jax.random.fold_in(k_values, index), (rollouts,))
            if setting.scale == "log":
                value = jnp.exp(math.log(setting.low) + u * (math.log(setting.high)
                                                             - math.log(setting.low)))
            else:
                value = setting.low + u * (setting.high - setting.low)
            if setting.relative:
                value = value * float(getattr(self.base_hyperparams, setting.name))
            values[setting.name] = value.astype(jnp.float32)
        return combo.astype(jnp.int32), values

    def hyperparams(self, values: Mapping[str, jax.Array]) -> Hyperparams:
        """The env's hyperparameters with the sampled `values` (scalars) in place."""
        fixed = {f.name: jnp.asarray(getattr(self.base_hyperparams, f.name), jnp.float32)
                 for f in dataclasses.fields(Hyperparams)}
        return Hyperparams(**{**fixed, **values})

    def describe(self, combo: int, values: Mapping[str, float]) -> dict[str, float]:
        """One rollout's settings in plain numbers, for the metrics log."""
        return {**self.combos[combo], **{k: float(v) for k, v in values.items()}}
