"""`driftlab inspect`: surfaces, plots and the Mirror-Learning condition report of a drift."""

from __future__ import annotations

import argparse
import re


def add_parser(sub: argparse._SubParsersAction) -> None:
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
    p.add_argument("--out", help="output directory (default runs/inspect-...)")
    p.add_argument("--r-min", type=float, default=0.25, help="smallest ratio (default 0.25)")
    p.add_argument("--r-max", type=float, default=2.0, help="largest ratio (default 2)")
    p.add_argument("--a-min", type=float, default=-5.0, help="smallest advantage (default -5)")
    p.add_argument("--a-max", type=float, default=5.0, help="largest advantage (default 5)")
    p.add_argument("--points", type=int, default=201, help="grid points per axis (default 201)")
    p.add_argument("--log-r", action="store_true", help="log-spaced ratio axis")
    p.add_argument("--progress", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75, 1.0],
                   help="progress values for temporal drifts (default 0 .25 .5 .75 1)")


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "drift"


def run(args: argparse.Namespace) -> int:
    from driftlab.algorithms.storage import write_json, write_yaml
    from driftlab.analysis import plots
    from driftlab.analysis.conditions import check_conditions
    from driftlab.analysis.surfaces import AnalysisError, evaluate, load_source, make_grid, save_surface
    from driftlab.errors import DriftlabError
    from driftlab.rundir import check_output_dir, new_run_dir

    check_output_dir(args.out)  # before any drift is loaded or evaluated
    bad = [f"--progress {p}" for p in args.progress if not 0.0 <= p <= 1.0]
    if bad:
        raise DriftlabError(f"{bad[0]} is outside [0, 1]; progress is the fraction of training "
                            "done (e.g. --progress 0 0.5 1)")
    try:
        source = load_source(args.drift)
        others = [load_source(name) for name in args.compare if name != "none"]
        grid = make_grid(args.r_min, args.r_max, args.points, args.a_min, args.a_max,
                         args.points, log_spaced=args.log_r)
        report = check_conditions(source)
        out = new_run_dir(args.out, "inspect", _safe(source.label))
        surface = evaluate(source, grid)
        surfaces = [surface] + [evaluate(o, grid) for o in others]
        written = [plots.plot_heatmaps(surface, out / "heatmaps.png"),
                   plots.plot_slices(surfaces, out / "slices.png")]
        if others:
            written.append(plots.plot_panel(surfaces, out / "panel.png"))
        if source.temporal:
            temporal = evaluate(source, make_grid(args.r_min, args.r_max, args.points,
                                                  args.a_min, args.a_max, args.points,
                                                  tuple(args.progress), args.log_r))
            written.append(plots.plot_progress(temporal, out / "progress.png"))
        save_surface(surface, out / "surface.npz")
    except AnalysisError as err:
        raise DriftlabError(str(err)) from None
    write_yaml(out / "config.yaml", {"command": "inspect", "drift": str(args.drift),
                                     "compare": list(args.compare), "spec": source.drift.spec,
                                     "grid": {"r": [args.r_min, args.r_max],
                                              "A": [args.a_min, args.a_max],
                                              "points": args.points, "log_r": args.log_r}})
    write_json(out / "conditions.json", report.to_dict())
    print(report.text())
    print("plots: " + ", ".join(str(p) for p in written))
    print(f"run directory: {out}")
    return 0
