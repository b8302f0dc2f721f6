"""`driftlab distill`: fit closed-form drifts (families + symbolic search) to a drift."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from driftlab.drift_reports import DistillResult


def add_parser(sub: argparse._SubParsersAction) -> None:
    from driftlab.cli_args import add_out
    p = sub.add_parser("distill", help="turn a learned drift into a closed-form formula",
                       description="Fit the PPO-clip, DPO, polynomial and rational families "
                                   "and a symbolic regression (gplearn) to a drift sampled on "
                                   "an (r, A) grid; rank by held-out error and complexity; "
                                   "write drift.json (the best, usable as `driftlab train "
                                   "--algo distilled --drift DIR`), candidate_<k>.json, "
                                   "candidates.json and formulas.md (text + LaTeX).")
    p.add_argument("drift", metavar="DRIFT_OR_RUN_DIR",
                   help="run directory, drift .json file, a built-in name (ppo, dpo) "
                        "or a shipped drift (driftlab drifts)")
    add_out(p, "output directory", "runs/distill-...")
    p.add_argument("--top", type=int, default=3, help="candidates to export (default 3)")
    p.add_argument("--no-symbolic", action="store_true", help="fit the families only")
    p.add_argument("--no-families", action="store_true", help="symbolic search only")
    p.add_argument("--population", type=int, default=1000, help="gplearn population (1000)")
    p.add_argument("--generations", type=int, default=20, help="gplearn generations (20)")
    p.add_argument("--parsimony", type=float, default=0.002,
                   help="gplearn complexity penalty per node (default 0.002)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--points", type=int, default=61, help="grid points per axis (default 61)")
    p.add_argument("--r-min", type=float, default=0.4, help="smallest ratio (default 0.4)")
    p.add_argument("--r-max", type=float, default=1.8, help="largest ratio (default 1.8)")
    p.add_argument("--a-min", type=float, default=-4.0, help="smallest advantage (default -4)")
    p.add_argument("--a-max", type=float, default=4.0, help="largest advantage (default 4)")
    p.add_argument("--grad-weight", type=float, default=0.3,
                   help="weight of the dD/dr residuals in the fits (default 0.3; 0 = off)")


def run(args: argparse.Namespace) -> int:
    from driftlab import api

    result = api.distill(args.drift, out=args.out, top=args.top, symbolic=not args.no_symbolic,
                         families=not args.no_families, population=args.population,
                         generations=args.generations, parsimony=args.parsimony,
                         seed=args.seed, points=args.points, r_range=(args.r_min, args.r_max),
                         a_range=(args.a_min, args.a_max), grad_weight=args.grad_weight)
    print_result(result)
    return 0


def print_result(result: DistillResult) -> None:
    """The ranked candidates, the best formula (text and LaTeX) and its drift file."""
    print(result.distillation.table())
    c = result.distillation.best
    print(f"\nbest: {c.family}  D = {c.values}\nLaTeX: {c.latex()}")
    if c.conditions is not None and not c.conditions.passed:
        print("warning: no candidate satisfies all drift conditions; the best violates "
              + ", ".join(c.conditions.violated))
    print(f"({result.distillation.seconds:.1f} s) drift file: {result.drift_file}; train with "
          f"`driftlab train --algo distilled --drift {result.drift_file} --env ...`")
