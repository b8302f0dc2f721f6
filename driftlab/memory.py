"""Memory refused up front: a compiled program that needs more memory than the
machine has free is a one-line DriftlabError before it runs, not an
out-of-memory kill (or a swapping machine) minutes into a run.

The need is the compiled program's own account (`memory_analysis()`: argument +
output + temporary bytes, per device), read from the program the run compiles
anyway, so the check adds no compile. What is free: on CPU, the kernel's
MemAvailable (/proc/meminfo; the CPU devices of one process share it); on an
accelerator, the device's `memory_stats()` limit less what is in use. Where
either cannot be read the check is skipped, and DRIFTLAB_MEMORY_CHECK=off
skips it always. The arguments are already resident when the check runs, so
the need is counted on the safe side by their size.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from driftlab.errors import DriftlabError

GIB = float(1 << 30)


def meminfo_available(path: str = "/proc/meminfo") -> int | None:
    """MemAvailable in bytes (Linux), or None where it cannot be read."""
    try:
        with open(path) as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    fields = line.split()
                    return int(fields[1]) * (1024 if fields[2:3] == ["kB"] else 1)
    except (OSError, ValueError, IndexError):
        return None
    return None


def available_bytes(device: Any) -> int | None:
    """Bytes free for a program on `device`: host RAM for a CPU device, the device's
    own memory for an accelerator (None where it cannot be read)."""
    if getattr(device, "platform", "cpu") == "cpu":
        return meminfo_available()
    try:
        stats = device.memory_stats()
    except Exception:  # noqa: BLE001 - a backend without statistics: no check
        return None
    if not stats or "bytes_limit" not in stats:
        return None
    return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))


def program_bytes(compiled: Any) -> int | None:
    """Argument + output + temporary bytes per device of a compiled program (jax's
    `Compiled`), or None where the backend gives no analysis."""
    try:
        stats = compiled.memory_analysis()
    except Exception:  # noqa: BLE001 - not every backend implements it
        return None
    if stats is None:
        return None
    try:
        return int(stats.argument_size_in_bytes + stats.output_size_in_bytes
                   + stats.temp_size_in_bytes)
    except (AttributeError, TypeError):
        return None


def _gib(n: float) -> str:
    gib = n / GIB
    if gib >= 1e5:  # an absurd request: its size, not 13 digits of it
        return f"{gib:.2g} GiB"
    return f"{gib:.2f} GiB" if gib >= 0.01 else f"{gib:.2g} GiB"


def check_fits(compiled: Any, devices: Sequence[Any], what: str, fix: str) -> None:
    """Raise a DriftlabError naming both numbers and `fix` when `compiled` (run on
    `devices`, this process's share of them) needs more memory than is free.
    Nothing happens when `compiled` is None (its compile failed: the real call
    reports that) or when either number cannot be read."""
    if compiled is None or not devices:
        return
    if os.environ.get("DRIFTLAB_MEMORY_CHECK", "").strip().lower() in ("off", "0", "false",
                                                                        "no"):
        return
    per_device = program_bytes(compiled)
    if per_device is None:
        return
    device = devices[0]
    if getattr(device, "platform", "cpu") == "cpu":  # CPU devices share the host's memory
        need, have, where = per_device * len(devices), available_bytes(device), "RAM available"
    else:
        free = [available_bytes(d) for d in devices]
        if any(f is None for f in free):
            return
        have, device = min(zip(free, devices, strict=True), key=lambda pair: pair[0])
        need, where = per_device, f"free on {device.platform} device {device.id}"
    if have is None or need <= have:
        return
    raise DriftlabError(f"{what} needs {_gib(need)} of memory but this machine has "
                        f"{_gib(have)} {where}; {fix} (DRIFTLAB_MEMORY_CHECK=off skips "
                        "this check)")


def check_host_bytes(need: float, what: str, fix: str) -> None:
    """Raise a DriftlabError naming both numbers and `fix` when `need` bytes of host
    memory (numpy work: bootstrap resamples, drift surfaces) exceed the RAM
    available now. Skipped where MemAvailable cannot be read or with
    DRIFTLAB_MEMORY_CHECK=off."""
    if os.environ.get("DRIFTLAB_MEMORY_CHECK", "").strip().lower() in ("off", "0", "false",
                                                                        "no"):
        return
    have = meminfo_available()
    if have is None or need <= have:
        return
    raise DriftlabError(f"{what} needs about {_gib(need)} of memory but this machine has "
                        f"{_gib(have)} RAM available; {fix} (DRIFTLAB_MEMORY_CHECK=off skips "
                        "this check)")

