"""ES meta-training of drift parameters: the jitted generation step and the driver.

One generation (one jit):

    ask -> pad to a multiple of the devices -> shard the members over the mesh
        -> vmap(train) for every meta-training env, members split over devices
        -> fitness = mean over envs of final return / reference
        -> NaN/inf made worst -> tell(negated fitness)

The driver around it logs, evaluates the ES mean, checkpoints and exports.
Keys are derived from (seed, generation) only, so a resumed run repeats an
uninterrupted one bit for bit.

The family evolved is the config's `drift:` block (LPO by default; DPO, PPO, a
distilled formula or any registered family). The ES moves unconstrained
coordinates that `discovery.strategy.SearchSpace` maps to the family's constants
(identity for LPO): members train, and exports hold, the real constants.

Longer than ~300 lines: the `Discovery` class (the jitted generation step and the
evaluations that reuse its compiled trainers) and the driver around it. The normalising
returns (references.py) and the exports (exports.py) are split out; moving the driver
to its own module is the next split.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax.flatten_util import ravel_pytree
from jax.sharding import Mesh
from tqdm.auto import tqdm

from driftlab import envs
from driftlab.algorithms import Drift, TrainConfig, Trainer, make_drift
from driftlab.algorithms.drift_io import DriftFileError, load_drift
from driftlab.algorithms.storage import (
    remove_interrupted_writes,
    truncate_jsonl,
)
from driftlab.discovery import checkpoint, fitness, sharding
from driftlab.discovery.config import DiscoveryConfig, DiscoveryError
from driftlab.discovery.drift_choice import family_options
from driftlab.discovery.exports import (
    export_drifts,
    refresh_exports,
    save_snapshot,
    validate_start,
)
from driftlab.discovery.inner_settings import InnerSettings
from driftlab.discovery.kept_inputs import kept_inputs, reading_copies
from driftlab.discovery.loggers import MetricsLogger
from driftlab.discovery.ranking_noise import ranking_record
from driftlab.discovery.references import resolve_random_returns, resolve_references
from driftlab.discovery.selection import start_validation
from driftlab.discovery.strategy import SearchSpace, make_strategy, search_space, strategy_sigma
from driftlab.stopping import raise_if_stopped

INIT_STREAM = 0x1417  # the random ES start
EVAL_STREAM = 0x5EED  # folded into the run key: evaluation seeds never meet training seeds
VALIDATION_STREAM = 0x7A1D  # the validation seeds: fixed for the run, so snapshots compare paired
SETTINGS_STREAM = 0x5E77  # folded into a generation's key: its sampled inner settings


@struct.dataclass
class LoopState:
    """Everything a checkpoint holds: ES state, the run's raw key, generations done."""

    es_state: Any
    key_data: jax.Array  # (2,) uint32, jax.random.key_data of the run key
    generation: jax.Array  # int32 scalar


def _a(name: str) -> str:
    return f"an {name}" if name[:1].lower() in "aeiou" or name == "LPO" else f"a {name}"


def _family_name(kind: Any) -> str:
    return str(kind).upper() if kind in ("lpo", "dpo", "ppo") else str(kind)


def build_drift(config: DiscoveryConfig) -> Drift:
    """The drift family `config.drift.kind` with its options; for `distilled`, the
    formula of `drift.from` (its constants are the default start)."""
    kind = config.drift.kind
    if kind != "distilled":
        try:
            return make_drift(kind, **config.drift.options)
        except ValueError as err:  # ConfigError, UnknownDriftError: checked by validate too
            raise DiscoveryError(f"drift: {err}") from None
    try:
        loaded, params = load_drift(config.drift.source)
    except DriftFileError as err:
        raise DiscoveryError(f"drift.from: {err}") from None
    found, source = loaded.spec.get("kind"), config.drift.source
    if found != "distilled":
        raise DiscoveryError(f"drift.from {source} is {_a(_family_name(found))} drift, "
                             f"not a distilled formula; evolve it with drift: {{kind: {found}}} "
                             f"and init_drift: {source}")
    if not jax.tree.leaves(params):
        raise DiscoveryError(f"the formula of {source} has no constants to evolve "
                             f"({loaded.spec.get('expression')}); pick one with constants")
    # The file's parameters (a refined formula's constants) are the family's start.
    return dataclasses.replace(loaded, default_params=jax.tree.map(jnp.asarray, params))


