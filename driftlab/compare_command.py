"""`driftlab compare`: learning curves, IQM tables and normalised scores of train runs."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="compare train runs: curves, IQM and bootstrap CIs",
                       description="Group the seeds of train run directories by env and "
                                   "algorithm; plot learning curves (mean, 95%% bootstrap band), "
                                   "tabulate final returns (IQM, 95%% percentile bootstrap CI) "
                                   "and scores normalised per env across envs.")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="train run directories")
    p.add_argument("--out", help="output directory (default runs/compare-...)")
    p.add_argument("--reference", default="ppo",
                   help="algorithm whose mean final return normalises each env (default ppo; "
                        "envs without it use their best algorithm)")
    p.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples (2000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap random seed (default 0)")


def run(args: argparse.Namespace) -> int:
    from driftlab.algorithms.storage import atomic_write_text, write_json, write_yaml
    from driftlab.analysis.compare import (
        final_table,
        load_runs,
        normalized_scores,
        plot_curves,
        table_markdown,
    )
    from driftlab.analysis.surfaces import AnalysisError
    from driftlab.errors import DriftlabError
    from driftlab.rundir import check_output_dir, new_run_dir

    check_output_dir(args.out)  # before any run is read
    if args.bootstrap < 10:
        raise DriftlabError(f"--bootstrap must be >= 10, got {args.bootstrap}")
    try:
        groups = load_runs(args.runs)
    except AnalysisError as err:
        raise DriftlabError(str(err)) from None
    rows = final_table(groups, args.bootstrap, args.seed)
    normalized = normalized_scores(groups, args.reference, args.bootstrap, args.seed)
    out = new_run_dir(args.out, "compare", "runs")
    plots = plot_curves(groups, out, args.seed)
    text = table_markdown(rows, normalized)
    write_yaml(out / "config.yaml", {"command": "compare", "runs": list(args.runs),
                                     "reference": args.reference, "bootstrap": args.bootstrap,
                                     "seed": args.seed})
    write_json(out / "comparison.json", {"final": [r.__dict__ for r in rows],
                                         "normalized": normalized,
                                         "groups": {f"{g.env} | {g.label}": g.run_dirs
                                                    for g in groups}})
    atomic_write_text(out / "comparison.md", text)
    print(text)
    print("plots: " + ", ".join(str(p) for p in plots))
    print(f"run directory: {out}")
    return 0
