"""Crash-safe file writes shared by every package that saves results."""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, fsync, then rename over it:
    a crash leaves either the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would make results private
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def data_folder(source: Path, package: str) -> Path | None:
    """A data folder shipped with driftlab: `source` in a source checkout, else the
    installed data-only (namespace) package `package` (pyproject.toml's
    package-dir mapping), whose folder is its search location; None if neither."""
    if source.is_dir():
        return source
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is not None and spec.submodule_search_locations:
        folder = Path(list(spec.submodule_search_locations)[0])
        if folder.is_dir():
            return folder
    return None


def remove_interrupted_writes(folder: str | Path) -> list[Path]:
    """Delete the temporary files of atomic writes that a kill interrupted
    (`.<name>.<random>.tmp` beside their target; never read by anything) in
    `folder` (not recursive); returns what was removed."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = [p for p in folder.iterdir()
             if p.is_file() and p.name.startswith(".") and p.name.endswith(".tmp")]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def to_builtin(value: Any) -> Any:
    """JSON/YAML-friendly copy: arrays to lists, numpy scalars to Python numbers,
    and non-finite floats (NaN, inf) to None, so every file is strict JSON
    (`null`) that any parser reads; driftlab's readers take null as NaN."""
    if isinstance(value, dict):
        return {str(k): to_builtin(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_builtin(v) for v in value]
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        array = np.asarray(value)
        return to_builtin(array.item() if array.ndim == 0 else array.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
