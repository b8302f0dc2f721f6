"""Mirror-Learning conditions of a drift, measured on a dense grid:

1. D(r, A) >= 0                  measured: min D over the grid
2. D(1, A) = 0                   measured: max |D(1, A)| over A (and progress)
3. dD/dr (1, A) = 0              measured: max |dD/dr| at r = 1 and at r = 1 +- h

Condition 3 is also measured at r = 1 +- h (default h = 1e-5) because JAX picks
a zero (sub)gradient at kinks (relu'(0) = |.|'(0) = 0): a drift like |r - 1|
would otherwise pass. Valid drifts are flat to second order there (PPO and LPO
exactly, DPO's slope ~ A^3 h^2 / beta^2 ~ 3e-7 at |A| = 10), so the one-sided
slopes stay far below the tolerance; h must stay small because LPO is exactly
flat only where its network output is below 1e-4.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from driftlab.analysis.surfaces import AnalysisError, DriftSource, drift_and_grad

CONDITIONS = ("non-negative", "zero at r=1", "zero slope at r=1")
DESCRIPTIONS = {
    "non-negative": "D(r, A) >= 0",
    "zero at r=1": "D(1, A) = 0",
    "zero slope at r=1": "dD/dr(1, A) = 0",
}


@dataclass(frozen=True)
class ConditionResult:
    """One condition: the measured value, its tolerance and where it is worst."""

    name: str
    description: str
    value: float  # min D (condition 1) or a max |.| (conditions 2, 3)
    tolerance: float
    passed: bool
    worst: dict[str, float]  # r, A, progress of the worst point

    def line(self) -> str:
        status = "PASS" if self.passed else "FAIL"
        where = ", ".join(f"{k}={v:.4g}" for k, v in self.worst.items())
        measure = "min D" if self.name == "non-negative" else "max |.|"
        return (f"[{status}] {self.description:<18} {measure} = {self.value:.3g} "
                f"(tolerance {self.tolerance:.1g}); worst at {where}")


@dataclass(frozen=True)
class ConditionReport:
    label: str
    results: list[ConditionResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def violated(self) -> list[str]:
        return [r.name for r in self.results if not r.passed]

    def text(self) -> str:
        head = (f"Mirror-Learning conditions of {self.label}: "
                + ("all pass" if self.passed else "VIOLATED: " + ", ".join(self.violated)))
        return "\n".join([head] + ["  " + r.line() for r in self.results])

    def to_dict(self) -> dict:
        return {"label": self.label, "passed": self.passed, "violated": self.violated,
                "conditions": [r.__dict__ for r in self.results]}


def check_conditions(source: DriftSource, r_range: tuple[float, float] = (0.05, 3.0),
                     a_range: tuple[float, float] = (-10.0, 10.0), points: int = 401,
                     progress: tuple[float, ...] | None = None, tol_value: float = 1e-6,
                     tol_slope: float = 1e-3, h: float = 1e-5) -> ConditionReport:
    """Measure the three conditions on a `points` x `points` grid (r, A) (and
    over `progress`, default 0..1 in 5 steps for temporal drifts, else 0)."""
    if points < 2:
        raise AnalysisError(f"empty grid ({points} points); use at least 2 (e.g. 401)")
    if not (0 < r_range[0] < 1.0 < r_range[1]) or not (a_range[0] < a_range[1]):
        raise AnalysisError(f"condition grid needs 0 < r-min < 1 < r-max and a-min < a-max, got "
                            f"r in {r_range}, A in {a_range}; fix the ranges")
    if progress is None:
        progress = tuple(np.linspace(0, 1, 5)) if source.temporal else (0.0,)
    ratio = np.linspace(*r_range, points)
    advantage = np.linspace(*a_range, points)
    prog = np.asarray(progress, np.float64)
    p, a, r = np.meshgrid(prog, advantage, ratio, indexing="ij")
    # Values only (no gradient) on the dense grid; progress is a scalar for the
    # drift functions (one value per training update), hence the vmap over it.
    values = jax.vmap(lambda q: source.drift.on_grid(source.params, r[0], a[0], q))
    value = np.asarray(values(jnp.asarray(prog, jnp.float32)), np.float64)
    value = np.where(np.isnan(value), -np.inf, value)  # NaN counts as a violation
    i = np.unravel_index(np.argmin(value), value.shape)
    non_negative = ConditionResult(
        CONDITIONS[0], DESCRIPTIONS[CONDITIONS[0]], float(value[i]), tol_value,
        bool(value[i] >= -tol_value), _point(r[i], a[i], p[i]))

    # r = 1 exactly and one-sidedly at 1 +- h, for every A and progress.
    pa, aa, ra = np.meshgrid(prog, advantage, np.array([1.0 - h, 1.0, 1.0 + h]), indexing="ij")
    at_one, slope = (np.asarray(x, np.float64) for x in
                     drift_and_grad(source.drift, source.params, ra, aa, pa))
    centre = np.abs(at_one[..., 1])
    centre = np.where(np.isnan(centre), np.inf, centre)
    j = np.unravel_index(np.argmax(centre), centre.shape)
    zero_at_one = ConditionResult(
        CONDITIONS[1], DESCRIPTIONS[CONDITIONS[1]], float(centre[j]), tol_value,
        bool(centre[j] <= tol_value), _point(1.0, aa[j][1], pa[j][1]))
    slope = np.abs(slope)
    slope = np.where(np.isnan(slope), np.inf, slope)
    k = np.unravel_index(np.argmax(slope), slope.shape)
    zero_slope = ConditionResult(
        CONDITIONS[2], DESCRIPTIONS[CONDITIONS[2]], float(slope[k]), tol_slope,
        bool(slope[k] <= tol_slope), _point(ra[k], aa[k], pa[k]))
    return ConditionReport(source.label, [non_negative, zero_at_one, zero_slope])


def _point(r: float, a: float, p: float) -> dict[str, float]:
    return {"r": float(r), "A": float(a), "progress": float(p)}
