"""Run directories: atomic files, per-step JSON lines, saved pytrees."""

from __future__ import annotations

import datetime as _dt
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from driftlab.algorithms.storage import atomic_write_bytes, to_builtin
from driftlab.errors import DriftlabError


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def write_yaml(path: str | Path, data: Any) -> None:
    atomic_write_text(path, yaml.safe_dump(to_builtin(data), sort_keys=False))


def write_json(path: str | Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(to_builtin(data), indent=2) + "\n")


def read_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise DriftlabError(f"{path} does not exist; check the path") from None
    except json.JSONDecodeError as err:
        raise DriftlabError(f"{path} is not valid JSON ({err}); the file is corrupt or not a driftlab file") from None


class JsonlWriter:
    """Appends one JSON object per line and flushes, so a crash loses at most
    the line being written."""

    def __init__(self, path: str | Path, truncate: bool = False):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open(self.path, "w" if truncate else "a")  # noqa: SIM115

    def write(self, record: dict[str, Any]) -> None:
        self._handle.write(json.dumps(to_builtin(record)) + "\n")
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """All complete lines; a torn last line (crash mid-write) is skipped. A line
    that is valid JSON but not an object cannot be a torn line (each line starts
    with `{`), so it is a DriftlabError naming the file and the line."""
    path = Path(path)
    records = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(record, dict):
            raise DriftlabError(f"{path} line {number} is {type(record).__name__} JSON, not an "
                                "object; the file is damaged or not written by driftlab")
        records.append(record)
    return records


def _reason(err: OSError) -> str:
    return err.strerror or str(err)


def _probe_writable(folder: Path, path: Path) -> None:
    """Create and remove a file in `folder`, or a DriftlabError naming `path`."""
    try:
        handle, name = tempfile.mkstemp(prefix=".driftlab-probe-", dir=folder)
        os.close(handle)
        os.unlink(name)
    except OSError as err:
        where = "" if folder == path else f" (in {folder})"
        raise DriftlabError(f"output directory {path} cannot be written{where}: {_reason(err)}; "
                            "choose a writable --out") from None


def check_output_dir(out: str | Path | None) -> None:
    """Raise a DriftlabError (naming the path and the reason) unless `out` can
    become a new run directory: an empty writable directory, or a path whose
    nearest existing parent is a writable directory. Creates nothing, so a
    command can check its --out before it validates or computes anything else.
    `None` (the default runs/...) checks runs/ or the working directory."""
    path = Path(out) if out is not None else Path("runs")
    if path.is_symlink() and not path.exists():
        raise DriftlabError(f"output directory {path} is a dangling symbolic link; "
                            "choose another --out")
    if path.exists():
        if not path.is_dir():
            raise DriftlabError(f"output directory {path} is an existing file, not a directory; "
                                "choose a new --out")
        try:
            occupied = out is not None and any(path.iterdir())
        except OSError as err:
            raise DriftlabError(f"output directory {path} cannot be read: {_reason(err)}; "
                                "choose another --out") from None
        if occupied:
            raise DriftlabError(
                f"output directory {path} is not empty; choose a new --out (or --resume it)")
        _probe_writable(path, path)
        return
    parent = path.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise DriftlabError(f"output directory {path} cannot be created: {parent} is a file, "
                            "not a directory; choose another --out")
    _probe_writable(parent, path)


def new_run_dir(out: str | Path | None, kind: str, name: str) -> Path:
    """`out` if given (must be empty or new), else runs/<kind>-<name>-<timestamp>.
    An unusable path is a one-line DriftlabError naming it and the reason."""
    check_output_dir(out)
    if out is not None:
        path = Path(out)
    else:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        safe = name.replace("/", "_")
        path = Path("runs") / f"{kind}-{safe}-{stamp}"
        suffix = 1
        while path.exists():
            suffix += 1
            path = Path("runs") / f"{kind}-{safe}-{stamp}-{suffix}"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DriftlabError(f"output directory {path} cannot be created: {_reason(err)}; "
                            "choose another --out") from None
    return path
