"""Formatting for benchmarks/tables.py: figures as text (rates, ratios, seconds), a markdown
table, and the "measured when, at which commit, under what load" lines under each table.

No JAX: it only formats what the benchmarks' JSON holds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def rate(x: float) -> str:
    """Steps per second to 3 significant figures: 1.50M, 19.0M, 245k, 10.9k."""
    for scale, suffix in ((1e6, "M"), (1e3, "k"), (1.0, "")):
        if x >= scale or scale == 1.0:
            value = x / scale
            decimals = max(0, 3 - len(str(int(round(value, 1)))))
            return f"{value:.{decimals}f}{suffix}"
    raise AssertionError


def ratio(x: float) -> str:
    """2 decimals; 2 significant figures below 0.1 (0.022x)."""
    return f"{x:.2f}x" if x >= 0.1 else f"{x:.2g}x"


def seconds(x: float) -> str:
    return f"{x:.2f} s" if x < 10 else f"{x:.1f} s"


def steps(n: int) -> str:
    return f"{n:,}"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    return (["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            + ["| " + " | ".join(row) + " |" for row in rows])


def shown(path: Path) -> str:
    try:
        return path.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return path.name


def load_text(load: list[float] | None) -> str:
    return "not recorded" if not load else " / ".join(f"{x:.1f}" for x in load)


def measured(data: dict[str, Any], path: Path) -> list[str]:
    """The lines under a table's heading: source file, date, commit, software, load."""
    lines = [f"From `{shown(path)}`."]
    c = data.get("conditions")
    if c:
        commit = f"`{c['commit'][:7]}`" if c.get("commit") else "an unknown commit"
        if c.get("uncommitted"):
            changed = c.get("changed_files") or []
            code = [f for f in changed if not f.startswith(("benchmarks/", "docs/"))]
            commit += (f" with uncommitted changes to {len(changed)} tracked file"
                       f"{'' if len(changed) == 1 else 's'} ("
                       + (f"{len(code)} outside benchmarks/ and docs/" if code
                          else "none outside benchmarks/ and docs/") + "; listed in the JSON)")
        elif c.get("uncommitted") is False:
            commit += " (no uncommitted changes)"
        cpus = c.get("cpus")
        backend = c.get("backend") or ", ".join(sorted({r["backend"] for r in data.get("results", [])
                                                        if isinstance(r, dict) and "backend" in r}))
        lines.append(
            f"Measured {c['date'].replace('T', ' ').removesuffix('+00:00')} UTC "
            f"({c.get('wall_seconds', 0) / 60:.0f} min run, `{c.get('command', '?')}`) at {commit}; "
            f"jax {c.get('jax')}, {backend or 'backend not recorded'}, {cpus} CPUs; "
            f"load average (1 / 5 / 15 min) {load_text(c.get('load_average_start'))} at the start, "
            f"{load_text(c.get('load_average_end'))} at the end.")
    else:
        text = f"Measured {str(data.get('date', 'on an unrecorded date'))[:19].replace('T', ' ')} UTC"
        software = [f"jax {data.get('jax') or data.get('machine', {}).get('jax')}"]
        backend = data.get("backend") or data.get("machine", {}).get("backend")
        if backend:
            software.append(backend + (f" ({', '.join(data['devices'])})" if data.get("devices") else ""))
        cpus = data.get("machine", {}).get("cpus")
        if cpus:
            software.append(f"{cpus} CPUs")
        lines.append(f"{text}; {', '.join(software)}; commit and load not recorded in the JSON"
                     + (f" (by hand: {data['measured_at']})." if data.get("measured_at") else "."))
    if data.get("quick"):
        lines.append("**A `--quick` run: a test of the script, not a measurement.**")
    return lines
