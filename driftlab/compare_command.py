"""`driftlab compare`: learning curves, IQM tables, normalised scores, probability of
improvement over the reference and performance profiles of train runs."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from driftlab.comparison import CompareResult


def add_parser(sub: argparse._SubParsersAction) -> None:
    from driftlab.cli_args import add_out
    p = sub.add_parser("compare", help="compare train runs: curves, IQM and bootstrap CIs",
                       description="Group the seeds of train run directories by env and "
                                   "algorithm; plot learning curves (mean, 95%% bootstrap band), "
                                   "tabulate final returns (IQM, 95%% percentile bootstrap CI), "
                                   "scores normalised per env as (R - R_random) / (R_ref - "
                                   "R_random) aggregated across envs (IQM, stratified "
                                   "bootstrap CI), the probability of improvement over the "
                                   "reference and performance profiles.")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="train run directories")
    add_out(p, "output directory", "runs/compare-...")
    p.add_argument("--reference", default="ppo",
                   help="algorithm whose mean final return is 1 on each env's normalised "
                        "scale and that the probability of improvement is taken over "
                        "(default ppo)")
    p.add_argument("--random-returns", default="measure", metavar="measure|off|FILE",
                   help="the random-policy return (0 on the normalised scale) per env: "
                        "measure it (default; 256 episodes per env, a few seconds), read it "
                        "from a JSON/YAML mapping of env id to return (evaluate writes "
                        "random_returns.json), or off (scores 1 + (R - R_ref) / |R_ref|)")
    p.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples (2000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap random seed (default 0)")


def run(args: argparse.Namespace) -> int:
    from driftlab import api

    result = api.compare(args.runs, out=args.out, reference=args.reference,
                         random_returns=args.random_returns, bootstrap=args.bootstrap,
                         seed=args.seed)
    print_result(result)
    return 0


def print_result(result: CompareResult) -> None:
    """The comparison tables, the plots and the run directory."""
    print(result.text)
    print("plots: " + ", ".join(str(p) for p in result.plots))
    print(f"run directory: {result.run_dir}")
