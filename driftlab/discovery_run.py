"""Run a discovery: every input checked before the run directory appears, then ES
meta-training in it (`driftlab discover`, `driftlab.api.discover`).

Every input is checked (settings, envs and their options, the ES start, the
strategy, the devices, optional loggers) before the run directory or its
config.yaml is written, so a bad input leaves nothing behind. A resumed run
continues from the latest checkpoint; a run directory killed before its first
checkpoint starts over in place with its saved config (bitwise the run it
would have been), and exports left a generation behind by a crash are
re-written from the checkpoint. config.yaml is rewritten (atomically, keeping
`preset:`) only when a resumable setting changes. config.started.yaml (a copy of
config.yaml as the run started) is what a resume checks config.yaml against; a run
with checkpoints but without it is refused. A discovery stopped by Ctrl-C or
SIGTERM says how to continue it (`--resume RUN`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from driftlab.discovery_settings import (
    STARTED,
    build_config,
    check_started_recorded,
    check_unchanged_since_start,
    read_run_config,
    resumed_config,
    write_resumed_config,
)


@dataclass
class DiscoverResult:
    """A discovery's run directory, its settings and what the ES loop reported."""

    run_dir: Path
    config: Any  # driftlab.discovery.config.DiscoveryConfig
    outcome: Any  # driftlab.discovery.loop.DiscoveryOutcome: generations, history, best fitness
    primary: bool  # this process writes the run directory (process 0 of a distributed run)


def preflight(config, run_dir: Path | None = None):
    """Everything that can fail before the first generation, checked before any
    file is written: the envs and their options, the drift family and the ES
    start (`init_drift`), the strategy, the population's fit to the devices,
    the optional loggers and, for a resumed run, a readable checkpoint.

    Returns the `Discovery` when it is the one the run uses (fitness not
    normalised; otherwise it needs the reference returns, which
    `run_discovery` resolves in the run directory), else None."""
    import importlib.util
    import warnings

    from driftlab.discovery import checkpoint
    from driftlab.discovery.config import DiscoveryError
    from driftlab.discovery.kept_inputs import kept_inputs
    from driftlab.discovery.loop import Discovery

    for flag, module, extra in (("tensorboard", "tensorboardX", "tensorboard"),
                                ("wandb", "wandb", "wandb")):
        if getattr(config, flag) and importlib.util.find_spec(module) is None:
            raise DiscoveryError(f"{flag}=true needs {module}; pip install "
                                 f"'driftlab[{extra}]' (or set {flag}=false)")
    inputs = kept_inputs(run_dir)  # a resumed run reads its own copies
    if config.normalized:  # a stand-in for the references: this one only checks
        with warnings.catch_warnings():  # the real construction warns (e.g. padding)
            warnings.simplefilter("ignore")
            discovery = Discovery(config, {env_id: 1.0 for env_id in config.envs},
                                  random_returns={e: 0.0 for e in config.scored_envs},
                                  inputs=inputs)
    else:
        discovery = Discovery(config, random_returns={e: 0.0 for e in config.scored_envs},
                              inputs=inputs)
    if run_dir is not None and checkpoint.list_checkpoints(run_dir):
        with warnings.catch_warnings():  # run_discovery reads it again, and warns then
            warnings.simplefilter("ignore")
            checkpoint.load_latest_checkpoint(run_dir, discovery.host_template())
    # Measured random returns are needed where validation envs score snapshots.
    return None if config.normalized or config.validation_envs else discovery


def discover_run(preset: str | None, config_file: str | Path | None,
                 overrides: dict[str, Any], *, out: str | Path | None = None,
                 resume: str | Path | None = None, distributed: bool = False,
                 cpu_devices: str | int | None = None, progress: bool = True) -> DiscoverResult:
    """A new discovery from `preset` + `config_file` + `overrides` into `out`, or the
    run in `resume` continued (`overrides` then may only change RESUMABLE settings)."""
    from driftlab.discovery.sharding import split_cpu_into_devices

    # Before any JAX backend starts: one CPU device per core (population split over them).
    split_cpu_into_devices(cpu_devices)
    if distributed:  # first: nothing may touch a JAX backend before this
        from driftlab.discovery.distributed import initialize_distributed

        initialize_distributed()
    import jax

    from driftlab.algorithms.storage import write_yaml
    from driftlab.discovery.kept_inputs import keep_inputs
    from driftlab.discovery.loop import run_discovery
    from driftlab.errors import DriftlabError
    from driftlab.rundir import check_output_dir, hold_lock, new_run_dir
    from driftlab.software import software_record

    main = jax.process_index() == 0
    if resume:
        if preset or config_file or out:
            raise DriftlabError("--resume takes the settings of the run directory; drop "
                                "--preset/--config/--out (use --set generations=N to extend)")
        run_dir = Path(resume)
        if not run_dir.is_dir():
            raise DriftlabError(f"{run_dir} is not a directory; pass a discovery run directory "
                                "to --resume")
        saved = read_run_config(run_dir)  # missing, empty or damaged: how to restore it
        check_unchanged_since_start(run_dir, saved)
        config = resumed_config(run_dir, overrides, saved)
        discovery = preflight(config, run_dir)
        check_started_recorded(run_dir)  # checkpoints, but nothing to check config.yaml by
        if main:
            hold_lock(run_dir)  # every check passed: from here on this process writes
            if not (run_dir / STARTED).is_file():
                # Killed before it was written (and so before any checkpoint): the run
                # starts over in place with these settings.
                write_yaml(run_dir / STARTED, {**saved, "discovery": config.to_dict()})
            write_resumed_config(run_dir, saved, config)
    else:
        if main:
            check_output_dir(out)
        config = build_config(preset, config_file, overrides)
        discovery = preflight(config)
        if main:  # only now, with every input checked, does the run directory appear
            run_dir = new_run_dir(out, "discover", preset or "custom")
            record = {"command": "discover", "preset": preset, "discovery": config.to_dict(),
                      "software": software_record()}
            write_yaml(run_dir / "config.yaml", record)
            write_yaml(run_dir / STARTED, record)  # a resume compares config.yaml with it
            keep_inputs(config, run_dir)  # drift.from / init_drift: resumes read the copies
        else:  # other hosts only need the path; process 0 creates it
            run_dir = Path(out or "runs/discover-secondary")
    try:
        outcome = run_discovery(config, run_dir, resume=bool(resume), progress=progress,
                                discovery=discovery)
    except KeyboardInterrupt as err:  # Ctrl-C or SIGTERM: the run continues with --resume
        if main:
            err.resume_dir = run_dir  # type: ignore[attr-defined]
        raise
    if main:
        from driftlab.algorithms.storage import read_jsonl
        from driftlab.analysis.curves import plot_discovery_progress
        from driftlab.discovery.selection import start_validation

        records = read_jsonl(run_dir / "metrics.jsonl")
        if records:
            plot_discovery_progress(records, run_dir / "progress.png",
                                    f"{config.strategy} on {', '.join(config.envs)}",
                                    start_validation(run_dir))
    return DiscoverResult(run_dir, config, outcome, main)
