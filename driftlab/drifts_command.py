"""`driftlab drifts`: list the shipped drifts, or ship a discovery run as one.

    driftlab drifts                                   # name, meta envs, budget, generations
    driftlab drifts --ship RUN_DIR --name NAME [--heldout ENV ...] [--dest DIR]

Shipping copies what `discover` exported (drift.json + params) and its
metrics.jsonl into `drifts/NAME/`, and writes `train.yaml` (the inner training
settings of the first meta-training env, for `driftlab train --config`) and
`provenance.yaml` (meta_envs, heldout_envs, timesteps, discovery config,
generations, wall-clock, the software the run recorded).

Longer than ~300 lines: listing, and shipping both discovery runs and distilled
formulas, each with its refusals (held-out envs the run saw, a folder that is
already shipped, an empty or self-overwriting destination).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import re
from pathlib import Path
from typing import Any

from driftlab.hints import did_you_mean

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("drifts", help="list the shipped drifts (or ship a discovery run)",
                       description="List the drifts shipped with driftlab (usable by name in "
                                   "train --drift, inspect, distill and as a discovery "
                                   "init_drift), or package a finished discovery run as one.")
    p.add_argument("--ship", metavar="RUN_DIR", help="a discovery run directory to ship")
    p.add_argument("--name", help="name of the shipped drift (lower case, digits, . _ -)")
    p.add_argument("--heldout", nargs="*", default=None, metavar="ENV",
                   help="held-out envs to record (default: the run's heldout_envs)")
    p.add_argument("--dest", help="folder of shipped drifts (default: the source tree's drifts/)")
    p.add_argument("--replace", action="store_true",
                   help="replace an existing shipped drift of that name (its whole folder)")


def run(args: argparse.Namespace) -> int:
    from driftlab.algorithms.shipped import list_shipped, shipped_dir
    from driftlab.algorithms.storage import read_json, read_yaml
    from driftlab.errors import DriftlabError

    if args.ship is not None:
        if not args.ship.strip():
            raise DriftlabError("--ship is empty; give the discovery (or distill) run directory "
                                "to ship")
        if not args.name or not NAME_PATTERN.match(args.name):
            raise DriftlabError("--ship needs --name NAME of lower-case letters, digits, '.', "
                                "'_' or '-', e.g. --name lpo-cartpole")
        if args.dest is not None and not args.dest.strip():
            raise DriftlabError("--dest is empty; give the folder to ship into, or leave --dest "
                                "out for the source tree's drifts/")
        check_heldout(args.heldout)
        out = ship(Path(args.ship), args.name, args.heldout,
                   Path(args.dest) if args.dest else None, args.replace)
        print(f"shipped {args.name}: {out}")
        return 0
    names = list_shipped()
    if not names:
        print("no shipped drifts installed")
        return 0
    print(f"{'name':22s} {'kind':8s} {'meta-training envs':34s} {'steps/run':>10s} {'gens':>5s}")
    for name in names:
        folder = shipped_dir(name)
        prov = read_yaml(folder / "provenance.yaml") if (folder / "provenance.yaml").is_file() else {}
        spec = read_json(folder / "drift.json")
        timesteps = prov.get("timesteps", {})
        steps = ", ".join(f"{int(v):,}" for v in timesteps.values()) if isinstance(
            timesteps, dict) else str(timesteps)
        print(f"{name:22s} {str(spec.get('kind')):8s} {', '.join(prov.get('meta_envs', [])):34s} "
              f"{steps:>10s} {str(prov.get('generations', '?')):>5s}")
    return 0


def _software(config: dict[str, Any]) -> dict[str, Any]:
    """The provenance of the code: the commit and software the run recorded when it
    ran (None for runs older than that record) and those of this `--ship`."""
    from driftlab.software import software_record

    recorded = config.get("software") if isinstance(config.get("software"), dict) else None
    return {"commit": (recorded or {}).get("commit"), "software": recorded,
            "shipped_with": software_record()}


def check_heldout(heldout: list[str] | None) -> None:
    """Every --heldout env id exists (provenance.yaml must not name a typo)."""
    from driftlab.envs import list_envs
    from driftlab.errors import DriftlabError

    known = list_envs()
    for env_id in heldout or []:
        if env_id not in known:
            hint = did_you_mean(env_id, known)
            raise DriftlabError(f"--heldout: unknown env {env_id!r}{hint}; `driftlab envs` "
                                "lists them")


def check_source(run_dir: Path) -> None:
    """A shipped drift's folder (drift.json and provenance.yaml, no config.yaml) is
    no run to ship: say so, and where to ship from, instead of "no config.yaml"."""
    from driftlab.errors import DriftlabError

    if (run_dir.is_dir() and not (run_dir / "config.yaml").exists()
            and (run_dir / "drift.json").is_file() and (run_dir / "provenance.yaml").is_file()):
        raise DriftlabError(f"{run_dir} is already a shipped drift (drift.json + provenance.yaml, "
                            "no config.yaml), not a run; ship from the discovery (or distill) "
                            "run directory it came from, or copy the folder")


def check_heldout_is_held_out(heldout: Any, discovery: dict[str, Any], given: str) -> None:
    """No held-out env is one the drift was meta-trained on, or one whose validation
    chose the shipped snapshot (provenance.yaml must not list an env as both)."""
    from driftlab.errors import DriftlabError

    if not isinstance(heldout, list | tuple):
        return
    roles = (("envs", "meta-training envs", "the drift was trained on it"),
             ("validation_envs", "validation envs", "they chose the shipped snapshot"))
    for env_id in heldout:
        for key, what, why in roles:
            envs = discovery.get(key) or []
            if isinstance(envs, list | tuple) and env_id in envs:
                raise DriftlabError(f"{given} {env_id} is one of the run's {what} "
                                    f"({', '.join(map(str, envs))}), so not held out ({why}); "
                                    "drop it, or name envs the run never saw")


def _check_not_the_source(run_dir: Path, dest: Path | None, name: str) -> None:
    """The folder shipped into is neither the run shipped nor one holding it (--replace
    would delete the run before its copy is written)."""
    from driftlab.algorithms.shipped import _SOURCE_TREE
    from driftlab.errors import DriftlabError

    folder = ((dest or _SOURCE_TREE) / name).resolve()
    source = run_dir.resolve()
    if folder == source or folder in source.parents:
        raise DriftlabError(f"--dest {dest or _SOURCE_TREE} --name {name} is the run being shipped "
                            f"({run_dir}) or holds it; choose another --dest or --name")


def _make_room(dest: Path | None, name: str, replace: bool) -> None:
    """Refuse to overwrite a shipped drift unless `replace` (then its whole folder goes,
    so no file of the old drift stays beside the new one)."""
    import shutil

    from driftlab.algorithms.shipped import _SOURCE_TREE
    from driftlab.errors import DriftlabError

    folder = (dest or _SOURCE_TREE) / name
    if not folder.exists():
        return
    if not replace:
        raise DriftlabError(f"{folder} already exists; pass --replace to replace that "
                            "shipped drift (its whole folder), or choose another --name")
    if not folder.is_dir():
        raise DriftlabError(f"{folder} is a file, not a shipped drift's folder; move it away")
    shutil.rmtree(folder)


def _destination(dest: Path | None, name: str, replace: bool = False) -> Path:
    """`dest/name/` (default: the source tree's drifts/), created; one-line error if not.
    Called once the run to ship has been read and checked."""
    _make_room(dest, name, replace)
    from driftlab.algorithms.shipped import _SOURCE_TREE
    from driftlab.rundir import create_dir

    return create_dir((dest or _SOURCE_TREE) / name, "--dest")


def ship(run_dir: Path, name: str, heldout: list[str] | None = None,
         dest: Path | None = None, replace: bool = False) -> Path:
    """Copy a finished discovery run into `dest/name/` (see module docstring)."""
    from driftlab.algorithms.drift_io import load_drift, save_drift
    from driftlab.algorithms.storage import (
        atomic_write_text,
        read_json,
        read_jsonl,
        read_yaml,
        write_jsonl,
        write_yaml,
    )
    from driftlab.errors import DriftlabError

    check_source(run_dir)
    config = read_yaml(run_dir / "config.yaml")
    _check_not_the_source(run_dir, dest, name)
    if config.get("command") == "distill":
        if heldout:
            raise DriftlabError(f"--heldout is not used for {run_dir}, a distill run: its formula "
                                "keeps the held-out envs of the drift it was distilled from; "
                                "drop --heldout")
        return ship_formula(run_dir, config, name, dest, replace)
    discovery = config.get("discovery")
    if config.get("command") != "discover" or not isinstance(discovery, dict):
        raise DriftlabError(f"{run_dir} is not a discovery or distill run directory (its "
                            "config.yaml is from neither `driftlab discover` nor `distill`)")
    check_heldout_is_held_out(heldout if heldout is not None else discovery.get("heldout_envs"),
                              discovery, "--heldout" if heldout is not None
                              else f"{run_dir}/config.yaml's heldout_envs:")
    # A run with validation envs ships the snapshot they selected, never the last mean.
    selected = bool(discovery.get("validation_envs"))
    exported = run_dir / ("drift_selected.json" if selected else "drift.json")
    if selected and not exported.is_file():
        raise DriftlabError(f"{run_dir} has validation envs but no drift_selected.json yet; "
                            "resume it until a validation generation has run")
    drift, params = load_drift(str(exported))
    records = read_jsonl(run_dir / "metrics.jsonl") if (run_dir / "metrics.jsonl").is_file() else []
    if not records:
        raise DriftlabError(f"{run_dir} has no metrics.jsonl records; ship a run that has "
                            "finished at least one generation")
    spec = read_json(exported)
    generation = int(spec.get("generation", records[-1]["generation"]))
    if selected:  # the whole run was needed to choose: keep every record
        last = max(int(r.get("generation", 0)) for r in records)
    else:
        last = generation
    records = [r for r in records if r.get("generation", 0) <= last]
    folder = _destination(dest, name, replace)
    save_drift(folder, drift, params, name="drift",
               metadata={"source": "discover", "generation": generation, "name": name,
                         "note": f"shipped drift {name}; see provenance.yaml"})
    meta_envs = list(discovery["envs"])
    train = discovery["train"]
    first = dict(train[meta_envs[0]])  # training settings only: usable with any --algo
    header = (f"# Inner training settings {name} was meta-trained with on {meta_envs[0]}:\n"
              f"#   driftlab train --algo {drift.spec['kind']} --drift {name} "
              f"--env {meta_envs[0]} --config drifts/{name}/train.yaml\n")
    import yaml

    atomic_write_text(folder / "train.yaml", header + yaml.safe_dump(first, sort_keys=False))
    seconds = sum(float(r.get("seconds", 0.0)) for r in records)
    provenance: dict[str, Any] = {
        "name": name,
        "kind": drift.spec["kind"],
        "meta_envs": meta_envs,
        "heldout_envs": list(heldout if heldout is not None else discovery.get("heldout_envs", [])),
        "timesteps": {e: int(train[e]["total_timesteps"]) for e in meta_envs},
        "generations": generation,
        "validation_envs": list(discovery.get("validation_envs") or []),
        "test_envs": list(discovery.get("test_envs") or []),
        "population": int(discovery["population"]),
        "rollouts_per_member": int(discovery["rollouts_per_member"]),
        "wall_clock_seconds_generations": round(seconds, 1),
        "preset": config.get("preset"),
        **_software(config),
        "shipped": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "discovery": discovery,
    }
    if selected:
        provenance.update(generations_run=last, selection=spec.get("selection"),
                          selection_rule=spec.get("selection_rule", "max_score"),
                          selected_generation=generation,
                          validation_score=spec.get("validation_score"))
        if spec.get("selection_lower_bounds"):
            provenance.update(selection_level=spec.get("selection_level"),
                              selection_lower_bounds=spec["selection_lower_bounds"])
    write_yaml(folder / "provenance.yaml", provenance)
    from driftlab.analysis.curves import plot_discovery_progress
    from driftlab.discovery.selection import start_validation

    plot_discovery_progress(records, folder / "progress.png",
                            f"{name}: {discovery.get('strategy')} on {', '.join(meta_envs)}",
                            start_validation(run_dir))
    write_jsonl(folder / "metrics.jsonl", records)
    return folder


def ship_formula(run_dir: Path, config: dict[str, Any], name: str, dest: Path | None,
                 replace: bool = False) -> Path:
    """Ship the best formula of a `driftlab distill` run: its drift.json (+ params),
    formulas.md and fit plot; train.yaml and the meta-training provenance come
    from the shipped drift it was distilled from (when it was one)."""
    import shutil

    from driftlab.algorithms.drift_io import load_drift, save_drift
    from driftlab.algorithms.shipped import shipped_dir
    from driftlab.algorithms.storage import read_json, read_yaml, write_yaml

    drift, params = load_drift(run_dir)
    spec = read_json(run_dir / "drift.json")
    source = str(config.get("drift"))
    parent = shipped_dir(source)
    folder = _destination(dest, name, replace)
    save_drift(folder, drift, params, name="drift",
               metadata={"source": "distill", "name": name, "family": spec.get("family"),
                         "fit": spec.get("fit"), "latex": spec.get("latex"),
                         "note": f"shipped formula {name}, distilled from {source}"})
    for extra in ("formulas.md", "source_vs_best.png"):
        if (run_dir / extra).is_file():
            shutil.copyfile(run_dir / extra, folder / extra)
    inherited: dict[str, Any] = {}
    if parent is not None:
        inherited = read_yaml(parent / "provenance.yaml")
        shutil.copyfile(parent / "train.yaml", folder / "train.yaml")
    provenance = {
        **{k: v for k, v in inherited.items()
           if k not in ("name", "kind", "shipped", "commit", "software", "shipped_with")},
        "name": name, "kind": drift.spec["kind"], "distilled_from": source,
        "expression": spec.get("expression"), "constants": spec.get("constants"),
        "family": spec.get("family"), "fit": spec.get("fit"),
        "distill_settings": {k: v for k, v in config.items()
                             if k not in ("command", "spec", "software")},
        **_software(config),
        "shipped": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    write_yaml(folder / "provenance.yaml", provenance)
    return folder
