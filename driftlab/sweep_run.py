"""`driftlab train --sweep`: the one compiled program that trains every combination
of a grid (driftlab/sweep.py parses and checks the grid) and the run directory it
writes. `train_sweep` is four steps: build the program (`sweep_init`,
`sweep_chunk_runner`), write each combination's config (`_write_configs`), run the
chunks logging every update (`_run_chunks`), write parameters and summaries
(`_write_results`).

Longer than ~300 lines: the runner's two layouts (vmap, map) and the four steps
each about a screen; the grid's parsing is in driftlab/sweep.py.
"""

from __future__ import annotations

import contextlib
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

from driftlab.algorithms import Drift, TrainConfig, Trainer
from driftlab.algorithms.config import check_seed
from driftlab.errors import DriftlabError
from driftlab.software import software_record
from driftlab.sweep import Grid, check_grid, check_layout
from driftlab.train_checks import DEFAULT_CHUNKS


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
                out: str | Path | None = None, chunks: int = DEFAULT_CHUNKS, progress: bool = True,
                plot: bool = True, tensorboard: bool = False, wandb: bool = False,
                wandb_project: str = "driftlab", layout: str = "vmap") -> SweepOutcome:
    """Train every combination of `sweep` ({key: [values]}) x `seeds` seeds in one
    compiled program and write one run directory (see driftlab/sweep.py).

    `layout` (`sweep_chunk_runner`): "vmap" runs all C x S agents as one batch (the
    fast choice on accelerators); "map" runs the combinations one after another inside
    the program, each as the ordinary run's S seeds (1/C of the memory; on a 2-core
    CPU as fast). Returns final returns (C, S) and returns (C, S, updates),
    combinations in `grid.combinations` order."""
    from driftlab.algorithms.trackers import Trackers, check_trackers
    from driftlab.rundir import new_run_dir
    from driftlab.training import build, check_memory, chunk_length, loaded_drift_file

    if seeds < 1:
        raise DriftlabError(f"--seeds must be >= 1, got {seeds}")
    check_seed(seed, "--seed")
    check_trackers(tensorboard, wandb, DriftlabError)
    env, config, drift, drift_params = build(env_id, algo, settings, drift_path)
    builtin = not drift_path and algo != "distilled"
    grid = check_grid(sweep, algo, settings, config, drift, drift_params, builtin)
    layout = check_layout(layout)
    n_comb = len(grid.combinations)

    trainer = Trainer(env, config, drift)
    chunk = chunk_length(config.num_updates, chunks)
    keys, hp_rows, dp_rows = _grid_inputs(grid, seed, seeds, layout)
    init = sweep_init(trainer, n_comb, seeds, layout)
    run_chunk = sweep_chunk_runner(trainer, drift_params, chunk, n_comb, seeds, layout)

    start = time.time()
    state, compiled = _start(init, run_chunk, keys, hp_rows, dp_rows)
    check_memory(compiled, state, f"training {n_comb} settings x {seeds} seed(s) at once",
                 "sweep fewer values, train fewer seeds (--seeds) or fewer environments per "
                 "seed (--set num_envs=...)" + (", or use layout='map' (one setting at a time)"
                                                if layout == "vmap" else ""))
    run_dir = new_run_dir(out, "train", f"{algo}-{env_id}-sweep")
    record = {"command": "train", "env": env_id, "algo": algo, "seeds": seeds, "seed": seed,
              "drift_file": loaded_drift_file(drift_path),
              "trackers": {"tensorboard": tensorboard, "wandb": wandb},
              "software": software_record()}
    dirs = _write_configs(run_dir, grid, config, drift, drift_params, layout, record)
    trackers = Trackers(run_dir, tensorboard=tensorboard, wandb=wandb, project=wandb_project,
                        config={"env": env_id, "algo": algo, "seeds": seeds, "seed": seed,
                                "drift": drift.spec, **config.to_dict(),
                                "sweep": {k: list(v) for k, v in grid.values.items()}})
    state, returns, diverged_at = _run_chunks(
        run_chunk, state, hp_rows, dp_rows, chunk, config, grid, seeds, dirs, trackers,
        progress, f"{algo} {env_id} sweep x{n_comb}")
    trackers.close()
    return _write_results(run_dir, dirs, grid, trainer.result(state, {}), returns, diverged_at,
                          config, layout, time.time() - start, env_id, algo, plot)


