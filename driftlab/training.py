"""Train agents from the command line or a script: presets + overrides in,
a run directory out (config, metrics.jsonl, parameters, learning curve).

Longer than ~300 lines: settings resolution, the chunked run with its memory check,
logging and divergence detection, and the run directory it writes; the sweep's
one-program variant is driftlab/sweep_run.py."""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization
from tqdm.auto import tqdm

from driftlab import envs
from driftlab.algorithms import Drift, TrainConfig, Trainer, make_drift
from driftlab.algorithms.config import check_seed
from driftlab.algorithms.drift_io import load_drift, save_drift
from driftlab.algorithms.evaluation import final_return
from driftlab.algorithms.storage import (
    JsonlWriter,
    atomic_write_bytes,
    read_yaml,
    write_json,
    write_yaml,
)
from driftlab.algorithms.trackers import Trackers, check_trackers
from driftlab.analysis.curves import plot_learning_curves
from driftlab.errors import DriftlabError
from driftlab.presets import deep_merge, train_preset
from driftlab.rundir import new_run_dir
from driftlab.software import software_record
from driftlab.stopping import raise_if_stopped
from driftlab.train_checks import DEFAULT_CHUNKS

if TYPE_CHECKING:
    from driftlab.sweep_run import SweepOutcome


@dataclass
class TrainOutcome:
    run_dir: Path
    final_returns: np.ndarray  # (seeds,) mean return over the last 10% of updates
    returns: np.ndarray  # (seeds, updates)
    timesteps: np.ndarray  # (updates,)
    seconds: float
    steps_per_second: float
    diverged: dict[int, int] = field(default_factory=dict)  # seed -> first non-finite update
    algo: str = ""  # what trained, where: for the printed summary
    env: str = ""
# Metrics whose non-finite value means the run diverged (returns may be NaN early on).
LOSS_METRICS = ("policy_loss", "value_loss", "entropy", "approx_kl", "drift")


def resolve_settings(env_id: str, config_file: str | None = None,
                     overrides: dict[str, Any] | None = None,
                     timesteps: float | None = None, algo: str | None = None) -> dict[str, Any]:
    """Preset for `env_id`, then a YAML file, then `--set` overrides, then `--timesteps`.

    `drift_by_algo: {ppo: {eps: 0.3}}` (a preset's, or a file's) gives one built-in
    algorithm's drift constants: with `algo` set they become `drift`'s defaults, which
    an explicit `drift:` / `--set drift.eps=...` overrides; otherwise the key is
    dropped (a learned `--drift` file or a discovery's inner runs bring their own)."""
    settings = train_preset(env_id)
    if config_file:
        settings = deep_merge(settings, read_yaml(config_file))
    settings = deep_merge(settings, overrides or {})
    if timesteps is not None:
        settings["total_timesteps"] = int(timesteps)
    by_algo = settings.pop("drift_by_algo", None) or {}
    if not isinstance(by_algo, dict) or not all(isinstance(v, dict) for v in by_algo.values()):
        raise DriftlabError(f"drift_by_algo must map algorithm names to their drift constants, "
                            f"e.g. {{ppo: {{eps: 0.3}}}}, got {by_algo!r}")
    explicit = settings.get("drift")
    if by_algo.get(algo) and (explicit is None or isinstance(explicit, dict)):
        settings["drift"] = deep_merge(by_algo[algo], explicit or {})
    return settings


def saved_params(result: Any) -> dict[str, Any]:
    """What params.msgpack holds, on the host: actor, critic and the observation
    normaliser's mean and var (None without one); leading axes as trained."""
    return jax.device_get({"actor": result.params["actor"], "critic": result.params["critic"],
                           "obs_stats": None if result.obs_stats is None else
                           {"mean": result.obs_stats.mean, "var": result.obs_stats.var}})


def resolve_drift(algo: str, drift_path: str | None, options: dict[str, Any]) -> tuple[Drift, Any]:
    """The drift for `--algo` (built-in) or loaded from `--drift` (learned/distilled)."""
    if drift_path:
        drift, params = load_drift(drift_path)
        loaded_kind = drift.spec.get("kind")
        if algo not in (loaded_kind, drift.name):
            raise DriftlabError(
                f"--algo {algo} does not match the drift in {drift_path} (kind {loaded_kind!r}); "
                f"use --algo {loaded_kind}")
        return drift, params
    if algo == "distilled":
        raise DriftlabError("--algo distilled needs --drift FILE (written by `driftlab distill`)")
    drift = make_drift(algo, **options)
    return drift, drift.default_params


