"""Checks of a training request before anything is read, built or written
(`driftlab train`, `driftlab evaluate` and their Python API)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from driftlab.errors import DriftlabError

# Jitted pieces a run is split into (progress, checkpoints); the XLA program depends on
# the chunk length, so config.yaml records it and `--rerun` uses the recorded one.
DEFAULT_CHUNKS = 20


def check_train_request(timesteps: float | None, seeds: int, chunks: int,
                        out: str | Path | None) -> None:
    """The numbers (env steps per seed, seed count, jitted chunks) and the output
    path, before anything is read or built."""
    from driftlab.rundir import check_output_dir

    if timesteps is not None and not (math.isfinite(timesteps) and timesteps >= 1):
        raise DriftlabError(f"--timesteps must be a positive, finite number of environment "
                            f"steps such as 5e5, got {timesteps}")
    if seeds < 1:
        raise DriftlabError(f"--seeds must be >= 1, got {seeds}")
    if chunks < 1:
        raise DriftlabError(f"--chunks must be >= 1, got {chunks}")
    check_output_dir(out)


def check_settings(algo: str, settings: dict[str, Any], drift_path: str | None) -> None:
    """Every setting through its typed step (TrainConfig, the drift family's options)
    before the run directory exists; `drift` is the only key besides TrainConfig's."""
    from driftlab.algorithms import TrainConfig, make_drift

    settings = dict(settings)
    drift_options = settings.pop("drift", None)
    if drift_options is not None and not isinstance(drift_options, dict):
        raise DriftlabError(f"drift must be a mapping of the drift's constants such as "
                            f"{{eps: 0.2}} (dict), got {drift_options!r}; use --set drift.eps=0.2")
    TrainConfig.from_dict(settings)
    if drift_path:
        if drift_options:
            raise DriftlabError(f"drift.{next(iter(drift_options))} sets a constant of a "
                                f"built-in drift, but --drift {drift_path} brings its own "
                                "parameters; drop the drift.* settings")
    elif algo != "distilled":
        make_drift(algo, **(drift_options or {}))
        if algo == "lpo":  # an untrained LPO net is no drift anyone meant to train with
            raise DriftlabError("--algo lpo needs --drift: a discovery run directory, a drift "
                                "JSON or a shipped drift name (`driftlab drifts` lists them)")
