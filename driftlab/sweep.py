"""`driftlab train --sweep KEY=V1,V2,...`: a grid over numeric hyperparameters and
drift constants, every combination x seed trained in ONE compiled program.

The trainer takes hyperparameters (`Hyperparams`) and drift parameters as traced
values, so the C combinations x S seeds are one program: by default (layout "vmap")
one vmapped batch of C*S agents; layout "map" instead runs the combinations one after
another inside the program (`lax.map`), each as the ordinary run's vmapped S seeds
(1/C of the memory; on a 2-core CPU as fast). Combination c, seed s gets the key of
seed s of the ordinary run `--seed SEED --seeds S`, so it trains the agents of that
run with its setting, to float32 rounding: the sweep passes as values what the
ordinary run compiles in as constants, which XLA folds and fuses differently (x / 0.05
becomes x * 20), so the last bits may differ, and RL amplifies such differences over
a long run (same distribution, not the same numbers). `test_sweep.py` states the
tolerance.

Structural settings (num_envs, num_steps, epochs, minibatches, the budget, network
sizes, the env, ...) change array shapes or the program itself and are refused.

One run directory: `config.yaml` (the grid and every combination), `summary.json`
(per-combination final returns), `learning_curve.png` (one curve per combination),
and `combinations/NN_<label>/`, each an ordinary train run directory (config.yaml,
metrics.jsonl, summary.json, params.msgpack, drift.json) of one combination, which
`compare`, `evaluate` and `inspect` read like any train run. Nothing is pooled
across combinations: `compare` labels each combination's group by its setting.

This module parses and checks the grid (one line for each bad key or value);
driftlab/sweep_run.py holds the one-program runner and the run directory it writes.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from driftlab.algorithms import Drift, TrainConfig, make_drift
from driftlab.algorithms.config import HYPERPARAM_NAMES, ConfigError, field_types
from driftlab.errors import DriftlabError
from driftlab.hints import did_you_mean


class SweepError(DriftlabError):
    """A `--sweep` that cannot run; the message names the key and the fix."""


# Settings that set array shapes, the loop's length or the env: each value is another program.
SHAPE_KEYS = {
    "num_envs": "it sets the number of environments, an array shape",
    "num_steps": "it sets the rollout length, an array shape",
    "update_epochs": "it sets the number of epochs, the length of a loop",
    "num_minibatches": "it sets the minibatch size, an array shape",
    "total_timesteps": "it sets the number of updates, the length of the loop",
    "timesteps": "it sets the number of updates, the length of the loop",
    "actor_hidden": "it sets the policy network's shape",
    "critic_hidden": "it sets the critic network's shape",
    "unroll_length": "it sets the unroll length, an array shape",
    "env_options": "it changes the environment",
    "env": "it changes the environment and its observation and action shapes",
    "algo": "it changes the drift function",
}
# Not settings of the grid at all.
OTHER_KEYS = {
    "seed": "--seed sets the base seed of every combination",
    "seeds": "--seeds N already trains N seeds of every combination",
}


@dataclass(frozen=True)
class Grid:
    """The checked grid: `keys` in the user's order, `values[key]` (floats), and the
    C combinations (`itertools.product` order: the last key varies fastest), each
    with its label, e.g. "learning_rate=3e-4,drift.alpha=2"."""

    keys: tuple[str, ...]
    values: dict[str, list[float]]
    combinations: list[dict[str, float]]
    labels: list[str]

    @property
    def hyperparams(self) -> tuple[str, ...]:
        return tuple(k for k in self.keys if not k.startswith("drift."))

    @property
    def drift_constants(self) -> tuple[str, ...]:
        return tuple(k[len("drift."):] for k in self.keys if k.startswith("drift."))

    def dir_names(self) -> list[str]:
        """combinations/<NN>_<label> (NN zero-padded, at least 2 digits)."""
        width = max(2, len(str(len(self.labels) - 1)))
        return [f"{i:0{width}d}_{label}" for i, label in enumerate(self.labels)]


# ---- parsing and checking -----------------------------------------------------------

def format_value(value: float) -> str:
    """A short spelling of a grid value for labels: 3e-4, 0.001, 2, 1e6."""
    value = float(value)
    positional = np.format_float_positional(value, trim="-")
    scientific = np.format_float_scientific(value, trim="-", exp_digits=1).replace("+", "")
    return scientific if len(scientific) + 1 < len(positional) else positional


def parse_sweep(pairs: list[str]) -> dict[str, list[str]]:
    """`["learning_rate=1e-4,3e-4", "drift.alpha=1,2"]` (the repeated `--sweep` flag)
    -> {"learning_rate": ["1e-4", "3e-4"], "drift.alpha": ["1", "2"]}; the values
    are checked (numbers, finite, distinct) by `check_grid`. A pair without `=`, an
    empty value or a key given twice is a SweepError."""
    out: dict[str, list[str]] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SweepError(f"--sweep expects KEY=V1,V2,... such as learning_rate=1e-4,3e-4, "
                             f"got {pair!r}")
        items = [item.strip() for item in text.split(",")]
        if not any(items):
            raise SweepError(f"--sweep {key}= has no values; list them, e.g. --sweep "
                             f"{key}=1e-4,3e-4")
        if not all(items):
            raise SweepError(f"--sweep {key}={text} has an empty value; separate the values "
                             "with single commas, e.g. 1e-4,3e-4")
        name = _canonical(key)
        if name in out:
            raise SweepError(f"--sweep {key} is given twice; list all its values once, e.g. "
                             f"--sweep {key}=1e-4,3e-4,1e-3")
        out[name] = items
    return out


def _canonical(key: str) -> str:
    """`hyperparams.learning_rate` is `learning_rate`."""
    key = key.strip()
    return key[len("hyperparams."):] if key.startswith("hyperparams.") else key


def _number(key: str, value: Any) -> float:
    text = value.strip() if isinstance(value, str) else value
    if isinstance(text, bool) or not isinstance(text, (int, float, str, np.integer,
                                                       np.floating)):
        raise SweepError(f"--sweep {key}: {value!r} is not a number; give numbers such as "
                         f"{key}=1e-4,3e-4")
    try:
        number = float(text)
    except ValueError:
        raise SweepError(f"--sweep {key}: {value!r} is not a number; give numbers such as "
                         f"{key}=1e-4,3e-4") from None
    if not math.isfinite(number):
        raise SweepError(f"--sweep {key}: {value!r} is not a finite number")
    return number


def drift_constants(params: Any) -> list[str]:
    """The drift's sweepable constants: the scalar entries of its parameter dict
    (DPO's alpha and beta, PPO's eps, a formula's constants; an LPO net has none)."""
    if not isinstance(params, Mapping):
        return []
    return [name for name, value in params.items() if np.ndim(value) == 0]


def check_grid(sweep: Mapping[str, Any], algo: str, settings: Mapping[str, Any],
               config: TrainConfig, drift: Drift, drift_params: Any,
               builtin_drift: bool) -> Grid:
    """The grid `sweep` ({key: [values]}, values numbers or numeric strings) checked
    against the run: every key a numeric hyperparameter or a constant of this drift,
    every value a finite number the setting accepts (each value passes the same
    checks as `--set key=value`), no value twice. One-line SweepError otherwise."""
    if not isinstance(sweep, Mapping) or not sweep:
        raise SweepError(f"a sweep must map settings to lists of values, such as "
                         f"{{'learning_rate': [1e-4, 3e-4]}}, got {sweep!r}")
    constants = drift_constants(drift_params)
    drift_options = dict(settings.get("drift") or {})
    structural = set(field_types(TrainConfig)) - {"hyperparams"}
    values: dict[str, list[float]] = {}
    for raw_key, raw_values in sweep.items():
        key = _canonical(str(raw_key))
        if key in values:
            raise SweepError(f"--sweep {raw_key} is given twice; list all its values once")
        _check_key(key, algo, drift, constants, structural)
        items = [raw_values] if isinstance(raw_values, (str, int, float)) else raw_values
        if not isinstance(items, (list, tuple)) or not items:
            raise SweepError(f"--sweep {key} needs a list of values such as [1e-4, 3e-4], "
                             f"got {raw_values!r}")
        numbers = [_number(key, item) for item in items]
        for number, item in zip(numbers, items, strict=True):
            if numbers.count(number) > 1:
                raise SweepError(f"--sweep {key} lists {item} twice; each value once")
            _check_value(key, number, item, algo, config, drift_options, builtin_drift)
        values[key] = numbers
    keys = tuple(values)
    combinations = [dict(zip(keys, combo, strict=True))
                    for combo in itertools.product(*(values[k] for k in keys))]
    labels = [",".join(f"{k}={format_value(c[k])}" for k in keys) for c in combinations]
    return Grid(keys, values, combinations, labels)


def _check_key(key: str, algo: str, drift: Drift, constants: list[str],
               structural: set[str]) -> None:
    if key in HYPERPARAM_NAMES:
        return
    sweepable = [*HYPERPARAM_NAMES, *(f"drift.{c}" for c in constants)]
    if key.startswith("drift."):
        name = key[len("drift."):]
        if name in constants:
            return
        known = (f"its constants: {', '.join(f'drift.{c}' for c in constants)}" if constants
                 else "it has no numeric constants to sweep")
        if name in drift.spec:
            raise SweepError(f"--sweep {key}: {name} is a structural option of the "
                             f"{drift.name} drift (it changes the drift's function or shape), "
                             f"not a numeric constant; {known}")
        hint = did_you_mean(name, constants, prefix="drift.")
        raise SweepError(f"--sweep {key}: the {algo} drift has no constant {name!r}{hint}; "
                         f"{known}")
    if key in SHAPE_KEYS or key in structural:
        why = SHAPE_KEYS.get(key, "a compile-time setting, not a traced hyperparameter")
        raise SweepError(f"--sweep {key}: {key} is structural ({why}), so each value needs "
                         f"its own compiled program; sweep numeric hyperparameters or drift "
                         f"constants, or run one `driftlab train` per {key}")
    if key in OTHER_KEYS:
        raise SweepError(f"--sweep {key}: {OTHER_KEYS[key]}; it is not a grid setting")
    hint = did_you_mean(key, sweepable)
    raise SweepError(f"--sweep {key}: unknown setting{hint}; a sweep takes numeric "
                     f"hyperparameters ({', '.join(HYPERPARAM_NAMES)}) and the drift's "
                     f"constants ({', '.join(f'drift.{c}' for c in constants) or 'none'})")


def _check_value(key: str, number: float, item: Any, algo: str, config: TrainConfig,
                 drift_options: dict[str, Any], builtin_drift: bool) -> None:
    """The checks `--set key=value` would apply to this one value."""
    try:
        if key.startswith("drift."):
            if builtin_drift:
                make_drift(algo, **{**drift_options, key[len("drift."):]: number})
        else:
            config.replace(**{key: number})
    except ConfigError as err:
        raise SweepError(f"--sweep {key}={item}: {err}") from None


LAYOUTS = ("vmap", "map")


def check_layout(layout: str) -> str:
    """`layout` if it is one of LAYOUTS, else a SweepError."""
    if layout not in LAYOUTS:
        raise SweepError(f"sweep layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    return layout
