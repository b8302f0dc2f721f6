"""Which validated ES snapshot ships as drift_selected.json: the rule named by
`DiscoveryConfig.selection` (SELECTION_RULES says each in words; the text is
recorded in drift_selected.json and a shipped drift's provenance).

Candidates are the start (generation 0, snapshots/start-validation.json) and every
generation whose metrics.jsonl record holds a validation and whose snapshot file
exists. Every candidate was trained on the same `validation_seeds` seeds, so a
snapshot and the start can be compared seed by seed (common random numbers).

- `max_score`: the highest validation score. With a few snapshots and tens of
  seeds this favours a lucky one (a max over noisy scores).
- `beats_start`: the start, unless a later snapshot beats it by more than the seed
  noise: the lower bound of a paired bootstrap (seeds resampled within each env,
  the same indices for the snapshot and the start) of (its score - the start's
  score) at one-sided level ALPHA / k is above 0, k the number of later snapshots
  compared (Bonferroni: the chance that any snapshot no better than the start is
  chosen stays <= ALPHA). Of the snapshots that pass, the highest score. A seed
  either run left without a finite score is dropped from that env's pairs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

SelectionRule = Literal["max_score", "beats_start"]
SNAPSHOTS = "snapshots"
START_VALIDATION = "start-validation.json"
ALPHA = 0.05
RESAMPLES = 4000
_SCORE = ("the mean over validation envs of the IQM over validation_seeds fixed seeds of "
          "(R - R_random) / (R_PPO - R_random), PPO trained on the same seeds")
SELECTION_RULES: dict[str, str] = {
    "max_score": (f"the ES-mean snapshot with the highest validation score ({_SCORE}); the "
                  "start (generation 0, the ES's initial mean) is a candidate; ties go to the "
                  "earlier generation"),
    "beats_start": (f"the start (generation 0, the ES's initial mean) unless a later ES-mean "
                    f"snapshot's validation score ({_SCORE}) beats the start's on the same seeds "
                    f"by more than seed noise: its paired, env-stratified bootstrap lower bound "
                    f"of (score - start's score) at one-sided level {ALPHA}/k is above 0, k the "
                    "number of later snapshots compared (Bonferroni); of those, the highest "
                    "score, ties to the earlier generation"),
}


def snapshot_name(generation: int) -> str:
    """The file stem of generation `generation`'s snapshot under snapshots/."""
    return f"generation-{generation:05d}"


def snapshot_file(run_dir: Path, generation: int) -> Path:
    """snapshots/generation-NNNNN.json of `run_dir` (its params file sits beside it)."""
    return run_dir / SNAPSHOTS / f"{snapshot_name(generation)}.json"


def start_validation(run_dir: Path) -> float | None:
    """The validation score of the start (snapshots/generation-00000.json, written
    by exports.validate_start), or None before it is validated."""
    from driftlab.algorithms.storage import read_json

    path = snapshot_file(run_dir, 0)
    if not path.is_file():
        return None
    score = read_json(path).get("validation_score")
    return float(score) if isinstance(score, (int, float)) else None


class SelectionError(ValueError):
    """A validation record the rule cannot use (e.g. no per-seed scores)."""


@dataclass(frozen=True)
class Candidate:
    """One validated snapshot: its generation, validation score and per-seed
    scores by env ({env: [score or None per seed]}; None in records written
    before per-seed scores were kept)."""

    generation: int
    score: float
    seed_scores: dict[str, list[float | None]] | None


@dataclass(frozen=True)
class Selection:
    """The chosen snapshot and, for `beats_start`, each later snapshot's paired
    lower bound ({generation: bound}) and the one-sided level used."""

    generation: int
    score: float
    lower_bounds: dict[int, float] | None = None
    level: float | None = None

    def record(self) -> dict[str, Any]:
        """The selection as drift_selected.json's metadata records it."""
        if self.lower_bounds is None:
            return {}
        return {"selection_level": self.level,
                "selection_lower_bounds": {str(g): b for g, b in self.lower_bounds.items()}}


def seed_scores_of(validation: dict[str, Any]) -> dict[str, list[float | None]] | None:
    """{env: per-seed scores} of a validation record, None if it keeps none."""
    envs = validation.get("envs") or {}
    if not envs or any("scores" not in entry for entry in envs.values()):
        return None
    return {env_id: list(entry["scores"]) for env_id, entry in envs.items()}


