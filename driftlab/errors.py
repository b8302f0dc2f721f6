"""The error type the CLI turns into one line instead of a traceback, and the
one-line readings of the machine's own refusals: a full disk, a name too long,
an unwritable path (`resource_error`), a JAX platform that cannot start
(`platform_error`)."""

from __future__ import annotations

import errno
import os
from pathlib import Path


class DriftlabError(Exception):
    """A user-facing problem; the message names the problem and the fix."""


def user_errors() -> tuple[type[BaseException], ...]:
    """Exception types that are the user's input, not a bug: shown as one line."""
    from driftlab.algorithms import ConfigError, UnknownDriftError
    from driftlab.algorithms.drift_io import DriftFileError
    from driftlab.algorithms.storage import RecordFileError
    from driftlab.envs import EnvironmentUnavailableError, UnknownEnvironmentError

    return (DriftlabError, ConfigError, UnknownDriftError, UnknownEnvironmentError,
            DriftFileError, RecordFileError, EnvironmentUnavailableError)


NAME_MAX = 255  # bytes in one file name (ext4, xfs, btrfs, tmpfs, ...)
PATH_MAX = 4096  # bytes in a whole path (Linux)


def _where(err: OSError, fallback: str | Path | None) -> str | None:
    """The path an OSError is about: the target of a rename (`filename2`, where an
    atomic write lands), else `filename`, else `fallback` (e.g. the verb's --out)."""
    for name in (err.filename2, err.filename, fallback):
        if name is not None and str(name):
            return os.fsdecode(name) if isinstance(name, bytes) else str(name)
    return None


def resource_error(err: OSError, fallback: str | Path | None = None) -> str | None:
    """One line for an OSError that is the machine's resources, not a bug: no space
    (ENOSPC, EDQUOT), a name too long (ENAMETOOLONG), a path that cannot be
    written (EROFS, EACCES, EPERM); None for any other OSError. `fallback` names
    the path when the error does not (a write() on an open file)."""
    path = _where(err, fallback)
    reason = err.strerror or str(err)
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        what = "no space left" if err.errno == errno.ENOSPC else "disk quota exceeded"
        device = f"the device holding {path}" if path else "the output's device"
        return (f"{what} on {device} ({reason}); free space or give --out on another disk; "
                "files written before are intact (writes are atomic): continue with "
                "--resume where the verb has it")
    if err.errno == errno.ENAMETOOLONG:
        if path is None:
            return f"a file name is too long ({reason}); choose a shorter --out"
        parts = [p for p in Path(path).parts if p != "/"]
        longest = max((len(os.fsencode(p)) for p in parts), default=0)
        if longest > NAME_MAX:
            return (f"{path} cannot be used: one of its names is {longest} bytes long, more "
                    f"than the {NAME_MAX} a file name may have; choose a shorter --out")
        return (f"{path} cannot be used: it is {len(os.fsencode(path))} bytes long, more than "
                f"the {PATH_MAX} a path may have; choose a shorter --out")
    if err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        where = path or "the output"
        return (f"{where} cannot be written ({reason}); choose a writable --out or fix its "
                "permissions")
    return None


def _requested_platforms() -> str:
    value = os.environ.get("JAX_PLATFORMS", "").strip()
    if value:
        return value
    import sys

    jax = sys.modules.get("jax")
    return str(getattr(jax.config, "jax_platforms", "") or "") if jax is not None else ""


def _plugin(platform: str) -> str:
    return {"cuda": "'jax[cuda12]'", "gpu": "'jax[cuda12]'", "tpu": "'jax[tpu]'",
            "rocm": "the ROCm plugin (jax-rocm*-plugin)"}.get(platform, f"the {platform} plugin")


def platform_error(err: BaseException) -> str | None:
    """One line when JAX cannot start the platform JAX_PLATFORMS asks for (jax
    raises a RuntimeError "Unable to initialize backend ..." or, for `cuda` with no
    NVIDIA GPU visible, a bare AssertionError); None when `err` is anything else.
    The platform is confirmed by asking JAX for its devices again."""
    if not isinstance(err, (RuntimeError, AssertionError)):
        return None
    requested = _requested_platforms()
    if not requested:
        return None
    if isinstance(err, RuntimeError) and "Unable to initialize backend" not in str(err):
        return None
    try:
        import jax

        jax.devices()
    except (RuntimeError, AssertionError) as again:
        detail = str(again).split(" (set JAX_PLATFORMS")[0].strip()
        if not detail:  # jax's bare assertion: `cuda` asked for, no NVIDIA GPU visible
            detail = "no device of that platform is visible here"
    else:
        return None  # the platforms start: `err` is something else
    first = requested.split(",")[0].strip().lower()
    return (f"JAX_PLATFORMS={requested} asks for a platform this machine cannot start "
            f"({detail}); unset JAX_PLATFORMS (or set it to cpu) to use the devices that are "
            f"here, or install {_plugin(first)} on a machine with that hardware")
