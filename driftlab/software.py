"""What software produced a run: recorded in every run directory's config.yaml so a
result can be traced to the code, the library versions and the numerics behind it
(the machine's instruction set and XLA's flags: the same code, settings and seeds
train to other returns under another ISA or XLA optimisation level; measured in
docs/evaluate.md, "Reusing cells")."""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("jax", "jaxlib", "flax", "optax", "gymnax", "brax", "evosax", "numpy")
# CPU features that change what XLA's CPU compiler emits (vector width, fused
# multiply-add), and so the rounding of every sum; read from /proc/cpuinfo.
CPU_FEATURES = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512dq", "avx512vl",
                "avx512_bf16", "avx512_fp16", "avx512_vnni", "amx_tile")
# An XLA flag that only splits the CPU into devices (discovery sharding) and leaves each
# device's arithmetic as it is.
DEVICE_COUNT_FLAG = "--xla_force_host_platform_device_count"


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10,
                              cwd=Path(__file__).resolve().parent, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def source_digest() -> str:
    """sha256 (first 16 hex digits) of every Python source file of the driftlab package
    as this process imports it (driftlab and its envs / algorithms / discovery /
    analysis subpackages; paths and contents, in path order). Two runs with the same
    digest ran the same code, whatever the git state; any edit changes it, because
    even a refactor that keeps the semantics can move each seed's returns (floating-point
    order, then RL's chaos: docs/evaluate.md, "Reusing cells")."""
    root = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    files = []
    for folder, dirs, names in os.walk(root, followlinks=True):  # the checkout links them
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        files += [Path(folder) / n for n in names if n.endswith(".py")]
    for path in sorted(files, key=lambda f: f.relative_to(root).as_posix()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _cpu_features() -> list[str] | None:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: the architecture is all that is known
        return None
    for line in text.splitlines():
        if line.startswith("flags"):
            present = set(line.split(":", 1)[1].split())
            return [f for f in CPU_FEATURES if f in present]
    return None


def numerics_record() -> dict[str, Any]:
    """{platform, device: JAX's default backend and its first device's kind, cpu:
    architecture, cpu_features (CPU_FEATURES present), xla_flags: $XLA_FLAGS without
    the device-count flag, x64, matmul_precision} — what besides the code and the
    libraries decides a run's floating-point results. Initialises JAX's backend."""
    import jax

    flags = [f for f in os.environ.get("XLA_FLAGS", "").split()
             if not f.startswith(DEVICE_COUNT_FLAG)]
    return {"platform": jax.default_backend(), "device": jax.devices()[0].device_kind,
            "cpu": platform.machine(), "cpu_features": _cpu_features(),
            "xla_flags": " ".join(flags), "x64": bool(jax.config.jax_enable_x64),
            "matmul_precision": (None if jax.config.jax_default_matmul_precision is None
                                 else str(jax.config.jax_default_matmul_precision))}


@functools.lru_cache(maxsize=1)
def software_record() -> dict[str, Any]:
    """{driftlab: version, commit: git HEAD of the checkout driftlab runs from (None
    outside one), uncommitted: whether tracked files differed from it, source: the
    code's `source_digest`, python, packages: {name: version}, numerics:
    `numerics_record`} — read once per process."""
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
            "source": source_digest(), "python": platform.python_version(),
            "packages": packages, "numerics": numerics_record()}


def software_difference(recorded: dict[str, Any] | None,
                        current: dict[str, Any] | None = None) -> str | None:
    """Why results recorded with `recorded` (a run's `software`) may not be pooled with
    results of `current` (default: this process's), or None when they ran the same
    libraries, Python, numerics (`numerics_record`) and code. The same code: equal
    `source` digests; for a record written before digests, the same commit with no
    uncommitted change on either side."""
    current = software_record() if current is None else current
    if not recorded:
        return "it records no software (trained before driftlab recorded it)"
    for name, version in sorted((current.get("packages") or {}).items()):
        theirs = (recorded.get("packages") or {}).get(name)
        if theirs != version:
            return f"it was trained with {name} {theirs}, this run has {version}"
    if recorded.get("python") != current.get("python"):
        return f"it was trained with Python {recorded.get('python')}, this run has " \
               f"{current.get('python')}"
    theirs, mine = recorded.get("numerics"), current.get("numerics") or {}
    if theirs is None:
        return ("it records no numerics (machine, XLA flags: written by an older driftlab), "
                "which change returns as much as code does")
    for key, value in mine.items():
        if theirs.get(key) != value:
            return f"it ran with {key} {theirs.get(key)!r}, this run with {value!r}"
    if recorded.get("source") is not None and current.get("source") is not None:
        if recorded["source"] == current["source"]:
            return None
    elif (recorded.get("commit") is not None and recorded.get("commit") == current.get("commit")
          and recorded.get("uncommitted") is False and current.get("uncommitted") is False):
        return None
    edited = " with uncommitted changes" if recorded.get("uncommitted") else ""
    return (f"it was trained by other driftlab code (commit {recorded.get('commit')}{edited}, "
            f"source {recorded.get('source')}; this run: commit {current.get('commit')}, "
            f"source {current.get('source')})")
