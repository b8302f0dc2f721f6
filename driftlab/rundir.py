"""Run directories: atomic files, per-step JSON lines, saved pytrees."""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Any

import yaml

from algorithms.storage import atomic_write_bytes, to_builtin
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
    """All complete lines; a torn last line (crash mid-write) is skipped."""
    records = []
    for line in Path(path).read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def new_run_dir(out: str | Path | None, kind: str, name: str) -> Path:
    """`out` if given (must be empty or new), else runs/<kind>-<name>-<timestamp>."""
    if out is not None:
        path = Path(out)
        if path.exists() and any(path.iterdir()):
            raise DriftlabError(
                f"output directory {path} is not empty; choose a new --out (or --resume it)"
            )
    else:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        safe = name.replace("/", "_")
        path = Path("runs") / f"{kind}-{safe}-{stamp}"
        suffix = 1
        while path.exists():
            suffix += 1
            path = Path("runs") / f"{kind}-{safe}-{stamp}-{suffix}"
    path.mkdir(parents=True, exist_ok=True)
    return path