def candidates(run_dir: Path) -> list[Candidate]:
    """The validated snapshots of `run_dir` with a finite score and their snapshot
    file present, the start first, in generation order."""
    from driftlab.algorithms.storage import read_json, read_jsonl

    found: list[Candidate] = []
    score, start = start_validation(run_dir), run_dir / SNAPSHOTS / START_VALIDATION
    if score is not None:
        validation = read_json(start) if start.is_file() else {}
        found.append(Candidate(0, score, seed_scores_of(validation)))
    metrics = run_dir / "metrics.jsonl"  # none yet when the start is validated
    for record in read_jsonl(metrics) if metrics.is_file() else []:
        validation = record.get("validation") or {}
        score, generation = validation.get("score"), int(record["generation"])
        if score is None or generation == 0:
            continue
        if not snapshot_file(run_dir, generation).is_file():
            continue
        found.append(Candidate(generation, float(score), seed_scores_of(validation)))
    return [c for c in found if math.isfinite(c.score)]


def paired_lower_bound(snapshot: dict[str, list[float | None]],
                       start: dict[str, list[float | None]], quantile: float,
                       resamples: int = RESAMPLES, seed: int = 0) -> float:
    """The `quantile` of the bootstrap distribution of (snapshot's validation score -
    start's), the score being the mean over envs of the per-seed scores' IQM; seeds
    are resampled with replacement within each env, the same indices for both."""
    from scipy.stats import trim_mean

    if set(snapshot) != set(start):
        raise SelectionError(f"the snapshot was validated on {sorted(snapshot)} and the start "
                             f"on {sorted(start)}; they cannot be compared")
    rng = np.random.default_rng(seed)
    total = np.zeros(resamples)
    for env_id in sorted(snapshot):
        a = np.array([np.nan if v is None else v for v in snapshot[env_id]], np.float64)
        b = np.array([np.nan if v is None else v for v in start[env_id]], np.float64)
        if a.shape != b.shape:
            raise SelectionError(f"{env_id}: {a.size} seeds for the snapshot, {b.size} for the "
                                 "start; they cannot be paired")
        keep = np.isfinite(a) & np.isfinite(b)
        a, b = a[keep], b[keep]
        if a.size == 0:
            return float("nan")
        index = rng.integers(0, a.size, size=(resamples, a.size))
        total += trim_mean(a[index], 0.25, axis=1) - trim_mean(b[index], 0.25, axis=1)
    return float(np.quantile(total / len(snapshot), quantile))


def select(run_dir: Path, rule: str = "max_score") -> Selection | None:
    """The snapshot `rule` picks among `candidates(run_dir)`, None if there is none."""
    return choose(candidates(run_dir), rule)


def choose(found: list[Candidate], rule: str = "max_score",
           resamples: int = RESAMPLES) -> Selection | None:
    """The candidate `rule` picks (SELECTION_RULES), None if there is none to pick
    (or, for `beats_start`, no start yet). SelectionError for an unknown rule or, for
    `beats_start`, a candidate without per-seed scores."""
    if rule not in SELECTION_RULES:
        raise SelectionError(f"unknown selection rule {rule!r}; choose one of "
                             f"{', '.join(SELECTION_RULES)}")
    if not found:
        return None
    if rule == "max_score":
        best = max(found, key=lambda c: (c.score, -c.generation))
        return Selection(best.generation, best.score)
    start = next((c for c in found if c.generation == 0), None)
    if start is None:
        return None  # the start is validated first; nothing to compare with yet
    later = [c for c in found if c.generation > 0]
    for c in (start, *later):
        if c.seed_scores is None:
            raise SelectionError(
                f"the validation record of generation {c.generation} keeps no per-seed "
                "scores (written by an older driftlab), which selection: beats_start needs; "
                "use selection: max_score for this run")
    level = ALPHA / max(len(later), 1)
    bounds = {c.generation: paired_lower_bound(c.seed_scores, start.seed_scores, level,
                                               resamples)
              for c in later}
    passed = [c for c in later if bounds[c.generation] > 0]
    chosen = max(passed, key=lambda c: (c.score, -c.generation)) if passed else start
    return Selection(chosen.generation, chosen.score, bounds, level)
