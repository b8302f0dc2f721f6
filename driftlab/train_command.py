"""`driftlab train`: train agents with a built-in, learned or distilled drift."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

import numpy as np

from driftlab.train_checks import DEFAULT_CHUNKS

if TYPE_CHECKING:
    from driftlab.training import TrainOutcome


def add_parser(sub: argparse._SubParsersAction) -> None:
    from driftlab.cli_args import add_no_progress, add_out, add_set
    p = sub.add_parser("train", help="train agents with PPO, DPO, a learned LPO or a formula",
                       description="Train --seeds agents in one jit and write a run directory "
                                   "(config.yaml, metrics.jsonl, params.msgpack, "
                                   "learning_curve.png, summary.json).")
    p.add_argument("--algo", help="ppo, dpo, none, lpo (with --drift for a learned one), "
                                   "distilled (required unless --rerun)")
    p.add_argument("--env", help="environment id, e.g. gymnax/CartPole-v1 (required unless "
                                 "--rerun)")
    p.add_argument("--rerun", metavar="RUN_DIR",
                   help="train again exactly what RUN_DIR/config.yaml records, bit for bit "
                        "(with --out and --no-progress only)")
    p.add_argument("--seeds", type=int, default=1, help="number of seeds, vmapped (default 1)")
    p.add_argument("--seed", type=int, default=0, help="base random seed (default 0)")
    p.add_argument("--timesteps", type=float, help="total environment steps per seed")
    p.add_argument("--config", help="YAML file of settings merged over the env's preset")
    add_set(p, "--set learning_rate=3e-4 --set drift.eps=0.3")
    p.add_argument("--sweep", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="grid over a numeric hyperparameter or drift constant, repeatable: "
                        "--sweep learning_rate=1e-4,3e-4 --sweep drift.alpha=1,2 trains every "
                        "combination x --seeds in one compiled program, into one run directory "
                        "(a combinations/ subdirectory per setting); shape-changing settings "
                        "(num_envs, num_steps, epochs, minibatches, timesteps, network sizes, "
                        "env) cannot be swept")
    p.add_argument("--drift", help="run directory, drift .json or shipped drift name "
                                    "(see `driftlab drifts`) to load (lpo, distilled)")
    add_out(p, "run directory to create", "runs/train-...")
    p.add_argument("--chunks", type=int, default=DEFAULT_CHUNKS,
                   help="jitted pieces the run is split into for progress/logging "
                        f"(default {DEFAULT_CHUNKS})")
    add_no_progress(p)
    p.add_argument("--tensorboard", action="store_true",
                   help="also log every update to RUN/tensorboard (pip install "
                        "'driftlab[tensorboard]')")
    p.add_argument("--wandb", action="store_true",
                   help="also log every update to Weights & Biases (pip install 'driftlab[wandb]')")
    p.add_argument("--wandb-project", default="driftlab", help="W&B project (default driftlab)")


def run(args: argparse.Namespace) -> int:
    from driftlab import api
    from driftlab.errors import DriftlabError
    from driftlab.presets import parse_overrides
    from driftlab.sweep import parse_sweep
    from driftlab.sweep_run import print_sweep_outcome

    if args.rerun:
        given = [flag for flag, value, default in (
            ("--algo", args.algo, None), ("--env", args.env, None), ("--seeds", args.seeds, 1),
            ("--seed", args.seed, 0), ("--timesteps", args.timesteps, None),
            ("--config", args.config, None), ("--set", args.overrides, []),
            ("--sweep", args.sweep, []), ("--drift", args.drift, None),
            ("--chunks", args.chunks, DEFAULT_CHUNKS), ("--tensorboard", args.tensorboard, False),
            ("--wandb", args.wandb, False)) if value != default]
        if given:
            raise DriftlabError(f"--rerun takes its settings from the run's config.yaml; drop "
                                f"{', '.join(given)} (only --out and --no-progress apply)")
        print_outcome(api.rerun(args.rerun, out=args.out, progress=not args.no_progress))
        return 0
    for flag, value in (("--algo", args.algo), ("--env", args.env)):
        if not value:
            raise DriftlabError(f"{flag} is required (or --rerun RUN_DIR)")

    sweep = parse_sweep(args.sweep) if args.sweep else None
    outcome = api.train(args.algo, args.env, seeds=args.seeds, seed=args.seed,
                        timesteps=args.timesteps, config=args.config,
                        settings=parse_overrides(args.overrides), drift=args.drift,
                        out=args.out, chunks=args.chunks, progress=not args.no_progress,
                        tensorboard=args.tensorboard, wandb=args.wandb,
                        wandb_project=args.wandb_project, sweep=sweep)
    if sweep is not None:
        print_sweep_outcome(outcome, args.algo, args.env)
        return 0
    print_outcome(outcome)
    return 0


def print_outcome(outcome: TrainOutcome) -> None:
    """Steps, speed, divergence and the final returns of a train run, and where it is."""
    finals = outcome.final_returns
    seeds = len(finals)
    print(f"\n{outcome.algo} on {outcome.env}: {outcome.timesteps[-1]:,} steps x {seeds} seed(s) "
          f"in {outcome.seconds:.1f} s ({outcome.steps_per_second:,.0f} steps/s)")
    if outcome.diverged:
        where = ", ".join(f"seed {s} from update {u}" for s, u in outcome.diverged.items())
        print(f"DIVERGED: losses or parameters became NaN/inf ({where}); those seeds have no "
              "final return (summary.json: status diverged). Check the drift's constants and "
              "the learning rate.", file=sys.stderr)
    if np.isfinite(finals).any():
        print(f"final return (mean of last 10% of updates): {np.nanmean(finals):.2f} "
              f"+- {np.nanstd(finals):.2f} over {int(np.isfinite(finals).sum())} seed(s); "
              "per seed: " + ", ".join("diverged" if not np.isfinite(x) else f"{x:.1f}"
                                       for x in finals))
    else:
        print("final return: none (every seed diverged)")
    print(f"run directory: {outcome.run_dir}")
