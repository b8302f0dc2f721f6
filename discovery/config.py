"""The discovery configuration: one validated, flat-ish dataclass.

Inner training settings arrive already resolved (`train[env_id]` is the flat
dict `algorithms.TrainConfig.from_dict` takes, preset plus overrides): the
front door (driftlab) owns presets, discovery only checks and uses them.

Longer than ~300 lines: every discovery setting with its check and one-line
error. The mapping -> dataclass step is shared with TrainConfig
(`algorithms.config.typed_fields`); the `drift:` block is its own value
(discovery/drift_choice.py).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from driftlab.algorithms import ConfigError, TrainConfig
from driftlab.algorithms.config import (
    check_adam_betas,
    check_seed,
    require_mapping,
    typed_fields,
)
from driftlab.discovery.drift_choice import LEGACY_KEYS, DriftChoice
from driftlab.discovery.errors import DiscoveryError
from driftlab.discovery.selection import SelectionRule
from driftlab.hints import did_you_mean

# The discovery modes, declared once as Literals (`coerce` checks a setting against its
# own).
FitnessShaping = Literal["centered_rank", "z_score", "none"]
Padding = Literal["pad", "refuse"]
InitMean = Literal["random", "zeros"]
# How one inner run's final return is measured (see discovery/fitness.py run_score).
FitnessMode = Literal["last_fraction", "final_update", "final_eval"]
# How an env's final return becomes a score that mixes with other envs' (loop.py):
# "ppo_ratio" R / R_PPO (the published normaliser: positive returns only);
# "random_ppo" (R - R_random) / (R_PPO - R_random): 0 = random policy, 1 = PPO, any sign.
Normalization = Literal["ppo_ratio", "random_ppo"]
# With randomize, how a member's rollouts on one env become its score: "per_rollout" the
# mean of each rollout's (R_k - R_random) / (R_PPO,k - R_random); "pooled" (mean_k R_k -
# R_random) / (mean_k R_PPO,k - R_random), every rollout weighted alike in return units
# (loop.py `score_of_means`).
RolloutWeighting = Literal["per_rollout", "pooled"]
FITNESS_MODES = get_args(FitnessMode)


# member_batch "auto" on CPU: members per vmapped batch fill about this many bytes
# of rollout observations (a few cores' share of cache plus what XLA keeps beside it).
CPU_BATCH_BYTES = 16 * 2**20


@dataclass(frozen=True)
class DiscoveryConfig:
    """Everything one ES meta-training run needs.

    ES: `strategy` (an evosax distribution-based algorithm, `Open_ES` by default)
    with `population` members for `generations` steps; `sigma`/`lr` start values
    decay by `*_decay` per generation down to `*_min` (Open_ES: sigma is the std
    schedule, lr the Adam learning rate; other strategies take sigma as std_init,
    and CMA-ES `sigma_min` as its std_min).
    The family evolved is the `drift:` block: {kind: lpo, temporal, ppo_init, hidden}
    (the default, also without `kind`), {kind: dpo | ppo [, its constants as the
    start]}, {kind: distilled, from: FILE} or a family added with `register_drift`;
    the ES moves unconstrained coordinates mapped onto the family's constants
    (discovery/strategy.py SearchSpace).
    Fitness of a member = mean over `envs` of (final return / reference), the
    final return averaged over `rollouts_per_member` seeds and measured as
    `fitness` says: "last_fraction" (default) the mean episodic return of the
    last `final_fraction` of updates; "final_update" the episode return of the
    last update (Goldie et al.); "final_eval" the final policy's mean return on
    `eval_envs` fresh episodes (Lu et al.). References use the same measure.
    """

    envs: tuple[str, ...] = ("gymnax/CartPole-v1",)
    heldout_envs: tuple[str, ...] = ()
    # Transfer (DESIGN.md): validation envs only choose which ES snapshot ships (the ES
    # mean every `validation_every` generations, `validation_seeds` fixed seeds); test envs
    # are recorded here and never trained on or evaluated by a discovery.
    validation_envs: tuple[str, ...] = ()
    validation_every: int = 4
    validation_seeds: int = 8
    # Which validated snapshot ships (discovery/selection.py): "max_score" (the highest
    # validation score) or "beats_start" (the start unless a snapshot beats it by more
    # than seed noise, paired over the validation seeds).
    selection: SelectionRule = "max_score"
    test_envs: tuple[str, ...] = ()
    train: dict[str, dict[str, Any]] = field(default_factory=dict)  # resolved per env
    # drift family: the `drift:` block, {kind: lpo|dpo|ppo|distilled|<registered>, ...}
    drift: DriftChoice = field(default_factory=DriftChoice)
    init_drift: str | None = None  # drift .json / run dir for the ES start (same family)
    # LPO without init_drift: "random" (default) draws the mean ~ N(0, init_scale^2) so that
    # antithetic pairs are different drifts; "zeros" is the published start, where the
    # bias-free odd LPO net makes theta and -theta the same drift. Closed-form families
    # start from their defaults (or `drift:` options, or init_drift); these are unused there.
    init_mean: InitMean = "random"
    init_scale: float = 0.03
    # ES
    strategy: str = "Open_ES"
    population: int = 16
    generations: int = 8
    antithetic: bool = True
    sigma: float = 0.03
    sigma_decay: float = 0.99
    sigma_min: float = 0.0
    lr: float = 0.03
    lr_decay: float = 0.99
    lr_min: float = 0.0
    adam_b1: float = 0.9
    adam_b2: float = 0.999
    fitness_shaping: FitnessShaping = "centered_rank"
    # fitness
    rollouts_per_member: int = 1
    common_random_numbers: bool = True
    envs_per_generation: int | None = None  # sample this many of `envs` each generation
    normalize_fitness: bool | None = None  # None: on when several envs
    reference_returns: dict[str, float] = field(default_factory=dict)
    reference_seeds: int = 4
    normalization: Normalization = "ppo_ratio"
    random_returns: dict[str, float] = field(default_factory=dict)  # else measured and cached
    # Ranges for inner settings (discovery/inner_settings.py), sampled per rollout and shared
    # by the generation's members; each rollout is normalised by a PPO run with its settings.
    randomize: dict[str, Any] = field(default_factory=dict)
    # With randomize: a rollout's PPO - random gap is floored at this fraction of the gap
    # at the env's preset settings, so a setting where PPO fails cannot blow up a score.
    reference_floor: float = 0.1
    rollout_weighting: RolloutWeighting = "per_rollout"  # with randomize; see the Literal
    final_fraction: float = 0.1  # used by fitness="last_fraction"
    fitness: FitnessMode = "last_fraction"
    eval_envs: int = 128  # fresh episodes per run for fitness="final_eval" (Lu et al.: 128)
    # bookkeeping
    seed: int = 0
    eval_every: int = 4  # 0: never train fresh seeds on the ES mean (the quickstart)
    eval_seeds: int = 4
    checkpoint_every: int = 1
    keep_checkpoints: int = 3
    population_padding: Padding = "pad"
    # Members trained together in one vmapped batch, per device: "auto" (on CPU as many as
    # fit CPU_BATCH_BYTES, see resolved_member_batch; all on accelerators), "all", or k.
    member_batch: int | str = "auto"
    tensorboard: bool = False
    wandb: bool = False
    wandb_project: str = "driftlab"

    # ---- derived ----
    def resolved_member_batch(self, platform: str, member_bytes: int) -> int | None:
        """`member_batch` for a device platform ("cpu", "gpu", "tpu"); None means all
        members in one vmapped batch. `auto` on CPU: as many members as keep their
        rollout buffers (`member_bytes` each) within CPU_BATCH_BYTES, at least one:
        larger batches spill out of cache and run slower than smaller ones in turn
        (benchmarks/discovery.py: Breakout 16x128 runs 1.05x single-run speed 4 at a
        time vs 0.99x all 16; CartPole 1.17x all vs 1.03x 4 at a time)."""
        if self.member_batch == "all" or (self.member_batch == "auto" and platform != "cpu"):
            return None
        if self.member_batch == "auto":
            return max(1, CPU_BATCH_BYTES // max(1, member_bytes))
        return int(self.member_batch)

    @property
    def normalized(self) -> bool:
        """Whether env returns are divided by a reference return."""
        if self.randomize:  # every rollout is scored against PPO with its own settings
            return True
        if self.normalize_fitness is None:
            return len(self.envs) > 1
        return bool(self.normalize_fitness)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> DiscoveryConfig:
        """Build from a (preset + overrides) dict; unknown keys are errors and every
        value passes the typed step of its field's annotation (`driftlab.algorithms.config.coerce`).
        `drift: {temporal, ppo_init, hidden}` may be nested."""
        values = require_mapping(values, "discovery settings", "{population: 16}",
                                 DiscoveryError)
        legacy = {key: values.pop(key) for key in LEGACY_KEYS if key in values}
        drift = DriftChoice.from_block(values.pop("drift", None), legacy)
        config = cls(**typed_fields(cls, values, "discovery setting", DiscoveryError,
                                    skip=["drift"], known_elsewhere=LEGACY_KEYS), drift=drift)
        config.validate()
        return config

    def to_dict(self) -> dict[str, Any]:
        """Plain settings that `from_dict` reads back; the family as a `drift:` block
        (where the drift fields stand)."""
        out = {f.name: (self.drift.block() if f.name == "drift" else
                        copy.deepcopy(getattr(self, f.name)))
               for f in dataclasses.fields(self)}
        for key in ("envs", "heldout_envs", "validation_envs", "test_envs"):
            out[key] = list(getattr(self, key))
        return out

    @property
    def randomized(self) -> bool:
        return bool(self.randomize)

    def setting_ranges(self):
        """The `randomize:` block as checked SettingRanges (discovery/inner_settings.py)."""
        from driftlab.discovery.inner_settings import RandomizeError, parse_randomize

        try:
            return parse_randomize(self.randomize)
        except RandomizeError as err:
            raise DiscoveryError(str(err)) from None

    @property
    def scored_envs(self) -> tuple[str, ...]:
        """Envs whose returns are turned into normalised scores: meta and validation."""
        return (*self.envs, *self.validation_envs)

    def validate(self) -> None:
        """Raise DiscoveryError (one line, naming the fix) for unusable settings."""
        from driftlab.discovery.strategy import check_strategy_name

        if not self.envs:
            raise DiscoveryError("the env list is empty; give at least one meta-training env, "
                                 "e.g. --set envs=[gymnax/CartPole-v1]")
        self.validate_env_sets()
        for env_id in (*self.envs, *self.heldout_envs, *self.validation_envs):
            if env_id not in self.train:
                raise DiscoveryError(f"no training settings for {env_id}; add it under `train:` "
                                     "(driftlab fills this from the env's preset)")
        for env_id, settings in self.train.items():
            try:
                TrainConfig.from_dict(settings)
            except DiscoveryError:
                raise
            except ConfigError as err:
                raise DiscoveryError(f"inner training settings of {env_id} (inner:, "
                                     f"inner_per_env: or train:): {err}") from None
        check_seed(self.seed, "seed", DiscoveryError)
        check_strategy_name(self.strategy)
        self.drift.validate()
        if self.population < 2:
            raise DiscoveryError(f"population must be >= 2, got {self.population}")
        if self.strategy == "Open_ES" and self.antithetic and self.population % 2:
            raise DiscoveryError(
                f"population={self.population} is odd but antithetic sampling needs pairs; "
                f"use population={self.population + 1} or set antithetic=false")
        if self.eval_every < 0:
            raise DiscoveryError(f"eval_every must be >= 0 (0: no evaluation), got "
                                 f"{self.eval_every}")
        for key in ("generations", "rollouts_per_member", "eval_seeds",
                    "checkpoint_every", "keep_checkpoints", "reference_seeds",
                    "eval_envs"):
            if getattr(self, key) < 1:
                raise DiscoveryError(f"{key} must be >= 1, got {getattr(self, key)}")
        if not 0 < self.init_scale < math.inf:
            raise DiscoveryError(f"init_scale must be positive, got {self.init_scale}")
        if not (self.member_batch in ("auto", "all") or (
                isinstance(self.member_batch, int) and self.member_batch >= 1)):
            raise DiscoveryError(f"member_batch must be auto, all or a whole number >= 1, "
                                 f"got {self.member_batch!r}")
        if not 0.0 < self.final_fraction <= 1.0:
            raise DiscoveryError(f"final_fraction must be in (0, 1], got {self.final_fraction}")
        for key in ("sigma", "lr"):
            if not 0 < getattr(self, key) < math.inf:
                raise DiscoveryError(f"{key} must be a positive number, got {getattr(self, key)}")
        for key in ("sigma_min", "lr_min"):
            if not 0 <= getattr(self, key) < math.inf:
                raise DiscoveryError(f"{key} must be a number >= 0 (0 = no floor), "
                                     f"got {getattr(self, key)}")
        check_adam_betas(self.adam_b1, self.adam_b2, DiscoveryError)
        for key in ("sigma_decay", "lr_decay"):
            if not 0 < getattr(self, key) <= 1:
                raise DiscoveryError(f"{key} must be in (0, 1] (1 = no decay), "
                                     f"got {getattr(self, key)}")
        if self.envs_per_generation is not None and not 1 <= self.envs_per_generation <= len(
                self.envs):
            raise DiscoveryError(f"envs_per_generation must be between 1 and {len(self.envs)} "
                                 f"(the number of envs), got {self.envs_per_generation}")
        for env_id, value in self.reference_returns.items():
            if self.normalization == "ppo_ratio" and not 0 < value < math.inf:
                raise DiscoveryError(f"reference return of {env_id} must be positive "
                                     f"(fitness divides by it), got {value}; for envs with "
                                     "negative returns set normalization=random_ppo")
            if not math.isfinite(value):
                raise DiscoveryError(f"reference return of {env_id} must be finite, got {value}")
        for env_id, value in self.random_returns.items():
            if not math.isfinite(value):
                raise DiscoveryError(f"random return of {env_id} must be finite, got {value}")
        for key in ("validation_every", "validation_seeds"):
            if getattr(self, key) < 1:
                raise DiscoveryError(f"{key} must be >= 1, got {getattr(self, key)}")
        if not 0 < self.reference_floor <= 1:
            raise DiscoveryError(f"reference_floor must be in (0, 1], got {self.reference_floor}")
        if self.rollout_weighting != "per_rollout" and not self.randomize:
            raise DiscoveryError(f"rollout_weighting: {self.rollout_weighting} applies to "
                                 "randomised inner settings only (without randomize every "
                                 "rollout is scored against the same reference); remove it")
        if self.randomize:
            if self.normalization != "random_ppo":
                raise DiscoveryError("randomize needs normalization=random_ppo: each rollout's "
                                     "return is scored against PPO with the same sampled settings")
            ranges = self.setting_ranges()
            from driftlab.discovery.inner_settings import InnerSettings, RandomizeError

            for env_id in self.envs:
                try:
                    InnerSettings(ranges, self.train[env_id], env_id)
                except RandomizeError as err:
                    raise DiscoveryError(str(err)) from None

    def validate_env_sets(self) -> None:
        """Meta-training, validation, test (and held-out) env sets are disjoint, and
        every test env exists (it is only recorded here, never built)."""
        sets = {"envs": self.envs, "validation_envs": self.validation_envs,
                "test_envs": self.test_envs}
        for key, values in sets.items():
            dupes = sorted({e for e in values if values.count(e) > 1})
            if dupes:
                raise DiscoveryError(f"env(s) {dupes} listed twice in {key}; list each once")
        names = list(sets)
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                shared = sorted(set(sets[a]) & set(sets[b]))
                if shared:
                    raise DiscoveryError(f"{shared} in both {a} and {b}: meta-training, "
                                         "validation and test envs must be disjoint")
        if set(self.heldout_envs) & set(self.test_envs):
            raise DiscoveryError("test_envs must not be evaluated during discovery; drop "
                                 f"{sorted(set(self.heldout_envs) & set(self.test_envs))} from "
                                 "heldout_envs")
        if self.test_envs:
            from driftlab.envs import list_envs

            known = set(list_envs())
            unknown = [e for e in self.test_envs if e not in known]
            if unknown:
                hint = did_you_mean(unknown[0], sorted(known))
                raise DiscoveryError(f"unknown test env {unknown[0]!r}{hint}; "
                                     "`driftlab envs` lists them")

