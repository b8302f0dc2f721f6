"""The discovery configuration: one validated, flat-ish dataclass.

Inner training settings arrive already resolved (`train[env_id]` is the flat
dict `algorithms.TrainConfig.from_dict` takes, preset plus overrides): the
front door (driftlab) owns presets, discovery only checks and uses them.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from algorithms import ConfigError, TrainConfig
from algorithms.config import coerce, field_types

FITNESS_SHAPING = ("centered_rank", "z_score", "none")
PADDING = ("pad", "refuse")
INIT_MEANS = ("random", "zeros")
# How one inner run's final return is measured (see discovery/fitness.py run_score).
FITNESS_MODES = ("last_fraction", "final_update", "final_eval")


class DiscoveryError(ConfigError):
    """A discovery setting that cannot work; the message names the fix.

    Subclasses ConfigError so the CLI already prints it as one line."""


@dataclass(frozen=True)
class DiscoveryConfig:
    """Everything one ES meta-training run needs.

    ES: `strategy` (an evosax distribution-based algorithm, `Open_ES` by default)
    with `population` members for `generations` steps; `sigma`/`lr` start values
    decay by `*_decay` per generation down to `*_min` (Open_ES: sigma is the std
    schedule, lr the Adam learning rate; other strategies take sigma as std_init).
    Fitness of a member = mean over `envs` of (final return / reference), the
    final return averaged over `rollouts_per_member` seeds and measured as
    `fitness` says: "last_fraction" (default) the mean episodic return of the
    last `final_fraction` of updates; "final_update" the episode return of the
    last update (Goldie et al.); "final_eval" the final policy's mean return on
    `eval_envs` fresh episodes (Lu et al.). References use the same measure.
    """

    envs: tuple[str, ...] = ("gymnax/CartPole-v1",)
    heldout_envs: tuple[str, ...] = ()
    train: dict[str, dict[str, Any]] = field(default_factory=dict)  # resolved per env
    # drift family
    temporal: bool = False
    ppo_init: bool = False
    hidden: int = 128
    init_drift: str | None = None  # drift .json / run dir for the ES start
    # Without init_drift: "random" (default) draws the mean ~ N(0, init_scale^2) so that
    # antithetic pairs are different drifts; "zeros" is the published start, where the
    # bias-free odd LPO net makes theta and -theta the same drift.
    init_mean: str = "random"
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
    fitness_shaping: str = "centered_rank"
    # fitness
    rollouts_per_member: int = 1
    common_random_numbers: bool = True
    envs_per_generation: int | None = None  # sample this many of `envs` each generation
    normalize_fitness: bool | None = None  # None: on when several envs
    reference_returns: dict[str, float] = field(default_factory=dict)
    reference_seeds: int = 4
    final_fraction: float = 0.1  # used by fitness="last_fraction"
    fitness: str = "last_fraction"  # one of FITNESS_MODES
    eval_envs: int = 128  # fresh episodes per run for fitness="final_eval" (Lu et al.: 128)
    # bookkeeping
    seed: int = 0
    eval_every: int = 4
    eval_seeds: int = 4
    checkpoint_every: int = 1
    keep_checkpoints: int = 3
    population_padding: str = "pad"
    tensorboard: bool = False
    wandb: bool = False
    wandb_project: str = "driftlab"

    # ---- derived ----
    @property
    def normalized(self) -> bool:
        """Whether env returns are divided by a reference return."""
        if self.normalize_fitness is None:
            return len(self.envs) > 1
        return bool(self.normalize_fitness)

    @property
    def drift_options(self) -> dict[str, Any]:
        return {"temporal": self.temporal, "ppo_init": self.ppo_init, "hidden": self.hidden}

    # ---- construction ----
    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> DiscoveryConfig:
        """Build from a (preset + overrides) dict; unknown keys are errors and every
        value passes the typed step of its field's annotation (`algorithms.config.coerce`).
        `drift: {temporal, ppo_init, hidden}` may be nested."""
        if not isinstance(values, Mapping):
            raise DiscoveryError(f"discovery settings must be a mapping such as "
                                 f"{{population: 16}}, got {values!r}")
        values = dict(values)
        drift = values.pop("drift", None) or {}
        if not isinstance(drift, Mapping):
            raise DiscoveryError(f"drift must be a mapping like {{temporal: false, ppo_init: "
                                 f"true}} (dict), got {drift!r}")
        for key, value in drift.items():
            if key not in ("temporal", "ppo_init", "hidden"):
                raise DiscoveryError(f"unknown drift option {key!r}; "
                                     "use temporal, ppo_init, hidden")
            values[key] = value
        types_ = field_types(cls)
        for key in values:
            if key not in types_:
                close = difflib.get_close_matches(str(key), types_, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise DiscoveryError(f"unknown discovery setting {key!r}{hint}")
        values = {key: coerce(key, value, types_[key], DiscoveryError)
                  for key, value in values.items()}
        config = cls(**values)
        config.validate()
        return config

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["envs"], out["heldout_envs"] = list(self.envs), list(self.heldout_envs)
        return out

    def validate(self) -> None:
        """Raise DiscoveryError (one line, naming the fix) for unusable settings."""
        from discovery.strategy import check_strategy_name

        if not self.envs:
            raise DiscoveryError("the env list is empty; give at least one meta-training env, "
                                 "e.g. --set envs=[gymnax/CartPole-v1]")
        for env_id in (*self.envs, *self.heldout_envs):
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
        dupes = {e for e in self.envs if self.envs.count(e) > 1}
        if dupes:
            raise DiscoveryError(f"env(s) {sorted(dupes)} listed twice in envs; list each once")
        check_strategy_name(self.strategy)
        if self.population < 2:
            raise DiscoveryError(f"population must be >= 2, got {self.population}")
        if self.strategy == "Open_ES" and self.antithetic and self.population % 2:
            raise DiscoveryError(
                f"population={self.population} is odd but antithetic sampling needs pairs; "
                f"use population={self.population + 1} or set antithetic=false")
        for key in ("generations", "rollouts_per_member", "eval_every", "eval_seeds",
                    "checkpoint_every", "keep_checkpoints", "reference_seeds", "hidden",
                    "eval_envs"):
            if getattr(self, key) < 1:
                raise DiscoveryError(f"{key} must be >= 1, got {getattr(self, key)}")
        if self.init_mean not in INIT_MEANS:
            raise DiscoveryError(f"init_mean must be one of {', '.join(INIT_MEANS)}, "
                                 f"got {self.init_mean!r}")
        if not 0 < self.init_scale < math.inf:
            raise DiscoveryError(f"init_scale must be positive, got {self.init_scale}")
        if self.fitness_shaping not in FITNESS_SHAPING:
            raise DiscoveryError(f"unknown fitness_shaping {self.fitness_shaping!r}; "
                                 f"use one of {', '.join(FITNESS_SHAPING)}")
        if self.population_padding not in PADDING:
            raise DiscoveryError(f"population_padding must be 'pad' or 'refuse', "
                                 f"got {self.population_padding!r}")
        if self.fitness not in FITNESS_MODES:
            raise DiscoveryError(f"unknown fitness {self.fitness!r}; use one of "
                                 f"{', '.join(FITNESS_MODES)}")
        if not 0.0 < self.final_fraction <= 1.0:
            raise DiscoveryError(f"final_fraction must be in (0, 1], got {self.final_fraction}")
        for key in ("sigma", "lr"):
            if not 0 < getattr(self, key) < math.inf:
                raise DiscoveryError(f"{key} must be a positive number, got {getattr(self, key)}")
        for key in ("sigma_min", "lr_min"):
            if not 0 <= getattr(self, key) < math.inf:
                raise DiscoveryError(f"{key} must be a number >= 0 (0 = no floor), "
                                     f"got {getattr(self, key)}")
        for key in ("adam_b1", "adam_b2"):
            if not 0.0 <= getattr(self, key) < 1.0:
                raise DiscoveryError(f"{key} must be in [0, 1) (an Adam moment decay such as "
                                     f"0.9), got {getattr(self, key)}")
        for key in ("sigma_decay", "lr_decay"):
            if not 0 < getattr(self, key) <= 1:
                raise DiscoveryError(f"{key} must be in (0, 1] (1 = no decay), "
                                     f"got {getattr(self, key)}")
        if self.envs_per_generation is not None and not 1 <= self.envs_per_generation <= len(
                self.envs):
            raise DiscoveryError(f"envs_per_generation must be between 1 and {len(self.envs)} "
                                 f"(the number of envs), got {self.envs_per_generation}")
        for env_id, value in self.reference_returns.items():
            if not 0 < value < math.inf:
                raise DiscoveryError(f"reference return of {env_id} must be positive "
                                     f"(fitness divides by it), got {value}")