def build(env_id: str, algo: str, settings: dict[str, Any], drift_path: str | None = None):
    """(env, config, drift, drift_params) from resolved settings."""
    settings = dict(settings)
    drift_options = settings.pop("drift", None) or {}  # the only non-TrainConfig key
    config = TrainConfig.from_dict(settings)
    env = envs.make(env_id, **config.env_options)
    drift, params = resolve_drift(algo, drift_path, drift_options)
    return env, config, drift, params


def loaded_drift_file(drift_path: str | None) -> str | None:
    """The drift file a run loaded, as config.yaml records it: the absolute path of
    what `load_drift` read (a bare shipped name means the shipped folder even where a
    folder of that name sits in the working directory; stderr says so then)."""
    import sys

    from driftlab.algorithms.drift_io import resolve_drift_path
    from driftlab.algorithms.shipped import written_as_path

    if not drift_path:
        return drift_path
    loaded = resolve_drift_path(drift_path)
    if loaded != Path(drift_path) and not written_as_path(drift_path) and Path(drift_path).exists():
        print(f"note: --drift {drift_path} is the shipped drift {loaded}; the folder "
              f"./{drift_path} here was not used (write ./{drift_path} for it)", file=sys.stderr)
    return str(loaded.resolve()) if loaded.exists() else str(drift_path)


def drift_record(drift: Drift, params: Any) -> dict[str, Any]:
    """The drift's spec plus its scalar constants (DPO's alpha and beta, PPO's eps, a
    formula's constants) as plain numbers, so config.yaml says what was trained; a
    network's parameters are in the run's drift.params.msgpack."""
    record = dict(drift.spec)
    leaves = jax.tree_util.tree_leaves_with_path(params)
    if leaves and all(np.ndim(v) == 0 for _, v in leaves):
        for path, value in leaves:
            name = "/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path)
            record[name] = float(value)
    return record


def chunk_length(n_updates: int, chunks: int) -> int:
    """Updates per jitted chunk: about n_updates/chunks. Every chunk runs the same
    program (see `chunk_runner`), so the count need not divide n_updates."""
    return max(1, min(n_updates, math.ceil(n_updates / max(1, chunks))))


def over_seeds(fn, seeds: int, in_axes: tuple = (0,)):
    """`fn` mapped over a leading seed axis of the arguments whose `in_axes` is 0:
    `jax.vmap` for several seeds; for one, `fn` itself with the axis taken off and
    put back (a vmap of size one costs ~5% of the run on CPU)."""
    if seeds > 1:
        return jax.vmap(fn, in_axes=in_axes)

    def one_seed(*args):
        args = [jax.tree.map(lambda x: x[0], a) if axis == 0 else a
                for a, axis in zip(args, in_axes, strict=True)]
        return jax.tree.map(lambda x: x[None], fn(*args))

    return one_seed


def chunk_runner(trainer: Trainer, drift_params: Any, length: int, seeds: int):
    """`run(states, n) -> (states, metrics)`: the next `n <= length` updates of
    every seed (leading axis of `states`; `seeds` of them), jitted once for the run.

    `n` is a traced value: the scan always has `length` steps and a step past
    `n` is a no-op (a `lax.cond` on an unbatched predicate, so it costs nothing
    and leaves the state untouched); its metrics rows are padding to drop. A
    shorter last chunk therefore compiles no second program."""
    def run_chunk(state, n):
        def step(s, i):
            return jax.lax.cond(i < n, lambda s: trainer.update(s, drift_params),
                                lambda s: (s, skipped), s)

        shapes = jax.eval_shape(lambda s: trainer.update(s, drift_params)[1], state)
        skipped = jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), shapes)
        return jax.lax.scan(step, state, jnp.arange(length))

    return jax.jit(over_seeds(run_chunk, seeds, in_axes=(0, None)))