def load_initial_drift(config: DiscoveryConfig, drift: Drift) -> Any:
    """The ES start in drift parameters: those of `config.init_drift` (a drift of
    the same family), else for LPO (`init_mean`) a small random mean drawn from
    the run's seed, or zeros (published), and for every other family its
    defaults (the `drift:` options, a distilled formula's constants)."""
    kind = drift.spec.get("kind", config.drift.kind)
    if not config.init_drift:
        if kind != "lpo" or config.init_mean == "zeros":
            return drift.default_params
        flat, unravel = ravel_pytree(drift.default_params)
        key = jax.random.fold_in(jax.random.key(config.seed), INIT_STREAM)
        return unravel(flat + config.init_scale * jax.random.normal(key, flat.shape, flat.dtype))
    loaded, params = load_drift(config.init_drift)
    found = loaded.spec.get("kind")
    same = (found == kind
            and (kind != "distilled"
                 or loaded.spec.get("expression") == drift.spec.get("expression"))
            and jax.tree.structure(params) == jax.tree.structure(drift.default_params)
            and all(a.shape == b.shape for a, b in zip(jax.tree.leaves(params),
                                                       jax.tree.leaves(drift.default_params),
                                                       strict=True)))
    if not same:
        options = {k: v for k, v in drift.spec.items() if k != "kind"}
        if kind == "distilled":
            what = f" with the formula {drift.spec.get('expression')} of drift.from"
        else:
            what = f" with options {options}" if options else ""
        if found != kind:
            it = f"it is {_a(_family_name(found))} drift"
            fix = f"give {_a(_family_name(kind))} drift or set drift.kind={found}"
        else:
            it = f"it is {_a(_family_name(found))} drift with {loaded.spec.get('expression')}" \
                if kind == "distilled" else f"it has {loaded.spec}"
            fix = ("export one with the same temporal/hidden options" if kind == "lpo"
                   else "give one of the same family")
        raise DiscoveryError(f"init_drift {config.init_drift} is not {_a(_family_name(kind))} "
                             f"drift{what} ({it}); {fix}")
    return jax.tree.map(jnp.asarray, params)


