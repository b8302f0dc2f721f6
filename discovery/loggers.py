"""Where per-generation records go: metrics.jsonl always, TensorBoard and wandb
when enabled (optional extras, imported only then)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from driftlab.algorithms.storage import JsonlWriter
from driftlab.discovery.config import DiscoveryConfig, DiscoveryError


def _flat_scalars(record: dict[str, Any], prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flat_scalars(value, f"{name}/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            if math.isfinite(float(value)):
                out[name] = float(value)
    return out


class MetricsLogger:
    """metrics.jsonl (appended and flushed line by line; a resumed run first
    drops what came after its checkpoint, `storage.truncate_jsonl`) plus the
    optional backends; a no-op on processes other than the first (multi-host
    runs log once)."""

    def __init__(self, run_dir: str | Path, config: DiscoveryConfig, active: bool = True,
                 resume: bool = False):
        self.active = active
        self._tb = self._wandb = None
        self._log = None
        if not active:
            return
        run_dir = Path(run_dir)
        self._log = JsonlWriter(run_dir / "metrics.jsonl", truncate=not resume)
        if config.tensorboard:
            try:
                from tensorboardX import SummaryWriter
            except ImportError:
                raise DiscoveryError("tensorboard=true needs tensorboardX; "
                                     "pip install 'driftlab[tensorboard]'") from None
            self._tb = SummaryWriter(str(run_dir / "tensorboard"))
        if config.wandb:
            try:
                import wandb
            except ImportError:
                raise DiscoveryError("wandb=true needs wandb; "
                                     "pip install 'driftlab[wandb]'") from None
            self._wandb = wandb.init(project=config.wandb_project, dir=str(run_dir),
                                     config=config.to_dict(), name=run_dir.name,
                                     resume="allow")

    def write(self, record: dict[str, Any]) -> None:
        if not self.active:
            return
        record = self._log.write(record)
        step = int(record.get("generation", 0))
        scalars = _flat_scalars({k: v for k, v in record.items() if k != "generation"})
        if self._tb is not None:
            for name, value in scalars.items():
                self._tb.add_scalar(name, value, step)
            self._tb.flush()
        if self._wandb is not None:
            self._wandb.log(scalars, step=step)

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.finish()
