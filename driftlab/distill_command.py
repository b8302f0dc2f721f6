"""`driftlab distill`: fit closed-form drifts (families + symbolic search) to a drift."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
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
    p.add_argument("--out", help="output directory (default runs/distill-...)")
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


def check_arguments(args: argparse.Namespace) -> None:
    """The search settings, before any drift is loaded or fitted."""
    import math

    from driftlab.errors import DriftlabError

    for flag, value, low in (("--top", args.top, 1), ("--points", args.points, 2),
                             ("--population", args.population, 1),
                             ("--generations", args.generations, 1)):
        if value < low:
            grid = "empty grid: " if flag == "--points" else ""
            raise DriftlabError(f"{grid}{flag} must be >= {low}, got {value}")
    for flag, value in (("--parsimony", args.parsimony), ("--grad-weight", args.grad_weight)):
        if not (math.isfinite(value) and value >= 0):
            raise DriftlabError(f"{flag} must be a finite number >= 0, got {value}")
    if not (math.isfinite(args.r_min) and math.isfinite(args.r_max)
            and 0 < args.r_min < args.r_max):
        raise DriftlabError(f"empty grid: need 0 < --r-min < --r-max (finite), got {args.r_min} and "
                            f"{args.r_max}")
    if not (math.isfinite(args.a_min) and math.isfinite(args.a_max) and args.a_min < args.a_max):
        raise DriftlabError(f"empty grid: need --a-min < --a-max (finite), got {args.a_min} and {args.a_max}")
    if args.no_symbolic and args.no_families:
        raise DriftlabError("--no-symbolic and --no-families leave nothing to fit; drop one")


def run(args: argparse.Namespace) -> int:
    from driftlab.algorithms.storage import write_yaml
    from driftlab.analysis import plots
    from driftlab.analysis.distill import distill, write_distillation
    from driftlab.analysis.surfaces import AnalysisError, evaluate, load_source, make_grid
    from driftlab.errors import DriftlabError
    from driftlab.inspect_command import _safe
    from driftlab.rundir import check_output_dir, new_run_dir

    check_output_dir(args.out)  # before the (possibly long) search
    check_arguments(args)
    try:
        source = load_source(args.drift)
        result = distill(source, symbolic=not args.no_symbolic, families=not args.no_families,
                         population=args.population, generations=args.generations,
                         parsimony=args.parsimony, seed=args.seed, points=args.points,
                         r_range=(args.r_min, args.r_max), a_range=(args.a_min, args.a_max),
                         grad_weight=args.grad_weight)
        out = new_run_dir(args.out, "distill", _safe(source.label))
        best_file = write_distillation(result, out, args.top)
        grid = make_grid(args.r_min, args.r_max, 161, args.a_min, args.a_max, 161)
        best = result.best.drift_source(f"best: {result.best.family}")
        plots.plot_panel([evaluate(source, grid), evaluate(best, grid)],
                         out / "source_vs_best.png")
    except AnalysisError as err:
        raise DriftlabError(str(err)) from None
    write_yaml(out / "config.yaml", {"command": "distill", "drift": str(args.drift),
                                     "spec": source.drift.spec, **result.settings})
    print(result.table())
    c = result.best
    print(f"\nbest: {c.family}  D = {c.values}\nLaTeX: {c.latex()}")
    if c.conditions is not None and not c.conditions.passed:
        print("warning: no candidate satisfies all drift conditions; the best violates "
              + ", ".join(c.conditions.violated))
    print(f"({result.seconds:.1f} s) drift file: {best_file}; train with "
          f"`driftlab train --algo distilled --drift {best_file} --env ...`")
    return 0