class Discovery:
    """The jitted pieces of one discovery run (no files; see `run_discovery`)."""

    def __init__(self, config: DiscoveryConfig, references: dict[str, float] | None = None,
                 mesh: Mesh | None = None, random_returns: dict[str, float] | None = None,
                 inputs: dict[str, str] | None = None):
        """`inputs`: copies of the drift files `config` names, read instead of them
        ({"family": ..., "init_drift": ...}, discovery/kept_inputs.py)."""
        config.validate()
        self.config = config
        # the run's own copies; self.config (and so refined_from) keeps the originals
        read = reading_copies(config, inputs or {})
        self.drift = build_drift(read)
        self.init_params = load_initial_drift(read, self.drift)  # drift parameters
        self.space: SearchSpace = search_space(self.drift.spec.get("kind", config.drift.kind),
                                               self.init_params)
        self.init_coords = self.space.encode(self.init_params)  # what the ES moves
        self.es, self.es_params = make_strategy(config, self.init_coords)
        _, self.unravel = ravel_pytree(self.init_coords)
        # Closed-form families with few constants log them every generation.
        self.logs_constants = config.drift.kind != "lpo" and self.space.low_dimensional
        self.mesh = mesh if mesh is not None else sharding.make_mesh()
        self.num_devices = int(self.mesh.devices.size)
        self.padded = sharding.padded_size(config.population, self.num_devices,
                                           config.population_padding)
        self.trainers: dict[str, Trainer] = {}
        for env_id in (*config.envs, *config.heldout_envs, *config.validation_envs):
            train_config = TrainConfig.from_dict(config.train[env_id])
            env = envs.make(env_id, **train_config.env_options)
            self.trainers[env_id] = Trainer(env, train_config, self.drift)
        self.ppo = make_drift("ppo")  # the reference every normalised score is measured against
        self.inner: dict[str, InnerSettings] = {}
        self.variants: dict[str, list[tuple[Trainer, Trainer]]] = {}
        if config.randomized:  # one (drift, PPO) trainer pair per structural variant
            ranges = config.setting_ranges()
            for env_id in config.envs:
                inner = self.inner[env_id] = InnerSettings(ranges, config.train[env_id], env_id)
                env = self.trainers[env_id].env
                self.variants[env_id] = [(Trainer(env, c, self.drift), Trainer(env, c, self.ppo))
                                         for c in inner.configs]
        # A member's rollout buffer (observations, float32), the largest over the meta envs.
        member_bytes = config.rollouts_per_member * max(
            4 * t.config.batch_size * t.obs_dim for t in (self.trainers[e] for e in config.envs))
        self.member_batch = config.resolved_member_batch(self.mesh.devices.flat[0].platform,
                                                         member_bytes)
        references = references or {}
        if config.normalized:
            missing = [e for e in config.envs if e not in references]
            if missing:
                raise DiscoveryError(f"no reference return for {missing}; give "
                                     "reference_returns or let run_discovery compute them")
        self.references = {e: float(references[e]) if config.normalized else 1.0
                            for e in config.envs}
        random_returns = random_returns or {}
        self.randoms: dict[str, float] = {}
        if config.normalization == "random_ppo" and (config.normalized or config.validation_envs):
            missing = [e for e in config.scored_envs if e not in random_returns]
            if missing:
                raise DiscoveryError(f"no random-policy return for {missing}; give "
                                     "random_returns or let run_discovery measure them")
            self.randoms = {e: float(random_returns[e]) for e in config.scored_envs}
        self._validation_refs: dict[str, float] = {}
        self._eval_fns: dict[str, Any] = {}
        rep = sharding.replicated(self.mesh)
        info_shardings = {"population": sharding.population_sharding(self.mesh),
                          "fitness": rep, "clean_fitness": rep, "returns": rep,
                          "nan_count": rep, "env_mask": rep, "rollout_fitness": rep}
        if config.randomized:
            info_shardings.update(scores=rep, settings=rep, ppo_returns=rep,
                                  rollout_env_scores=rep)
        self.step = jax.jit(self.generation_step, out_shardings=(rep, info_shardings))

    # ---- state ----
    def init(self) -> LoopState:
        """The generation-0 state, replicated over the mesh."""
        key = jax.random.key(self.config.seed)
        es_state = self.es.init(jax.random.fold_in(key, 0x1A17), self.init_coords,
                                self.es_params)
        state = LoopState(es_state, jax.random.key_data(key), jnp.zeros((), jnp.int32))
        return self.to_device(sharding.to_host(state))

    def to_device(self, host_state: Any) -> LoopState:
        return sharding.put_replicated(host_state, self.mesh)

    def host_template(self) -> Any:
        """A host pytree shaped like the state (for restoring checkpoints)."""
        return sharding.to_host(self.init())

    def check_memory(self, state: LoopState, run_dir: Path) -> None:
        """Compile the generation program (the loop's calls reuse it from jit's cache)
        and refuse it, as a one-line DriftlabError, when it needs more memory than
        this process's devices have free (`driftlab.memory.check_fits`)."""
        from driftlab.memory import check_fits

        compiled = self.step.lower(state).compile()
        here = jax.process_index()
        devices = [d for d in self.mesh.devices.flat if d.process_index == here]
        config = self.config
        done = ("it holds no generation yet: --resume it once memory is free, or delete it "
                "and start again" if not checkpoint.list_checkpoints(run_dir)
                else "--resume it once memory is free")
        check_fits(compiled, devices,
                   f"a discovery generation ({config.population} members, "
                   f"{len(devices)} device(s))",
                   "train fewer members at once (--set member_batch=N), a smaller population "
                   "(--set population=N) or fewer inner environments (--set inner.num_envs=N); "
                   f"the run directory {run_dir} is left as it was ({done})")

    # ---- the generation ----
    def population_returns(self, population: Any, keys: jax.Array,
                           mask: jax.Array) -> jax.Array:
        """Final returns (members, envs, rollouts): one per inner run.

        population leaves (padded, ...) and keys (padded, envs, rollouts) arrive
        split over the mesh (sharding constraints in `generation_step`); the
        member axis is a pure batch axis, so XLA's partitioner gives each device
        its own members' training runs. (An explicit shard_map here deadlocked
        XLA:CPU on repeated calls with jax 0.10.2, and gave different numbers
        with and without out_shardings, so it is not used.)"""
        config = self.config
        sampled = config.envs_per_generation is not None
        members = keys.shape[0]
        columns = []
        for index, env_id in enumerate(config.envs):
            trainer = self.trainers[env_id]

            def run(trainer: Trainer = trainer, index: int = index) -> jax.Array:
                out = fitness.member_returns(trainer, population, keys[:, index],
                                             config.final_fraction, config.fitness,
                                             config.eval_envs, self.member_batch,
                                             self.num_devices)
                return out

            if sampled:  # unselected envs are skipped, not computed and masked
                columns.append(jax.lax.cond(
                    mask[index], run,
                    lambda: jnp.full((members, config.rollouts_per_member), jnp.nan)))
            else:
                columns.append(run())
        returns = jnp.stack(columns, axis=1)
        return jax.lax.with_sharding_constraint(returns,
                                                sharding.population_sharding(self.mesh))

    def generation_step(self, state: LoopState) -> tuple[LoopState, dict[str, Any]]:
        """ask -> sharded vmap(train) -> fitness -> tell. Pure; jitted as `self.step`."""
        config = self.config
        size, padded = config.population, self.padded
        gen_key = jax.random.fold_in(jax.random.wrap_key_data(state.key_data), state.generation)
        k_ask, k_tell, k_train, k_subset = jax.random.split(gen_key, 4)
        coords, es_state = self.es.ask(k_ask, state.es_state, self.es_params)
        population = self.space.decode(coords)  # the family's constants (LPO: coords)
        keys = jnp.stack([fitness.rollout_keys(jax.random.fold_in(k_train, i), size,
                                               config.rollouts_per_member,
                                               config.common_random_numbers)
                          for i in range(len(config.envs))], axis=1)  # (size, envs, rollouts)

        def pad(x: jax.Array) -> jax.Array:
            # Padding members copy member 0 (their results are dropped below).
            return jnp.concatenate([x, jnp.repeat(x[:1], padded - size, axis=0)], axis=0)

        members, member_keys = population, keys
        if padded > size:
            members, member_keys = jax.tree.map(pad, population), pad(keys)
        pop_sharding = sharding.population_sharding(self.mesh)
        members = jax.lax.with_sharding_constraint(members, pop_sharding)
        member_keys = jax.lax.with_sharding_constraint(member_keys, pop_sharding)
        mask = fitness.subset_mask(k_subset, len(config.envs), config.envs_per_generation)
        extra: dict[str, Any] = {}
        if config.randomized:
            k_settings = jax.random.fold_in(gen_key, SETTINGS_STREAM)
            returns, scores, extra = self.randomized_scores(members, member_keys, mask, k_settings)
            returns, scores = returns[:size], scores[:size]
            env_mask = mask if config.envs_per_generation else None
            ones = jnp.ones(len(config.envs), jnp.float32)
            raw = fitness.combine_env_returns(scores, ones, env_mask)
            per_rollout = extra.pop("rollout_scores")[:size]  # (size, envs, rollouts)
            rollout_fitness = jax.vmap(lambda s: fitness.combine_env_returns(s, ones, env_mask),
                                       in_axes=-1)(per_rollout)
            extra["scores"] = scores
            extra["rollout_env_scores"] = per_rollout
        else:
            per_rollout = self.population_returns(members, member_keys, mask)[:size]
            returns = per_rollout.mean(axis=-1)  # (size, envs)
            references = jnp.array([self.references[e] for e in config.envs], jnp.float32)
            random = (jnp.array([self.randoms[e] for e in config.envs], jnp.float32)
                      if config.normalization == "random_ppo" and config.normalized else None)
            env_mask = mask if config.envs_per_generation else None
            raw = fitness.combine_env_returns(returns, references, env_mask, random)
            rollout_fitness = jax.vmap(lambda r: fitness.combine_env_returns(
                r, references, env_mask, random), in_axes=-1)(per_rollout)
        # (rollouts, size): each rollout's fitness alone, for the ranking-noise record
        extra["rollout_fitness"] = rollout_fitness
        cleaned, nan_count = fitness.clean_fitness(raw)
        es_state, _ = self.es.tell(k_tell, coords, -cleaned, es_state, self.es_params)
        new_state = LoopState(es_state, state.key_data, state.generation + 1)
        info = {"population": members, "fitness": raw, "clean_fitness": cleaned,
                "returns": returns, "nan_count": nan_count, "env_mask": mask, **extra}
        return new_state, info

    def randomized_scores(self, population: Any, keys: jax.Array, mask: jax.Array,
                          k_settings: jax.Array) -> tuple[jax.Array, jax.Array, dict[str, Any]]:
        """Returns and normalised scores (members, envs), each the mean over rollouts,
        with inner settings drawn per (env, rollout) from `k_settings` and shared by
        every member. A rollout's score is (R - R_random) / gap, gap = the return of
        PPO trained with the same settings and key minus R_random (`rollout_weighting`
        "pooled": PPO's mean return over the generation's rollouts minus R_random),
        floored at `reference_floor` x the gap at the env's preset settings.

        Rollouts run in a `lax.scan`; in each, `lax.switch` runs only the sampled
        structural variant (epochs, minibatches, budget: each its own trainer).
        Also returns {"settings": {name: (envs, rollouts)}, "ppo_returns": (envs, rollouts),
        "rollout_scores": (members, envs, rollouts), each rollout's score alone}."""
        config = self.config
        members, rollouts = keys.shape[0], config.rollouts_per_member
        columns, scores, ppo_returns, settings, rollout_scores = [], [], [], [], []
        for index, env_id in enumerate(config.envs):
            inner, variants = self.inner[env_id], self.variants[env_id]
            combo, values = inner.sample(jax.random.fold_in(k_settings, index), rollouts)
            random, floor = self.randoms[env_id], self.gap_floor(env_id)

            def branch(pair: tuple[Trainer, Trainer]):
                trainer, ppo_trainer = pair

                def run(population: Any, rollout_keys: jax.Array, hp: Any):
                    returns = fitness.member_returns(
                        trainer, population, rollout_keys[:, None], config.final_fraction,
                        config.fitness, config.eval_envs, self.member_batch, self.num_devices,
                        hparams=hp)[:, 0]
                    key = rollout_keys[0]  # common random numbers: every member's key
                    ppo = fitness.run_score(ppo_trainer, ppo_trainer.train(
                        key, self.ppo.default_params, hp), key, config.fitness,
                        config.final_fraction, config.eval_envs)
                    return returns, ppo

                return run

            branches = [branch(pair) for pair in variants]

            def one_rollout(carry, xs, inner=inner, branches=branches):
                variant, sampled, rollout_keys = xs
                hp = inner.hyperparams(sampled)
                return carry, jax.lax.switch(variant, branches, population, rollout_keys, hp)

            def run_env(combo=combo, values=values, env_keys=keys[:, index], random=random,
                        floor=floor, one_rollout=one_rollout):
                _, (rets, ppo) = jax.lax.scan(one_rollout, None,
                                              (combo, values, jnp.swapaxes(env_keys, 0, 1)))
                if config.rollout_weighting == "pooled":  # every rollout alike, in returns
                    gap = jnp.fmax(jnp.nanmean(ppo) - random, floor)
                    per_rollout = (rets - random) / gap  # (rollouts, members)
                else:
                    gap = jnp.fmax(ppo - random, floor)  # fmax: a NaN PPO return takes the floor
                    per_rollout = (rets - random) / gap[:, None]  # (rollouts, members)
                return rets.mean(axis=0), per_rollout.mean(axis=0), ppo, per_rollout.T

            if config.envs_per_generation is not None:
                ret, score, ppo, per_rollout = jax.lax.cond(
                    mask[index], run_env,
                    lambda: (jnp.full((members,), jnp.nan), jnp.full((members,), jnp.nan),
                             jnp.full((rollouts,), jnp.nan),
                             jnp.full((members, rollouts), jnp.nan)))
            else:
                ret, score, ppo, per_rollout = run_env()
            columns.append(ret)
            scores.append(score)
            ppo_returns.append(ppo)
            rollout_scores.append(per_rollout)
            settings.append({"variant": combo, **values})
        constrain = partial(jax.lax.with_sharding_constraint,
                            shardings=sharding.population_sharding(self.mesh))
        names = sorted({k for s in settings for k in s})
        info = {"settings": {k: jnp.stack([jnp.asarray(s.get(k, jnp.full((rollouts,), jnp.nan)),
                                                       jnp.float32) for s in settings])
                             for k in names},
                "ppo_returns": jnp.stack(ppo_returns),
                "rollout_scores": constrain(jnp.stack(rollout_scores, axis=1))}
        return (constrain(jnp.stack(columns, axis=-1)), constrain(jnp.stack(scores, axis=-1)),
                info)

    def gap_floor(self, env_id: str) -> float:
        """The least PPO - random gap a randomised rollout on `env_id` divides by:
        `reference_floor` x the gap at the env's preset settings."""
        return self.config.reference_floor * (self.references[env_id] - self.randoms[env_id])

    # ---- reading the state ----
    def mean_params(self, state: LoopState) -> Any:
        """The ES mean as drift parameters (host arrays)."""
        return self.space.decode(self.unravel(jnp.asarray(sharding.to_host(state.es_state.mean))))

    def best(self, state: LoopState) -> tuple[Any | None, float]:
        """(best member's drift parameters, its fitness; higher is better), or (None, nan)."""
        value = -float(sharding.to_host(state.es_state.best_fitness))
        flat = np.asarray(sharding.to_host(state.es_state.best_solution))
        if not (math.isfinite(value) and np.all(np.isfinite(flat))):
            return None, float("nan")
        return self.space.decode(self.unravel(jnp.asarray(flat))), value

    def export_drift(self, params: Any) -> Drift:
        """The drift to save with `params`: its spec also holds the family's real
        constants (DPO's alpha and beta, PPO's eps, a formula's `constants`), so
        the JSON reads as the drift it is and `make_drift(**spec)` rebuilds it."""
        kind = self.drift.spec.get("kind")
        if kind == "lpo":
            return self.drift
        values = {name: value for name, value in self.space.constants(params).items()
                  if isinstance(value, float) and math.isfinite(value)}
        spec = dict(self.drift.spec)
        if kind == "distilled":
            spec["constants"] = {**spec.get("constants", {}), **values}
            for stale in ("latex", "formula", "fit"):  # they print the distilled constants
                spec.pop(stale, None)
            spec["refined_from"] = str(self.config.drift.source)
        else:
            accepted = family_options(kind)
            spec.update({name: value for name, value in values.items() if name in accepted})
        return dataclasses.replace(self.drift, spec=spec)

    def sigma(self, state: LoopState) -> float:
        std = strategy_sigma(state.es_state)
        return float(np.mean(sharding.to_host(std))) if std is not None else float("nan")

    # ---- evaluation ----
    def evaluate(self, params: Any, generation: int) -> dict[str, dict[str, float]]:
        """Train `eval_seeds` fresh agents with `params` on every meta-training and
        held-out env; per env: mean and std of the final return (measured as the
        members' fitness, `config.fitness`), and the normalised mean where the
        env has a reference."""
        config = self.config
        root = jax.random.fold_in(jax.random.key(config.seed), EVAL_STREAM)
        keys = jax.random.split(jax.random.fold_in(root, generation), config.eval_seeds)
        out: dict[str, dict[str, float]] = {}
        for env_id in (*config.envs, *config.heldout_envs):
            if env_id not in self._eval_fns:
                trainer = self.trainers[env_id]
                self._eval_fns[env_id] = jax.jit(jax.vmap(
                    lambda k, p, t=trainer: fitness.run_score(
                        t, t.train(k, p), k, config.fitness, config.final_fraction,
                        config.eval_envs),
                    in_axes=(0, None)))
            finals = np.asarray(self._eval_fns[env_id](keys, params), dtype=np.float64)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                entry = {"return_mean": float(np.nanmean(finals)),
                         "return_std": float(np.nanstd(finals))}
            if env_id in self.references and config.normalized:
                entry["normalized"] = entry["return_mean"] / self.references[env_id]
            out[env_id] = entry
        return out


    # ---- validation: which snapshot ships ----
    def validation(self, params: Any) -> dict[str, Any]:
        """The ES snapshot `params` on the validation envs: per env the mean return,
        the normalised score of each of `validation_seeds` fixed seeds (`scores`) and
        their IQM, and `score`, the IQMs' mean over envs (the selection statistic,
        discovery/selection.py).
        PPO's return on the same seeds is computed once per env and kept."""
        from scipy.stats import trim_mean

        config = self.config
        root = jax.random.fold_in(jax.random.key(config.seed), VALIDATION_STREAM)
        keys = jax.random.split(root, config.validation_seeds)
        out: dict[str, Any] = {"envs": {}}
        for env_id in config.validation_envs:
            finals = self._finals(env_id, keys, params)
            if env_id not in self._validation_refs:
                ppo_finals = self._finals(env_id, keys, self.ppo.default_params, ppo=True)
                if not np.isfinite(ppo_finals).any():
                    raise DiscoveryError(
                        f"PPO finished no episode in its last updates on validation env "
                        f"{env_id}, so it has no return to normalise a score with; raise the "
                        "env's budget (inner_per_env) or pick another env")
                ppo = float(np.nanmean(ppo_finals))
                random = self.randoms[env_id]
                if not ppo > random:
                    raise DiscoveryError(
                        f"PPO scores {ppo:.4g} on validation env {env_id}, not above the "
                        f"random policy's {random:.4g}: the env cannot normalise a score at "
                        "its settings; raise its budget (inner_per_env) or pick another env")
                self._validation_refs[env_id] = ppo
            ppo, random = self._validation_refs[env_id], self.randoms[env_id]
            seed_scores = (finals - random) / (ppo - random)
            scores = seed_scores[np.isfinite(seed_scores)]
            out["envs"][env_id] = {
                "return_mean": float(np.nanmean(finals)) if np.isfinite(finals).any()
                else float("nan"),
                "ppo_return": ppo, "random_return": random,
                "score_iqm": float(trim_mean(scores, 0.25)) if scores.size else float("nan"),
                # per seed, in seed order (None: no finite return), for selection: beats_start
                "scores": [float(v) if math.isfinite(v) else None for v in seed_scores]}
        values = [v["score_iqm"] for v in out["envs"].values()]
        out["score"] = float(np.mean(values)) if values else float("nan")
        return out

    def _finals(self, env_id: str, keys: jax.Array, params: Any, ppo: bool = False) -> np.ndarray:
        """Final returns (seeds,) of runs with `params` on `env_id` (the PPO drift if `ppo`)."""
        name = (env_id, ppo)
        if name not in self._eval_fns:
            base = self.trainers[env_id]
            trainer = Trainer(base.env, base.config, self.ppo) if ppo else base
            config = self.config
            self._eval_fns[name] = jax.jit(jax.vmap(
                lambda k, p, t=trainer: fitness.run_score(
                    t, t.train(k, p), k, config.fitness, config.final_fraction,
                    config.eval_envs),
                in_axes=(0, None)))
        return np.asarray(self._eval_fns[name](keys, params), dtype=np.float64)


