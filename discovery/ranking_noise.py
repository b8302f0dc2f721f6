"""How much of an ES generation's ranking is signal: split-half rank reliability.

Each member of a generation is scored by `rollouts_per_member` inner runs. With
common random numbers every member's rollout k uses the same key and inner
settings, so the rollouts split into two independent halves (even and odd k) on
which every member is measured alike. The Spearman correlation of the members'
two half-scores says how reproducible their order is:

- about 0: the ranking the ES steps on is seed noise (the mean walks at random);
- about 1: a second set of rollouts would rank the members the same.

The Spearman-Brown formula 2 rho / (1 + rho) turns the half-length correlation
into the reliability of the full mean over all rollouts (what the ES ranks on;
0 for a negative rho).
Host-side numpy on the generation's logged `rollout_fitness`; no training.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.stats import spearmanr


def split_half_rank_correlation(rollout_fitness: np.ndarray) -> float:
    """Spearman correlation between the members' mean fitness over even and over odd
    rollouts. `rollout_fitness`: (rollouts, members), rollouts >= 2. NaN when fewer
    than 3 members have both halves finite, or a half is constant."""
    values = np.asarray(rollout_fitness, np.float64)
    if values.ndim != 2 or values.shape[0] < 2:
        raise ValueError(f"rollout_fitness must be (rollouts >= 2, members), got shape "
                         f"{values.shape}")
    first, second = values[0::2].mean(axis=0), values[1::2].mean(axis=0)
    finite = np.isfinite(first) & np.isfinite(second)
    if finite.sum() < 3 or np.ptp(first[finite]) == 0 or np.ptp(second[finite]) == 0:
        return float("nan")
    return float(spearmanr(first[finite], second[finite]).statistic)


def spearman_brown(half: float) -> float:
    """Reliability of the full-length mean from the half-length correlation `half`:
    2 half / (1 + half), and 0 for a negative `half` (a reliability is a share of
    variance: an order that the other half reverses holds none)."""
    if not np.isfinite(half):
        return float("nan")
    return float(2.0 * half / (1.0 + half)) if half > 0 else 0.0


def ranking_record(rollout_fitness: np.ndarray) -> dict[str, float] | None:
    """{"split_half": rho, "full": Spearman-Brown of rho} for one generation's
    (rollouts, members) fitness, or None with fewer than 2 rollouts (nothing to split)."""
    values = np.asarray(rollout_fitness)
    if values.ndim != 2 or values.shape[0] < 2:
        return None
    half = split_half_rank_correlation(values)
    return {"split_half": half, "full": spearman_brown(half)}


def _residual_sum_of_squares(x: np.ndarray) -> float:
    """Sum of squares of (rollouts, members) `x` left after removing the rollout and the
    member effects (two-way ANOVA without replication)."""
    residual = x - x.mean(axis=1, keepdims=True) - x.mean(axis=0, keepdims=True) + x.mean()
    return float((residual ** 2).sum())


def variance_components(rollout_fitness: np.ndarray) -> tuple[float, float]:
    """(signal, noise) variances of one generation's (rollouts, members) fitness under
    the additive model rollout effect + member effect + noise (two-way ANOVA without
    replication): noise = the residual mean square, signal = the variance of the
    members' true fitness = var(member means) - noise / rollouts (may come out
    negative when there is none). The rollout effect (its settings and keys, shared
    by every member under common random numbers) is removed, as ranking ignores it."""
    x = np.asarray(rollout_fitness, np.float64)
    rollouts, members = x.shape
    if rollouts < 2 or members < 2 or not np.all(np.isfinite(x)):
        return float("nan"), float("nan")
    noise = _residual_sum_of_squares(x) / ((rollouts - 1) * (members - 1))
    signal = float(x.mean(axis=0).var(ddof=1) - noise / rollouts)
    return signal, noise


def signal_upper_bound(generations: Sequence[np.ndarray], level: float = 0.95
                       ) -> tuple[float, float]:
    """(ratio, sd): one-sided `level` upper confidence bounds on the members' true
    spread, pooled over generations of (rollouts, members) fitness. `ratio` bounds
    signal / noise variance exactly under the additive model of `variance_components`:
    the members' mean square over the residual one is (1 + R ratio) times an
    F(df_members, df_residual) variable, so ratio_U = (F_obs / F_{1-level} - 1) / R
    (the standard bound for a one-way random effect; Searle et al. 1992, sec. 3.5).
    `sd` = sqrt(ratio_U x pooled noise variance): how far apart, at most, the members'
    true fitnesses are (in fitness units; treats the noise estimate as exact).
    1 / ratio_U is the fewest rollouts per member that a reliability of 0.5 could need.
    NaN when no generation has 2+ rollouts and 2+ members, all finite."""
    from scipy.stats import f as f_dist

    ss_members = ss_residual = df_members = df_residual = weighted_rollouts = 0.0
    for values in generations:
        x = np.asarray(values, np.float64)
        if x.ndim != 2 or min(x.shape) < 2 or not np.all(np.isfinite(x)):
            continue
        rollouts, members = x.shape
        ss_members += rollouts * float(((x.mean(axis=0) - x.mean()) ** 2).sum())
        ss_residual += _residual_sum_of_squares(x)
        df_members += members - 1
        df_residual += (rollouts - 1) * (members - 1)
        weighted_rollouts += rollouts * (members - 1)
    if df_members == 0 or ss_residual == 0:
        return float("nan"), float("nan")
    noise = ss_residual / df_residual
    observed = (ss_members / df_members) / noise
    rollouts = weighted_rollouts / df_members
    ratio = max((observed / f_dist.ppf(1.0 - level, df_members, df_residual) - 1.0) / rollouts, 0.0)
    return float(ratio), float(np.sqrt(ratio * noise))


def rollouts_for(reliability: float, signal: float, noise: float) -> float:
    """Rollouts per member for the members' mean fitness to reach `reliability`
    (the share of its variance between members that is signal): R s / (R s + n) =
    reliability. inf when there is no signal."""
    if not (np.isfinite(signal) and np.isfinite(noise)) or signal <= 0:
        return float("inf")
    return float(reliability / (1.0 - reliability) * noise / signal)


def summarise(records: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Over a run's metrics.jsonl records: the mean (and its standard error) of the
    generations' split-half correlations and the full-length reliability of that mean
    (one generation's 8-16 members give a rho within about +-0.5, so read the mean
    over many); the mean signal and noise variances (`variance_components`) and the
    rollouts per member they call for to reach reliability 0.5 and 0.8; and, pooled
    over generations (`signal_upper_bound`, 95%), the most the members' true fitnesses
    can differ (`signal_sd_upper`) and the fewest rollouts per member that reliability
    0.5 could then need (`rollouts_for_half_at_least`): where the point estimate says
    "no signal", these say how small the signal must be."""
    halves = np.array([r["ranking_reliability"]["split_half"] for r in records
                       if r.get("ranking_reliability")], np.float64)
    halves = halves[np.isfinite(halves)]
    parts = np.array([variance_components(r["rollout_fitness"]) for r in records
                      if r.get("rollout_fitness") is not None], np.float64).reshape(-1, 2)
    parts = parts[np.all(np.isfinite(parts), axis=1)]
    signal, noise = (float(v) for v in parts.mean(axis=0)) if len(parts) else (np.nan, np.nan)
    ratio_upper, sd_upper = signal_upper_bound(
        [np.asarray(r["rollout_fitness"], np.float64) for r in records
         if r.get("rollout_fitness") is not None])
    at_least = (1.0 / ratio_upper if ratio_upper > 0 else float("inf")) \
        if np.isfinite(ratio_upper) else float("nan")
    out = {"generations": int(halves.size), "split_half_mean": float("nan"),
           "split_half_sem": float("nan"), "full": float("nan"),
           "signal_variance": signal, "noise_variance": noise,
           "rollouts_for_half": rollouts_for(0.5, signal, noise),
           "rollouts_for_0.8": rollouts_for(0.8, signal, noise),
           "signal_sd_upper": sd_upper, "rollouts_for_half_at_least": at_least}
    if halves.size:
        mean = float(halves.mean())
        out.update(split_half_mean=mean, full=spearman_brown(mean),
                   split_half_sem=float(halves.std(ddof=1) / np.sqrt(halves.size))
                   if halves.size > 1 else float("nan"))
    return out
