"""Where each learning test's bar stands in its measured seed distribution.

Reads tests/calibration/learning-bars.json (written by measure.py) and, for each
test, draws 100,000 seed sets of the test's size from the measured seeds (with
replacement: a bootstrap of the seed distribution), computes the statistic the
test asserts on, and prints its 0.1% / 1% / 5% quantiles and the fraction of
seed sets for which the test's bar passes. A bar is sound when that fraction is
at least 0.99.
The Breakout bar is the test's max(5 x random, random + 3) with the random
policy's return as the test measures it (algorithms.evaluation.random_policy_return,
key 1: 0.457, so 3.46).

    python tests/calibration/bars.py [--results FILE ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DRAWS = 100_000


def _mean(x: np.ndarray) -> np.ndarray:
    return x.mean(axis=-1)


def distilled_statistic(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The margin of test_distilled_dpo_trains_cartpole_like_dpo: 2 x spread minus
    |mean(a) - mean(b)| (>= 0 passes), spread = max(std a, std b, 5% of mean a)."""
    spread = np.maximum(np.maximum(a.std(axis=-1), b.std(axis=-1)), 0.05 * a.mean(axis=-1))
    return 2 * spread - np.abs(a.mean(axis=-1) - b.mean(axis=-1))


# test -> (measured case, seeds per test run, statistic of the sampled seed sets, bar).
# A statistic takes {series: (DRAWS, seeds)} and returns (DRAWS,); the test passes
# where statistic >= bar. Keep the bars equal to the tests' own.
TESTS: dict[str, tuple[str, int, Callable[[dict], np.ndarray], float]] = {
    "test_cartpole_reaches_450_within_5e5_steps[ppo]":
        ("cartpole-ppo-5e5", 4, lambda s: _mean(s["finals"]), 450.0),
    "test_cartpole_reaches_450_within_5e5_steps[dpo]":
        ("cartpole-dpo-5e5", 4, lambda s: _mean(s["finals"]), 450.0),
    "test_pendulum_ppo_reaches_minus_300_within_4e5_steps":
        ("pendulum-ppo-4e5", 4, lambda s: _mean(s["finals"]), -300.0),
    "test_breakout_minatar_beats_random_within_5e5_steps[ppo]":
        ("breakout-ppo-5e5", 4, lambda s: _mean(s["finals"]), 3.46),
    "test_breakout_minatar_beats_random_within_5e5_steps[dpo]":
        ("breakout-dpo-5e5", 4, lambda s: _mean(s["finals"]), 3.46),
    "test_brax_mode_learns_inverted_pendulum_on_cpu":
        ("inverted-pendulum-brax-mode-2e6", 4, lambda s: _mean(s["finals"]), 220.0),
    "test_shipped_drift_trains_cartpole_at_least_as_well_as_ppo (learned - ppo)":
        ("shipped-cartpole", 64, lambda s: _mean(s["lpo-cartpole"]) - _mean(s["ppo"]), 0.0),
    "test_shipped_drift_trains_cartpole_at_least_as_well_as_ppo (formula - 0.8 learned)":
        ("shipped-cartpole", 64,
         lambda s: _mean(s["lpo-cartpole-formula"]) - 0.8 * _mean(s["lpo-cartpole"]), 0.0),
    "test_distilled_dpo_trains_cartpole_like_dpo (2 spread - |gap|)":
        ("distilled-dpo-cartpole-1e5", 8, lambda s: distilled_statistic(s["dpo"], s["distilled"]),
         0.0),
    "test_few_generations_raise_es_mean_return_beyond_seed_noise (gain - 1.5 noise)":
        ("discovery-es-gain", 1, lambda s: s["gain"][:, 0] - 1.5 * s["noise"][:, 0], 0.0),
    "test_distilled_dpo_trains_cartpole_like_dpo (distilled mean)":
        ("distilled-dpo-cartpole-1e5", 8, lambda s: _mean(s["distilled"]), 100.0),
}


def load(paths: list[Path]) -> dict[str, dict[str, np.ndarray]]:
    """case -> series -> every measured seed's final return (entries pooled)."""
    out: dict[str, dict[str, list[float]]] = {}
    for path in paths:
        for case, entries in json.loads(path.read_text()).items():
            for entry in entries:
                for key, values in entry.items():
                    if isinstance(values, list):
                        out.setdefault(case, {}).setdefault(key, []).extend(values)
    return {c: {k: np.asarray(v, np.float64) for k, v in s.items()} for c, s in out.items()}


def seed_sets(series: dict[str, np.ndarray], seeds: int, rng: np.random.Generator
              ) -> dict[str, np.ndarray]:
    """DRAWS seed sets of `seeds` seeds; series measured on the same keys stay paired."""
    n = min(len(v) for v in series.values())
    index = rng.integers(0, n, (DRAWS, seeds))
    return {k: v[:n][index] for k, v in series.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", nargs="*", type=Path,
                        default=sorted(HERE.glob("learning-bars*.json")))
    args = parser.parse_args()
    data = load(args.results)
    rng = np.random.default_rng(0)
    for test, (case, seeds, statistic, bar) in TESTS.items():
        if case not in data:
            print(f"{test}: {case} not measured")
            continue
        measured = data[case]
        values = statistic(seed_sets(measured, seeds, rng))
        q = np.quantile(values, [0.001, 0.01, 0.05, 0.5])
        count = min(len(v) for v in measured.values())
        print(f"{test}: {count} seeds measured; statistic of {seeds} seeds: "
              f"q0.1% {q[0]:.1f}, q1% {q[1]:.1f}, q5% {q[2]:.1f}, median {q[3]:.1f}; "
              f"bar {bar:g} passes {np.mean(values >= bar):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
