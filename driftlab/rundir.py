"""Run directories: where a command's output goes, checked before anything is
written (the files in them are written by driftlab.algorithms.storage)."""

from __future__ import annotations

import datetime as _dt
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
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
    become a new run directory: an empty writable directory (a lone driftlab.lock
    counts as empty), or a path whose nearest existing parent is a writable
    directory. Creates nothing, so a command can check its --out before it
    validates or computes anything else.
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
        try:  # a lone lock file is a run that failed before its first file (a full
            # disk): the path may be used again (hold_lock still keeps one writer)
            occupied = out is not None and any(p.name != LOCK_NAME for p in path.iterdir())
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
    path = create_dir(path, "--out")
    hold_lock(path)
    return path


def create_dir(path: Path, option: str) -> Path:
    """`path` created (with parents), or a one-line DriftlabError naming it, the
    reason and the command-line `option` to change."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DriftlabError(f"output directory {path} cannot be created: {_reason(err)}; "
                            f"choose another {option}") from None
    return path


# ---- one writer per run directory ----------------------------------------------------

LOCK_NAME = "driftlab.lock"
# Locks this process holds: resolved run directory -> the open lock file. Re-entrant
# (the same process may lock a directory again, e.g. a notebook resuming its own run).
_HELD: dict[Path, object] = {}


def hold_lock(run_dir: str | Path, command: str | None = None) -> None:
    """Take RUN/driftlab.lock (an exclusive `flock`) for this process, or a one-line
    DriftlabError naming the process that holds it. The kernel drops the lock when
    its holder exits in any way (kill -9 too), so a lock is never left stale."""
    import fcntl
    import sys

    key = Path(run_dir).resolve()
    if key in _HELD:
        return
    try:
        handle = open(key / LOCK_NAME, "a+")  # noqa: SIM115 - held open: that is the lock
    except OSError as err:
        raise DriftlabError(f"{run_dir} cannot be locked for writing: {_reason(err)}; "
                            "check the directory's permissions") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise DriftlabError(f"{run_dir} is in use by {holder}: one writer per run directory; "
                            "wait for it to finish or stop it") from None
    what = command or " ".join(["driftlab", *sys.argv[1:2]]) or "driftlab"
    handle.seek(0)
    handle.truncate()
    handle.write(f"{what} (pid {os.getpid()})\n")
    handle.flush()
    _HELD[key] = handle


def held_locks() -> set[Path]:
    return set(_HELD)


def release_locks(keep: set[Path] = frozenset()) -> None:
    """Release every lock this process took except those in `keep` (a command's
    end releases what it took; an enclosing command keeps its own)."""
    for key in list(_HELD):
        if key not in keep:
            _HELD.pop(key).close()  # closing the file drops the flock


@contextmanager
def releasing_new_locks() -> Iterator[None]:
    """Locks taken inside are released at its end, those held before are kept: a
    Python API call lets go of the run directories it wrote, as a command does."""
    before = held_locks()
    try:
        yield
    finally:
        release_locks(keep=before)
