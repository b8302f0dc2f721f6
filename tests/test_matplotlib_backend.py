"""Importing driftlab never switches matplotlib's backend (a Jupyter kernel keeps
its inline figures): plots use the object API (`matplotlib.figure.Figure`)."""

from __future__ import annotations

import subprocess
import sys


def test_importing_every_driftlab_module_keeps_the_backend():
    code = """
import importlib, pkgutil, matplotlib
matplotlib.use("svg")  # any backend the caller chose
import driftlab
names = []
for package in ("driftlab", "driftlab.envs", "driftlab.algorithms", "driftlab.discovery",
                "driftlab.analysis"):
    module = importlib.import_module(package)
    names += [f"{package}.{m.name}" for m in pkgutil.iter_modules(module.__path__)]
for name in names:
    importlib.import_module(name)
import sys
assert "matplotlib.pyplot" not in sys.modules or matplotlib.get_backend() == "svg"
print(len(names), matplotlib.get_backend())
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    count, backend = out.stdout.split()
    assert backend == "svg" and int(count) > 40, out.stdout
