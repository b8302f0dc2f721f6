"""`driftlab experiment NAME [--smoke]`: reproduce a published study.

A recipe (configs/experiments/NAME.yaml) names discovery variants (a discovery
preset plus overrides), evaluation envs, baselines and seeds. The command runs
each discovery, then trains every learned drift and every baseline on every
evaluation env, then compares them: all through `driftlab.api`, each call
writing its own run directory under one experiment folder. `--smoke` swaps in
the recipe's toy budgets so the whole pipeline runs on a CPU in minutes.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from driftlab.hints import did_you_mean


def add_parser(sub: argparse._SubParsersAction) -> None:
    from driftlab.cli_args import add_no_progress, add_out
    from driftlab.presets import CONFIG_DIR

    names = sorted(p.stem for p in (CONFIG_DIR / "experiments").glob("*.yaml"))
    p = sub.add_parser("experiment", help="reproduce a published study (see configs/experiments)",
                       description="Recipes: " + ", ".join(names))
    p.add_argument("name", help="recipe name: " + ", ".join(names))
    p.add_argument("--smoke", action="store_true", help="toy budgets that run on a CPU")
    add_out(p, "experiment directory", "runs/experiment-...")
    add_no_progress(p)


def load_recipe(name: str) -> dict[str, Any]:

    from driftlab.algorithms.storage import read_yaml
    from driftlab.errors import DriftlabError
    from driftlab.presets import CONFIG_DIR

    path = CONFIG_DIR / "experiments" / f"{name}.yaml"
    if not path.is_file():
        names = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise DriftlabError(f"unknown experiment {name!r}{did_you_mean(name, names)}; choose "
                            f"one of {', '.join(names)}")
    return read_yaml(path)


def run(args: argparse.Namespace) -> int:
    from driftlab import api
    from driftlab.compare_command import print_result as print_comparison
    from driftlab.discover_command import print_result as print_discovery
    from driftlab.rundir import new_run_dir
    from driftlab.train_command import print_outcome

    recipe = load_recipe(args.name)
    smoke = recipe.get("smoke", {}) if args.smoke else {}
    evaluate = recipe["evaluate"]
    eval_envs = smoke.get("envs", evaluate["envs"])
    seeds = smoke.get("seeds", evaluate["seeds"])
    root = new_run_dir(args.out, "experiment", args.name + ("-smoke" if args.smoke else ""))
    progress = not args.no_progress
    print(f"{recipe['description']}\nfull scale: {recipe['wall_clock']} ({recipe['devices']})"
          + ("\n--smoke: toy budgets, numbers are not meaningful" if args.smoke else ""))

    learned: dict[str, Path] = {}
    for variant, spec in recipe["variants"].items():
        out = root / f"discover-{variant}"
        print(f"\n=== discover {variant} ({spec['preset']}) ===", flush=True)
        found = api.discover(spec["preset"], out=out, progress=progress,
                             settings={**spec.get("set", {}), **smoke.get("discover", {})})
        print_discovery(found)
        learned[variant] = out

    runs: list[Path] = []
    for env_id in eval_envs:
        jobs: list[tuple[str, Path | None]] = [(algo, None) for algo in evaluate["algos"]]
        jobs += list(learned.items())
        for label, drift in jobs:
            algo = "lpo" if drift else label
            out = root / f"train-{label}-{env_id.replace('/', '_')}"
            print(f"\n=== train {label} on {env_id} ===", flush=True)
            outcome = api.train(algo, env_id, seeds=seeds, out=out,
                                drift=None if drift is None else str(drift),
                                timesteps=smoke.get("timesteps"),
                                settings=smoke.get("train", {}), progress=progress)
            print_outcome(outcome)
            runs.append(out)
    print("\n=== compare ===", flush=True)
    print_comparison(api.compare(runs, out=root / "compare"))
    print(f"\nexperiment directory: {root}")
    return 0
