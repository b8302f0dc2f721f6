"""Recompute a randomised discovery's ranking noise under both rollout weightings.

    python docs/results/transfer-noise-probe/weighting.py RUN_DIR

RUN_DIR: a discovery run whose metrics.jsonl records `rollout_env_scores` (members x
envs x rollouts, per-rollout scores). Each member's return on each rollout is rebuilt
from its score and that rollout's PPO gap (`ppo_return`, floored at `reference_floor`
times the preset gap), then scored both ways: `per_rollout` (the mean of per-rollout
ratios) and `pooled` (over PPO's mean gap). Prints per generation the split-half rank
correlation and the signal and noise variances (`discovery.ranking_noise`), then the
same pooled over generations.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import yaml

from driftlab.discovery.ranking_noise import (
    signal_upper_bound,
    split_half_rank_correlation,
    variance_components,
)


def weighted_fitness(record: dict, random: dict, references: dict, floor_fraction: float
                     ) -> dict[str, np.ndarray]:
    """{"per_rollout": (rollouts, members), "pooled": (rollouts, members)} for one record."""
    scores = np.array(record["rollout_env_scores"], np.float64)  # members, envs, rollouts
    envs = list(record["env_score_mean"])
    pooled = np.zeros((scores.shape[2], scores.shape[0]))
    for index, env in enumerate(envs):
        ppo = np.array(record["ppo_return"][env], np.float64)
        floor = floor_fraction * (references[env] - random[env])
        returns = scores[:, index, :] * np.fmax(ppo - random[env], floor)[None] + random[env]
        gap = max(float(np.nanmean(ppo)) - random[env], floor)
        pooled += ((returns - random[env]) / gap).T / len(envs)
    return {"per_rollout": scores.mean(axis=1).T, "pooled": pooled}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    run = parser.parse_args().run_dir
    random = json.loads((run / "random_returns.json").read_text())
    references = json.loads((run / "reference_returns.json").read_text())
    floor = yaml.safe_load((run / "config.yaml").read_text())["discovery"]["reference_floor"]
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    pooled_over: dict[str, list[np.ndarray]] = {"per_rollout": [], "pooled": []}
    for record in records:
        for name, values in weighted_fitness(record, random, references, floor).items():
            signal, noise = variance_components(values)
            pooled_over[name].append(values)
            print(f"generation {record['generation']} {name:11s} split-half "
                  f"{split_half_rank_correlation(values):5.2f}  signal {signal:.4g}  "
                  f"noise {noise:.4g}  noise/signal "
                  f"{noise / signal if signal > 0 else float('inf'):.3g}")
    for name, values in pooled_over.items():
        signal, noise = np.array([variance_components(v) for v in values]).mean(axis=0)
        _, sd_upper = signal_upper_bound(values)
        print(f"all generations {name:11s} signal {signal:.4g}  noise {noise:.4g}  "
              f"noise/signal {noise / signal if signal > 0 else float('inf'):.3g}  "
              f"members' true sd at most {sd_upper:.3g} (95%)")


if __name__ == "__main__":
    main()
