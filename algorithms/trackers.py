"""Experiment trackers beside a run's metrics.jsonl: TensorBoard (tensorboardX) and
Weights & Biases, optional extras imported only when switched on. One class for
`train` (a record per update) and `discover` (a record per generation)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from driftlab.algorithms.config import ConfigError

EXTRAS = {"tensorboard": "tensorboardX", "wandb": "wandb"}


def flat_scalars(record: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Finite numbers of a nested record as {"a/b": value}; lists of numbers as
    {"a/0": ..., "a/1": ...} (per-seed values), anything else skipped."""
    out: dict[str, float] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flat_scalars(value, f"{name}/"))
        elif isinstance(value, list | tuple):
            out.update(flat_scalars({str(i): v for i, v in enumerate(value)}, f"{name}/"))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            if math.isfinite(float(value)):
                out[name] = float(value)
    return out


def check_trackers(tensorboard: bool, wandb: bool, error: type[Exception] = ConfigError) -> None:
    """`error` naming the extra to install when a requested tracker is missing."""
    import importlib.util

    for flag, wanted in (("tensorboard", tensorboard), ("wandb", wandb)):
        module = EXTRAS[flag]
        if wanted and importlib.util.find_spec(module) is None:
            raise error(f"{flag}=true needs {module}; pip install 'driftlab[{flag}]' "
                        f"(or set {flag}=false)")


class Trackers:
    """Scalars to TensorBoard (`run_dir/tensorboard`) and/or W&B (`run_dir/wandb`);
    a no-op when neither is on (or `active` is false: multi-host runs log once)."""

    def __init__(self, run_dir: str | Path, *, tensorboard: bool = False, wandb: bool = False,
                 project: str = "driftlab", config: dict[str, Any] | None = None,
                 active: bool = True, resume: bool = False):
        self._tb = self._wandb = None
        if not active:
            return
        check_trackers(tensorboard, wandb)
        run_dir = Path(run_dir)
        if tensorboard:
            from tensorboardX import SummaryWriter

            self._tb = SummaryWriter(str(run_dir / "tensorboard"))
        if wandb:
            import wandb as wandb_module

            self._wandb = wandb_module.init(project=project, dir=str(run_dir), config=config,
                                            name=run_dir.name,
                                            resume="allow" if resume else None)

    def log(self, record: dict[str, Any], step: int) -> None:
        if self._tb is None and self._wandb is None:
            return
        scalars = flat_scalars(record)
        if self._tb is not None:
            for name, value in scalars.items():
                self._tb.add_scalar(name, value, step)
            self._tb.flush()
        if self._wandb is not None:
            self._wandb.log(scalars, step=step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.finish()
