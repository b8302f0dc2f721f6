"""Every `driftlab` import resolves from the source tree, without the editable
install's import hook: the four top-level folders are reachable as
`driftlab.envs`, `driftlab.algorithms`, `driftlab.discovery`, `driftlab.analysis`
through symbolic links in driftlab/, so Python from a clone's root, and static tools
(mypy here; pyright and jedi read the same links), follow them."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from conftest import ROOT

SUBPACKAGES = ("envs", "algorithms", "discovery", "analysis")


def test_the_links_point_at_the_top_level_folders():
    for name in SUBPACKAGES:
        link = ROOT / "driftlab" / name
        assert link.is_symlink() and link.resolve() == (ROOT / name).resolve(), link


def test_import_from_the_source_root_without_the_install_hook():
    # The editable install's finder and path entries are removed, so only the
    # checkout (the working directory, sys.path[0] of `-c`) can supply driftlab.
    code = (
        "import sys\n"
        "sys.meta_path = [f for f in sys.meta_path if 'editable' not in repr(f).lower()]\n"
        "sys.path = [p for p in sys.path if '__editable__' not in p]\n"
        "import driftlab.envs, driftlab.algorithms, driftlab.discovery, driftlab.analysis\n"
        "import driftlab.discovery.loop, driftlab.algorithms.trainer\n"
        "print(driftlab.discovery.loop.__file__)\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == str(ROOT / "driftlab" / "discovery" / "loop.py")


def test_a_static_type_checker_resolves_every_driftlab_import():
    # mypy does not run setuptools' import hook, so it sees only the source tree.
    # The code is not fully typed yet: only unresolved driftlab imports are asserted on.
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--explicit-package-bases", "--no-error-summary",
         "--cache-dir", str(ROOT / ".mypy_cache"), "driftlab", "tests", "benchmarks"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert "errors prevented further checking" not in out.stdout, out.stdout[-2000:]
    unresolved = [line for line in out.stdout.splitlines()
                  if re.search(r'module named "driftlab|Module "driftlab[\w.]*" has no attribute',
                               line)]
    assert not unresolved, "\n".join(unresolved)
