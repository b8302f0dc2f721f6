"""Discovery settings: presets (configs/discover/NAME.yaml), a config file and
overrides merged into a validated DiscoveryConfig, and the checks a resumed run's
settings pass (`driftlab discover`, `driftlab.api.discover`).

A preset's `inner:` mapping (and `inner_per_env: {env: {...}}`) is merged over
each env's training preset; the resolved per-env settings are stored in the
run's config.yaml, so a resumed run does not depend on presets that changed since.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from driftlab.hints import did_you_mean

# Settings a resumed run may change: they do not alter the ES trajectory.
RESUMABLE = {"generations", "eval_every", "eval_seeds", "checkpoint_every", "keep_checkpoints",
             "tensorboard", "wandb", "wandb_project", "heldout_envs", "validation_every"}


def list_presets() -> list[str]:
    from driftlab.presets import CONFIG_DIR

    return sorted(p.stem for p in (CONFIG_DIR / "discover").glob("*.yaml"))


def preset_settings(name: str) -> dict[str, Any]:
    """The raw mapping of configs/discover/<name>.yaml. A relative `drift.from` names a
    file beside the preset (configs/discover/families/...): it becomes that file's
    absolute path, so the preset works from any directory and from an installed wheel."""
    from driftlab.algorithms.storage import read_yaml
    from driftlab.errors import DriftlabError
    from driftlab.presets import CONFIG_DIR

    path = CONFIG_DIR / "discover" / f"{name}.yaml"
    if not path.is_file():
        names = list_presets()
        raise DriftlabError(f"unknown discovery preset {name!r}{did_you_mean(name, names)}; "
                            f"choose one of {', '.join(names)}")
    settings = read_yaml(path)
    drift = settings.get("drift")
    if isinstance(drift, dict) and isinstance(drift.get("from"), str):
        beside = path.parent / drift["from"]
        if not Path(drift["from"]).is_absolute() and beside.is_file():
            settings["drift"] = {**drift, "from": str(beside.resolve())}
    return settings


def _mapping(key: str, value: Any) -> dict[str, Any]:
    from driftlab.discovery.config import DiscoveryError

    if value is None:
        return {}
    if not isinstance(value, dict):
        raise DiscoveryError(f"{key} must be a mapping of training settings such as "
                             f"{{num_envs: 16}} (dict), got {value!r}")
    return value


def resolve_discovery_settings(raw: dict[str, Any]) -> dict[str, Any]:
    """Discovery settings with `train` filled in: each env's training preset,
    then `inner`, then `inner_per_env[env]` (raw keys `inner*` are consumed)."""
    from driftlab.algorithms.config import coerce
    from driftlab.discovery.config import DiscoveryError
    from driftlab.presets import deep_merge
    from driftlab.training import resolve_settings

    raw = dict(raw)
    inner = _mapping("inner", raw.pop("inner", None))
    per_env = _mapping("inner_per_env", raw.pop("inner_per_env", None))
    given = _mapping("train", raw.pop("train", None))
    envs_ = coerce("envs", raw.get("envs") or [], tuple[str, ...], DiscoveryError)
    heldout = coerce("heldout_envs", raw.get("heldout_envs") or [], tuple[str, ...],
                     DiscoveryError)
    validation = coerce("validation_envs", raw.get("validation_envs") or [], tuple[str, ...],
                        DiscoveryError)
    train = {}
    for env_id in dict.fromkeys([*envs_, *heldout, *validation]):
        overrides = deep_merge(inner, _mapping(f"inner_per_env.{env_id}", per_env.get(env_id)))
        settings = resolve_settings(env_id, None, overrides)
        train[env_id] = deep_merge(settings, _mapping(f"train.{env_id}", given.get(env_id)))
    raw["train"] = train
    return raw


def build_config(preset: str | None, config_file: str | None, overrides: dict[str, Any]):
    """A validated DiscoveryConfig from preset + file + overrides."""
    from driftlab.algorithms.storage import read_yaml
    from driftlab.discovery.config import DiscoveryConfig
    from driftlab.discovery_overrides import check_not_shadowed
    from driftlab.errors import DriftlabError
    from driftlab.presets import deep_merge

    if preset is None and config_file is None:
        raise DriftlabError("give --preset NAME (e.g. cartpole-tiny), --config FILE or --resume "
                            f"RUN_DIR; presets: {', '.join(list_presets())}")
    raw = preset_settings(preset) if preset else {}
    if config_file:
        raw = deep_merge(raw, read_yaml(config_file))
    check_not_shadowed(raw, overrides)  # before a preset's per-env value hides one
    raw = deep_merge(raw, overrides)
    return DiscoveryConfig.from_dict(resolve_discovery_settings(raw))


def _has_checkpoints(run_dir: Path) -> bool:
    from driftlab.discovery import checkpoint

    return bool(checkpoint.list_checkpoints(run_dir))


def _restore_hint(run_dir: Path) -> str:
    """How to rebuild a missing or damaged config.yaml of a discovery run."""
    from driftlab.algorithms.storage import read_yaml

    started = run_dir / STARTED
    if not started.is_file():
        return (f"there is no {STARTED} to restore it from either: restore config.yaml from a "
                "backup, or start a new run")
    try:
        recorded = read_yaml(started)
    except Exception:  # damaged too: nothing to restore from
        return f"{started} is damaged too: restore config.yaml from a backup, or start a new run"
    if isinstance(recorded.get("discovery"), dict):  # a copy of config.yaml as it started
        return (f"restore it with `cp {started} {run_dir}/config.yaml` (the settings the run "
                "started with), then resume (adding again any --set generations=N you had "
                "given)")
    return (f"rebuild it from {started} (older runs record only the settings): "
            "`command: discover`, the run's `preset:` and a `discovery:` mapping holding "
            "that file's settings, then resume")


def read_run_config(run_dir: Path) -> dict[str, Any]:
    """The mapping of a discovery run directory's config.yaml (a DriftlabError
    if it is not one). A discovery run (config.started.yaml or checkpoints there)
    whose config.yaml is missing, empty or damaged is told how to restore it."""
    from driftlab.algorithms.storage import RecordFileError, read_yaml
    from driftlab.errors import DriftlabError

    path = run_dir / "config.yaml"
    discovery_run = (run_dir / STARTED).is_file() or _has_checkpoints(run_dir)
    if not path.is_file():
        if discovery_run:
            raise DriftlabError(f"{path} is missing; {_restore_hint(run_dir)}")
        raise DriftlabError(f"{run_dir} has no config.yaml; pass a discovery run directory")
    try:
        saved = read_yaml(path)
    except RecordFileError as err:
        if not discovery_run:
            raise
        raise DriftlabError(f"{err}; or {_restore_hint(run_dir)}") from None
    if not isinstance(saved.get("discovery"), dict):
        if discovery_run:
            what = ("is empty" if not saved else
                    "is damaged (it holds no `discovery:` mapping of settings)")
            raise DriftlabError(f"{path} {what}; {_restore_hint(run_dir)}")
        raise DriftlabError(f"{run_dir}/config.yaml is not from `driftlab discover`; "
                            "pass a discovery run directory to --resume")
    return saved


def resumed_config(run_dir: Path, overrides: dict[str, Any], saved: dict[str, Any] | None = None):
    from driftlab.discovery.config import DiscoveryConfig
    from driftlab.errors import DriftlabError
    from driftlab.presets import deep_merge

    saved = saved if saved is not None else read_run_config(run_dir)
    settings = saved["discovery"]
    refused = sorted(set(overrides) - RESUMABLE)
    if refused:
        raise DriftlabError(f"cannot change {', '.join(refused)} when resuming (it would change "
                            f"the ES run); only {', '.join(sorted(RESUMABLE))} may change")
    if "heldout_envs" in overrides:
        extra = resolve_discovery_settings({"envs": [], "heldout_envs": overrides["heldout_envs"]})
        settings = {**settings, "train": {**extra["train"], **(settings.get("train") or {})}}
    return DiscoveryConfig.from_dict(deep_merge(settings, overrides))


# The settings a run started with, written once (a copy of config.yaml as the run
# started; older runs stored only its `discovery:` settings): a resume compares
# config.yaml with it, so a hand edit of a setting that shapes the ES run, or of
# `preset:`, is named, not silently obeyed.
STARTED = "config.started.yaml"
# Keys of config.yaml that record rather than configure: the software the run started
# with and that of each resume that ran other software (a resume may update driftlab).
RECORDS = ("software", "resumed_with", "reselections")  # driftlab.reselection


def _differences(a: Any, b: Any, prefix: str = "") -> list[str]:
    """Dotted keys where the nested mappings `a` and `b` differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for key in sorted(set(a) | set(b), key=str):
            out += _differences(a.get(key), b.get(key), f"{prefix}{key}.")
        return out
    return [] if a == b else [prefix.rstrip(".")]


