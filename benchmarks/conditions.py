"""The conditions a benchmark figure was measured under, recorded in its JSON.

The figures are ratios of two programs timed in turn in one run on machines that
are often shared, so a figure is read with: when (UTC), which code (git commit and
whether tracked files differed from it, and which), which jax, how many CPUs, and
how busy the machine was (load average at the start and at the end of the run).

    conditions = start()        # before the first measurement
    ...
    result["conditions"] = finish(conditions)   # after the last

benchmarks/tables.py prints them above each table.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # not available on this platform
        return None


def _changed_files() -> list[str] | None:
    """Tracked files that differ from HEAD (git status, untracked files left out)."""
    try:
        done = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                              capture_output=True, text=True, timeout=10, cwd=ROOT, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return sorted(line[3:] for line in done.stdout.splitlines() if line.strip())


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def start() -> dict[str, Any]:
    """Conditions at the start of a benchmark run (the software, the machine, the
    load average now); pass the result to `finish` at the end."""
    sys.path.insert(0, str(ROOT))  # driftlab from this checkout when not installed
    from driftlab.software import software_record

    software = software_record()
    try:
        usable: int | None = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = None
    return {"date": datetime.now(UTC).isoformat(timespec="seconds"),
            "commit": software["commit"], "uncommitted": software["uncommitted"],
            "changed_files": _changed_files() if software["uncommitted"] else [],
            "command": " ".join([Path(sys.executable).name,
                                 *(a.removeprefix(f"{ROOT}/") for a in sys.argv)]),
            "python": platform.python_version(), "jax": _version("jax"),
            "jaxlib": _version("jaxlib"), "platform": platform.platform(),
            "processor": platform.machine(), "cpus": os.cpu_count(), "cpus_usable": usable,
            "load_average_start": _load(), "_started": time.perf_counter()}


def finish(conditions: dict[str, Any], backend: str | None = None) -> dict[str, Any]:
    """`conditions` from `start` completed with the load average now, the run's wall
    time and (when given) the JAX backend the figures were measured on."""
    done = {k: v for k, v in conditions.items() if not k.startswith("_")}
    done.update(load_average_end=_load(), date_end=datetime.now(UTC).isoformat(timespec="seconds"),
                wall_seconds=round(time.perf_counter() - conditions["_started"], 1))
    if backend is not None:
        done["backend"] = backend
    done["note"] = ("load_average_*: os.getloadavg() (1, 5, 15 minutes) at the start and the end "
                    "of the run; uncommitted: tracked files differed from the commit "
                    "(changed_files lists them)")
    return done


def save(result: dict[str, Any], out: str | Path, benchmark: str, started: dict[str, Any],
         **extra: Any) -> Path:
    """Complete `result` with the benchmark's name, the date, `extra` (e.g. quick=),
    the machine and the conditions (from `start`), and write it to `out` as JSON."""
    import jax

    result.update(benchmark=benchmark, date=datetime.now(UTC).isoformat(), **extra,
                  machine={"platform": platform.platform(), "cpus": os.cpu_count(),
                           "jax": jax.__version__, "backend": jax.default_backend()},
                  conditions=finish(started, jax.default_backend()))
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path
