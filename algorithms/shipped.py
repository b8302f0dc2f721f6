"""Drifts shipped with driftlab: `drifts/<name>/` in the source tree, installed
as the package data `driftlab_drifts` (see pyproject.toml; found with importlib).

Each folder holds what `driftlab discover` exports (`drift.json` + its params
file), `train.yaml` (the inner training settings it was meta-trained with,
usable as `driftlab train --config`), `provenance.yaml` (meta_envs,
heldout_envs, timesteps, the discovery config, generations, wall-clock,
commit) and the discovery's `metrics.jsonl`. Anywhere a drift path is
accepted (`train --drift`, `inspect`, `distill`, a discovery's `init_drift`)
a shipped drift's name works too.
"""

from __future__ import annotations

from pathlib import Path

from driftlab.algorithms.storage import data_folder

_SOURCE_TREE = Path(__file__).resolve().parent.parent / "drifts"


def shipped_root() -> Path | None:
    """The folder of shipped drifts: the source tree's `drifts/`, else the
    installed package data; None when neither exists."""
    return data_folder(_SOURCE_TREE, "driftlab_drifts")


def list_shipped() -> list[str]:
    """Names of the shipped drifts (folders holding a drift.json), sorted."""
    root = shipped_root()
    if root is None:
        return []
    return sorted(p.name for p in root.iterdir() if (p / "drift.json").is_file())


def shipped_dir(name: str) -> Path | None:
    """`drifts/<name>/` of a shipped drift, or None if there is no such drift."""
    root = shipped_root()
    if root is None or "/" in name or name.startswith("."):
        return None
    path = root / name
    return path if (path / "drift.json").is_file() else None


def written_as_path(text: str) -> bool:
    """Whether a drift argument is written as a path (`./dpo`, `runs/x`, `a.json`)
    rather than a bare name. A bare name that is a built-in or shipped drift means
    that drift even if a folder of the same name is in the working directory."""
    return "/" in text or "\\" in text or text.startswith(".") or text.endswith(".json")
