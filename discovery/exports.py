"""What a discovery run leaves for use: drift.json (the ES mean), drift_best.json
(the best member), and with validation envs the validated snapshots
(snapshots/generation-NNNNN.json) and drift_selected.json, the one the run's
selection rule picks (discovery/selection.py). All are written with `save_drift` (atomic)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftlab.algorithms.drift_io import load_drift, save_drift
from driftlab.algorithms.storage import read_json
from driftlab.discovery import sharding
from driftlab.discovery.config import DiscoveryError
from driftlab.discovery.selection import (
    SELECTION_RULES,
    SNAPSHOTS,
    START_VALIDATION,
    Selection,
    SelectionError,
    select,
    snapshot_file,
    snapshot_name,
)

if TYPE_CHECKING:
    from driftlab.discovery.loop import Discovery, LoopState


def save_snapshot(discovery: Discovery, state: LoopState, run_dir: Path, generation: int,
                  validation: dict[str, Any]) -> None:
    """Keep the ES mean of `generation` (snapshots/generation-NNNNN.json + params;
    never pruned, unlike checkpoints) and re-export drift_selected.json: the
    snapshot the selection rule picks among all validated so far."""
    mean = discovery.mean_params(state)
    metadata = {"source": "discover", "generation": generation,
                "validation_score": validation["score"],
                "note": "ES mean snapshot, validated"}
    save_drift(run_dir / SNAPSHOTS, discovery.export_drift(mean), mean,
               name=snapshot_name(generation), metadata=metadata)
    try:
        export_selected(run_dir, discovery.config.selection, discovery.config.validation_envs)
    except SelectionError as err:
        raise DiscoveryError(str(err)) from None


def export_selected(run_dir: Path, rule: str, validation_envs: Sequence[str],
                    **metadata: Any) -> Selection | None:
    """Write drift_selected.json (+ params): the snapshot `rule` picks among the
    validated snapshots of `run_dir` (`selection.select`), with `metadata` added to
    its record; None (nothing written) when there is none to pick yet.
    SelectionError as `select` raises it."""
    chosen = select(run_dir, rule)
    if chosen is None:
        return None
    drift, params = load_drift(snapshot_file(run_dir, chosen.generation))
    save_drift(run_dir, drift, params, name="drift_selected", metadata={
        "source": "discover", "generation": chosen.generation,
        "validation_score": chosen.score, "selection": SELECTION_RULES[rule],
        "selection_rule": rule, **chosen.record(),
        "validation_envs": list(validation_envs),
        "note": "driftlab discover: the validation-selected ES snapshot", **metadata})
    return chosen


def validate_start(discovery: Discovery, run_dir: Path) -> dict[str, Any]:
    """Validate the ES's initial mean (generation 0) and keep it as a snapshot, so
    selection can fall back to the start when no later mean validates better (a
    PPO-initialised family then ships PPO's drift, not a worse one). A run
    resumed from before this existed is validated on resume. Returns the
    validation record (written to snapshots/start-validation.json too)."""
    from driftlab.algorithms.storage import write_json

    state = discovery.init()
    validation = discovery.validation(discovery.mean_params(state))
    (run_dir / SNAPSHOTS).mkdir(exist_ok=True)
    write_json(run_dir / SNAPSHOTS / START_VALIDATION, validation)
    save_snapshot(discovery, state, run_dir, 0, validation)
    return validation


def export_drifts(discovery: Discovery, state: LoopState, run_dir: Path, generation: int,
                  best_fitness: float) -> None:
    """drift.json (+ params): the ES mean; drift_best.json: the best member so far."""
    note = f"driftlab discover, {discovery.config.strategy}"
    mean = discovery.mean_params(state)
    save_drift(run_dir, discovery.export_drift(mean), mean, name="drift",
               metadata={"source": "discover", "generation": generation, "note": note})
    best, value = discovery.best(state)
    if best is not None:
        save_drift(run_dir, discovery.export_drift(best), best, name="drift_best",
                   metadata={"source": "discover", "generation": generation,
                             "fitness": best_fitness if math.isfinite(best_fitness) else value,
                             "note": f"{note}: best member"})


def _exported_generation(path: Path) -> int | None:
    """The `generation` field of an exported drift JSON (None if absent/unreadable)."""
    try:
        value = read_json(path).get("generation")
        return int(value) if value is not None else None
    except (ValueError, TypeError):  # RecordFileError is a ValueError
        return None


def refresh_exports(discovery: Discovery, state: LoopState, run_dir: Path,
                    generation: int) -> bool:
    """Re-export drift.json / drift_best.json from the checkpointed `state` of
    `generation` when either is missing or older (a crash between the checkpoint
    and the export). The files are those the uninterrupted run writes."""
    stale = False
    for name in ("drift.json", "drift_best.json"):
        found = _exported_generation(run_dir / name)
        if name == "drift_best.json" and discovery.best(state)[0] is None:
            continue  # no finite best member yet: never exported
        stale = stale or found is None or found < generation
    if stale:
        best = -float(sharding.to_host(state.es_state.best_fitness))
        export_drifts(discovery, state, run_dir, generation, best)
    return stale