def compile_beside(init, run_chunk, keys: jax.Array) -> tuple[Any, Any]:
    """(`init(keys)`, the compiled chunk program or None), the chunk program compiled
    in a second thread meanwhile (XLA compiles outside the GIL: on a cold cache the
    two compiles overlap instead of adding up). The compiled program lands in jit's
    cache for `run_chunk`'s calls; it is returned for its memory analysis
    (`driftlab.memory.check_fits`)."""
    import threading

    shapes = jax.eval_shape(init, keys)
    compiled: list[Any] = [None]

    def compile_chunk() -> None:
        try:
            compiled[0] = run_chunk.lower(shapes, np.int32(0)).compile()
        except Exception:  # noqa: BLE001 - the first real call compiles again and reports it
            pass

    thread = threading.Thread(target=compile_chunk, daemon=True)
    thread.start()
    state = init(keys)
    thread.join()
    return state, compiled[0]


def state_devices(state: Any) -> list[Any]:
    """The devices a run's state lives on (where its programs run)."""
    leaf = jax.tree.leaves(state)[0]
    return sorted(leaf.devices(), key=lambda d: d.id)


def check_memory(compiled: Any, state: Any, what: str, fix: str) -> None:
    """Refuse (one-line DriftlabError) a training run whose chunk program needs more
    memory than is free: called before its run directory appears."""
    from driftlab.memory import check_fits

    check_fits(compiled, state_devices(state), what, fix)


