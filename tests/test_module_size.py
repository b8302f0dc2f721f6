"""Small modules with one job each: a module of more than ~300 lines says why at its
top ("Longer than ~300 lines: ..."), so a newcomer knows whether to split it."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 300


def test_every_long_module_states_why_it_is_long():
    files = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.split()
    unexplained = []
    for name in files:
        if name.startswith("tests/"):
            continue
        text = (ROOT / name).read_text(encoding="utf-8")
        if text.count("\n") <= LIMIT:
            continue
        doc = ast.get_docstring(ast.parse(text)) or ""
        if "Longer than ~300 lines" not in doc:
            unexplained.append(f"{name} ({text.count(chr(10))} lines)")
    assert not unexplained, ("modules over 300 lines without a 'Longer than ~300 lines: why' "
                             f"in their docstring: {', '.join(unexplained)}")
