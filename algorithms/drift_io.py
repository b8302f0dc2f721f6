"""Exported drifts on disk: `<name>.json` (the drift's spec) beside
`<name>.params.msgpack` (its parameters).

    {"kind": "lpo", "temporal": false, "ppo_init": false, "hidden": 128,
     "features": "lpo8", "params_file": "drift.params.msgpack", ...}

`load_drift` accepts that JSON file or a directory holding `drift.json`
(every run directory that exports a drift writes one).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from driftlab.algorithms.drifts import Drift, make_drift
from driftlab.algorithms.shipped import list_shipped, shipped_dir, written_as_path
from driftlab.algorithms.storage import atomic_write_bytes, read_json, write_json

# Keys of a drift JSON that are metadata, not options of the drift family.
_META_KEYS = {"params_file", "params", "source", "note", "fitness", "generation", "name",
              "validation_score", "selection", "validation_envs", "selection_rule",
              "selection_level", "selection_lower_bounds"}


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
    write_json(directory / f"{name}.json", spec)
    return directory / f"{name}.json"


def resolve_drift_path(path: str | Path) -> Path:
    """The folder of the shipped drift of that name when `path` is a bare name
    (`driftlab drifts` lists them; write `./name` for a folder of the same name),
    else `path` itself (a missing path stays as given)."""
    candidate = Path(path)
    if isinstance(path, str) and not written_as_path(path):
        shipped = shipped_dir(path)
        if shipped is not None:
            return shipped
    return candidate


def directory_drift_file(directory: Path) -> Path | None:
    """The drift a run directory stands for: drift_selected.json when validation chose
    a snapshot (a discovery with validation envs: what `drifts --ship` ships, not the
    ES's last mean in drift.json), else drift.json; None if it has neither."""
    for name in ("drift_selected.json", "drift.json"):
        if (directory / name).is_file():
            return directory / name
    return None


def load_drift(path: str | Path) -> tuple[Drift, Any]:
    """(drift, params) from a drift JSON file, a run directory (`directory_drift_file`:
    its validation-selected drift, else drift.json), or the name of a shipped drift
    (e.g. `lpo-cartpole`)."""
    path = resolve_drift_path(path)
    if path.is_dir():
        found = directory_drift_file(path)
        if found is None:
            raise DriftFileError(
                f"{path} is a directory without drift.json; pass a run directory that exported "
                "a drift (discover, distill) or the drift's .json file")
        path = found
    elif not path.is_file():
        names = ", ".join(list_shipped()) or "none installed"
        raise DriftFileError(f"{path} does not exist; pass a run directory, a drift .json file "
                             f"or a shipped drift name ({names})")
    spec = read_json(path, DriftFileError)
    if "kind" not in spec:
        raise DriftFileError(f"{path} has no 'kind' field; it is not a driftlab drift file")
    options = {k: v for k, v in spec.items() if k not in _META_KEYS}
    kind = options.pop("kind")
    if not isinstance(kind, str):
        raise DriftFileError(f"{path}: 'kind' must be a drift family name such as \"lpo\", "
                             f"got {kind!r}")
    try:
        drift = make_drift(kind, **options)
    except ValueError as err:
        raise DriftFileError(f"{path}: {err}") from None
    params = drift.default_params
    if "params" in spec:
        params = _as_arrays(spec["params"], path, "its 'params'")
        source = path
    elif "params_file" in spec:
        params_path = path.parent / str(spec["params_file"])
        try:
            raw = serialization.msgpack_restore(params_path.read_bytes())
        except FileNotFoundError:
            raise DriftFileError(f"{params_path} (named by {path}) is missing") from None
        except IsADirectoryError:
            raise DriftFileError(f"{params_path} (named by {path}) is a directory, not a "
                                 "parameter file") from None
        except Exception as err:  # msgpack raises several unrelated types
            raise DriftFileError(f"{params_path} is corrupt ({type(err).__name__}: {err})") from None
        params = _as_arrays(raw, params_path, "it")
        source = params_path
    else:
        return drift, params
    check_params(drift, params, source, options)
    return drift, params


def _as_arrays(raw: Any, path: Path, what: str) -> Any:
    """The numeric leaves of `raw` as arrays; anything else is a DriftFileError."""
    def leaf(value: Any) -> jax.Array:
        array = np.asarray(value)
        if array.dtype == object or not (np.issubdtype(array.dtype, np.number)
                                         or array.dtype == bool):
            raise TypeError(f"{value!r} is not a number or an array of numbers")
        return jnp.asarray(array)

    try:  # a JSON list is one array, not a list of leaves
        return jax.tree.map(leaf, raw, is_leaf=lambda x: isinstance(x, (list, tuple)))
    except (TypeError, ValueError) as err:
        raise DriftFileError(f"{path}: {what} must hold numbers ({err}); "
                             "the file is damaged or not a driftlab drift") from None


def check_params(drift: Drift, params: Any, path: str | Path, options: dict[str, Any]) -> None:
    """Raise DriftFileError unless `params` has the keys and the leaf shapes of
    `drift.default_params` (so a wrong file fails here, not inside `jit`)."""
    expected = dict(jax.tree_util.tree_flatten_with_path(drift.default_params)[0])
    found = dict(jax.tree_util.tree_flatten_with_path(params)[0])
    expected = {jax.tree_util.keystr(k): v for k, v in expected.items()}
    found = {jax.tree_util.keystr(k): v for k, v in found.items()}
    what = f"a {drift.spec.get('kind', drift.name)} drift" + (f" with options {options}"
                                                             if options else "")
    if set(expected) != set(found) or (jax.tree.structure(params)
                                       != jax.tree.structure(drift.default_params)):
        missing = sorted(set(expected) - set(found))
        extra = sorted(set(found) - set(expected))
        detail = "; ".join(part for part in (
            f"missing {', '.join(missing)}" if missing else "",
            f"unexpected {', '.join(extra)}" if extra else "") if part) or "a different layout"
        raise DriftFileError(f"{path} does not hold the parameters of {what} ({detail})")
    for name, value in expected.items():
        shape, want = tuple(np.shape(found[name])), tuple(np.shape(value))
        if shape != want:
            raise DriftFileError(f"{path}: parameter {name} has shape {shape}, but {what} "
                                 f"needs {want}; the file does not match its drift spec")
