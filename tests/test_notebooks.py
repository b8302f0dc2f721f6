"""Every notebook in examples/ runs top to bottom at its tiny size
(DRIFTLAB_NOTEBOOK_TINY=1) in a kernel on this Python (the venv's), with its run
directories under a temporary folder, and is stored without outputs."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import nbclient
import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))
KERNEL = "driftlab-test-python"
# What a notebook must display when it runs: at least this many images, and these strings
# in its text and markdown outputs.
SHOWS = {"quickstart.ipynb": (6, ["generation 1: fitness", "Mirror-Learning conditions",
                                  "final return", "IQM", "P(algorithm > ppo)"])}


def test_there_are_notebooks():
    assert NOTEBOOKS, f"no notebooks in {EXAMPLES}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_stored_without_outputs(path: Path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    dirty = [index for index, cell in enumerate(nb.cells) if cell.cell_type == "code"
             and (cell.get("outputs") or cell.get("execution_count") is not None)]
    assert not dirty, (f"{path.name}: code cells {dirty} keep outputs or execution counts; "
                       "clear them before committing (Jupyter: Edit > Clear Outputs of All Cells)")


def _kernel_manager(folder: Path) -> AsyncKernelManager:
    """A kernel running this interpreter (the venv's), whatever kernels the machine has."""
    spec = folder / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "driftlab tests", "language": "python"}))
    return AsyncKernelManager(kernel_name=KERNEL,
                              kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(folder)]))


@pytest.mark.slow  # ~45 s with a warm compilation cache, a few minutes without
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path: Path, tmp_path: Path, monkeypatch):
    # The kernel inherits this environment: the tiny size, conftest's compilation cache
    # (DRIFTLAB_JAX_CACHE) and one CPU device. Its working directory is tmp_path / "work",
    # so every run directory (runs/...) is written there.
    monkeypatch.setenv("DRIFTLAB_NOTEBOOK_TINY", "1")
    work = tmp_path / "work"
    work.mkdir()
    before = _notebook_runs()
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, km=_kernel_manager(tmp_path / "kernels"), timeout=600,
                                     resources={"metadata": {"path": str(work)}})
    failure = None
    try:
        client.execute()
    except CellExecutionError as err:
        failure = re.sub(r"\x1b\[[0-9;]*m", "", str(err))  # the traceback without its colours
    if failure:  # failed outside the except block: the report is the cell's error alone
        pytest.fail(f"{path.name}: a cell failed:\n{failure}", pytrace=False)
    outputs = [output for cell in nb.cells for output in cell.get("outputs", [])]
    errors = [output for output in outputs if output.get("output_type") == "error"]
    assert not errors, errors
    images = sum("image/png" in output.get("data", {}) for output in outputs)
    text = "\n".join([output.get("text", "") for output in outputs]
                     + [output.get("data", {}).get("text/markdown", "") for output in outputs])
    least, strings = SHOWS.get(path.name, (0, []))
    assert images >= least, f"{path.name} displayed {images} images, expected {least} or more"
    missing = [s for s in strings if s not in text]
    assert not missing, f"{path.name} did not show {missing}"
    assert list((work / "runs").iterdir()), "no run directory under the working directory"
    assert _notebook_runs() == before, "a run directory was written into the checkout"


def _notebook_runs() -> set[Path]:
    return {p for folder in (ROOT, EXAMPLES) for p in folder.glob("runs/notebook-*")}
