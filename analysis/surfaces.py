"""Drift surfaces: D, the objective r*A - D and d(objective)/dr on a grid over
the ratio r, the advantage A and (for temporal drifts) the training progress.

Derivatives are exact (`jax.grad` through the drift, with log r computed from r
inside the differentiated function), never finite differences.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from driftlab.algorithms import Drift, make_drift
from driftlab.algorithms.drift_io import DriftFileError, directory_drift_file, load_drift
from driftlab.algorithms.drifts import DRIFTS
from driftlab.algorithms.shipped import list_shipped, shipped_dir, written_as_path
from driftlab.algorithms.storage import read_yaml


class AnalysisError(ValueError):
    """A user-facing problem in an analysis input; the message names the fix."""


# ---- where drifts come from ----------------------------------------------------

@dataclass(frozen=True)
class DriftSource:
    """A drift with its parameters and a short label for plots and tables."""

    label: str
    drift: Drift
    params: Any

    @property
    def temporal(self) -> bool:
        return bool(self.drift.spec.get("temporal", False)) or _uses_progress(self.drift)


def _uses_progress(drift: Drift) -> bool:
    expression = drift.spec.get("expression")
    if not isinstance(expression, str):
        return False
    from driftlab.algorithms.formula_drift import parse_expression

    expr = parse_expression(expression, drift.spec.get("constants"))
    return any(s.name == "p" for s in expr.free_symbols)


def load_source(spec: str | Path, label: str | None = None) -> DriftSource:
    """A drift from a built-in name (`ppo`, `dpo`, `lpo`, ...), a drift `.json`
    file, a run directory exporting `drift.json`, or a train run directory
    (its `config.yaml` names the drift it trained with)."""
    text = str(spec)
    path = Path(text)
    bare = not written_as_path(text)  # a built-in or shipped name wins over a same-named folder
    if bare and (text in DRIFTS or text == "ta-lpo" or shipped_dir(text) is not None) \
            or not path.exists():
        if text in DRIFTS or text == "ta-lpo":
            drift = make_drift(text)
            return DriftSource(label or text, drift, drift.default_params)
        shipped = shipped_dir(text)
        if shipped is not None:
            drift, params = load_drift(shipped)
            return DriftSource(label or text, drift, params)
        raise AnalysisError(
            f"{text} is neither a run directory, a drift .json file, a built-in drift "
            f"({', '.join(sorted(DRIFTS))}) nor a shipped drift "
            f"({', '.join(list_shipped()) or 'none installed'}); pass one of those")
    if path.is_dir():
        found = directory_drift_file(path)
        if found is not None:
            target: Path = found
        elif (path / "config.yaml").is_file():
            return _from_train_run(path, label)
        else:
            raise AnalysisError(
                f"{path} is a directory without drift.json or config.yaml, so not a run "
                "directory; pass a discover/distill/train run directory or a drift .json file")
    else:
        if path.suffix != ".json":
            raise AnalysisError(f"{path} is not a drift file (expected a .json written by "
                                "discover/distill) nor a run directory; pass one of those")
        target = path
    drift, params = load_drift(target)
    name = label or (path.name if path.is_dir() else path.stem)
    if name in ("drift", "distilled"):
        name = f"{drift.name} ({path.parent.name if path.is_file() else path.name})"
    return DriftSource(name, drift, params)


def _from_train_run(path: Path, label: str | None) -> DriftSource:
    config = read_yaml(path / "config.yaml", AnalysisError)
    if config.get("drift_file"):
        drift_file = Path(config["drift_file"])
        if not drift_file.exists() and shipped_dir(str(drift_file)) is not None:
            return load_source(str(drift_file), label or path.name)
        if not drift_file.exists():
            raise AnalysisError(f"{path} trained with {drift_file}, which no longer exists; "
                                "pass the drift file itself")
        return load_source(drift_file, label or path.name)
    spec = config.get("drift")
    if not isinstance(spec, dict) or "kind" not in spec:
        raise AnalysisError(f"{path / 'config.yaml'} names no drift; pass a run directory "
                            "written by discover/distill/train or a drift .json file")
    options = {k: v for k, v in spec.items() if k != "kind"}
    try:
        drift = make_drift(spec["kind"], **options)
    except ValueError as err:
        raise DriftFileError(f"{path / 'config.yaml'}: {err}") from None
    return DriftSource(label or f"{spec['kind']} ({path.name})", drift, drift.default_params)


# ---- grids and surfaces ----------------------------------------------------------

@dataclass(frozen=True)
class Grid:
    """Axes of a surface: ratio (R,), advantage (N,), progress (P,)."""

    ratio: np.ndarray
    advantage: np.ndarray
    progress: np.ndarray


def make_grid(r_min: float = 0.25, r_max: float = 2.0, n_r: int = 201, a_min: float = -5.0,
              a_max: float = 5.0, n_a: int = 201, progress: tuple[float, ...] | None = None,
              log_spaced: bool = False) -> Grid:
    """A grid over r in [r_min, r_max] (linear or log-spaced; r = 1 is always a
    grid point) and A in [a_min, a_max] (A = 0 included when in range)."""
    if n_r < 2 or n_a < 2:
        raise AnalysisError(f"empty grid ({n_r} ratio x {n_a} advantage points); use at least "
                            "2 points on each axis (e.g. --points 201)")
    if not (0 < r_min < r_max) or not (a_min < a_max):
        raise AnalysisError(f"empty grid: need 0 < r-min < r-max and a-min < a-max, got "
                            f"r in [{r_min}, {r_max}], A in [{a_min}, {a_max}]; fix the ranges")
    if log_spaced:
        ratio = np.geomspace(r_min, r_max, n_r)
    else:
        ratio = np.linspace(r_min, r_max, n_r)
    # Condition 2 and 3 are statements at r = 1 and A = 0 is the sign change:
    # snap the nearest grid points onto them so the surfaces show them exactly.
    if r_min <= 1.0 <= r_max:
        ratio[np.argmin(np.abs(ratio - 1.0))] = 1.0
    advantage = np.linspace(a_min, a_max, n_a)
    if a_min <= 0.0 <= a_max:
        advantage[np.argmin(np.abs(advantage))] = 0.0
    progress_axis = np.asarray(progress if progress is not None else (0.0,), dtype=np.float64)
    if progress_axis.size == 0:
        raise AnalysisError("empty grid: no progress values; pass at least one (e.g. 0)")
    return Grid(ratio, advantage, progress_axis)


@dataclass(frozen=True)
class Surface:
    """Values on a grid; arrays are (P, N, R) = (progress, advantage, ratio)."""

    label: str
    grid: Grid
    drift: np.ndarray  # D(r, A, p)
    objective: np.ndarray  # r*A - D
    d_drift: np.ndarray  # dD/dr
    d_objective: np.ndarray  # A - dD/dr


def drift_and_grad(drift: Drift, params: Any, ratio: jax.Array, advantage: jax.Array,
                   progress: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(D, dD/dr) elementwise at broadcast points; dD/dr by `jax.grad`, with
    log r computed from r inside the differentiated function."""
    ratio, advantage, progress = jnp.broadcast_arrays(
        jnp.asarray(ratio, jnp.float32), jnp.asarray(advantage, jnp.float32),
        jnp.asarray(progress, jnp.float32))

    def point(r, a, p):
        return drift.fn(params, r, jnp.log(r), a, p)

    # One compiled program per call: run op by op, a formula drift's every primitive
    # was compiled on its own (the distill stage spent most of its time there).
    value_and_grad = jax.jit(jax.vmap(jax.value_and_grad(point)))
    flat = [x.reshape(-1) for x in (ratio, advantage, progress)]
    value, grad = value_and_grad(*flat)
    return value.reshape(ratio.shape), grad.reshape(ratio.shape)


