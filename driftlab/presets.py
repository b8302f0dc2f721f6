"""Presets: YAML files under configs/, merged with command-line overrides."""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any

import yaml

from driftlab.errors import DriftlabError

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


def load_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping from a file; a missing or malformed file is a DriftlabError."""
    path = Path(path)
    if not path.is_file():
        raise DriftlabError(f"config file {path} does not exist; check the path")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise DriftlabError(f"config file {path} is not valid YAML ({err}); fix its syntax") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise DriftlabError(f"config file {path} must hold a mapping of settings, not {type(data).__name__}")
    return data


def train_preset(env_id: str) -> dict[str, Any]:
    """Training settings for `env_id`: the most specific `match` pattern of
    configs/train/*.yaml, its `defaults`, then its per-env entry."""
    best: tuple[int, dict[str, Any]] | None = None
    for path in sorted((CONFIG_DIR / "train").glob("*.yaml")):
        data = load_yaml(path)
        for pattern in data.get("match", []):
            if fnmatch.fnmatch(env_id, pattern):
                score = len(pattern.replace("*", ""))
                if best is None or score > best[0]:
                    settings = dict(data.get("defaults", {}))
                    settings.update(data.get("envs", {}).get(env_id, {}))
                    best = (score, settings)
    return dict(best[1]) if best else {}


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """`["key=value", ...]` with YAML-typed values (`3e-4`, `[64, 64]`, `true`)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise DriftlabError(f"--set expects key=value, got {pair!r}")
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            parsed = value
        set_dotted(out, key.strip(), parsed)
    return out


def set_dotted(target: dict[str, Any], dotted: str, value: Any) -> None:
    """target["a"]["b"] = value for dotted = "a.b"."""
    *parents, leaf = dotted.split(".")
    for part in parents:
        target = target.setdefault(part, {})
    target[leaf] = value


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out
