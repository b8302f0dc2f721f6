"""Run directories: where a command's output goes, checked before anything is
written (the files in them are written by driftlab.algorithms.storage).

Longer than ~300 lines: creating run directories, the one-writer lock (held for the
process's life, stale locks of killed processes detected), the INCOMPLETE mark of a
stopped train run, and the messages that say what a taken --out holds and how to go
on."""

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


def check_output_dir(out: str | Path | None, verb: str | None = None) -> None:
    """Raise a DriftlabError (naming the path and the reason) unless `out` can
    become a new run directory: an empty writable directory (a lone driftlab.lock
    counts as empty), or a path whose nearest existing parent is a writable
    directory. Creates nothing, so a command can check its --out before it
    validates or computes anything else.
    `None` (the default runs/...) checks runs/ or the working directory.
    A directory another process is writing names that process; an occupied one
    says what it holds and how to go on (`occupied_message`), for `verb` (the
    command asking; default: the one on the command line, if any)."""
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
        holder = lock_holder(path) if out is not None else None
        if holder is not None:
            raise DriftlabError(f"output directory {path} is in use by {holder}: one writer per "
                                "run directory; choose a new --out")
        if occupied:
            raise DriftlabError(occupied_message(path, verb))
        _probe_writable(path, path)
        return
    parent = path.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise DriftlabError(f"output directory {path} cannot be created: {parent} is a file, "
                            "not a directory; choose another --out")
    _probe_writable(parent, path)


def new_run_dir(out: str | Path | None, kind: str, name: str, verb: str | None = None) -> Path:
    """`out` if given (must be empty or new), else runs/<kind>-<name>-<timestamp>.
    An unusable path is a one-line DriftlabError naming it and the reason."""
    check_output_dir(out, verb or command_line_verb() or kind)
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


# ---- what an occupied output directory holds ------------------------------------------

def verbs() -> set[str]:
    """The verbs of the command line (`driftlab VERB ...`), as driftlab.cli declares them."""
    from driftlab.cli import COMMANDS, OPTIONAL_COMMANDS

    return {*COMMANDS, *OPTIONAL_COMMANDS}


def command_line_verb() -> str | None:
    """The verb of this process's `driftlab VERB ...` command line; None for any other
    program (a script, the tests) calling driftlab."""
    import sys

    argv = sys.argv
    if len(argv) > 1 and Path(argv[0]).name in ("driftlab", "cli.py") and argv[1] in verbs():
        return argv[1]
    return None


def _run_config(run_dir: Path) -> dict | None:
    """RUN/config.yaml as a mapping, or None (none there, or not a readable mapping;
    read with storage's size, nesting and alias limits)."""
    from driftlab.algorithms.storage import RecordFileError, read_yaml

    if not (run_dir / "config.yaml").is_file():
        return None
    try:
        return read_yaml(run_dir / "config.yaml")
    except RecordFileError:
        return None


def _incomplete_train(run_dir: Path) -> dict | None:
    """The config of a `driftlab train` run directory that has no summary.json (it was
    stopped, killed, or is still running), else None."""
    config = _run_config(run_dir)
    if config is None or config.get("command") != "train" or (run_dir / "summary.json").is_file():
        return None
    return config


def _train_again(shown: str | Path, config: dict) -> str:
    """How to go on from an incomplete train run directory `shown`."""
    if "sweep" in config:  # `--rerun` refuses sweeps
        return "train the sweep again with a new --out, or delete it"
    return f"`driftlab train --rerun {shown} --out NEW` trains it again, or delete it"


def occupied_message(path: Path, verb: str | None = None) -> str:
    """The one line refusing a non-empty `path` as --out of `verb`: what the directory
    holds (a discovery run, an interrupted or finished train run, an evaluation, a
    quickstart, another verb's output) and the way on from there."""
    head = f"output directory {path} is not empty"
    verb = verb or command_line_verb()
    config = _run_config(path)
    command = config.get("command") if config is not None else None
    if command == "train":
        if (path / "summary.json").is_file():
            return f"{head}: it holds a finished train run; choose a new --out"
        hint = _train_again(path, config)
        other = "" if verb == "train" or "sweep" in config else "; or choose a new --out"
        return f"{head}: it holds an interrupted train run (no summary.json); {hint}{other}"
    if command == "discover":
        return (f"{head}: it holds a discovery run; continue it with `driftlab discover "
                f"--resume {path}`, or choose a new --out")
    if isinstance(command, str) and command in verbs():
        return f"{head}: it holds the output of `driftlab {command}`; choose a new --out"
    if (path / "evaluation.yaml").is_file():
        if verb in (None, "evaluate"):
            return f"{head}; choose a new --out (or --resume it)"
        return (f"{head}: it holds an evaluation (`driftlab evaluate ... --out {path} --resume` "
                "continues it); choose a new --out")
    if (path / "quickstart.json").is_file():
        return (f"{head}: it holds a quickstart (`driftlab quickstart --resume {path}` "
                "finishes it); choose a new --out")
    return f"{head}; choose a new --out"


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
# Resolved run directory -> the path as the command was given it (for messages).
_SHOWN: dict[Path, str] = {}


