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

Longer than ~300 lines: parsing and checking the grid (one-line errors for each
bad key or value), the one-program runner and the run directory it writes.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import sys
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from driftlab.algorithms import Drift, TrainConfig, Trainer, make_drift
from driftlab.algorithms.config import HYPERPARAM_NAMES, ConfigError, check_seed, field_types
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


@dataclass
class SweepOutcome:
    """What a sweep trained: C combinations x S seeds."""

    run_dir: Path
    grid: Grid
    combination_dirs: list[Path]
    final_returns: np.ndarray  # (C, S) mean return over the last 10% of updates
    returns: np.ndarray  # (C, S, updates)
    timesteps: np.ndarray  # (updates,)
    seconds: float
    steps_per_second: float  # env steps of all C x S agents per second
    diverged: dict[str, dict[int, int]] = field(default_factory=dict)  # label -> seed -> update


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


# ---- the one program ----------------------------------------------------------------

LAYOUTS = ("vmap", "map")


def check_layout(layout: str) -> str:
    """`layout` if it is one of LAYOUTS, else a SweepError."""
    if layout not in LAYOUTS:
        raise SweepError(f"sweep layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    return layout


def sweep_chunk_runner(trainer: Trainer, drift_params: Any, length: int, combinations: int,
                       seeds: int, layout: str):
    """`run(states, n, hp, dp) -> (states, metrics)`: the next `n <= length` updates of
    every agent of the grid, jitted once for the whole grid.

    layout "vmap": one vmapped batch of C x S agents; `states`, `hp` = {hyperparameter:
    (C*S,)} and `dp` = {drift constant: (C*S,)} have that leading axis (row c*S + s).
    layout "map": `lax.map` over the C combinations, each one the ordinary run's
    vmapped S seeds (`training.chunk_runner`'s step, with the swept values as
    inputs): `states` (C, S, ...), `hp` and `dp` (C,). Unswept hyperparameters and
    drift parameters stay the run's constants, as in `training.chunk_runner`; the
    padding of a short last chunk works the same way."""
    from driftlab.training import over_seeds

    def one_combination(state, n, hp, dp):
        hparams = trainer.config.hyperparams.replace(**hp) if hp else None
        params = {**drift_params, **dp} if dp else drift_params

        def step(s, i):
            return jax.lax.cond(i < n, lambda s: trainer.update(s, params, hparams),
                                lambda s: (s, skipped), s)

        shapes = jax.eval_shape(lambda s: trainer.update(s, params, hparams)[1], state)
        skipped = jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), shapes)
        return jax.lax.scan(step, state, jnp.arange(length))

    if layout == "vmap":
        batched = over_seeds(one_combination, combinations * seeds, in_axes=(0, None, 0, 0))
    else:
        per_seed = over_seeds(one_combination, seeds, in_axes=(0, None, None, None))

        def batched(state, n, hp, dp):
            return jax.lax.map(lambda a: per_seed(a[0], n, a[1], a[2]), (state, hp, dp))

    def run_chunk(state, n, hp, dp):  # the name JAX reports for the program
        return batched(state, n, hp, dp)

    return jax.jit(run_chunk)


def sweep_init(trainer: Trainer, combinations: int, seeds: int, layout: str):
    """`init(keys, hp) -> states` for `sweep_chunk_runner`'s layout: keys and hp rows
    (C*S,) for "vmap", keys (C, S) and hp (C,) for "map" (each combination then starts
    as the ordinary run's `jit(over_seeds(trainer.init, S))` does)."""
    from driftlab.training import over_seeds

    def init_one(key, hp):
        return trainer.init(key, trainer.config.hyperparams.replace(**hp) if hp else None)

    if layout == "vmap":
        batched = over_seeds(init_one, combinations * seeds, in_axes=(0, 0))
    else:
        per_seed = over_seeds(init_one, seeds, in_axes=(0, None))

        def batched(keys, hp):
            return jax.lax.map(lambda a: per_seed(*a), (keys, hp))

    def init_grid(keys, hp):  # the name JAX reports for the program
        return batched(keys, hp)

    return jax.jit(init_grid)


def _start(init, run_chunk, keys: jax.Array, hp: dict[str, np.ndarray],
           dp: dict[str, np.ndarray]) -> tuple[Any, Any]:
    """(`init(keys, hp)`, the compiled chunk program or None), the chunk program
    compiled beside it in a second thread (as `training.compile_beside`)."""
    import threading

    shapes = jax.eval_shape(init, keys, hp)
    compiled: list[Any] = [None]

    def compile_chunk() -> None:
        try:
            compiled[0] = run_chunk.lower(shapes, np.int32(0), hp, dp).compile()
        except Exception:  # noqa: BLE001 - the first real call compiles again and reports it
            pass

    thread = threading.Thread(target=compile_chunk, daemon=True)
    thread.start()
    state = init(keys, hp)
    thread.join()
    return state, compiled[0]


