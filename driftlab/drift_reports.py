"""A drift's report folders: `inspect` (surfaces, plots, the Mirror-Learning
condition report) and `distill` (closed-form formulas fitted to it). Used by
`driftlab inspect` / `driftlab distill` and `driftlab.api`.

Grids are in the drift's own units: the probability ratio r = pi_new / pi_old
(dimensionless, > 0) and the normalised advantage A."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from driftlab.errors import DriftlabError
from driftlab.software import software_record


@dataclass
class InspectResult:
    """What `inspect_drift` wrote: the folder, the condition report and the plots."""

    run_dir: Path
    conditions: Any  # driftlab.analysis.conditions.ConditionReport (.passed, .text())
    plots: list[Path]


@dataclass
class DistillResult:
    """What `distill_drift` wrote: the folder, the best formula's drift file and the
    ranked candidates (`distillation.best`, `.table()`)."""

    run_dir: Path
    drift_file: Path
    distillation: Any  # driftlab.analysis.distill.Distillation


def safe_name(name: str) -> str:
    """`name` as a file-name part (a run directory's default name)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "drift"


def inspect_drift(drift: str | Path, *, compare: Sequence[str] = ("ppo", "dpo"),
                  out: str | Path | None = None, r_range: tuple[float, float] = (0.25, 2.0),
                  a_range: tuple[float, float] = (-5.0, 5.0), points: int = 201,
                  log_r: bool = False,
                  progress_values: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0)
                  ) -> InspectResult:
    """Evaluate `drift` (and the `compare` drifts beside it; "none" is skipped) on a
    `points` x `points` (r, A) grid; write heatmaps, slices, a panel, progress
    plots for temporal drifts (at `progress_values`, fractions of training done),
    surface.npz, conditions.json and config.yaml to a new run directory."""
    from driftlab.algorithms.storage import write_json, write_yaml
    from driftlab.analysis import plots
    from driftlab.analysis.conditions import check_conditions
    from driftlab.analysis.surfaces import (
        AnalysisError,
        evaluate,
        load_source,
        make_grid,
        save_surface,
    )
    from driftlab.rundir import check_output_dir, new_run_dir

    check_output_dir(out)  # before any drift is loaded or evaluated
    bad = [f"--progress {p}" for p in progress_values if not 0.0 <= p <= 1.0]
    if bad:
        raise DriftlabError(f"{bad[0]} is outside [0, 1]; progress is the fraction of training "
                            "done (e.g. --progress 0 0.5 1)")
    check_grid_memory(points, len(progress_values), "inspect")  # the temporal grid: the peak
    (r_min, r_max), (a_min, a_max) = r_range, a_range
    try:
        source = load_source(drift)
        others = [load_source(name) for name in compare if name != "none"]
        grid = make_grid(r_min, r_max, points, a_min, a_max, points, log_spaced=log_r)
        report = check_conditions(source)
        run_dir = new_run_dir(out, "inspect", safe_name(source.label))
        surface = evaluate(source, grid)
        surfaces = [surface] + [evaluate(o, grid) for o in others]
        written = [plots.plot_heatmaps(surface, run_dir / "heatmaps.png"),
                   plots.plot_slices(surfaces, run_dir / "slices.png")]
        if others:
            written.append(plots.plot_panel(surfaces, run_dir / "panel.png"))
        if source.temporal:
            temporal = evaluate(source, make_grid(r_min, r_max, points, a_min, a_max, points,
                                                  tuple(progress_values), log_r))
            written.append(plots.plot_progress(temporal, run_dir / "progress.png"))
        save_surface(surface, run_dir / "surface.npz")
    except AnalysisError as err:
        raise DriftlabError(str(err)) from None
    write_yaml(run_dir / "config.yaml", {"command": "inspect", "drift": str(drift),
                                         "compare": list(compare), "spec": source.drift.spec,
                                         "grid": {"r": [r_min, r_max], "A": [a_min, a_max],
                                                  "points": points, "log_r": log_r},
                                         "software": software_record()})
    write_json(run_dir / "conditions.json", report.to_dict())
    return InspectResult(run_dir, report, [Path(p) for p in written])


# Bytes per (r, A) grid point of one drift evaluation, on the safe side: an LPO net's
# features and two 128-wide float32 hidden layers, their gradient (dD/dr) and the
# stored float64 surfaces.
GRID_POINT_BYTES = 4096


