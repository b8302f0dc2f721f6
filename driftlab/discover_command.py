"""`driftlab discover`: meta-learn a drift with evolution strategies: the LPO
network (default), or the constants of DPO, PPO, a distilled formula or any
registered family (`drift: {kind: ...}`).

    driftlab discover --preset cartpole-tiny [--set key=value ...] [--out DIR]
    driftlab discover --resume RUN_DIR [--set generations=N]

Every input is checked (settings, envs and their options, the ES start, the
strategy, the devices, optional loggers) before the run directory or its
config.yaml is written, so a bad input leaves nothing behind. `--resume`
continues from the latest checkpoint; a run directory killed before its first
checkpoint starts over in place with its saved config (bitwise the run it
would have been), and exports left a generation behind by a crash are
re-written from the checkpoint. config.yaml is rewritten (atomically, keeping
`preset:`) only when a resumable setting changes.

Presets are configs/discover/NAME.yaml. Their `inner:` mapping (and
`inner_per_env: {env: {...}}`) is merged over each env's training preset;
the resolved per-env settings are stored in the run's config.yaml, so a
resumed run does not depend on presets that changed since.
"""

from __future__ import annotations

import argparse
import difflib
from pathlib import Path
from typing import Any

# Settings a resumed run may change: they do not alter the ES trajectory.
RESUMABLE = {"generations", "eval_every", "eval_seeds", "checkpoint_every", "keep_checkpoints",
             "tensorboard", "wandb", "wandb_project", "heldout_envs", "validation_every"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("discover", help="meta-learn a drift with evolution strategies",
                       description="ES meta-training of a drift on one or more envs: the LPO "
                                   "network (default), or the constants of another family "
                                   "(drift: {kind: dpo | ppo | distilled (from: FILE) | ...}); "
                                   "writes config.yaml, metrics.jsonl, checkpoints/, "
                                   "drift.json (ES mean) and drift_best.json (best member).")
    p.add_argument("--preset", help="a file stem of configs/discover/, e.g. cartpole-tiny")
    p.add_argument("--config", help="YAML file of discovery settings merged over the preset")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting, e.g. --set population=32 --set inner.num_envs=16")
    p.add_argument("--out", help="run directory to create (default runs/discover-...)")
    p.add_argument("--resume", metavar="RUN_DIR",
                   help="continue a run from its latest checkpoint (a run killed before its "
                        "first checkpoint starts over in place)")
    p.add_argument("--distributed", action="store_true",
                   help="call jax.distributed.initialize() so several hosts share one population")
    p.add_argument("--cpu-devices", default=None, metavar="auto|off|N",
                   help="split the host's CPU cores into N XLA devices for the population "
                        "(default auto: one per core, or $DRIFTLAB_CPU_DEVICES; off: one device)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def list_presets() -> list[str]:
    from driftlab.presets import CONFIG_DIR

    return sorted(p.stem for p in (CONFIG_DIR / "discover").glob("*.yaml"))


def preset_settings(name: str) -> dict[str, Any]:
    """The raw mapping of configs/discover/<name>.yaml."""
    from driftlab.algorithms.storage import read_yaml
    from driftlab.errors import DriftlabError
    from driftlab.presets import CONFIG_DIR

    path = CONFIG_DIR / "discover" / f"{name}.yaml"
    if not path.is_file():
        names = list_presets()
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise DriftlabError(f"unknown discovery preset {name!r}; {hint}"
                            f"choose one of {', '.join(names)}")
    return read_yaml(path)


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
    from driftlab.errors import DriftlabError
    from driftlab.presets import deep_merge

    if preset is None and config_file is None:
        raise DriftlabError("give --preset NAME (e.g. cartpole-tiny), --config FILE or --resume "
                            f"RUN_DIR; presets: {', '.join(list_presets())}")
    raw = preset_settings(preset) if preset else {}
    if config_file:
        raw = deep_merge(raw, read_yaml(config_file))
    raw = deep_merge(raw, overrides)
    return DiscoveryConfig.from_dict(resolve_discovery_settings(raw))


def read_run_config(run_dir: Path) -> dict[str, Any]:
    """The mapping of a discovery run directory's config.yaml (a DriftlabError
    if it is not one)."""
    from driftlab.algorithms.storage import read_yaml
    from driftlab.errors import DriftlabError

    saved = read_yaml(run_dir / "config.yaml")
    if not isinstance(saved.get("discovery"), dict):
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


# The settings a run started with, written once: a resume compares config.yaml with it,
# so a hand edit of a setting that shapes the ES run is named, not silently obeyed.
STARTED = "config.started.yaml"


def _differences(a: Any, b: Any, prefix: str = "") -> list[str]:
    """Dotted keys where the nested mappings `a` and `b` differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for key in sorted(set(a) | set(b), key=str):
            out += _differences(a.get(key), b.get(key), f"{prefix}{key}.")
        return out
    return [] if a == b else [prefix.rstrip(".")]


def check_unchanged_since_start(run_dir: Path, saved: dict[str, Any]) -> None:
    """A DriftlabError naming the first setting of config.yaml that is not resumable
    and differs from the one the run started with (config.started.yaml)."""
    from driftlab.algorithms.storage import read_yaml
    from driftlab.discovery.config import DiscoveryConfig
    from driftlab.errors import DriftlabError

    if not (run_dir / STARTED).is_file():  # runs of older versions: nothing to compare
        return
    started = DiscoveryConfig.from_dict(read_yaml(run_dir / STARTED)).to_dict()
    current = DiscoveryConfig.from_dict(saved["discovery"]).to_dict()
    scored = {*current.get("envs", []), *current.get("validation_envs", [])}
    # Inner settings of held-out envs (resumable) may be added; the others may not change.
    changed = [k for k in _differences(started, current) if k.split(".")[0] not in RESUMABLE
               and not (k.startswith("train.") and k.split(".")[1] not in scored)]
    if changed:
        key = changed[0]

        def value(d: dict[str, Any]) -> Any:
            for part in key.split("."):
                d = d.get(part) if isinstance(d, dict) else None
            return d

        raise DriftlabError(
            f"{run_dir}/config.yaml changed {key} from {value(started)!r} to {value(current)!r} "
            f"since the run started{' (and ' + str(len(changed) - 1) + ' more)' if len(changed) > 1 else ''}; "
            f"a resumed run cannot change it (only {', '.join(sorted(RESUMABLE))}): restore it "
            f"(the original is in {STARTED})")


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
    from driftlab.discovery.loop import Discovery

    for flag, module, extra in (("tensorboard", "tensorboardX", "tensorboard"),
                                ("wandb", "wandb", "wandb")):
        if getattr(config, flag) and importlib.util.find_spec(module) is None:
            raise DiscoveryError(f"{flag}=true needs {module}; pip install "
                                 f"'driftlab[{extra}]' (or set {flag}=false)")
    if config.normalized:  # a stand-in for the references: this one only checks
        with warnings.catch_warnings():  # the real construction warns (e.g. padding)
            warnings.simplefilter("ignore")
            discovery = Discovery(config, {env_id: 1.0 for env_id in config.envs},
                                  random_returns={e: 0.0 for e in config.scored_envs})
    else:
        discovery = Discovery(config, random_returns={e: 0.0 for e in config.scored_envs})
    if run_dir is not None and checkpoint.list_checkpoints(run_dir):
        with warnings.catch_warnings():  # run_discovery reads it again, and warns then
            warnings.simplefilter("ignore")
            checkpoint.load_latest_checkpoint(run_dir, discovery.host_template())
    # Measured random returns are needed where validation envs score snapshots.
    return None if config.normalized or config.validation_envs else discovery


def write_resumed_config(run_dir: Path, saved: dict[str, Any], config) -> bool:
    """Rewrite config.yaml (atomically) only when the resumed settings differ from
    the saved ones; every other key (command, preset) keeps its saved value."""
    from driftlab.algorithms.storage import write_yaml
    from driftlab.discovery.config import DiscoveryConfig

    if DiscoveryConfig.from_dict(saved["discovery"]) == config:
        return False
    write_yaml(run_dir / "config.yaml", {**saved, "discovery": config.to_dict()})
    return True


def run(args: argparse.Namespace) -> int:
    from driftlab.discovery.sharding import split_cpu_into_devices

    # Before any JAX backend starts: one CPU device per core (population split over them).
    split_cpu_into_devices(args.cpu_devices)
    if args.distributed:  # first: nothing may touch a JAX backend before this
        from driftlab.discovery.distributed import initialize_distributed

        initialize_distributed()
    import jax

    from driftlab.algorithms.storage import write_yaml
    from driftlab.discovery.loop import run_discovery
    from driftlab.errors import DriftlabError
    from driftlab.presets import parse_overrides
    from driftlab.rundir import check_output_dir, hold_lock, new_run_dir

    main = jax.process_index() == 0
    if args.resume:
        if args.preset or args.config or args.out:
            raise DriftlabError("--resume takes the settings of the run directory; drop "
                                "--preset/--config/--out (use --set generations=N to extend)")
        run_dir = Path(args.resume)
        if not run_dir.is_dir():
            raise DriftlabError(f"{run_dir} is not a directory; pass a discovery run directory "
                                "to --resume")
        if not (run_dir / "config.yaml").is_file():
            raise DriftlabError(f"{run_dir} has no config.yaml; pass a discovery run directory")
        overrides = parse_overrides(args.overrides)
        saved = read_run_config(run_dir)
        check_unchanged_since_start(run_dir, saved)
        config = resumed_config(run_dir, overrides, saved)
        discovery = preflight(config, run_dir)
        if main:
            hold_lock(run_dir)  # every check passed: from here on this process writes
            write_resumed_config(run_dir, saved, config)
    else:
        if main:
            check_output_dir(args.out)
        overrides = parse_overrides(args.overrides)
        config = build_config(args.preset, args.config, overrides)
        discovery = preflight(config)
        if main:  # only now, with every input checked, does the run directory appear
            run_dir = new_run_dir(args.out, "discover", args.preset or "custom")
            write_yaml(run_dir / "config.yaml", {"command": "discover", "preset": args.preset,
                                                 "discovery": config.to_dict()})
            write_yaml(run_dir / STARTED, config.to_dict())
        else:  # other hosts only need the path; process 0 creates it
            run_dir = Path(args.out or "runs/discover-secondary")
    outcome = run_discovery(config, run_dir, resume=bool(args.resume),
                            progress=not args.no_progress, discovery=discovery)
    if main:
        from driftlab.algorithms.storage import read_jsonl
        from driftlab.analysis.curves import plot_discovery_progress

        records = read_jsonl(run_dir / "metrics.jsonl")
        if records:
            plot_discovery_progress(records, run_dir / "progress.png",
                                    f"{config.strategy} on {', '.join(config.envs)}")
        last = outcome.history[-1] if outcome.history else {}
        print(f"\n{outcome.generations} generations of {config.strategy} (population "
              f"{config.population}) on {', '.join(config.envs)}")
        print(f"best fitness so far: {outcome.best_fitness:.4g}; last generation mean "
              f"{last.get('fitness_mean', float('nan')):.4g}")
        for env_id, entry in (last.get("eval") or {}).items():
            print(f"ES mean on {env_id}: {entry['return_mean']:.2f} +- {entry['return_std']:.2f}")
        if outcome.constants is not None:  # a closed-form family: its few constants
            def text(values: dict[str, Any]) -> str:
                return ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                 for k, v in values.items())

            print(f"constants: start {text(outcome.start_constants)}; ES mean "
                  f"{text(outcome.constants)}")
        kind = config.drift_kind
        algo = "ta-lpo" if kind == "lpo" and config.temporal else kind
        print(f"run directory: {run_dir} (train with: driftlab train --algo "
              f"{algo} --env ENV --drift {run_dir})")
    return 0
