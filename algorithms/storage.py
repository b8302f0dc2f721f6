"""File I/O of results, shared by every package that saves or reads them.

Writes that replace a file are atomic (write beside it, fsync, rename), JSON
lines are appended one flushed line at a time, and non-finite floats are
written as `null` (strict JSON any parser reads; driftlab's readers take it as
NaN). Reads are strict: a missing, unreadable or malformed file is one
`RecordFileError` (or the caller's `error` type) whose message names the path,
the problem and the fix. The one tolerance is a JSON-lines file's torn last
line (a process killed mid-write), which is skipped.

Longer than ~300 lines: every record format driftlab writes and reads (JSON, YAML,
JSON lines, msgpack), each with its atomic write and its one-line read errors.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import yaml

DAMAGED = "the file is damaged or not written by driftlab"
# A settings or record file is a few KiB; far larger or deeper is the wrong file (or
# an alias bomb), refused before parsing or building it.
YAML_MAX_BYTES = 1 << 20
YAML_MAX_DEPTH = 32
YAML_MAX_VALUES = 100_000  # scalars, lists and mappings once aliases are expanded
JSON_MAX_BYTES = 256 << 20  # the largest JSON record (a report, a sweep's summary) is < 1 MiB


class _DuplicateKey(Exception):
    pass


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a mapping with one key twice (PyYAML keeps the last
    silently, so a setting written twice would be half ignored)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise _DuplicateKey(f"key {key!r} appears twice (lines {seen[key]} and {line})")
            if isinstance(key, (str, int, float, bool)):
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _expanded_size(node: yaml.Node) -> int:
    """How many nodes `node` stands for with every alias expanded, counted once per
    distinct node (so an alias bomb is measured, not built)."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()  # on the current path: meeting one again is a cycle
    stack: list[tuple[yaml.Node, bool]] = [(node, False)]
    while stack:
        current, done = stack.pop()
        if id(current) in sizes:
            continue
        children: list[yaml.Node] = []
        if isinstance(current, yaml.MappingNode):
            children = [child for pair in current.value for child in pair]
        elif isinstance(current, yaml.SequenceNode):
            children = list(current.value)
        if done:
            sizes[id(current)] = 1 + sum(sizes[id(c)] for c in children)
            open_nodes.discard(id(current))
        elif id(current) in open_nodes:  # a recursive alias: endless once expanded
            return YAML_MAX_VALUES + 1
        else:
            open_nodes.add(id(current))
            stack.append((current, True))
            stack += [(c, False) for c in children if id(c) not in sizes]
    return sizes[id(node)]


def _depth(node: yaml.Node) -> int:
    """Nesting depth of a composed YAML node, without building Python objects."""
    deepest, stack, seen = 0, [(node, 1)], set()
    while stack:
        current, level = stack.pop()
        if id(current) in seen:  # an alias: its node was walked once (no alias bombs)
            continue
        seen.add(id(current))
        deepest = max(deepest, level)
        if level > YAML_MAX_DEPTH:
            break
        if isinstance(current, yaml.MappingNode):
            stack += [(child, level + 1) for pair in current.value for child in pair]
        elif isinstance(current, yaml.SequenceNode):
            stack += [(child, level + 1) for child in current.value]
    return deepest


class RecordFileError(ValueError):
    """A JSON, YAML or JSON-lines file that is missing or cannot be read as one;
    the message names the file, the problem and the fix."""


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


def to_builtin(value: Any, finite: bool = True) -> Any:
    """JSON/YAML-friendly copy: arrays to lists, numpy scalars to Python numbers,
    and (`finite`) non-finite floats (NaN, inf) to None, so every JSON file is
    strict JSON (`null`) that any parser reads; driftlab's readers take null as
    NaN. YAML keeps them (`.inf`, `.nan`): a setting such as the Brax presets'
    max_grad_norm: inf must read back as itself."""
    if isinstance(value, dict):
        return {str(k): to_builtin(v, finite) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_builtin(v, finite) for v in value]
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        array = np.asarray(value)
        return to_builtin(array.item() if array.ndim == 0 else array.tolist(), finite)
    if finite and isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# ---- writes -----------------------------------------------------------------------------

def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(to_builtin(data), indent=2) + "\n")


def write_yaml(path: str | Path, data: Any) -> None:
    atomic_write_text(path, yaml.safe_dump(to_builtin(data, finite=False), sort_keys=False))


def _jsonl_line(record: dict[str, Any]) -> str:
    return json.dumps(record) + "\n"


def write_jsonl(path: str | Path, records: Iterable[dict[str, Any]]) -> None:
    """A whole JSON-lines file, replaced atomically."""
    atomic_write_text(path, "".join(_jsonl_line(to_builtin(r)) for r in records))


class JsonlWriter:
    """Appends one JSON object per line and flushes it, so a crash loses at most
    the line being written (`read_jsonl` skips that torn line). `truncate`
    starts the file afresh instead of appending."""

    def __init__(self, path: str | Path, truncate: bool = False):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open(self.path, "w" if truncate else "a", encoding="utf-8")  # noqa: SIM115

    def write(self, record: dict[str, Any]) -> dict[str, Any]:
        """Append `record` (as `to_builtin` makes it, which is returned)."""
        record = to_builtin(record)
        self._handle.write(_jsonl_line(record))
        self._handle.flush()
        return record

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# ---- reads ------------------------------------------------------------------------------

