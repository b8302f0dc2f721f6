"""`driftlab inspect`: surfaces, plots and the Mirror-Learning condition report of a drift."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from driftlab.drift_reports import InspectResult


def add_parser(sub: argparse._SubParsersAction) -> None:
    from driftlab.cli_args import add_out
    p = sub.add_parser("inspect", help="plot a drift's surfaces and check the drift conditions",
                       description="Evaluate a drift (run directory, drift .json or built-in "
                                   "name) on an (r, A) grid: heatmaps of D and d(rA - D)/dr, "
                                   "slices at fixed A, a side-by-side panel with --compare "
                                   "drifts, small multiples over progress for temporal drifts, "
                                   "and a pass/fail report of the three drift conditions.")
    p.add_argument("drift", metavar="DRIFT_OR_RUN_DIR",
                   help="run directory, drift .json file, a built-in name (ppo, dpo, lpo) "
                        "or a shipped drift (driftlab drifts)")
    p.add_argument("--compare", nargs="*", default=["ppo", "dpo"], metavar="DRIFT",
                   help="drifts to show beside it (default: ppo dpo; pass none for alone)")
    add_out(p, "output directory", "runs/inspect-...")
    p.add_argument("--r-min", type=float, default=0.25, help="smallest ratio (default 0.25)")
    p.add_argument("--r-max", type=float, default=2.0, help="largest ratio (default 2)")
    p.add_argument("--a-min", type=float, default=-5.0, help="smallest advantage (default -5)")
    p.add_argument("--a-max", type=float, default=5.0, help="largest advantage (default 5)")
    p.add_argument("--points", type=int, default=201, help="grid points per axis (default 201)")
    p.add_argument("--log-r", action="store_true", help="log-spaced ratio axis")
    p.add_argument("--progress", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75, 1.0],
                   help="progress values for temporal drifts (default 0 .25 .5 .75 1)")


def run(args: argparse.Namespace) -> int:
    from driftlab import api

    result = api.inspect(args.drift, compare=args.compare, out=args.out,
                         r_range=(args.r_min, args.r_max), a_range=(args.a_min, args.a_max),
                         points=args.points, log_r=args.log_r, progress_values=args.progress)
    print_result(result)
    return 0


def print_result(result: InspectResult) -> None:
    """The condition report, the plots and the run directory."""
    print(result.conditions.text())
    print("plots: " + ", ".join(str(p) for p in result.plots))
    print(f"run directory: {result.run_dir}")
