"""`driftlab discover`: meta-learn a drift with evolution strategies: the LPO
network (default), or the constants of DPO, PPO, a distilled formula or any
registered family (`drift: {kind: ...}`).

    driftlab discover --preset cartpole-tiny [--set key=value ...] [--out DIR]
    driftlab discover --resume RUN_DIR [--set generations=N]
    driftlab discover --reselect RUN_DIR --selection beats_start

The work is `driftlab.api.discover` (driftlab/discovery_run.py); presets and
settings are in driftlab/discovery_settings.py.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Kept importable from here for scripts and tests (`from driftlab.discover_command import ...`).
from driftlab.discovery_settings import (  # noqa: F401
    RESUMABLE,
    build_config,
    list_presets,
    preset_settings,
    resolve_discovery_settings,
)

if TYPE_CHECKING:
    from driftlab.discovery_run import DiscoverResult


def add_parser(sub: argparse._SubParsersAction) -> None:
    from driftlab.cli_args import add_no_progress, add_out, add_set
    p = sub.add_parser("discover", help="meta-learn a drift with evolution strategies",
                       description="ES meta-training of a drift on one or more envs: the LPO "
                                   "network (default), or the constants of another family "
                                   "(drift: {kind: dpo | ppo | distilled (from: FILE) | ...}); "
                                   "writes config.yaml, metrics.jsonl, checkpoints/, "
                                   "drift.json (ES mean) and drift_best.json (best member).")
    p.add_argument("--preset", help="a file stem of configs/discover/, e.g. cartpole-tiny")
    p.add_argument("--config", help="YAML file of discovery settings merged over the preset")
    add_set(p, "--set population=32 --set inner.num_envs=16")
    add_out(p, "run directory to create", "runs/discover-...")
    p.add_argument("--resume", metavar="RUN_DIR",
                   help="continue a run from its latest checkpoint (a run killed before its "
                        "first checkpoint starts over in place)")
    p.add_argument("--reselect", metavar="RUN_DIR",
                   help="choose RUN_DIR's drift_selected.json again under --selection, from "
                        "the validations it holds (nothing is trained; config.yaml records it)")
    p.add_argument("--selection", metavar="RULE",
                   help="with --reselect: max_score or beats_start")
    p.add_argument("--distributed", action="store_true",
                   help="call jax.distributed.initialize() so several hosts share one population")
    p.add_argument("--cpu-devices", default=None, metavar="auto|off|N",
                   help="split the host's CPU cores into N XLA devices for the population "
                        "(default auto: one per core, or $DRIFTLAB_CPU_DEVICES; off: one device)")
    add_no_progress(p)


def run(args: argparse.Namespace) -> int:
    from driftlab import api
    from driftlab.presets import parse_overrides

    if args.reselect is not None or args.selection is not None:
        return reselect(args)
    # A stop (Ctrl-C, SIGTERM) carries the run directory (`resume_dir`): driftlab.cli
    # reports it with the --resume command.
    result = api.discover(args.preset, config=args.config,
                          settings=parse_overrides(args.overrides), out=args.out,
                          resume=args.resume, distributed=args.distributed,
                          cpu_devices=args.cpu_devices, progress=not args.no_progress)
    if result.primary:
        print_result(result)
    return 0


def reselect(args: argparse.Namespace) -> int:
    from driftlab import api
    from driftlab.errors import DriftlabError

    if args.reselect is None or args.selection is None:
        raise DriftlabError("--reselect RUN_DIR and --selection RULE go together: "
                            "driftlab discover --reselect RUN_DIR --selection beats_start")
    others = [flag for flag, given in (("--preset", args.preset), ("--config", args.config),
                                       ("--resume", args.resume), ("--out", args.out),
                                       ("--set", args.overrides)) if given]
    if others:
        raise DriftlabError(f"--reselect trains nothing and takes no {', '.join(others)}; "
                            "drop them")
    record = api.reselect(args.reselect, args.selection)
    print(f"reselected {args.reselect} with {record['to']} (was {record['from']}): generation "
          f"{record['previous_generation']} -> {record['generation']}")
    print_selection(Path(args.reselect))
    return 0


def print_result(result: DiscoverResult) -> None:
    """The end of a discovery: fitness, the ES mean's returns, constants, where it is."""
    config, outcome, run_dir = result.config, result.outcome, result.run_dir
    last = outcome.history[-1] if outcome.history else {}
    print(f"\n{outcome.generations} generations of {config.strategy} (population "
          f"{config.population}) on {', '.join(config.envs)}")
    print(f"best fitness so far: {outcome.best_fitness:.4g}; last generation mean "
          f"{last.get('fitness_mean', float('nan')):.4g}")
    for env_id, entry in (last.get("eval") or {}).items():
        print(f"ES mean on {env_id}: {entry['return_mean']:.2f} +- {entry['return_std']:.2f}")
    if outcome.constants is not None:  # a closed-form family: its few constants
        def text(values: dict[str, Any]) -> str:
            return ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                             for k, v in values.items())

        print(f"constants: start {text(outcome.start_constants)}; ES mean "
              f"{text(outcome.constants)}")
    if config.rollouts_per_member >= 2 and (run_dir / "metrics.jsonl").is_file():
        from driftlab.algorithms.storage import read_jsonl
        from driftlab.discovery.ranking_noise import summarise

        noise = summarise(read_jsonl(run_dir / "metrics.jsonl"))
        if noise["generations"]:
            need = noise["rollouts_for_half"]
            print(f"ranking reliability: members' split-half rank correlation "
                  f"{noise['split_half_mean']:.2f} +- {noise['split_half_sem']:.2f} (mean +- "
                  f"s.e. over {noise['generations']} generations; about 0: the ES ranked seed "
                  f"noise); rollouts per member for reliability 0.5: "
                  + (f"{need:.0f}" if math.isfinite(need) else "none suffice (no signal)")
                  + " (docs/discover.md)")
            if math.isfinite(noise["signal_sd_upper"]):
                least = noise["rollouts_for_half_at_least"]
                print(f"members' true fitness spread: sd at most {noise['signal_sd_upper']:.3g} "
                      "(95% bound, pooled over generations); reliability 0.5 needs "
                      + (f"at least {least:.0f} rollouts per member" if math.isfinite(least)
                         else "more rollouts than any number (no signal even at the bound)"))
    if (run_dir / "drift_selected.json").is_file():
        print_selection(run_dir)
    algo = config.drift.algo
    print(f"run directory: {run_dir} (train with: driftlab train --algo "
          f"{algo} --env ENV --drift {run_dir})")


def print_selection(run_dir) -> None:
    """Which validated snapshot drift_selected.json holds, by which rule, and for
    `beats_start` each later snapshot's paired lower bound over the start."""
    from driftlab.algorithms.storage import read_json

    spec = read_json(run_dir / "drift_selected.json")
    print(f"validation selected generation {spec.get('generation')} (score "
          f"{spec.get('validation_score', float('nan')):.4g}, selection "
          f"{spec.get('selection_rule', 'max_score')}): drift_selected.json")
    bounds = spec.get("selection_lower_bounds")
    if bounds:
        print("paired lower bounds of (snapshot - start) at one-sided level "
              f"{spec.get('selection_level'):.3g}: "
              + ", ".join(f"generation {g} {b:+.3f}" for g, b in bounds.items())
              + " (above 0 beats the start)")
