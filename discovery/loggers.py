"""Where per-generation records go: metrics.jsonl always, TensorBoard and wandb
when enabled (optional extras, imported only then)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from driftlab.algorithms.storage import to_builtin
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


def truncate_metrics(path: str | Path, generation: int) -> None:
    """Drop records after `generation` (and a torn last line): a resumed run
    re-logs the generations after its checkpoint instead of duplicating them."""
    path = Path(path)
    if not path.is_file():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record.get("generation", 0) <= generation:
            kept.append(line)
    path.write_text("".join(f"{line}\n" for line in kept))


class MetricsLogger:
    """Append-and-flush JSON lines plus the optional backends; a no-op on
    processes other than the first (multi-host runs log once)."""

    def __init__(self, run_dir: str | Path, config: DiscoveryConfig, active: bool = True,
                 resume: bool = False):
        self.active = active
        self._tb = self._wandb = None
        self._handle = None
        if not active:
            return
        run_dir = Path(run_dir)
        self._handle = open(run_dir / "metrics.jsonl", "a" if resume else "w")  # noqa: SIM115
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
        record = to_builtin(record)
        self._handle.write(json.dumps(record) + "\n")
        self._handle.flush()
        step = int(record.get("generation", 0))
        scalars = _flat_scalars({k: v for k, v in record.items() if k != "generation"})
        if self._tb is not None:
            for name, value in scalars.items():
                self._tb.add_scalar(name, value, step)
            self._tb.flush()
        if self._wandb is not None:
            self._wandb.log(scalars, step=step)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.finish()