def _read_text(path: Path, error: type[Exception], limit: int | None = None) -> str:
    """The text of `path`; with `limit`, at most that many bytes are read (a device
    such as /dev/zero, or a pipe, has no size to check beforehand)."""
    try:
        with open(path, "rb") as handle:
            data = handle.read() if limit is None else handle.read(limit + 1)
        if limit is not None and len(data) > limit:
            raise error(f"{path} holds more than {limit >> 20} MiB; a settings or record file "
                        "is a few KiB, so check that it is the file you meant")
        return data.decode("utf-8")
    except FileNotFoundError:
        raise error(f"{path} does not exist; check the path") from None
    except IsADirectoryError:
        raise error(f"{path} is a directory, not a file; pass the file itself") from None
    except UnicodeDecodeError:
        raise error(f"{path} is not a text file; {DAMAGED}") from None
    except OSError as err:
        raise error(f"{path} cannot be read ({err.strerror or err}); check its "
                    "permissions") from None


def read_json(path: str | Path, error: type[Exception] = RecordFileError) -> dict[str, Any]:
    """The JSON object in `path` (every driftlab JSON file holds one); anything
    else is an `error` naming the file and the problem."""
    path = Path(path)
    try:
        data = json.loads(_read_text(path, error, JSON_MAX_BYTES))
    except json.JSONDecodeError as err:
        raise error(f"{path} is unreadable: not valid JSON ({err}); {DAMAGED}") from None
    if not isinstance(data, dict):
        raise error(f"{path} holds {type(data).__name__} JSON, not an object; {DAMAGED}")
    return data


def read_yaml(path: str | Path, error: type[Exception] = RecordFileError) -> dict[str, Any]:
    """The YAML mapping in `path` ({} for an empty file); anything else is an
    `error` naming the file and the problem."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError:
        size = 0  # _read_text names the problem
    if size > YAML_MAX_BYTES:
        raise error(f"{path} is {size / 2**20:.1f} MiB; a settings or record file is a few "
                    f"KiB (at most {YAML_MAX_BYTES >> 20} MiB), so check that it is the file "
                    "you meant")
    loader = _StrictLoader(_read_text(path, error, YAML_MAX_BYTES))
    try:
        node = loader.get_single_node()
        if node is not None and _depth(node) > YAML_MAX_DEPTH:
            raise error(f"{path} nests settings more than {YAML_MAX_DEPTH} levels deep; a "
                        "driftlab settings file has a few levels, so check the file")
        if node is not None and _expanded_size(node) > YAML_MAX_VALUES:
            raise error(f"{path} expands to more than {YAML_MAX_VALUES:,} values (YAML aliases "
                        "repeat what they name); a driftlab settings file holds a few dozen, "
                        "so check the file")
        data = loader.construct_document(node) if node is not None else None
    except _DuplicateKey as err:
        raise error(f"{path}: {err}; keep one of them") from None
    except yaml.YAMLError as err:
        detail = " ".join(str(err).split())  # PyYAML's message spans several lines
        raise error(f"{path} is not valid YAML ({detail}); fix its syntax") from None
    finally:
        loader.dispose()
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise error(f"{path} holds a {type(data).__name__}, not a mapping of settings; "
                    f"{DAMAGED}")
    return data


def _jsonl_lines(path: Path, error: type[Exception]) -> list[tuple[str, dict[str, Any]]]:
    """(line, record) of each line but a torn last one; see `read_jsonl`."""
    lines = _read_text(path, error).splitlines()
    out = []
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            if number == len(lines):
                break  # the torn last line of a process killed mid-write
            raise error(f"{path} line {number} is not valid JSON ({err}); only the last "
                        "line can be cut short by a crash, so the file is damaged") from None
        if not isinstance(record, dict):
            raise error(f"{path} line {number} is {type(record).__name__} JSON, not an "
                        f"object; {DAMAGED}")
        out.append((line, record))
    return out


def read_jsonl(path: str | Path, error: type[Exception] = RecordFileError
               ) -> list[dict[str, Any]]:
    """The records of a JSON-lines file, record i from line i + 1. A last line
    that does not parse is a write cut short by a crash and is skipped; any
    other line that does not parse, or that is not a JSON object (a torn line
    never parses: each starts with `{`), is an `error` naming the file and line."""
    return [record for _, record in _jsonl_lines(Path(path), error)]


def truncate_jsonl(path: str | Path, key: str, last: int,
                   error: type[Exception] = RecordFileError) -> list[dict[str, Any]]:
    """Keep the records whose `key` (0 if absent) is at most `last`, drop a torn
    last line, and rewrite the file atomically (its kept lines byte for byte):
    a resumed run re-logs what came after its checkpoint instead of duplicating
    it. A missing file stays missing. Returns the kept records."""
    path = Path(path)
    if not path.is_file():
        return []
    kept = [(line, record) for line, record in _jsonl_lines(path, error)
            if record.get(key, 0) <= last]
    atomic_write_text(path, "".join(f"{line}\n" for line, _ in kept))
    return [record for _, record in kept]