def evaluate(source: DriftSource, grid: Grid) -> Surface:
    """D, r*A - D and their r-derivatives for every (progress, advantage, ratio)."""
    p, a, r = np.meshgrid(grid.progress, grid.advantage, grid.ratio, indexing="ij")
    value, grad = drift_and_grad(source.drift, source.params, r, a, p)
    value, grad = np.asarray(value, np.float64), np.asarray(grad, np.float64)
    if not np.all(np.isfinite(value)):
        bad = np.argwhere(~np.isfinite(value))[0]
        raise AnalysisError(
            f"drift {source.label} is not finite at r={r[tuple(bad)]:.3g}, A={a[tuple(bad)]:.3g}; "
            "narrow the grid (e.g. a larger --r-min) or fix the drift")
    return Surface(source.label, grid, value, r * a - value, grad, a - grad)


def save_surface(surface: Surface, path: str | Path) -> Path:
    """Write the surface as compressed numpy arrays (.npz)."""
    import io

    from driftlab.algorithms.storage import atomic_write_bytes

    buffer = io.BytesIO()
    np.savez_compressed(buffer, ratio=surface.grid.ratio, advantage=surface.grid.advantage,
                        progress=surface.grid.progress, drift=surface.drift,
                        objective=surface.objective, d_drift_dr=surface.d_drift,
                        d_objective_dr=surface.d_objective,
                        label=np.asarray(json.dumps(surface.label)))
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)