def check_unchanged_since_start(run_dir: Path, saved: dict[str, Any]) -> None:
    """A DriftlabError naming the first key of config.yaml that differs from the one
    the run started with (config.started.yaml): a top-level key (`preset:`,
    `command:`), or a discovery setting that is not resumable."""
    from driftlab.algorithms.storage import read_yaml
    from driftlab.discovery.config import DiscoveryConfig
    from driftlab.errors import DriftlabError

    if not (run_dir / STARTED).is_file():  # see check_started_recorded
        return
    recorded = read_yaml(run_dir / STARTED)
    if not recorded:
        raise DriftlabError(f"{run_dir}/{STARTED} is empty, so the run's settings cannot be "
                            "checked; restore it (a copy of config.yaml as the run started), "
                            "or start a new run")
    if isinstance(recorded.get("discovery"), dict):  # a copy of config.yaml
        top_started = {k: v for k, v in recorded.items() if k not in ("discovery", *RECORDS)}
        top_current = {k: v for k, v in saved.items() if k not in ("discovery", *RECORDS)}
        settings = recorded["discovery"]
    else:  # older runs recorded the discovery settings alone
        top_started = top_current = {}
        settings = recorded
    started = DiscoveryConfig.from_dict(settings).to_dict()
    current = DiscoveryConfig.from_dict(saved["discovery"]).to_dict()
    scored = {*current.get("envs", []), *current.get("validation_envs", [])}
    # Inner settings of held-out envs (resumable) may be added; the others may not change.
    changed = [k for k in _differences(started, current) if k.split(".")[0] not in RESUMABLE
               and not (k.startswith("train.") and k.split(".")[1] not in scored)]
    top = [k for k in sorted(set(top_started) | set(top_current), key=str)
           if top_started.get(k) != top_current.get(k)]
    if top or changed:
        key = (top or changed)[0]

        def value(d: dict[str, Any]) -> Any:
            if top:
                return d.get(key)
            for part in key.split("."):
                d = d.get(part) if isinstance(d, dict) else None
            return d

        before, after = (top_started, top_current) if top else (started, current)
        more = len(top) + len(changed) - 1
        raise DriftlabError(
            f"{run_dir}/config.yaml changed {key} from {value(before)!r} to {value(after)!r} "
            f"since the run started{f' (and {more} more)' if more else ''}; "
            f"a resumed run cannot change it (only {', '.join(sorted(RESUMABLE))}): restore it "
            f"(the original is in {STARTED})")


