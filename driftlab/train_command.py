"""`driftlab train`: train agents with a built-in, learned or distilled drift."""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

import numpy as np


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train agents with PPO, DPO, a learned LPO or a formula",
                       description="Train --seeds agents in one jit and write a run directory "
                                   "(config.yaml, metrics.jsonl, params.msgpack, "
                                   "learning_curve.png, summary.json).")
    p.add_argument("--algo", required=True,
                   help="ppo, dpo, none, lpo (with --drift for a learned one), distilled")
    p.add_argument("--env", required=True, help="environment id, e.g. gymnax/CartPole-v1")
    p.add_argument("--seeds", type=int, default=1, help="number of seeds, vmapped (default 1)")
    p.add_argument("--seed", type=int, default=0, help="base random seed (default 0)")
    p.add_argument("--timesteps", type=float, help="total environment steps per seed")
    p.add_argument("--config", help="YAML file of settings merged over the env's preset")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one setting, e.g. --set learning_rate=3e-4 --set drift.eps=0.3")
    p.add_argument("--drift", help="run directory, drift .json or shipped drift name "
                                    "(see `driftlab drifts`) to load (lpo, distilled)")
    p.add_argument("--out", help="run directory to create (default runs/train-...)")
    p.add_argument("--chunks", type=int, default=20,
                   help="jitted pieces the run is split into for progress/logging (default 20)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--tensorboard", action="store_true",
                   help="also log every update to RUN/tensorboard (pip install "
                        "'driftlab[tensorboard]')")
    p.add_argument("--wandb", action="store_true",
                   help="also log every update to Weights & Biases (pip install 'driftlab[wandb]')")
    p.add_argument("--wandb-project", default="driftlab", help="W&B project (default driftlab)")


def check_arguments(args: argparse.Namespace) -> None:
    """The command-line numbers and the output path, before anything is read or built."""
    from driftlab.errors import DriftlabError
    from driftlab.rundir import check_output_dir

    if args.timesteps is not None and not (math.isfinite(args.timesteps) and args.timesteps >= 1):
        raise DriftlabError(f"--timesteps must be a positive, finite number of environment "
                            f"steps such as 5e5, got {args.timesteps}")
    if args.seeds < 1:
        raise DriftlabError(f"--seeds must be >= 1, got {args.seeds}")
    if args.chunks < 1:
        raise DriftlabError(f"--chunks must be >= 1, got {args.chunks}")
    check_output_dir(args.out)


def check_settings(algo: str, settings: dict[str, Any], drift_path: str | None) -> None:
    """Every setting through its typed step (TrainConfig, the drift family's options)
    before the run directory exists; `drift` is the only key besides TrainConfig's."""
    from driftlab.algorithms import TrainConfig, make_drift
    from driftlab.errors import DriftlabError

    settings = dict(settings)
    drift_options = settings.pop("drift", None)
    if drift_options is not None and not isinstance(drift_options, dict):
        raise DriftlabError(f"drift must be a mapping of the drift's constants such as "
                            f"{{eps: 0.2}} (dict), got {drift_options!r}; use --set drift.eps=0.2")
    TrainConfig.from_dict(settings)
    if drift_path:
        if drift_options:
            raise DriftlabError(f"drift.{next(iter(drift_options))} sets a constant of a "
                                f"built-in drift, but --drift {drift_path} brings its own "
                                "parameters; drop the drift.* settings")
    elif algo != "distilled":
        make_drift(algo, **(drift_options or {}))
        if algo == "lpo":  # an untrained LPO net is no drift anyone meant to train with
            raise DriftlabError("--algo lpo needs --drift: a discovery run directory, a drift "
                                "JSON or a shipped drift name (`driftlab drifts` lists them)")


def run(args: argparse.Namespace) -> int:
    from driftlab.presets import parse_overrides
    from driftlab.training import resolve_settings, train_run

    check_arguments(args)
    # A preset's per-algorithm drift constants (drift_by_algo) apply to built-in drifts only.
    settings = resolve_settings(args.env, args.config, parse_overrides(args.overrides),
                                args.timesteps, algo=None if args.drift else args.algo)
    check_settings(args.algo, settings, args.drift)
    outcome = train_run(args.env, args.algo, settings, seeds=args.seeds, seed=args.seed,
                        drift_path=args.drift, out=args.out, chunks=args.chunks,
                        progress=not args.no_progress, tensorboard=args.tensorboard,
                        wandb=args.wandb, wandb_project=args.wandb_project)
    finals = outcome.final_returns
    print(f"\n{args.algo} on {args.env}: {outcome.timesteps[-1]:,} steps x {args.seeds} seed(s) "
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
    return 0