def train_sweep(env_id: str, algo: str, settings: dict[str, Any], sweep: Mapping[str, Any], *,
                seeds: int = 1, seed: int = 0, drift_path: str | None = None,
                out: str | Path | None = None, chunks: int = 20, progress: bool = True,
                plot: bool = True, tensorboard: bool = False, wandb: bool = False,
                wandb_project: str = "driftlab", layout: str = "vmap") -> SweepOutcome:
    """Train every combination of `sweep` ({key: [values]}) x `seeds` seeds in one
    compiled program and write one run directory (see the module docstring).

    `layout` (`sweep_chunk_runner`): "vmap" runs all C x S agents as one batch (the
    fast choice on accelerators); "map" runs the combinations one after another inside
    the program, each as the ordinary run's S seeds (1/C of the memory; on a 2-core
    CPU as fast). Returns final returns (C, S) and returns (C, S, updates),
    combinations in `grid.combinations` order."""
    from flax import serialization
    from tqdm.auto import tqdm

    from driftlab.algorithms.drift_io import save_drift
    from driftlab.algorithms.evaluation import final_return
    from driftlab.algorithms.storage import JsonlWriter, atomic_write_bytes, write_json, write_yaml
    from driftlab.algorithms.trackers import Trackers, check_trackers
    from driftlab.analysis.curves import plot_learning_curves
    from driftlab.rundir import new_run_dir
    from driftlab.stopping import raise_if_stopped
    from driftlab.training import (
        LOSS_METRICS,
        build,
        check_memory,
        chunk_length,
        drift_record,
        saved_params,
    )

    if seeds < 1:
        raise DriftlabError(f"--seeds must be >= 1, got {seeds}")
    check_seed(seed, "--seed")
    check_trackers(tensorboard, wandb, DriftlabError)
    env, config, drift, drift_params = build(env_id, algo, settings, drift_path)
    builtin = not drift_path and algo != "distilled"
    grid = check_grid(sweep, algo, settings, config, drift, drift_params, builtin)
    layout = check_layout(layout)
    n_comb = len(grid.combinations)
    batch = n_comb * seeds

    trainer = Trainer(env, config, drift)
    n_updates = config.num_updates
    chunk = chunk_length(n_updates, chunks)
    combos = grid.combinations
    hp_rows = {k: np.asarray([c[k] for c in combos], np.float32) for k in grid.hyperparams}
    dp_rows = {k: np.asarray([c[f"drift.{k}"] for c in combos], np.float32)
               for k in grid.drift_constants}
    seed_keys = jax.random.split(jax.random.key(seed), seeds)  # as the ordinary run's
    keys = seed_keys[np.tile(np.arange(seeds), n_comb).reshape(n_comb, seeds)]  # (C, S)
    if layout == "vmap":  # row c * S + s: combination c, seed s
        hp_rows = {k: np.repeat(v, seeds) for k, v in hp_rows.items()}
        dp_rows = {k: np.repeat(v, seeds) for k, v in dp_rows.items()}
        keys = keys.reshape(batch)
    init = sweep_init(trainer, n_comb, seeds, layout)
    run_chunk = sweep_chunk_runner(trainer, drift_params, chunk, n_comb, seeds, layout)

    start = time.time()
    state, compiled = _start(init, run_chunk, keys, hp_rows, dp_rows)
    check_memory(compiled, state, f"training {n_comb} settings x {seeds} seed(s) at once",
                 "sweep fewer values, train fewer seeds (--seeds) or fewer environments per "
                 "seed (--set num_envs=...)" + (", or use layout='map' (one setting at a time)"
                                                if layout == "vmap" else ""))
    run_dir = new_run_dir(out, "train", f"{algo}-{env_id}-sweep")
    drift_file = (str(Path(drift_path).resolve()) if drift_path and Path(drift_path).exists()
                  else drift_path)
    dirs = [run_dir / "combinations" / name for name in grid.dir_names()]
    combo_params, combo_configs = [], []
    for combo in grid.combinations:
        hp = {k: v for k, v in combo.items() if not k.startswith("drift.")}
        combo_configs.append(config.replace(**hp) if hp else config)
        combo_params.append({**drift_params, **{k[len("drift."):]: jnp.float32(v)
                                                for k, v in combo.items()
                                                if k.startswith("drift.")}})
    write_yaml(run_dir / "config.yaml", {
        "command": "train", "env": env_id, "algo": algo, "seeds": seeds, "seed": seed,
        "drift": drift_record(drift, drift_params), "drift_file": drift_file,
        "train": config.to_dict(),
        "trackers": {"tensorboard": tensorboard, "wandb": wandb},
        "sweep": {
            "note": "each combination's values replace train.hyperparams.KEY / drift.KEY "
                    "above; every combination trains `seeds` seeds with the keys of "
                    "`--seed SEED --seeds N`, all in one compiled program",
            "grid": {k: list(v) for k, v in grid.values.items()},
            "layout": layout,
            "combinations": [{"label": label, "settings": dict(combo),
                              "dir": str(d.relative_to(run_dir))}
                             for label, combo, d in zip(grid.labels, grid.combinations, dirs,
                                                        strict=True)]},
    })
    for label, combo, d, cfg, params in zip(grid.labels, grid.combinations, dirs, combo_configs,
                                            combo_params, strict=True):
        d.mkdir(parents=True)
        write_yaml(d / "config.yaml", {
            "command": "train", "env": env_id, "algo": algo, "seeds": seeds, "seed": seed,
            "drift": drift_record(drift, params), "drift_file": drift_file,
            "train": cfg.to_dict(),
            "trackers": {"tensorboard": tensorboard, "wandb": wandb},
            "sweep_combination": {"label": label, "settings": dict(combo), "sweep_dir": "../.."},
        })
        save_drift(d, drift, params, name="drift",
                   metadata={"source": "train", "note": f"the drift of this {algo} run "
                                                        f"(sweep combination {label})"})
    trackers = Trackers(run_dir, tensorboard=tensorboard, wandb=wandb, project=wandb_project,
                        config={"env": env_id, "algo": algo, "seeds": seeds, "seed": seed,
                                "drift": drift.spec, **config.to_dict(),
                                "sweep": {k: list(v) for k, v in grid.values.items()}})

    returns: list[np.ndarray] = []
    diverged_at: np.ndarray = np.zeros((n_comb, seeds), np.int64)  # (C, S)
    bar = tqdm(total=n_updates * config.batch_size, unit="step", unit_scale=True,
               disable=not progress, desc=f"{algo} {env_id} sweep x{n_comb} (compiling)",
               dynamic_ncols=True)
    with contextlib.ExitStack() as stack:
        logs = [stack.enter_context(JsonlWriter(d / "metrics.jsonl", truncate=True))
                for d in dirs]
        done = 0
        while done < n_updates:
            raise_if_stopped()
            n = min(chunk, n_updates - done)
            state, metrics = run_chunk(state, np.int32(n), hp_rows, dp_rows)
            metrics = {k: np.asarray(v)[..., :n].reshape(n_comb, seeds, n)
                       for k, v in jax.device_get(metrics).items()}  # (C, S, n)
            for i in range(n):
                logged: dict[str, Any] = {}
                for c, log in enumerate(logs):
                    per_seed = {k: np.asarray(v[c, :, i], dtype=np.float64)
                                for k, v in metrics.items()}
                    bad = ~np.all([np.isfinite(per_seed[k]) for k in LOSS_METRICS
                                   if k in per_seed], axis=0)
                    diverged_at[c][(diverged_at[c] == 0) & bad] = done + i + 1
                    record = {"update": done + i + 1,
                              "timesteps": (done + i + 1) * config.batch_size}
                    record.update({k: float(np.nanmean(v)) if np.isfinite(v).any()
                                   else float("nan") for k, v in per_seed.items()})
                    record["episode_return_per_seed"] = per_seed["episode_return"].tolist()
                    log.write(record)
                    logged[grid.labels[c]] = {k: v for k, v in record.items()
                                              if k not in ("timesteps", "update")}
                trackers.log({"update": done + i + 1, **logged},
                             (done + i + 1) * config.batch_size)
            returns.append(metrics["episode_return"])
            done += n
            bar.set_description(f"{algo} {env_id} sweep x{n_comb}")
            latest = metrics["episode_return"][..., -1]
            bar.set_postfix(best=f"{np.nanmax(np.nanmean(latest, axis=1)):.1f}"
                            if np.isfinite(latest).any() else "n/a")
            bar.update(n * config.batch_size)
    bar.close()
    trackers.close()
    seconds = time.time() - start

    result = trainer.result(state, {})
    saved = saved_params(result)
    lead = 1 if layout == "vmap" else 2  # leading axes: (C*S,) or (C, S)
    saved = jax.tree.map(lambda x: np.asarray(x).reshape((n_comb, seeds) + x.shape[lead:]),
                         saved)  # every leaf (C, S, ...)
    params_finite = np.all([np.isfinite(x).reshape(n_comb, seeds, -1).all(axis=2)
                            for x in jax.tree.leaves((saved["actor"], saved["critic"]))], axis=0)
    diverged_at[(diverged_at == 0) & ~params_finite] = n_updates
    all_returns = np.concatenate(returns, axis=2)  # (C, S, updates)
    timesteps = np.arange(1, n_updates + 1) * config.batch_size
    finals = final_return(all_returns)  # (C, S)
    finals[diverged_at > 0] = np.nan  # a diverged run's return is not a result
    sps = n_updates * config.batch_size * batch / seconds
    rows: list[dict[str, Any]] = []
    diverged: dict[str, dict[int, int]] = {}
    for c, (label, d) in enumerate(zip(grid.labels, dirs, strict=True)):
        mine = jax.tree.map(lambda x, c=c: x[c], saved)
        atomic_write_bytes(d / "params.msgpack", serialization.msgpack_serialize(mine))
        bad = [int(i) for i in np.flatnonzero(diverged_at[c])]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all seeds diverged
            mean, std = float(np.nanmean(finals[c])), float(np.nanstd(finals[c]))
        summary = {
            "env": env_id, "algo": algo, "seeds": seeds, "timesteps": int(timesteps[-1]),
            "status": "diverged" if bad else "ok", "diverged_seeds": bad,
            "diverged_from_update": [int(diverged_at[c, i]) for i in bad],
            "final_return_per_seed": finals[c], "final_return_mean": mean,
            "final_return_std": std, "seconds": seconds, "steps_per_second": sps,
            "sweep_combination": label,
        }
        write_json(d / "summary.json", summary)
        rows.append({"label": label, "settings": grid.combinations[c],
                     "dir": str(d.relative_to(run_dir)),
                     **{k: summary[k] for k in ("status", "diverged_seeds",
                                                "final_return_per_seed", "final_return_mean",
                                                "final_return_std")}})
        if bad:
            diverged[label] = {i: int(diverged_at[c, i]) for i in bad}
    write_json(run_dir / "summary.json", {
        "env": env_id, "algo": algo, "seeds": seeds, "timesteps": int(timesteps[-1]),
        "status": "diverged" if diverged else "ok",
        "sweep": {k: list(v) for k, v in grid.values.items()},
        "combinations": rows, "seconds": seconds, "steps_per_second": sps,
    })
    if plot:
        plot_learning_curves({label: (timesteps, all_returns[c])
                              for c, label in enumerate(grid.labels)},
                             run_dir / "learning_curve.png",
                             f"{algo} on {env_id}: sweep of {n_comb}, mean and 95% bootstrap "
                             "band over seeds")
    return SweepOutcome(run_dir, grid, dirs, finals, all_returns, timesteps, seconds, sps,
                        diverged)