def _grid_inputs(grid: Grid, seed: int, seeds: int, layout: str
                 ) -> tuple[jax.Array, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(keys, hyperparameter rows, drift-constant rows) in the layout's shape: (C*S,)
    rows c * S + s for "vmap", keys (C, S) and rows (C,) for "map". Combination c,
    seed s gets the key of seed s of the ordinary run `--seed SEED --seeds S`."""
    n_comb, combos = len(grid.combinations), grid.combinations
    hp_rows = {k: np.asarray([c[k] for c in combos], np.float32) for k in grid.hyperparams}
    dp_rows = {k: np.asarray([c[f"drift.{k}"] for c in combos], np.float32)
               for k in grid.drift_constants}
    seed_keys = jax.random.split(jax.random.key(seed), seeds)  # as the ordinary run's
    keys = seed_keys[np.tile(np.arange(seeds), n_comb).reshape(n_comb, seeds)]  # (C, S)
    if layout == "vmap":  # row c * S + s: combination c, seed s
        hp_rows = {k: np.repeat(v, seeds) for k, v in hp_rows.items()}
        dp_rows = {k: np.repeat(v, seeds) for k, v in dp_rows.items()}
        keys = keys.reshape(n_comb * seeds)
    return keys, hp_rows, dp_rows


def _write_configs(run_dir: Path, grid: Grid, config: TrainConfig, drift: Drift,
                   drift_params: Any, layout: str, record: dict[str, Any]) -> list[Path]:
    """The sweep's config.yaml and, under combinations/, each combination's
    config.yaml and drift.json (an ordinary train run's). Returns their folders."""
    from driftlab.algorithms.drift_io import save_drift
    from driftlab.algorithms.storage import write_yaml
    from driftlab.training import drift_record

    dirs = [run_dir / "combinations" / name for name in grid.dir_names()]
    write_yaml(run_dir / "config.yaml", {
        **record, "drift": drift_record(drift, drift_params), "train": config.to_dict(),
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
    for label, combo, d in zip(grid.labels, grid.combinations, dirs, strict=True):
        hp = {k: v for k, v in combo.items() if not k.startswith("drift.")}
        params = {**drift_params, **{k[len("drift."):]: jnp.float32(v)
                                     for k, v in combo.items() if k.startswith("drift.")}}
        d.mkdir(parents=True)
        write_yaml(d / "config.yaml", {
            **record, "drift": drift_record(drift, params),
            "train": (config.replace(**hp) if hp else config).to_dict(),
            "sweep_combination": {"label": label, "settings": dict(combo), "sweep_dir": "../.."},
        })
        save_drift(d, drift, params, name="drift",
                   metadata={"source": "train", "note": f"the drift of this {record['algo']} "
                                                        f"run (sweep combination {label})"})
    return dirs


def _run_chunks(run_chunk, state: Any, hp_rows: dict[str, np.ndarray],
                dp_rows: dict[str, np.ndarray], chunk: int, config: TrainConfig, grid: Grid,
                seeds: int, dirs: list[Path], trackers: Any, progress: bool, title: str
                ) -> tuple[Any, np.ndarray, np.ndarray]:
    """Every update of every agent, `chunk` updates per call, each update logged to
    each combination's metrics.jsonl and the trackers. Returns (final state, returns
    (C, S, updates), the update each (C, S) agent diverged at, 0 if none)."""
    from tqdm.auto import tqdm

    from driftlab.algorithms.storage import JsonlWriter
    from driftlab.stopping import raise_if_stopped
    from driftlab.training import LOSS_METRICS

    n_comb, n_updates = len(grid.combinations), config.num_updates
    returns: list[np.ndarray] = []
    diverged_at = np.zeros((n_comb, seeds), np.int64)  # (C, S)
    bar = tqdm(total=n_updates * config.batch_size, unit="step", unit_scale=True,
               disable=not progress, desc=f"{title} (compiling)", dynamic_ncols=True)
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
            bar.set_description(title)
            latest = metrics["episode_return"][..., -1]
            bar.set_postfix(best=f"{np.nanmax(np.nanmean(latest, axis=1)):.1f}"
                            if np.isfinite(latest).any() else "n/a")
            bar.update(n * config.batch_size)
    bar.close()
    return state, np.concatenate(returns, axis=2), diverged_at


def _write_results(run_dir: Path, dirs: list[Path], grid: Grid, result: Any,
                   all_returns: np.ndarray, diverged_at: np.ndarray, config: TrainConfig,
                   layout: str, seconds: float, env_id: str, algo: str,
                   plot: bool) -> SweepOutcome:
    """Each combination's params.msgpack and summary.json, the sweep's summary.json
    and learning curves; a diverged agent's final return is NaN (not a result)."""
    from flax import serialization

    from driftlab.algorithms.evaluation import final_return
    from driftlab.algorithms.storage import atomic_write_bytes, write_json
    from driftlab.analysis.curves import plot_learning_curves
    from driftlab.training import saved_params

    n_comb, seeds, n_updates = all_returns.shape
    saved = saved_params(result)
    lead = 1 if layout == "vmap" else 2  # leading axes: (C*S,) or (C, S)
    saved = jax.tree.map(lambda x: np.asarray(x).reshape((n_comb, seeds) + x.shape[lead:]),
                         saved)  # every leaf (C, S, ...)
    params_finite = np.all([np.isfinite(x).reshape(n_comb, seeds, -1).all(axis=2)
                            for x in jax.tree.leaves((saved["actor"], saved["critic"]))], axis=0)
    diverged_at[(diverged_at == 0) & ~params_finite] = n_updates
    timesteps = np.arange(1, n_updates + 1) * config.batch_size
    finals = final_return(all_returns)  # (C, S)
    finals[diverged_at > 0] = np.nan  # a diverged run's return is not a result
    sps = n_updates * config.batch_size * n_comb * seeds / seconds
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