def train_run(env_id: str, algo: str, settings: dict[str, Any], *, seeds: int = 1,
              seed: int = 0, drift_path: str | None = None, out: str | Path | None = None,
              chunks: int = DEFAULT_CHUNKS, progress: bool = True, plot: bool = True,
              tensorboard: bool = False, wandb: bool = False,
              wandb_project: str = "driftlab",
              sweep: dict[str, Any] | None = None) -> TrainOutcome | SweepOutcome:
    """Train `seeds` agents in one vmapped jit and write a run directory.

    `tensorboard` / `wandb`: also log every update's record (mean and per-seed
    returns, losses, drift statistics) there (`algorithms.trackers`).
    `sweep`: {key: [values]} over numeric hyperparameters and drift constants
    (`{"learning_rate": [1e-4, 3e-4], "drift.alpha": [1, 2]}`): every combination x
    `seeds` in one compiled program, one run directory (`driftlab.sweep`); returns a
    SweepOutcome."""
    if sweep is not None:
        from driftlab.sweep_run import train_sweep

        return train_sweep(env_id, algo, settings, sweep, seeds=seeds, seed=seed,
                           drift_path=drift_path, out=out, chunks=chunks, progress=progress,
                           plot=plot, tensorboard=tensorboard, wandb=wandb,
                           wandb_project=wandb_project)
    if seeds < 1:
        raise DriftlabError(f"--seeds must be >= 1, got {seeds}")
    check_seed(seed, "--seed")
    check_trackers(tensorboard, wandb, DriftlabError)
    env, config, drift, drift_params = build(env_id, algo, settings, drift_path)
    trainer = Trainer(env, config, drift)
    n_updates = config.num_updates
    chunk = chunk_length(n_updates, chunks)
    init = jax.jit(over_seeds(trainer.init, seeds))
    run_chunk = chunk_runner(trainer, drift_params, chunk, seeds)
    keys = jax.random.split(jax.random.key(seed), seeds)

    start = time.time()
    state, compiled = compile_beside(init, run_chunk, keys)
    check_memory(compiled, state, f"training {seeds} seed(s) at once",
                 "train fewer seeds at once (--seeds) or fewer environments per seed "
                 "(--set num_envs=...)")  # before the run directory appears
    run_dir = new_run_dir(out, "train", f"{algo}-{env_id}")
    write_yaml(run_dir / "config.yaml", {
        "command": "train", "env": env_id, "algo": algo, "seeds": seeds, "seed": seed,
        "drift": drift_record(drift, drift_params),
        "drift_file": loaded_drift_file(drift_path),
        "train": config.to_dict(),
        "chunks": chunks,  # the loop's chunk length is part of the XLA program
        "trackers": {"tensorboard": tensorboard, "wandb": wandb},
        "software": software_record(),
    })
    # The drift the agents trained with, parameters and all: `inspect RUN` and `compare`
    # read this copy, never a path whose file may have changed since.
    save_drift(run_dir, drift, drift_params, name="drift",
               metadata={"source": "train", "note": f"the drift of this {algo} run"})
    trackers = Trackers(run_dir, tensorboard=tensorboard, wandb=wandb, project=wandb_project,
                        config={"env": env_id, "algo": algo, "seeds": seeds, "seed": seed,
                                "drift": drift.spec, **config.to_dict()})
    returns: list[np.ndarray] = []
    # Per seed, the first update whose losses were not finite (0: none so far).
    diverged_at = np.zeros(seeds, np.int64)
    bar = tqdm(total=n_updates * config.batch_size, unit="step", unit_scale=True,
               disable=not progress, desc=f"{algo} {env_id} (compiling)", dynamic_ncols=True)
    with JsonlWriter(run_dir / "metrics.jsonl", truncate=True) as log:
        done = 0
        while done < n_updates:
            raise_if_stopped()
            n = min(chunk, n_updates - done)
            state, metrics = run_chunk(state, np.int32(n))
            metrics = {k: v[:, :n] for k, v in jax.device_get(metrics).items()}  # (seeds, n)
            for i in range(n):
                per_seed = {k: np.asarray(v[:, i], dtype=np.float64) for k, v in metrics.items()}
                bad = ~np.all([np.isfinite(per_seed[k]) for k in LOSS_METRICS if k in per_seed],
                              axis=0)
                diverged_at[(diverged_at == 0) & bad] = done + i + 1
                record = {"update": done + i + 1,
                          "timesteps": (done + i + 1) * config.batch_size}
                record.update({k: float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")
                               for k, v in per_seed.items()})
                record["episode_return_per_seed"] = per_seed["episode_return"].tolist()
                log.write(record)
                trackers.log({k: v for k, v in record.items() if k != "timesteps"},
                             record["timesteps"])
            returns.append(np.asarray(metrics["episode_return"]))
            done += n
            bar.set_description(f"{algo} {env_id}")
            latest = np.asarray(metrics["episode_return"])[:, -1]
            bar.set_postfix(ret=f"{np.nanmean(latest):.1f}" if np.isfinite(latest).any() else "n/a")
            bar.update(n * config.batch_size)
    bar.close()
    trackers.close()
    seconds = time.time() - start

    result = trainer.result(state, {})
    saved = saved_params(result)
    # On the host copy, in numpy: per-leaf jnp checks would compile a dozen tiny programs.
    params_finite = np.all([np.isfinite(x).reshape(seeds, -1).all(axis=1)
                            for x in jax.tree.leaves((saved["actor"], saved["critic"]))], axis=0)
    diverged_at[(diverged_at == 0) & ~params_finite] = n_updates
    atomic_write_bytes(run_dir / "params.msgpack", serialization.msgpack_serialize(saved))
    all_returns = np.concatenate(returns, axis=1)
    timesteps = np.arange(1, n_updates + 1) * config.batch_size
    finals = final_return(all_returns)
    diverged = [int(i) for i in np.flatnonzero(diverged_at)]
    finals[diverged] = np.nan  # a diverged run's return is not a result
    sps = n_updates * config.batch_size * seeds / seconds
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all seeds diverged: mean of nothing
        mean, std = float(np.nanmean(finals)), float(np.nanstd(finals))
    write_json(run_dir / "summary.json", {
        "env": env_id, "algo": algo, "seeds": seeds, "timesteps": int(timesteps[-1]),
        "status": "diverged" if diverged else "ok",
        "diverged_seeds": diverged,
        "diverged_from_update": [int(diverged_at[i]) for i in diverged],
        "final_return_per_seed": finals, "final_return_mean": mean,
        "final_return_std": std, "seconds": seconds,
        "steps_per_second": sps,
    })
    if plot:
        plot_learning_curves({algo: (timesteps, all_returns)}, run_dir / "learning_curve.png",
                             f"{algo} on {env_id}: mean and 95% bootstrap band over seeds")
    return TrainOutcome(run_dir, finals, all_returns, timesteps, seconds, sps,
                        {int(i): int(diverged_at[i]) for i in diverged}, algo, env_id)
