"""How often does a drift pass issue 18's MinAtar target, given its true effect?

The target (16 seeds per game, each game at its preset): aggregate PPO-normalised IQM
>= 1.0, P(drift > PPO) >= 0.5 and no game's normalised IQM below 0.9. This draws
both contestants' 16 seeds per game from PPO's measured per-seed final returns
(ppo-minatar-seeds.json; resampled with replacement), scales the drift's return
above the random policy by `effect` (1.0: a drift exactly as good as PPO), and
scores each draw with the report's own statistics (driftlab.analysis.statistics).
Writes pass-rates.json beside this file.

    .venv/bin/python docs/results/target-calibration/simulate.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from driftlab.analysis.statistics import iqm, normalize, probability_of_improvement

HERE = Path(__file__).resolve().parent
EFFECTS = (0.9, 0.95, 1.0, 1.05, 1.1, 1.15, 1.2)
TRIALS = 4000
SEEDS = 16


def one_draw(rng: np.random.Generator, finals: dict[str, np.ndarray],
             randoms: dict[str, float], effect: float) -> dict[str, float]:
    drift_scores, ppo_scores, per_env = [], [], []
    for env, values in finals.items():
        ppo = rng.choice(values, SEEDS)
        drift = randoms[env] + effect * (rng.choice(values, SEEDS) - randoms[env])
        reference = float(np.mean(ppo))  # the report normalises by PPO's mean final return
        d, p = normalize(drift, randoms[env], reference), normalize(ppo, randoms[env], reference)
        drift_scores.append(d)
        ppo_scores.append(p)
        per_env.append(float(iqm(d)))
    return {"iqm": float(iqm(np.concatenate(drift_scores))),
            "improvement": probability_of_improvement(drift_scores, ppo_scores),
            "lowest_env": min(per_env)}


def main() -> None:
    data = json.loads((HERE / "ppo-minatar-seeds.json").read_text())
    finals = {env: np.asarray(v, np.float64) for env, v in data["ppo_final_return_per_seed"].items()}
    randoms = data["random_returns"]
    rng = np.random.default_rng(0)
    results = {}
    for effect in EFFECTS:
        draws = [one_draw(rng, finals, randoms, effect) for _ in range(TRIALS)]
        a = np.array([d["iqm"] >= 1.0 for d in draws])
        b = np.array([d["improvement"] >= 0.5 for d in draws])
        c = np.array([d["lowest_env"] >= 0.9 for d in draws])
        results[str(effect)] = {
            "pass_all_three": float(np.mean(a & b & c)), "iqm_at_least_1": float(a.mean()),
            "improvement_at_least_half": float(b.mean()), "no_game_below_0.9": float(c.mean()),
            "median_iqm": float(np.median([d["iqm"] for d in draws])),
            "median_improvement": float(np.median([d["improvement"] for d in draws])),
            "median_lowest_game": float(np.median([d["lowest_env"] for d in draws]))}
        print(effect, {k: round(v, 3) for k, v in results[str(effect)].items()}, flush=True)
    (HERE / "pass-rates.json").write_text(json.dumps(
        {"trials": TRIALS, "seeds_per_game": SEEDS, "rng_seed": 0,
         "source": data["source"], "effects": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