def lock_holder(run_dir: str | Path) -> str | None:
    """Who holds RUN/driftlab.lock now ("driftlab train (pid 123)"), or None: no lock
    file, nobody holds it (its writer ended, kill -9 too), or this process does."""
    import fcntl

    key = Path(run_dir).resolve()
    if key in _HELD:
        return None
    try:
        handle = open(key / LOCK_NAME)  # noqa: SIM115 - read only: never creates it
    except OSError:
        return None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            try:
                return handle.read().strip() or "another process"
            except (OSError, UnicodeDecodeError):
                return "another process"
        fcntl.flock(handle, fcntl.LOCK_UN)
    return None


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
    _SHOWN[key] = str(run_dir)


def held_locks() -> set[Path]:
    return set(_HELD)


# ---- an interrupted train run is marked ------------------------------------------------

INCOMPLETE_NAME = "INCOMPLETE"


def _mark_incomplete(key: Path) -> str | None:
    """If the held run directory `key` is a train run without summary.json, write
    RUN/INCOMPLETE saying so and how to go on, and return the directory as the
    command named it; else None. Never raises (a full disk leaves no mark: the
    missing summary.json still says it)."""
    config = _incomplete_train(key)
    if config is None:
        return None
    shown = _SHOWN.get(key, str(key))
    stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    try:
        with open(key / INCOMPLETE_NAME, "w") as marker:
            marker.write(f"This train run stopped before it finished ({stamp}): it has no "
                         f"summary.json, and `driftlab compare` refuses it.\n"
                         f"{_train_again(shown, config)}.\n")
    except OSError:
        pass
    return shown


def incomplete_note(shown: str) -> str:
    """The clause naming incomplete train run directory `shown` and the way on."""
    config = _incomplete_train(Path(shown)) or {}
    return (f"{shown} is incomplete (no summary.json; marked by {INCOMPLETE_NAME} there): "
            f"{_train_again(shown, config)}")


def stop_note(err: BaseException | None = None, keep: set[Path] = frozenset(),
              verb: str = "train") -> str:
    """What the line reporting a stopped `driftlab train` (Ctrl-C, SIGTERM) adds: "; RUN
    is incomplete ...: `driftlab train --rerun RUN --out NEW` trains it again, or delete
    it" for each train run directory the stop left without summary.json: those an
    API call released on the way out (recorded on `err`) and those this process
    still holds (other than `keep`), which are marked now. "" when there are none, and
    for other verbs (their --resume redoes the train runs they hold)."""
    if verb != "train":
        return ""
    runs = list(getattr(err, "incomplete_runs", ()))
    for key in list(_HELD):
        if key not in keep:
            shown = _mark_incomplete(key)
            if shown is not None and shown not in runs:
                runs.append(shown)
    return "".join(f"; {incomplete_note(shown)}" for shown in runs)


def release_locks(keep: set[Path] = frozenset()) -> list[str]:
    """Release every lock this process took except those in `keep` (a command's
    end releases what it took; an enclosing command keeps its own). A train run
    directory released without summary.json is marked RUN/INCOMPLETE; returns
    those directories, as the command named them."""
    marked = []
    for key in list(_HELD):
        if key not in keep:
            shown = _mark_incomplete(key)
            if shown is not None:
                marked.append(shown)
            _SHOWN.pop(key, None)
            _HELD.pop(key).close()  # closing the file drops the flock
    return marked


@contextmanager
def releasing_new_locks() -> Iterator[None]:
    """Locks taken inside are released at its end, those held before are kept: a
    Python API call lets go of the run directories it wrote, as a command does.
    An exception (a stop included) that leaves a train run incomplete carries the
    directories in `incomplete_runs` and says so in a note."""
    before = held_locks()
    try:
        yield
    except BaseException as err:
        marked = release_locks(keep=before)
        if marked:
            try:
                err.incomplete_runs = [*getattr(err, "incomplete_runs", ()), *marked]
                for shown in marked:
                    err.add_note(incomplete_note(shown))
            except (AttributeError, TypeError):
                pass
        raise
    release_locks(keep=before)
