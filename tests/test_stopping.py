"""A SIGTERM whose exception Python swallows (its handler ran inside a garbage
collection callback, as a CI run on 2026-11-30 showed) still stops the run, without
an "Exception ignored" report; other swallowed exceptions are reported as before."""

from __future__ import annotations

import gc
import signal
import sys

import pytest

from driftlab import stopping


def _collect_with(callback) -> None:
    gc.callbacks.append(callback)
    try:
        gc.collect()
    finally:
        gc.callbacks.remove(callback)


@pytest.fixture
def reported(monkeypatch):
    """The exception types that reach the unraisable hook set before `install`."""
    seen: list[type] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: seen.append(u.exc_type))
    previous = stopping.install()
    yield seen
    stopping.restore(previous)


def test_a_stop_swallowed_by_a_gc_callback_is_kept_and_silent(reported):
    def stop_during_collection(phase: str, info: dict) -> None:
        if phase == "start":
            stopping._on_sigterm(signal.SIGTERM, None)  # what the signal does mid-callback

    _collect_with(stop_during_collection)
    assert stopping.stop_requested()
    with pytest.raises(stopping.Terminated):
        stopping.raise_if_stopped()
    assert reported == []


def test_other_swallowed_exceptions_are_still_reported(reported):
    def fail(phase: str, info: dict) -> None:
        if phase == "start":
            raise ValueError("not a stop")

    _collect_with(fail)
    assert reported == [ValueError]
    assert not stopping.stop_requested()


def test_each_install_starts_with_no_stop_pending():
    previous = stopping.install()
    try:
        with pytest.raises(stopping.Terminated):
            stopping._on_sigterm(signal.SIGTERM, None)
        stopping.restore(previous)
        previous = stopping.install()
        assert not stopping.stop_requested()
    finally:
        stopping.restore(previous)
