"""The cells of an evaluation, one (algorithm, env) train run each: which are
already done, which can be copied from another evaluation (`--baselines-from`),
and training the rest one after another or in `jobs` processes side by side.

A cell's numbers depend only on its own settings and seeds, never on what else
runs: training cells in parallel gives the same run directories as in sequence
(each process compiles its own program; on a 2-core CPU two processes use both
cores where one evaluation process keeps mostly one busy).
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from driftlab.algorithms.storage import read_json, read_yaml, to_builtin, write_json
from driftlab.errors import DriftlabError
from driftlab.presets import flatten_dotted

REUSED_FILE = "reused_cells.json"  # in the report folder: which cells were copied, from where
# What a cell's config.yaml did not record before the commit named (top level, and in
# its `train:` block), with the value that reproduces what the code did then: a cell
# without the key was trained with it.
UNRECORDED_RUN = {"chunks": 20}  # 504ff48; evaluate never set it: train_run's default
UNRECORDED_TRAIN = {"obs_norm_update": "step"}  # 9410e8e; the only normaliser update before


@dataclass(frozen=True)
class Cell:
    """One (algorithm, env) train run of an evaluation."""

    env_id: str
    name: str  # the contestant's report name
    algo: str
    drift_file: str | None
    budget: int  # total_timesteps
    settings: dict[str, Any]  # the env's preset at the budget (`evaluation.settings_for`)
    root: Path | None  # the report folder (None: not chosen yet)

    @property
    def folder(self) -> Path:
        """runs/<name>/<env>: the cell's place in any report folder."""
        return Path("runs") / self.name / self.env_id.replace("/", "_")

    @property
    def run_dir(self) -> Path:
        if self.root is None:
            raise ValueError("the cell's report folder is not chosen yet")
        return self.root / self.folder


def run_complete(run_dir: Path, seeds: int, budget: int) -> bool:
    """A train run directory that finished with these seeds and this budget."""
    if not (run_dir / "summary.json").is_file() or not (run_dir / "config.yaml").is_file():
        return False
    config = read_yaml(run_dir / "config.yaml")
    train = config.get("train") or {}
    return config.get("seeds") == seeds and train.get("total_timesteps") == budget


# ---- reusing another evaluation's baseline cells --------------------------------------------

def cell_mismatch(cell: Cell, source: Path, seeds: int, seed: int) -> str | None:
    """Why the complete train run `source` is not `cell` trained with `seeds` seeds from
    `seed` (None when it is): the algorithm, seeds, base seed, every training setting,
    the chunk length and the drift (spec and parameters, exactly) must all match."""
    import jax

    from driftlab.algorithms.drift_io import load_drift
    from driftlab.training import DEFAULT_CHUNKS, build

    saved = {**UNRECORDED_RUN, **read_yaml(source / "config.yaml")}
    _, config, drift, params = build(cell.env_id, cell.algo, cell.settings, cell.drift_file)
    wanted = {"algo": cell.algo, "seeds": seeds, "seed": seed, "chunks": DEFAULT_CHUNKS}
    for key, value in wanted.items():
        if saved.get(key) != value:
            return f"its {key} is {saved.get(key)!r}, this evaluation's {value!r}"
    # config.yaml went through YAML: compare through the same round trip
    mine = yaml.safe_load(yaml.safe_dump(to_builtin(config.to_dict(), finite=False)))
    mine, theirs = flatten_dotted(mine), flatten_dotted(
        {**UNRECORDED_TRAIN, **(saved.get("train") or {})})
    for key in sorted(set(mine) | set(theirs)):
        if mine.get(key) != theirs.get(key):
            return (f"its training setting {key} is {theirs.get(key)!r}, this evaluation's "
                    f"{mine.get(key)!r}")
    try:
        trained, trained_params = load_drift(source / "drift.json")
    except Exception as err:  # noqa: BLE001 - any unreadable drift is a mismatch, said why
        return f"its drift.json cannot be read ({err})"
    leaves = [np.asarray(x) for x in jax.tree.leaves(params)]
    theirs_leaves = [np.asarray(x) for x in jax.tree.leaves(trained_params)]
    same = (dict(trained.spec) == dict(drift.spec) and len(leaves) == len(theirs_leaves)
            and all(a.shape == b.shape and np.array_equal(a, b)
                    for a, b in zip(leaves, theirs_leaves, strict=True)))
    if not same:
        return "its drift (kind, options or parameters) differs from this evaluation's"
    return None


def check_source(source_root: str | Path) -> Path:
    """`--baselines-from`'s folder as a Path, or a DriftlabError when it is not an
    evaluate report folder."""
    path = Path(source_root)
    if not (path / "evaluation.yaml").is_file():
        raise DriftlabError(f"--baselines-from {path} is not an evaluate report folder (it has "
                            "no evaluation.yaml); give the --out of an earlier evaluate")
    return path


def other_software(run_dir: Path) -> str | None:
    """Why the train run `run_dir` may not be pooled with runs trained by this process
    (`software.software_difference`: other code, libraries or numerics), or None."""
    from driftlab.software import software_difference

    return software_difference(read_yaml(run_dir / "config.yaml").get("software"))