# ---- the driver -----------------------------------------------------------------

@dataclass
class DiscoveryOutcome:
    run_dir: Path
    generations: int  # generations done in total
    history: list[dict[str, Any]] = field(default_factory=list)  # records logged by this call
    state: Any = None  # final LoopState as host numpy (bitwise comparable)
    mean_params: Any = None
    best_fitness: float = float("nan")
    # Closed-form families with few constants: {name: value} at the start and of the ES mean.
    start_constants: dict[str, Any] | None = None
    constants: dict[str, Any] | None = None


def score_of_means(member_returns: np.ndarray, ppo_returns: np.ndarray, random: float,
                   floor: float) -> float:
    """The members' mean return relative to PPO's over one generation's rollouts on one
    env: (mean R - R_random) / max(mean R_ppo - R_random, floor); 1 = PPO's mean.

    The fitness the ES ranks on (`env_score_mean`, `fitness_mean`) is instead the mean
    of each rollout's own ratio, (R_k - R_random) / (R_ppo,k - R_random): fine for
    ranking (every member divides by the same PPO run), but not an estimate of "x PPO":
    the rollouts where one PPO run did poorly dominate it (E[1 / X] != 1 / E[X]), in
    either direction. Measured on the committed transfer runs: Acrobot at 2.09 where
    the members' mean return was 1.29 of PPO's (transfer-asym, generation 4); 0.69
    where it was 0.84 (transfer-classic, mean of its last 10 generations)."""
    member, ppo = float(np.nanmean(member_returns)), float(np.nanmean(ppo_returns))
    return (member - random) / max(ppo - random, floor)


