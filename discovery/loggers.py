"""Where per-generation records go: metrics.jsonl always, TensorBoard and wandb
when enabled (`algorithms.trackers`, optional extras imported only then)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from driftlab.algorithms.storage import JsonlWriter
from driftlab.algorithms.trackers import Trackers
from driftlab.discovery.config import DiscoveryConfig, DiscoveryError


class MetricsLogger:
    """metrics.jsonl (appended and flushed line by line; a resumed run first
    drops what came after its checkpoint, `storage.truncate_jsonl`) plus the
    optional trackers; a no-op on processes other than the first (multi-host
    runs log once)."""

    def __init__(self, run_dir: str | Path, config: DiscoveryConfig, active: bool = True,
                 resume: bool = False):
        self.active = active
        self._log = None
        self._trackers = None
        if not active:
            return
        run_dir = Path(run_dir)
        self._log = JsonlWriter(run_dir / "metrics.jsonl", truncate=not resume)
        try:
            self._trackers = Trackers(run_dir, tensorboard=config.tensorboard,
                                      wandb=config.wandb, project=config.wandb_project,
                                      config=config.to_dict(), resume=resume)
        except DiscoveryError:
            raise
        except ValueError as err:  # a missing extra: the discovery's own error type
            raise DiscoveryError(str(err)) from None

    def write(self, record: dict[str, Any]) -> None:
        if not self.active:
            return
        record = self._log.write(record)
        step = int(record.get("generation", 0))
        self._trackers.log(curves(record), step)

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
        if self._trackers is not None:
            self._trackers.close()


def curves(record: dict[str, Any]) -> dict[str, Any]:
    """The part of a metrics record that trackers draw as curves. Raw per-rollout and
    per-seed data for later analysis are left out: rollout_fitness (rollouts x
    members), rollout_env_scores (members x envs x rollouts) and the validation's
    per-seed `scores`."""
    out = {k: v for k, v in record.items()
           if k not in ("generation", "rollout_fitness", "rollout_env_scores")}
    validation = out.get("validation")
    if isinstance(validation, dict) and isinstance(validation.get("envs"), dict):
        envs = {env_id: {k: v for k, v in entry.items() if k != "scores"}
                for env_id, entry in validation["envs"].items()}
        out["validation"] = {**validation, "envs": envs}
    return out