def check_started_recorded(run_dir: Path) -> None:
    """A DriftlabError if the run has checkpoints but no config.started.yaml: its
    config.yaml could have been edited since the ES state was saved, and the
    checkpoints hold the state alone, so nothing could tell."""
    from driftlab.errors import DriftlabError

    if not (run_dir / STARTED).is_file() and _has_checkpoints(run_dir):
        raise DriftlabError(
            f"{run_dir} has checkpoints but no {STARTED}, so its settings cannot be checked "
            f"against those the run started with; restore {run_dir}/{STARTED} (a copy of "
            "config.yaml as the run started), or start a new run")


def write_resumed_config(run_dir: Path, saved: dict[str, Any], config) -> bool:
    """Rewrite config.yaml (atomically) only when the resumed settings differ from
    the saved ones or this resume runs other software than the run has recorded
    (appended to `resumed_with`); every other key (command, preset) keeps its value."""
    from driftlab.algorithms.storage import write_yaml
    from driftlab.discovery.config import DiscoveryConfig
    from driftlab.software import software_difference, software_record

    record = dict(saved)
    if DiscoveryConfig.from_dict(saved["discovery"]) != config:
        record["discovery"] = config.to_dict()
    software = software_record()
    resumes = list(saved.get("resumed_with") or [])
    last = resumes[-1] if resumes else saved.get("software")
    if "software" in saved and last != software:
        record["resumed_with"] = [*resumes, software]
        why = software_difference(last, software)
        if why is not None:  # recorded either way; said when it can change the numbers
            print(f"note: resuming {run_dir} under other software than its last part ({why}); "
                  "the generations from here need not match an uninterrupted run bit for bit "
                  "(recorded under resumed_with in config.yaml)", file=sys.stderr, flush=True)
    if record == saved:
        return False
    write_yaml(run_dir / "config.yaml", record)
    return True
