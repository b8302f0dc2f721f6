"""`driftlab discover --reselect RUN_DIR --selection RULE`: choose a discovery's
shipped snapshot again under another selection rule, from the validation records
and snapshots the run already holds; nothing is trained or validated again.

A run's `selection` cannot change on `--resume` (it is not a resumable setting:
a resume must continue the run it started as). This is the one way to change it,
and it is recorded: drift_selected.json names the rule that chose it and the rule
it replaced (`reselected_from`); config.yaml (and config.started.yaml, so that a
later resume continues under the new rule) take the new rule, and config.yaml's
`reselections` lists every change with the generation each rule picked and the
software that made it. `beats_start` needs per-seed validation scores, which runs
validated before they were kept do not have: such a run is refused in one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from driftlab.errors import DriftlabError

RESELECTIONS = "reselections"  # config.yaml: the record of every change of rule


def reselect(run_dir: str | Path, rule: str) -> dict[str, Any]:
    """Re-export RUN/drift_selected.json under `rule` (discovery.selection's
    SELECTION_RULES) and record the change. Returns the reselection record
    ({from, to, generation, previous_generation, software})."""
    from driftlab.algorithms.storage import read_json, read_yaml, write_yaml
    from driftlab.discovery.config import DiscoveryConfig
    from driftlab.discovery.exports import export_selected
    from driftlab.discovery.selection import SELECTION_RULES, SelectionError
    from driftlab.discovery_settings import STARTED, check_unchanged_since_start, read_run_config
    from driftlab.hints import did_you_mean
    from driftlab.rundir import hold_lock
    from driftlab.software import software_record

    run_dir = Path(run_dir)
    if rule not in SELECTION_RULES:
        raise DriftlabError(f"--selection {rule!r} is not a selection rule"
                            f"{did_you_mean(rule, list(SELECTION_RULES))}; choose one of "
                            f"{', '.join(SELECTION_RULES)}")
    if not run_dir.is_dir():
        raise DriftlabError(f"--reselect {run_dir}: not a directory; give a discovery run "
                            "directory")
    saved = read_run_config(run_dir)
    if saved.get("command") != "discover" or not isinstance(saved.get("discovery"), dict):
        raise DriftlabError(f"--reselect {run_dir}: not a `driftlab discover` run directory")
    config = DiscoveryConfig.from_dict(saved["discovery"])
    if not config.validation_envs:
        raise DriftlabError(f"--reselect {run_dir}: the run has no validation envs, so there "
                            "are no validated snapshots to select among")
    hold_lock(run_dir)  # never while a discovery writes snapshots here
    check_unchanged_since_start(run_dir, saved)
    selected = run_dir / "drift_selected.json"
    previous = read_json(selected).get("generation") if selected.is_file() else None
    try:
        chosen = export_selected(run_dir, rule, config.validation_envs,
                                 reselected_from=config.selection)
    except SelectionError as err:
        raise DriftlabError(f"--reselect {run_dir}: {err}") from None
    if chosen is None:
        raise DriftlabError(f"--reselect {run_dir}: no validated snapshot to select among yet "
                            "(the start is validated when the run begins)")
    record = {"from": config.selection, "to": rule, "generation": chosen.generation,
              "previous_generation": previous, "software": software_record()}
    started = run_dir / STARTED
    if started.is_file():  # a later resume compares config.yaml with it
        data = read_yaml(started)
        if isinstance(data.get("discovery"), dict):
            write_yaml(started, {**data, "discovery": {**data["discovery"], "selection": rule}})
        else:  # older runs recorded the discovery settings alone
            write_yaml(started, {**data, "selection": rule})
    write_yaml(run_dir / "config.yaml", {
        **saved, "discovery": {**saved["discovery"], "selection": rule},
        RESELECTIONS: [*(saved.get(RESELECTIONS) or []), record]})
    return record