def print_sweep_outcome(outcome: SweepOutcome, algo: str, env_id: str) -> None:
    """What `driftlab train --sweep` prints: speed, one line per combination (final
    return over its seeds), divergence (to stderr) and where the run directory is."""
    finals = outcome.final_returns
    n_comb, seeds = finals.shape
    width = max(len(label) for label in outcome.grid.labels)
    print(f"\n{algo} on {env_id}: {n_comb} settings x {seeds} seed(s), "
          f"{outcome.timesteps[-1]:,} steps each, in one program: {outcome.seconds:.1f} s "
          f"({outcome.steps_per_second:,.0f} steps/s)")
    if outcome.diverged:
        where = "; ".join(f"{label}: " + ", ".join(f"seed {s} from update {u}"
                                                   for s, u in seeds_out.items())
                          for label, seeds_out in outcome.diverged.items())
        print(f"DIVERGED: losses or parameters became NaN/inf ({where}); those seeds have no "
              "final return (summary.json: status diverged). Check the drift's constants and "
              "the learning rate.", file=sys.stderr)
    print("final return (mean of last 10% of updates) per setting:")
    for label, row in zip(outcome.grid.labels, finals, strict=True):
        ok = np.isfinite(row)
        text = (f"{np.nanmean(row):.2f} +- {np.nanstd(row):.2f} over {int(ok.sum())} seed(s)"
                if ok.any() else "none (every seed diverged)")
        if ok.any() and not ok.all():
            text += f", {int((~ok).sum())} diverged"
        print(f"  {label:<{width}}  {text}")
    print(f"run directory: {outcome.run_dir} (one run directory per setting under "
          "combinations/)")
