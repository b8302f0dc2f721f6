"""The evaluation table of a shipped drift: it against PPO and DPO, 16 seeds per
cell, IQM with 95% bootstrap CIs from `driftlab compare`.

Cells: each meta-training env at the meta-training budget and at 4x that budget
(settings of drifts/NAME/train.yaml), and each held-out env twice, with its
own preset and with the meta-training settings (train.yaml, budget scaled).
Every run is an ordinary `driftlab train` run directory under --out; the
table goes to drifts/NAME/evaluation.{json,md} (or --write elsewhere).

    python benchmarks/shipped_drift_table.py lpo-cartpole [--seeds 16] [--quick]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import yaml

from driftlab import api
from driftlab.algorithms.shipped import shipped_dir
from driftlab.compare_command import print_result as print_comparison
from driftlab.train_command import print_outcome

ROOT = Path(__file__).resolve().parent.parent

# Held-out budgets (env steps per seed) with each env's own preset.
HELDOUT_PRESET_BUDGET = {"gymnax/Acrobot-v1": 100_000, "gymnax/Breakout-MinAtar": 500_000,
                         "gymnax/Pendulum-v1": 200_000}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("name", help="shipped drift name, e.g. lpo-cartpole")
    p.add_argument("--seeds", type=int, default=16)
    p.add_argument("--out", default="runs/shipped-eval")
    p.add_argument("--heldout", nargs="*", help="held-out envs (default: provenance's)")
    p.add_argument("--meta-settings-heldout", nargs="*", default=["gymnax/Acrobot-v1"],
                   help="held-out envs also trained with train.yaml's settings "
                        "(default gymnax/Acrobot-v1; the settings suit classic control)")
    p.add_argument("--extra", nargs="*", default=[], metavar="SHIPPED",
                   help="further shipped drifts in every cell, e.g. the distilled formula")
    p.add_argument("--write", help="folder for evaluation.json/md (default drifts/NAME)")
    p.add_argument("--quick", action="store_true", help="2 seeds, tiny budgets (a smoke test)")
    args = p.parse_args()

    folder = shipped_dir(args.name)
    if folder is None:
        raise SystemExit(f"no shipped drift {args.name!r}")
    provenance = yaml.safe_load((folder / "provenance.yaml").read_text())
    train_yaml = folder / "train.yaml"
    kind = provenance["kind"]
    seeds = 2 if args.quick else args.seeds
    heldout = args.heldout if args.heldout is not None else provenance["heldout_envs"]
    out = Path(args.out) / args.name
    cells = []
    for env_id in provenance["meta_envs"]:
        budget = int(provenance["timesteps"][env_id])
        cells.append((f"{env_id} meta x1", env_id, budget, train_yaml))
        cells.append((f"{env_id} meta x4", env_id, 4 * budget, train_yaml))
    for env_id in heldout:
        budget = HELDOUT_PRESET_BUDGET.get(env_id, 100_000)
        cells.append((f"{env_id} held-out preset", env_id, budget, None))
        if env_id in args.meta_settings_heldout:
            meta_budget = 2 * int(next(iter(provenance["timesteps"].values())))
            cells.append((f"{env_id} held-out meta-settings", env_id, meta_budget,
                          train_yaml))
    results = {"drift": args.name, "seeds": seeds, "cells": []}
    for label, env_id, budget, config in cells:
        if args.quick:
            budget = 4096
        cell_dir = out / label.replace("/", "_").replace(" ", "-")
        runs = []
        tick = time.time()
        jobs = [("ppo", "ppo", None), ("dpo", "dpo", None), (kind, kind, args.name)]
        for extra_name in args.extra:
            extra_kind = yaml.safe_load((shipped_dir(extra_name) / "provenance.yaml").read_text())
            jobs.append((extra_name, extra_kind["kind"], extra_name))
        for folder_name, algo, drift in jobs:
            run_dir = cell_dir / f"train-{folder_name}"
            runs.append(run_dir)
            if (run_dir / "summary.json").is_file():
                continue
            if run_dir.exists():
                import shutil

                shutil.rmtree(run_dir)
            outcome = api.train(algo, env_id, seeds=seeds, timesteps=budget, out=run_dir,
                                progress=False, drift=drift,
                                config=None if config is None else str(config))
            print_outcome(outcome)
        compare = cell_dir / "compare"
        if compare.exists():
            import shutil

            shutil.rmtree(compare)
        print_comparison(api.compare(runs, out=compare))
        table = json.loads((compare / "comparison.json").read_text())
        results["cells"].append({"cell": label, "env": env_id, "timesteps": budget,
                                 "settings": "train.yaml" if config else "preset",
                                 "seconds": round(time.time() - tick, 1), **table})
    write = Path(args.write) if args.write else folder
    if args.quick and not args.write:
        write = out
    write.mkdir(parents=True, exist_ok=True)
    (write / "evaluation.json").write_text(json.dumps(results, indent=2) + "\n")
    (write / "evaluation.md").write_text(markdown(results) + "\n")
    print(markdown(results))
    return 0


def markdown(results: dict) -> str:
    """One row per cell: IQM [95% CI] of each algorithm, then each shipped drift's
    PPO-normalised IQM (1 + (x - PPO mean) / |PPO mean|) [95% CI]."""
    first = results["cells"][0]
    names = [r["label"] for r in first["final"]]
    shipped = [n for n in names if "shipped" in n]
    columns = ["ppo", "dpo", *shipped]
    lines = ["| cell | steps | " + " | ".join(f"{c} IQM [95% CI]" for c in columns) + " | "
             + " | ".join(f"{c} / PPO (normalised IQM)" for c in shipped) + " |",
             "|---|---:|" + "---|" * len(columns) + "---:|" * len(shipped)]

    def fmt(row: dict | None) -> str:
        if row is None or row.get("iqm") is None:
            return "n/a"
        return f"{row['iqm']:.1f} [{row['ci_low']:.1f}, {row['ci_high']:.1f}]"

    def fmt_norm(entry: dict | None) -> str:
        if not entry or entry.get("iqm") is None:
            return "n/a"
        return f"{entry['iqm']:.3f} [{entry['ci_low']:.3f}, {entry['ci_high']:.3f}]"

    for cell in results["cells"]:
        rows = {r["label"]: r for r in cell["final"]}
        lines.append(f"| {cell['cell']} | {cell['timesteps']:,} | "
                     + " | ".join(fmt(rows.get(c)) for c in columns) + " | "
                     + " | ".join(fmt_norm(cell["normalized"].get(c)) for c in shipped) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
