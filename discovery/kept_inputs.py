"""Copies of the drift files a discovery's settings name, kept in the run directory
when it starts: a distilled family's formula (`drift.from`) and the ES start
(`init_drift`). A resume builds the run from these copies, so it continues with what
the run started with wherever the originals went and whatever became of them (a
formula re-distilled in place, a run directory that gained a drift_selected.json).
config.yaml keeps the original paths, as provenance (exported drifts' `refined_from`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from driftlab.algorithms.drift_io import DriftFileError, load_drift, save_drift
from driftlab.discovery.errors import DiscoveryError

if TYPE_CHECKING:
    from driftlab.discovery.config import DiscoveryConfig

INPUTS = "inputs"
FAMILY = "family"  # inputs/family.json (+ params): the formula of drift.from
START = "init_drift"  # inputs/init_drift.json (+ params): the drift of init_drift


def named_inputs(config: DiscoveryConfig) -> dict[str, str]:
    """{FAMILY: drift.from, START: init_drift} for the files `config` names."""
    named = {}
    if config.drift.kind == "distilled" and config.drift.source:
        named[FAMILY] = str(config.drift.source)
    if config.init_drift:
        named[START] = str(config.init_drift)
    return named


def keep_inputs(config: DiscoveryConfig, run_dir: Path) -> None:
    """Copy each drift file `config` names into RUN_DIR/inputs/ (atomic writes; the
    same drift and parameters, with the original path recorded as `source`)."""
    for name, source in named_inputs(config).items():
        try:
            drift, params = load_drift(source)
        except DriftFileError as err:
            raise DiscoveryError(f"{name}: {err}") from None
        save_drift(Path(run_dir) / INPUTS, drift, params, name=name, metadata={
            "source": source, "note": "a copy kept when the run started; resumes read it"})


def kept_inputs(run_dir: Path | None) -> dict[str, str]:
    """{FAMILY / START: path of the copy} for the copies RUN_DIR keeps (none for runs
    started before copies were kept: they read the original paths)."""
    if run_dir is None:
        return {}
    folder = Path(run_dir) / INPUTS
    return {name: str(folder / f"{name}.json") for name in (FAMILY, START)
            if (folder / f"{name}.json").is_file()}


def reading_copies(config: DiscoveryConfig, inputs: dict[str, str]) -> DiscoveryConfig:
    """`config` with drift.from and init_drift pointing at the copies in `inputs`
    (`kept_inputs`); the settings the run reads its files by, never recorded."""
    if not inputs:
        return config
    drift = config.drift
    if FAMILY in inputs:
        drift = dataclasses.replace(drift, source=inputs[FAMILY])
    return dataclasses.replace(config, drift=drift,
                               init_drift=inputs.get(START, config.init_drift))
