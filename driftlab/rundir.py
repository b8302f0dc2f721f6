"""Run directories: where a command's output goes, checked before anything is
written (the files in them are written by driftlab.algorithms.storage)."""

from __future__ import annotations

import datetime as _dt
import os
import tempfile
from pathlib import Path

from driftlab.errors import DriftlabError


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
    if out is not None and not str(out).strip():
        raise DriftlabError("--out is empty (it would write into the current directory); "
                            "give a directory name or leave --out out for runs/...")
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
    return create_dir(path, "--out")


def create_dir(path: Path, option: str) -> Path:
    """`path` created (with parents), or a one-line DriftlabError naming it, the
    reason and the command-line `option` to change."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DriftlabError(f"output directory {path} cannot be created: {_reason(err)}; "
                            f"choose another {option}") from None
    return path
