"""The aggregate statistics of Agarwal et al. (NeurIPS 2021, "Deep RL at the edge
of the statistical precipice"), in numpy: interquartile mean, stratified
bootstrap confidence intervals, probability of improvement and performance
profiles, as the `rliable` package (google-research/rliable) computes them.

rliable itself is not a dependency: rliable 1.2.0 needs arch < 8, and arch 7.2.0
fails to import with the pinned pandas 3.1.1 (`deprecate_kwarg` changed its
signature), so the quantities are computed here, each following the rliable
file named in its docstring, and tested against hand-computed values.

Scores are given per env (rliable's "task") as a list of 1-D arrays, one per
env, each holding that env's runs (seeds); envs may have different seed
counts. Non-finite entries (a diverged seed) are left out of every statistic.
With equal seed counts this is rliable's (runs x tasks) matrix, column by column.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

PerEnv = list[np.ndarray]  # per env: (seeds_e,) scores


def iqm(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """Interquartile mean: the mean of the middle 50% (25% trimmed on each side),
    as scipy.stats.trim_mean(x, 0.25) and rliable's `metrics.aggregate_iqm` do
    (int(0.25 * n) values cut on each side). values: (..., n) -> (...)."""
    values = np.sort(np.asarray(values, np.float64), axis=axis)
    n = values.shape[axis]
    cut = int(math.floor(0.25 * n))
    kept = np.take(values, np.arange(cut, n - cut), axis=axis)
    return kept.mean(axis=axis)


def bootstrap_ci(values: np.ndarray, statistic: Callable = iqm, resamples: int = 2000,
                 level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of `statistic` over the seeds of one env.
    values: (seeds,); non-finite seeds are left out; (nan, nan) if none is left."""
    values = np.asarray(values, np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    index = rng.integers(0, values.size, (resamples, values.size))
    return percentile_interval(statistic(values[index], axis=-1), level)


def percentile_interval(samples: np.ndarray, level: float = 0.95) -> tuple:
    """(low, high) percentile interval over axis 0 of bootstrap statistics
    (resamples, ...): the `percentile` method of arch's `conf_int`, which rliable's
    `library.get_interval_estimates` uses by default. Floats for 1-D samples,
    arrays of shape (...) otherwise."""
    alpha = (1.0 - level) / 2
    low, high = np.quantile(samples, [alpha, 1.0 - alpha], axis=0)
    if np.ndim(low) == 0:
        return float(low), float(high)
    return low, high


@dataclass
class Estimate:
    """A point estimate with its bootstrap confidence interval."""

    value: float
    ci_low: float
    ci_high: float

    def as_dict(self, name: str = "value") -> dict[str, float]:
        return {name: self.value, "ci_low": self.ci_low, "ci_high": self.ci_high}


NAN = Estimate(float("nan"), float("nan"), float("nan"))


def finite_per_env(per_env: PerEnv) -> PerEnv | None:
    """Each env's finite scores; None when some env has none (nothing to aggregate)."""
    kept = [np.asarray(s, np.float64).ravel() for s in per_env]
    kept = [s[np.isfinite(s)] for s in kept]
    return kept if kept and all(s.size for s in kept) else None


def resample_counts(n: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """How often each of `n` runs is drawn in each resample (with replacement):
    (resamples, n) integers summing to n per row."""
    index = rng.integers(0, n, (resamples, n))
    return (index[..., None] == np.arange(n)).sum(axis=1).astype(np.float64)


def stratified_resample(per_env: PerEnv, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Stratified bootstrap samples: the runs of each env resampled with replacement
    within that env (rliable `library.StratifiedBootstrap`, task_bootstrap=False),
    envs concatenated. per_env: finite (seeds_e,) arrays -> (resamples, sum_e seeds_e)."""
    return np.concatenate([s[rng.integers(0, s.size, (resamples, s.size))] for s in per_env],
                          axis=1)


def bootstrap_bytes(resamples: int, largest_env_runs: int, total_runs: int,
                    taus: int = 101) -> float:
    """Peak bytes of the bootstrap statistics over groups whose biggest env holds
    `largest_env_runs` runs of one label and whose label holds `total_runs` runs in
    all: the (resamples, n, n) comparison of `resample_counts`, the (resamples,
    total) int64 indices, float64 samples and their sorted copy, and the
    (resamples, taus) profile rows."""
    n, total = largest_env_runs, total_runs
    return float(resamples) * (n * n + 8 * (2 * n + 3 * total + 2 * taus))


def aggregate_iqm(per_env: PerEnv, resamples: int = 2000, level: float = 0.95,
                  seed: int = 0) -> Estimate:
    """IQM over all (env, seed) scores with a stratified-bootstrap percentile CI
    (rliable `metrics.aggregate_iqm` under `library.get_interval_estimates`)."""
    kept = finite_per_env(per_env)
    if kept is None:
        return NAN
    rng = np.random.default_rng(seed)
    samples = stratified_resample(kept, resamples, rng)
    low, high = percentile_interval(iqm(samples, -1), level)
    return Estimate(float(iqm(np.concatenate(kept))), low, high)


def _pair_wins(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(nx, ny) matrix of [x_i > y_j] + 0.5 [x_i == y_j]: the Mann-Whitney U kernel."""
    return (x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :])


def probability_of_improvement(x_per_env: PerEnv, y_per_env: PerEnv) -> float:
    """P(X > Y): per env the Mann-Whitney U of X's runs against Y's divided by
    nx * ny (the mean over run pairs of [x > y] + 0.5 [x == y]), averaged over envs
    (rliable `metrics.probability_of_improvement`). NaN when an env has no finite
    run of X or of Y. E.g. X = [1, 2, 3], Y = [0, 2, 4] on one env: 4.5 / 9 = 0.5."""
    x_kept, y_kept = finite_per_env(x_per_env), finite_per_env(y_per_env)
    if x_kept is None or y_kept is None or len(x_kept) != len(y_kept):
        return float("nan")
    return float(np.mean([_pair_wins(x, y).mean() for x, y in zip(x_kept, y_kept, strict=True)]))


def probability_of_improvement_ci(x_per_env: PerEnv, y_per_env: PerEnv, resamples: int = 2000,
                                  level: float = 0.95, seed: int = 0) -> Estimate:
    """`probability_of_improvement` with a stratified-bootstrap percentile CI: per
    env X's runs and Y's runs are resampled independently (rliable
    `library.StratifiedIndependentBootstrap`). A resample's per-env value is
    c_x^T W c_y / (nx ny) with W the pair-win matrix and c the resample counts."""
    x_kept, y_kept = finite_per_env(x_per_env), finite_per_env(y_per_env)
    if x_kept is None or y_kept is None or len(x_kept) != len(y_kept):
        return NAN
    rng = np.random.default_rng(seed)
    per_env = []
    for x, y in zip(x_kept, y_kept, strict=True):
        wins = _pair_wins(x, y)
        cx, cy = resample_counts(x.size, resamples, rng), resample_counts(y.size, resamples, rng)
        per_env.append(np.einsum("ri,ij,rj->r", cx, wins, cy) / (x.size * y.size))
    low, high = percentile_interval(np.mean(per_env, axis=0), level)
    return Estimate(probability_of_improvement(x_kept, y_kept), low, high)


def performance_profile(per_env: PerEnv, taus: np.ndarray, resamples: int = 2000,
                        level: float = 0.95, seed: int = 0
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Score distribution: the fraction of all (env, seed) runs whose score exceeds
    each tau, with a stratified-bootstrap percentile band (rliable
    `library.create_performance_profile`, use_score_distribution=True:
    `run_score_deviation` = mean(scores > tau)). taus: (k,) -> three (k,) arrays
    (profile, low, high); NaN when some env has no finite run."""
    taus = np.asarray(taus, np.float64)
    kept = finite_per_env(per_env)
    if kept is None:
        nan = np.full(taus.shape, np.nan)
        return nan, nan.copy(), nan.copy()
    scores = np.concatenate(kept)
    profile = (scores[:, None] > taus[None, :]).mean(axis=0)
    samples = np.sort(stratified_resample(kept, resamples, np.random.default_rng(seed)), axis=1)
    # Fraction above tau per resample, from the sorted rows: (resamples, k).
    above = np.stack([samples.shape[1] - np.searchsorted(row, taus, side="right")
                      for row in samples]) / samples.shape[1]
    low, high = percentile_interval(above, level)
    return profile, low, high


def normalize(returns: np.ndarray, random_return: float, reference_return: float) -> np.ndarray:
    """(R - R_random) / (R_reference - R_random): 0 for the random policy, 1 for the
    reference (PPO's mean), higher is better whatever the sign of the returns.
    returns: (...) -> (...). The caller checks R_reference > R_random."""
    return (np.asarray(returns, np.float64) - random_return) / (reference_return - random_return)
