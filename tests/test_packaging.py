"""A regular (non-editable) install: the built wheel carries every preset and
shipped drift as package data, and an installed copy finds them from another
working directory; the CLI module imports cleanly there."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # Built from a copy of the source: setuptools builds in-tree, and a stale build/
    # folder of the checkout would otherwise leak old files into the wheel.
    source = tmp_path_factory.mktemp("source") / "driftlab"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".venv", "build", "runs", ".git", ".jax_cache", "*.egg-info", "__pycache__", "results"))
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-q",
                           "-w", str(out)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return next(out.glob("driftlab-*.whl"))


def test_wheel_carries_presets_and_shipped_drifts(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    # Every import name is driftlab's own: nothing installs as `envs`, `algorithms`, ...
    tops = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert tops == {"driftlab", "driftlab_configs", "driftlab_drifts"}, tops
    for folder in ("envs", "algorithms", "discovery", "analysis"):
        assert f"driftlab/{folder}/__init__.py" in names
    for preset in [*(ROOT / "configs").rglob("*.yaml"), *(ROOT / "configs").rglob("*.json")]:
        assert f"driftlab_configs/{preset.relative_to(ROOT / 'configs').as_posix()}" in names
    for item in (ROOT / "drifts").rglob("*"):
        if item.is_file():
            assert f"driftlab_drifts/{item.relative_to(ROOT / 'drifts').as_posix()}" in names


def test_installed_wheel_finds_presets_from_another_directory(wheel, tmp_path):
    site = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                           "--target", str(site), str(wheel)], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    work = tmp_path / "elsewhere"
    work.mkdir()
    script = (
        "import driftlab.presets as p, driftlab.algorithms.shipped as s\n"
        "from driftlab.algorithms.drift_io import load_drift\n"
        "from driftlab.discover_command import list_presets\n"
        f"assert p.__file__.startswith({str(site)!r}), p.__file__\n"
        "assert p.train_preset('gymnax/CartPole-v1')['num_envs'] == 4\n"
        "assert 'cartpole-tiny' in list_presets()\n"
        "import os\n"
        "from driftlab.discovery_settings import preset_settings\n"
        "family = preset_settings('transfer-classic-asym')['drift']['from']\n"
        "assert family.startswith(" + repr(str(site)) + ") and os.path.isfile(family), family\n"
        "assert 'lpo-cartpole' in s.list_shipped()\n"
        "assert load_drift('lpo-cartpole')[0].spec['kind'] == 'lpo'\n"
        "from driftlab.cli import main\n"
        "raise SystemExit(main(['drifts']))\n")
    env = {**os.environ, "PYTHONPATH": str(site), "DRIFTLAB_JAX_CACHE": "off"}
    done = subprocess.run([sys.executable, "-c", script], cwd=work, capture_output=True,
                          text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "lpo-cartpole" in done.stdout


def _pins(path: Path) -> dict[str, str]:
    """{canonical name: version} of a pip requirements file of `name==version` lines."""
    from packaging.utils import canonicalize_name

    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"{path.name}: {line!r} is not pinned with =="
            pins[canonicalize_name(name)] = version
    return pins


def test_lock_pins_equal_the_constraints():
    """The Makefile installs requirements.lock with --no-deps: every pin must be the
    tested one in constraints.txt."""
    lock, constraints = _pins(ROOT / "requirements.lock"), _pins(ROOT / "constraints.txt")
    differ = {name: (version, constraints.get(name)) for name, version in lock.items()
              if constraints.get(name) != version}
    assert not differ, f"requirements.lock vs constraints.txt: {differ}"


def test_lock_is_closed_under_its_requirements():
    """Installed with --no-deps, the lock must hold every requirement of driftlab and
    of each locked package on this Python (markers evaluated, extras not asked for),
    or an import would fail where `pip check` is not run."""
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    lock = _pins(ROOT / "requirements.lock")
    missing = {}
    for dist in ["driftlab", *lock]:
        for text in metadata.requires(dist) or []:
            req = Requirement(text)
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue
            if canonicalize_name(req.name) not in lock:
                missing.setdefault(dist, []).append(str(req))
    assert not missing, f"requirements.lock lacks what these need: {missing}"
