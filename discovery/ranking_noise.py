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


def summarise(records: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Mean and count of the generations' split-half correlations (metrics.jsonl
    records with a "ranking_reliability" entry), and the full-length reliability of
    that mean: one generation's 16 members give a rho within about +-0.5, so read
    the mean over many."""
    halves = np.array([r["ranking_reliability"]["split_half"] for r in records
                       if r.get("ranking_reliability")], np.float64)
    halves = halves[np.isfinite(halves)]
    if halves.size == 0:
        return {"generations": 0, "split_half_mean": float("nan"), "full": float("nan"),
                "split_half_sem": float("nan")}
    mean = float(halves.mean())
    sem = float(halves.std(ddof=1) / np.sqrt(halves.size)) if halves.size > 1 else float("nan")
    return {"generations": int(halves.size), "split_half_mean": mean,
            "split_half_sem": sem, "full": spearman_brown(mean)}
