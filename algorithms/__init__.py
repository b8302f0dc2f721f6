"""Drifts and the Mirror-Learning trainer."""

from driftlab.algorithms import formula_drift  # noqa: F401  (registers the `distilled` drift family)
from driftlab.algorithms.config import ConfigError, Hyperparams, TrainConfig
from driftlab.algorithms.drifts import Drift, UnknownDriftError, make_drift, register_drift
from driftlab.algorithms.trainer import Trainer, TrainResult, make_train

__all__ = [
    "ConfigError",
    "Drift",
    "Hyperparams",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "UnknownDriftError",
    "make_drift",
    "make_train",
    "register_drift",
]