def _randomized_record(config: DiscoveryConfig, discovery: Discovery,
                       info: dict[str, Any]) -> dict[str, Any]:
    """Per env: the rollouts' sampled settings, PPO's returns with them, the members'
    mean normalised score (what the ES ranked) and their mean return relative to PPO's
    (`score_of_means`, the figure to quote); `score_of_means` alone: its mean over envs."""
    out: dict[str, Any] = {"env_score_mean": {}, "env_score_of_means": {},
                           "inner_settings": {}, "ppo_return": {}}
    scores = np.asarray(info["scores"], np.float64)
    returns = np.asarray(info["returns"], np.float64)
    ppo_returns = np.asarray(info["ppo_returns"], np.float64)  # (envs, rollouts)
    for i, env_id in enumerate(config.envs):
        if not bool(info["env_mask"][i]):
            continue
        out["env_score_mean"][env_id] = float(np.nanmean(scores[:, i]))
        out["env_score_of_means"][env_id] = score_of_means(
            returns[:, i], ppo_returns[i], discovery.randoms[env_id], discovery.gap_floor(env_id))
        values = {k: np.asarray(v)[i] for k, v in info["settings"].items()}
        variants = values.pop("variant").astype(int)
        out["inner_settings"][env_id] = [
            discovery.inner[env_id].describe(int(v), {k: x[r] for k, x in values.items()})
            for r, v in enumerate(variants)]
        out["ppo_return"][env_id] = [float(x) for x in ppo_returns[i]]
    values = list(out["env_score_of_means"].values())
    out["score_of_means"] = float(np.mean(values)) if values else float("nan")
    return out


