"""Presets: YAML files under configs/, merged with command-line overrides."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from driftlab.algorithms.storage import data_folder, read_yaml
from driftlab.errors import DriftlabError


def _config_dir() -> Path:
    """configs/ of the source tree, else the installed package data `driftlab_configs`."""
    source = Path(__file__).resolve().parent.parent / "configs"
    # missing either way: every preset lookup then says so
    return data_folder(source, "driftlab_configs") or source


CONFIG_DIR = _config_dir()


def train_preset(env_id: str) -> dict[str, Any]:
    """Training settings for `env_id`: the most specific `match` pattern of
    configs/train/*.yaml, its `defaults`, then its per-env entry."""
    best: tuple[int, dict[str, Any]] | None = None
    for path in sorted((CONFIG_DIR / "train").glob("*.yaml")):
        data = read_yaml(path)
        for pattern in data.get("match", []):
            if fnmatch.fnmatch(env_id, pattern):
                score = len(pattern.replace("*", ""))
                if best is None or score > best[0]:
                    settings = dict(data.get("defaults", {}))
                    settings.update(data.get("envs", {}).get(env_id, {}))
                    best = (score, settings)
    return dict(best[1]) if best else {}


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """`["key=value", ...]` with YAML-typed values (`3e-4`, `[64, 64]`, `true`).
    Types are checked later, by the settings' dataclasses (one typed step for
    presets, config files and overrides alike)."""
    out: dict[str, Any] = {}
    given: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise DriftlabError(f"--set expects key=value, got {pair!r}")
        name = ".".join(part.strip() for part in key.split("."))
        if name in given:  # the last would win silently
            raise DriftlabError(f"--set {name} is given twice ({given[name]!r} and {value!r}); "
                                "give it once")
        given[name] = value
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            parsed = value
        set_dotted(out, key.strip(), parsed)
    return out


def set_dotted(target: dict[str, Any], dotted: str, value: Any) -> None:
    """target["a"]["b"] = value for dotted = "a.b"; a key with an empty part, or
    a dotted key below a setting that is not a mapping, is a DriftlabError."""
    parts = [part.strip() for part in dotted.split(".")]
    if not all(parts):
        raise DriftlabError(f"--set key {dotted!r} has an empty part; write it like "
                            "drift.eps=0.3")
    *parents, leaf = parts
    for depth, part in enumerate(parents):
        child = target.setdefault(part, {})
        if not isinstance(child, dict):
            above = ".".join(parts[:depth + 1])
            raise DriftlabError(f"--set {dotted}: {above} is already set to {child!r}, not a "
                                f"mapping; set {above} once, as a mapping or by its keys")
        target = child
    target[leaf] = value


def expand_dotted(settings: Mapping[str, Any] | None) -> dict[str, Any]:
    """A copy of `settings` with each dotted key nested: `{"drift.eps": 0.3}` becomes
    `{"drift": {"eps": 0.3}}`, a mapping merged into one already there; keys are
    applied in order, values are taken as they are (not parsed)."""
    out: dict[str, Any] = {}
    for key, value in (settings or {}).items():
        key = str(key)
        if "." in key:
            set_dotted(out, key, value)
        elif isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], dict(value))
        else:
            out[key] = dict(value) if isinstance(value, Mapping) else value
    return out


def flatten_dotted(settings: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"hyperparams.gamma": 0.99, ...}: nested settings under dotted names (the
    inverse of `expand_dotted`; an empty mapping is a value of its own)."""
    out: dict[str, Any] = {}
    for key, value in settings.items():
        if isinstance(value, dict) and value:
            out.update(flatten_dotted(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out
