"""What software produced a run: recorded in every run directory's config.yaml so a
result can be traced to the code and the library versions behind it."""

from __future__ import annotations

import functools
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("jax", "jaxlib", "flax", "optax", "gymnax", "brax", "evosax", "numpy")


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10,
                              cwd=Path(__file__).resolve().parent, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


@functools.lru_cache(maxsize=1)
def software_record() -> dict[str, Any]:
    """{driftlab: version, commit: git HEAD of the checkout driftlab runs from (None
    outside one), uncommitted: whether tracked files differed from it, python,
    packages: {name: version}} — read once per process."""
    try:
        version = metadata.version("driftlab")
    except metadata.PackageNotFoundError:
        version = None
    commit = _git("rev-parse", "HEAD")
    changes = _git("status", "--porcelain", "--untracked-files=no") if commit else None
    packages = {}
    for name in PACKAGES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = None
    return {"driftlab": version, "commit": commit,
            "uncommitted": None if changes is None else bool(changes),
            "python": platform.python_version(), "packages": packages}
