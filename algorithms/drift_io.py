"""Exported drifts on disk: `<name>.json` (the drift's spec) beside
`<name>.params.msgpack` (its parameters).

    {"kind": "lpo", "temporal": false, "ppo_init": false, "hidden": 128,
     "features": "lpo8", "params_file": "drift.params.msgpack", ...}

`load_drift` accepts that JSON file or a directory holding `drift.json`
(every run directory that exports a drift writes one).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from algorithms.drifts import Drift, make_drift
from algorithms.shipped import list_shipped, shipped_dir
from algorithms.storage import atomic_write_bytes

# Keys of a drift JSON that are metadata, not options of the drift family.
_META_KEYS = {"params_file", "params", "source", "note", "fitness", "generation", "name"}


class DriftFileError(ValueError):
    """A drift file or directory that cannot be loaded; the message says why."""


def save_drift(directory: str | Path, drift: Drift, params: Any, name: str = "drift",
               metadata: dict[str, Any] | None = None) -> Path:
    """Write `<name>.json` and `<name>.params.msgpack` atomically; returns the JSON path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    params_file = f"{name}.params.msgpack"
    host_params = jax.tree.map(np.asarray, jax.device_get(params))
    atomic_write_bytes(directory / params_file, serialization.msgpack_serialize(host_params))
    spec = {**drift.spec, **(metadata or {}), "params_file": params_file}
    atomic_write_bytes(directory / f"{name}.json", (json.dumps(spec, indent=2) + "\n").encode())
    return directory / f"{name}.json"


def resolve_drift_path(path: str | Path) -> Path:
    """`path` itself when it exists, else the folder of the shipped drift of that
    name (`driftlab drifts` lists them); a missing path stays as given."""
    candidate = Path(path)
    if candidate.exists():
        return candidate
    shipped = shipped_dir(str(path))
    return shipped if shipped is not None else candidate


def load_drift(path: str | Path) -> tuple[Drift, Any]:
    """(drift, params) from a drift JSON file, a directory containing `drift.json`,
    or the name of a shipped drift (e.g. `lpo-cartpole`)."""
    path = resolve_drift_path(path)
    if path.is_dir():
        if not (path / "drift.json").is_file():
            raise DriftFileError(
                f"{path} is a directory without drift.json; pass a run directory that exported "
                "a drift (discover, distill) or the drift's .json file")
        path = path / "drift.json"
    elif not path.is_file():
        names = ", ".join(list_shipped()) or "none installed"
        raise DriftFileError(f"{path} does not exist; pass a run directory, a drift .json file "
                             f"or a shipped drift name ({names})")
    try:
        spec = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DriftFileError(f"{path} is not a drift JSON file ({err})") from None
    if not isinstance(spec, dict) or "kind" not in spec:
        raise DriftFileError(f"{path} has no 'kind' field; it is not a driftlab drift file")
    options = {k: v for k, v in spec.items() if k not in _META_KEYS}
    kind = options.pop("kind")
    try:
        drift = make_drift(kind, **options)
    except ValueError as err:
        raise DriftFileError(f"{path}: {err}") from None
    params = drift.default_params
    if "params" in spec:
        params = jax.tree.map(jnp.asarray, spec["params"])
    elif "params_file" in spec:
        params_path = path.parent / spec["params_file"]
        try:
            raw = serialization.msgpack_restore(params_path.read_bytes())
        except FileNotFoundError:
            raise DriftFileError(f"{params_path} (named by {path}) is missing") from None
        except Exception as err:  # msgpack raises several unrelated types
            raise DriftFileError(f"{params_path} is corrupt ({type(err).__name__}: {err})") from None
        params = jax.tree.map(jnp.asarray, raw)
        if jax.tree.structure(params) != jax.tree.structure(drift.default_params):
            raise DriftFileError(f"{params_path} does not hold parameters of a {kind} drift "
                                 f"with options {options}")
    return drift, params
