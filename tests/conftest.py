"""Shared test set-up: JAX's persistent compilation cache (repeat runs skip
most XLA compiles; `DRIFTLAB_JAX_CACHE` moves it or turns it off, and `driftlab`
commands the tests start as subprocesses share it), run-directory locks released
after each test, and small helpers."""

from __future__ import annotations

import os
from pathlib import Path

import jax
import pytest

ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = os.environ.get("DRIFTLAB_JAX_CACHE", "").strip() or str(ROOT / ".jax_cache")
# One CPU device in tests (and their subprocesses) unless a test asks for more, so
# results never depend on which test first started JAX's backend.
os.environ.setdefault("DRIFTLAB_CPU_DEVICES", "1")

if CACHE_DIR.lower() not in ("off", "0", "false", "no", "none", "disable", "disabled"):
    os.environ["DRIFTLAB_JAX_CACHE"] = CACHE_DIR
    jax.config.update("jax_compilation_cache_dir", CACHE_DIR)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


@pytest.fixture(autouse=True)
def _release_run_locks():
    """Tests that call internal functions taking run-directory locks (`training.train_run`;
    a command or API call releases its own at its end) leave them held by this process:
    they are released after each test, so no later test in the same process (an xdist
    worker runs tests of many files) finds them held."""
    yield
    from driftlab.rundir import release_locks

    release_locks()


class Lowerings:
    """Counts the programs JAX lowers (each is then compiled, or loaded from the
    persistent cache), by jitted function name, while active (`with Lowerings() as
    lowered:`); test_compile_once.py and test_sweep.py count compiles with it."""

    def __init__(self):
        self.names: list[str] = []
        self.active = False
        jax.monitoring.register_event_duration_secs_listener(self._record)

    def _record(self, event: str, duration: float, **kwargs) -> None:
        if self.active and event == "/jax/core/compile/jaxpr_to_mlir_module_duration":
            self.names.append(str(kwargs.get("fun_name")))

    def __enter__(self):
        self.names.clear()
        self.active = True
        return self

    def __exit__(self, *exc):
        self.active = False