def check_grid_memory(points: int, surfaces: int, verb: str) -> None:
    """A one-line refusal, before any drift is evaluated, when a `points` x `points`
    grid (for `surfaces` evaluations at once, at most) would not fit in RAM."""
    from driftlab.memory import check_host_bytes

    if points >= 2:  # smaller grids are refused by the grid's own check
        check_host_bytes(float(points) ** 2 * GRID_POINT_BYTES * max(1, surfaces),
                         f"{verb} --points {points} ({points}^2 grid points)",
                         "use fewer points (default 201 for inspect, 61 for distill)")


def check_distill_options(*, top: int, points: int, population: int, generations: int,
                          parsimony: float, grad_weight: float, r_range: tuple[float, float],
                          a_range: tuple[float, float], symbolic: bool, families: bool) -> None:
    """The search settings, before any drift is loaded or fitted."""
    for flag, value, low in (("--top", top, 1), ("--points", points, 2),
                             ("--population", population, 1),
                             ("--generations", generations, 1)):
        if value < low:
            grid = "empty grid: " if flag == "--points" else ""
            raise DriftlabError(f"{grid}{flag} must be >= {low}, got {value}")
    for flag, value in (("--parsimony", parsimony), ("--grad-weight", grad_weight)):
        if not (math.isfinite(value) and value >= 0):
            raise DriftlabError(f"{flag} must be a finite number >= 0, got {value}")
    (r_min, r_max), (a_min, a_max) = r_range, a_range
    if not (math.isfinite(r_min) and math.isfinite(r_max) and 0 < r_min < r_max):
        raise DriftlabError(f"empty grid: need 0 < --r-min < --r-max (finite), got {r_min} and "
                            f"{r_max}")
    if not (math.isfinite(a_min) and math.isfinite(a_max) and a_min < a_max):
        raise DriftlabError(f"empty grid: need --a-min < --a-max (finite), got {a_min} and "
                            f"{a_max}")
    if not symbolic and not families:
        raise DriftlabError("--no-symbolic and --no-families leave nothing to fit; drop one")


def distill_drift(drift: str | Path, *, out: str | Path | None = None, top: int = 3,
                  symbolic: bool = True, families: bool = True, population: int = 1000,
                  generations: int = 20, parsimony: float = 0.002, seed: int = 0,
                  points: int = 61, r_range: tuple[float, float] = (0.4, 1.8),
                  a_range: tuple[float, float] = (-4.0, 4.0),
                  grad_weight: float = 0.3) -> DistillResult:
    """Fit the closed-form families and/or a symbolic regression (gplearn:
    `population`, `generations`, `parsimony` per node) to `drift` on a `points`^2
    (r, A) grid (dD/dr residuals weighted `grad_weight`); write drift.json (the
    best), the top `top` candidates, formulas.md and a comparison plot."""
    from driftlab.algorithms.config import check_seed
    from driftlab.algorithms.storage import write_yaml
    from driftlab.analysis import plots
    from driftlab.analysis.distill import distill, write_distillation
    from driftlab.analysis.surfaces import AnalysisError, evaluate, load_source, make_grid
    from driftlab.rundir import check_output_dir, new_run_dir

    check_output_dir(out)  # before the (possibly long) search
    check_seed(seed, "--seed")
    check_grid_memory(points, 1, "distill")
    check_distill_options(top=top, points=points, population=population,
                          generations=generations, parsimony=parsimony,
                          grad_weight=grad_weight, r_range=r_range, a_range=a_range,
                          symbolic=symbolic, families=families)
    (r_min, r_max), (a_min, a_max) = r_range, a_range
    try:
        source = load_source(drift)
        result = distill(source, symbolic=symbolic, families=families, population=population,
                         generations=generations, parsimony=parsimony, seed=seed,
                         points=points, r_range=(r_min, r_max), a_range=(a_min, a_max),
                         grad_weight=grad_weight)
        run_dir = new_run_dir(out, "distill", safe_name(source.label))
        best_file = write_distillation(result, run_dir, top)
        grid = make_grid(r_min, r_max, 161, a_min, a_max, 161)
        best = result.best.drift_source(f"best: {result.best.family}")
        plots.plot_panel([evaluate(source, grid), evaluate(best, grid)],
                         run_dir / "source_vs_best.png")
    except AnalysisError as err:
        raise DriftlabError(str(err)) from None
    write_yaml(run_dir / "config.yaml", {"command": "distill", "drift": str(drift),
                                         "spec": source.drift.spec, **result.settings,
                                         "software": software_record()})
    return DistillResult(run_dir, Path(best_file), result)
