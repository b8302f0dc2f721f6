"""Checkpoints of the whole discovery state: atomic msgpack files with a checksum.

    <run>/checkpoints/gen_000012.ckpt  =  b"DLCK1" + sha256(payload) + payload
    payload = flax msgpack of {"generation": int, "state": host pytree}

Files are written to a temporary name and renamed (algorithms.storage), so a
crash leaves a complete old or new file. A file that fails its checksum or
does not deserialise is skipped with a warning and the previous one is used.
msgpack stores arrays byte for byte, so a restored state is bitwise the saved one.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from pathlib import Path
from typing import Any

from flax import serialization

from driftlab.algorithms.storage import atomic_write_bytes
from driftlab.discovery.config import DiscoveryError

MAGIC = b"DLCK1"
_NAME = re.compile(r"gen_(\d+)\.ckpt$")


class CheckpointError(DiscoveryError):
    """No usable checkpoint; the message says what was found."""


def checkpoint_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "checkpoints"


def save_checkpoint(run_dir: str | Path, generation: int, state: Any, keep: int = 3) -> Path:
    """Write the host pytree `state` for `generation`; keep the newest `keep` files."""
    payload = serialization.msgpack_serialize({"generation": int(generation),
                                               "state": serialization.to_state_dict(state)})
    path = checkpoint_dir(run_dir) / f"gen_{generation:06d}.ckpt"
    atomic_write_bytes(path, MAGIC + hashlib.sha256(payload).digest() + payload)
    for old in list_checkpoints(run_dir)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Checkpoint files, oldest first."""
    folder = checkpoint_dir(run_dir)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.search(p.name))]
    return [p for _, p in sorted(found)]


def _read(path: Path, template: Any) -> tuple[int, Any]:
    blob = path.read_bytes()
    header = len(MAGIC) + 32
    if len(blob) < header or not blob.startswith(MAGIC):
        raise ValueError("not a driftlab checkpoint (bad header)")
    payload = blob[header:]
    if hashlib.sha256(payload).digest() != blob[len(MAGIC):header]:
        raise ValueError("checksum mismatch (truncated or corrupted)")
    raw = serialization.msgpack_restore(payload)
    state = serialization.from_state_dict(template, raw["state"])
    return int(raw["generation"]), state


def load_latest_checkpoint(run_dir: str | Path, template: Any) -> tuple[int, Any]:
    """(generation, state) from the newest readable checkpoint, shaped like
    `template`; a corrupt newer file is skipped with a warning."""
    paths = list_checkpoints(run_dir)
    if not paths:
        raise CheckpointError(f"{checkpoint_dir(run_dir)} holds no checkpoint; nothing to resume "
                              "(start a new run instead)")
    for path in reversed(paths):
        try:
            return _read(path, template)
        except Exception as err:  # any decoding failure means: try the previous file
            warnings.warn(f"checkpoint {path.name} is unusable ({err}); "
                          "falling back to the previous one", stacklevel=2)
    raise CheckpointError(f"every checkpoint in {checkpoint_dir(run_dir)} is corrupt; "
                          "start a new run")