def refuse_other_software(run_dir: Path, why: str, fix: str) -> DriftlabError:
    return DriftlabError(
        f"{run_dir}: {why}. Other code or numerics can move every seed's return with the same settings "
        f"and seeds, so its cell is not comparable with cells trained now; {fix}, or pass "
        "--reuse-across-software to pool them anyway (the report then lists such cells)")


def plan_reuse(cells: list[Cell], source_root: Path, seeds: int, seed: int,
               across_software: bool = False) -> list[tuple[Cell, Path]]:
    """(cell, source run directory) for each of `cells` (baselines only: the caller
    never passes the evaluated drift) that `source_root` holds complete and alike
    (`cell_mismatch`; and trained by this code, these libraries and these numerics
    unless `across_software`) and this evaluation has not finished yet. A cell the source
    holds but trained otherwise is a DriftlabError naming the difference; one it
    lacks is left to train (a line says so). Reads only: nothing is written."""
    plan = []
    for cell in cells:
        source = source_root / cell.folder
        if cell.root is not None and run_complete(cell.run_dir, seeds, cell.budget):
            continue  # a resumed evaluation's finished cell
        if not run_complete(source, seeds, cell.budget):
            print(f"{cell.name} on {cell.env_id}: not in {source_root} with {seeds} seeds at "
                  f"{cell.budget:,} steps; trained here", flush=True)
            continue
        why = cell_mismatch(cell, source, seeds, seed)
        if why is not None:
            raise DriftlabError(f"--baselines-from: {source} was trained otherwise ({why}); "
                                "evaluate with that run's settings or drop --baselines-from")
        why = other_software(source)
        if why is not None and not across_software:
            raise refuse_other_software(source, f"--baselines-from: {why}",
                                        "drop --baselines-from to train it here")
        plan.append((cell, source))
    return plan


def copy_cells(plan: list[tuple[Cell, Path]], root: Path) -> None:
    """Copy each planned cell into its place under `root` (through a temporary name:
    a crash mid-copy leaves no half cell) and add it to root/reused_cells.json."""
    if not plan:
        return
    path = root / REUSED_FILE
    cells = read_json(path).get("cells", []) if path.is_file() else []
    for cell, source in plan:
        if cell.run_dir.exists():  # a killed run of this evaluation
            shutil.rmtree(cell.run_dir)
        cell.run_dir.parent.mkdir(parents=True, exist_ok=True)
        partial = cell.run_dir.with_name(cell.run_dir.name + ".copying")
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(source, partial)
        partial.rename(cell.run_dir)
        commit = (read_yaml(source / "config.yaml").get("software") or {}).get("commit")
        cells.append({"algorithm": cell.name, "env": cell.env_id,
                      "from": str(source.resolve()), "commit": commit})
        write_json(path, {"cells": cells})
        print(f"{cell.name} on {cell.env_id}: same settings, seeds and drift in {source} "
              f"(trained by driftlab commit {commit}): copied", flush=True)


# ---- training ------------------------------------------------------------------------------

def train_cell(cell: Cell, seeds: int, seed: int, progress: bool, head: str) -> str:
    """Train one cell into its run directory (a killed run's leftovers are removed
    first); returns the line to print when it is done."""
    from driftlab.training import train_run

    if cell.run_dir.exists():
        shutil.rmtree(cell.run_dir)
    print(head, flush=True)
    outcome = train_run(cell.env_id, cell.algo, cell.settings, seeds=seeds, seed=seed,
                        drift_path=cell.drift_file, out=cell.run_dir, progress=progress)
    finals = outcome.final_returns
    shown = f"{np.nanmean(finals):.2f}" if np.isfinite(finals).any() else "none (diverged)"
    return f"    {cell.name} on {cell.env_id}: mean final return {shown} in {outcome.seconds:.0f} s"


def _train_in_child(cell: Cell, seeds: int, seed: int, head: str) -> str:
    # The compilation cache reaches the child through the environment that
    # `cli.setup_compilation_cache` set in the parent.
    return train_cell(cell, seeds, seed, False, head)


def train_cells(cells: list[tuple[Cell, str]], seeds: int, seed: int, jobs: int,
                progress: bool, on_done: Callable[[Cell], None]) -> None:
    """Train `cells` ((cell, head line) in order) and call `on_done(cell)` after each
    (in this process, in completion order). `jobs` 1: one after another here; more:
    that many spawned processes (JAX is not fork-safe), progress bars off, each
    cell's head and result printed as whole lines. An error in any cell (or from
    `on_done`) cancels the cells not started, waits for the running ones and is
    raised here."""
    if jobs == 1 or len(cells) <= 1:
        for cell, head in cells:
            print(train_cell(cell, seeds, seed, progress, head), flush=True)
            on_done(cell)
        return
    started = time.time()
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures = {pool.submit(_train_in_child, cell, seeds, seed, head): cell
                   for cell, head in cells}
        try:
            for future in concurrent.futures.as_completed(futures):
                print(future.result(), flush=True)
                on_done(futures[future])
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    print(f"{len(cells)} cells in {jobs} processes: {time.time() - started:.0f} s", flush=True)