def _summary(values: np.ndarray) -> dict[str, float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return {k: float("nan") for k in ("fitness_mean", "fitness_max", "fitness_min",
                                          "fitness_std")}
    return {"fitness_mean": float(finite.mean()), "fitness_max": float(finite.max()),
            "fitness_min": float(finite.min()), "fitness_std": float(finite.std())}


def run_discovery(config: DiscoveryConfig, run_dir: str | Path, *, resume: bool = False,
                  stop_after: int | None = None, progress: bool = True,
                  mesh: Mesh | None = None, discovery: Discovery | None = None
                  ) -> DiscoveryOutcome:
    """Run (or `resume`) ES meta-training in an existing `run_dir` up to
    `config.generations` (or `stop_after` generations in total, to pause).

    Writes metrics.jsonl, checkpoints/, drift.json / drift_best.json (+ params)
    and reference_returns.json (when fitness is normalised). Only process 0
    writes; every process runs the generation steps."""
    run_dir = Path(run_dir)
    main = jax.process_index() == 0
    if discovery is None:
        randoms = resolve_random_returns(config, run_dir)
        discovery = Discovery(config, resolve_references(config, run_dir, randoms), mesh,
                              randoms, inputs=kept_inputs(run_dir))
    state, start = discovery.init(), 0
    if resume:
        # A run killed before its first checkpoint resumes from scratch, in place
        # (same config, same keys: bitwise the run it would have been).
        if checkpoint.list_checkpoints(run_dir):
            start, host_state = checkpoint.load_latest_checkpoint(run_dir,
                                                                   discovery.host_template())
            state = discovery.to_device(host_state)
        if main:
            remove_interrupted_writes(run_dir)
            remove_interrupted_writes(checkpoint.checkpoint_dir(run_dir))
            truncate_jsonl(run_dir / "metrics.jsonl", "generation", start)
            if start > 0:  # a crash between checkpoint and export left them behind
                refresh_exports(discovery, state, run_dir, start)
    end = config.generations if stop_after is None else min(stop_after, config.generations)
    if start < end:  # before the first generation: a program too big is refused here
        discovery.check_memory(state, run_dir)
    if main and config.validation_envs and start_validation(run_dir) is None:
        validate_start(discovery, run_dir)  # the start is a selection candidate
    logger = MetricsLogger(run_dir, config, active=main, resume=resume)
    outcome = DiscoveryOutcome(run_dir, start)
    bar = tqdm(total=config.generations, initial=start, unit="gen", disable=not (progress and main),
               desc="discover (compiling)", dynamic_ncols=True)
    try:
        for generation in range(start + 1, end + 1):
            raise_if_stopped()
            tick = time.time()
            state, info = discovery.step(state)
            info = sharding.to_host({k: v for k, v in info.items() if k != "population"})
            seconds = time.time() - tick
            best = -float(sharding.to_host(state.es_state.best_fitness))
            record: dict[str, Any] = {"generation": generation, **_summary(info["fitness"]),
                                      "best_so_far": best, "sigma": discovery.sigma(state),
                                      "nan_count": int(info["nan_count"]), "seconds": seconds}
            returns = np.asarray(info["returns"], np.float64)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                record["env_return_mean"] = {
                    e: float(np.nanmean(returns[:, i]))
                    for i, e in enumerate(config.envs) if bool(info["env_mask"][i])}
                if config.randomized:  # what each env's rollouts were trained with
                    record.update(_randomized_record(config, discovery, info))
            if config.rollouts_per_member >= 2:  # how reproducible this generation's order is
                record["ranking_reliability"] = ranking_record(info["rollout_fitness"])
                # (rollouts, members): what it was computed from, for any later analysis
                record["rollout_fitness"] = np.asarray(info["rollout_fitness"]).tolist()
                if config.randomized:  # (members, envs, rollouts): each env's rollout alone
                    record["rollout_env_scores"] = np.asarray(
                        info["rollout_env_scores"]).tolist()
            if discovery.logs_constants:  # the ES mean's (and best member's) constants
                record["constants"] = discovery.space.constants(discovery.mean_params(state))
                best_params = discovery.best(state)[0]
                if best_params is not None:
                    record["best_constants"] = discovery.space.constants(best_params)
            if record["nan_count"]:
                warnings.warn(f"generation {generation}: {record['nan_count']} member(s) had a "
                              "NaN/inf fitness; ranked worst", stacklevel=2)
            last = generation == end
            if main and config.eval_every and (generation % config.eval_every == 0 or last):
                record["eval"] = discovery.evaluate(discovery.mean_params(state), generation)
            validate = config.validation_envs and (generation % config.validation_every == 0
                                                   or last)
            if main and validate:
                record["validation"] = discovery.validation(discovery.mean_params(state))
            logger.write(record)
            if main and validate:
                save_snapshot(discovery, state, run_dir, generation, record["validation"])
            outcome.history.append(record)
            if main and (generation % config.checkpoint_every == 0 or last):
                checkpoint.save_checkpoint(run_dir, generation, sharding.to_host(state),
                                           keep=config.keep_checkpoints)
                export_drifts(discovery, state, run_dir, generation, best)
            bar.set_description("discover")
            bar.set_postfix(best=f"{best:.3g}", mean=f"{record['fitness_mean']:.3g}")
            bar.update(1)
            outcome.generations = generation
    finally:
        bar.close()
        logger.close()
    outcome.state = sharding.to_host(state)
    outcome.mean_params = discovery.mean_params(state)
    outcome.best_fitness = -float(sharding.to_host(state.es_state.best_fitness))
    if discovery.logs_constants:
        outcome.start_constants = discovery.space.constants(discovery.init_params)
        outcome.constants = discovery.space.constants(outcome.mean_params)
    return outcome
