"""SIGTERM (a scheduler's or `kill`'s stop) ends a verb as Ctrl-C does.

The handler records the request and raises `Terminated` in the main thread. Python
can run a handler inside a callback that swallows exceptions (JAX's garbage
collection callback is one), so the loops of long work also call `raise_if_stopped`
at each chunk or generation boundary: a swallowed stop still ends the run there, and
Python's "Exception ignored" report of the swallowed one is silenced.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

_requested = False


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so it unwinds like Ctrl-C."""


def _on_sigterm(signum: int, frame: object) -> None:
    global _requested
    _requested = True
    raise Terminated()


def _quiet_unraisable(unraisable: Any) -> None:
    if isinstance(unraisable.exc_type, type) and issubclass(unraisable.exc_type, Terminated):
        return  # recorded in _requested; the next raise_if_stopped ends the run
    _previous_hook(unraisable)


_previous_hook = sys.unraisablehook


def install() -> Callable[..., Any] | int | None:
    """Route SIGTERM to `Terminated`; returns the previous handler (None off the main
    thread, where Python cannot set one)."""
    global _requested, _previous_hook
    _requested = False
    if threading.current_thread() is not threading.main_thread():
        return None
    if sys.unraisablehook is not _quiet_unraisable:
        _previous_hook = sys.unraisablehook
        sys.unraisablehook = _quiet_unraisable
    return signal.signal(signal.SIGTERM, _on_sigterm)


def restore(previous: Callable[..., Any] | int | None) -> None:
    if previous is not None:
        signal.signal(signal.SIGTERM, previous)
        sys.unraisablehook = _previous_hook


def stop_requested() -> bool:
    return _requested


def report(command: str, err: KeyboardInterrupt, hint: str = "") -> int:
    """Print the one line a verb stopped by Ctrl-C or SIGTERM ends with, followed by
    `hint` ("; how to continue", or ""), and return the exit status (143 for
    SIGTERM, 130 for Ctrl-C). The stop counts as reported."""
    global _requested
    terminated = isinstance(err, Terminated) or _requested
    _requested = False
    what = "terminated (SIGTERM)" if terminated else "interrupted"
    print(f"driftlab {command}: {what}; files written so far are intact{hint}",
          file=sys.stderr)
    return 143 if terminated else 130


def raise_if_stopped() -> None:
    """Raise `Terminated` if SIGTERM arrived, even if its first raise was swallowed."""
    if _requested:
        raise Terminated()
