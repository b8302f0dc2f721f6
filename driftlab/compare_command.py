"""`driftlab compare`: learning curves, IQM tables, normalised scores, probability of
improvement over the reference and performance profiles of train runs."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="compare train runs: curves, IQM and bootstrap CIs",
                       description="Group the seeds of train run directories by env and "
                                   "algorithm; plot learning curves (mean, 95%% bootstrap band), "
                                   "tabulate final returns (IQM, 95%% percentile bootstrap CI), "
                                   "scores normalised per env as (R - R_random) / (R_ref - "
                                   "R_random) aggregated across envs (IQM, stratified "
                                   "bootstrap CI), the probability of improvement over the "
                                   "reference and performance profiles.")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="train run directories")
    p.add_argument("--out", help="output directory (default runs/compare-...)")
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
    from driftlab.algorithms.storage import atomic_write_text, write_json, write_yaml
    from driftlab.analysis.compare import (
        final_table,
        improvement_over,
        load_runs,
        normalize_groups,
        normalized_scores,
        performance_profiles,
        plot_curves,
        plot_performance_profiles,
        random_returns_of,
        read_random_returns,
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
        if args.random_returns == "off":
            random_returns, source = None, "off"
        elif args.random_returns == "measure":
            random_returns, source = None, "measured (256 random-policy episodes per env, key 0)"
        else:
            random_returns = read_random_returns(args.random_returns)
            source = f"read from {args.random_returns}"
    except AnalysisError as err:
        raise DriftlabError(str(err)) from None
    labels = sorted({g.label for g in groups})
    if args.reference not in labels:  # a typo would silently normalise by nothing
        import difflib

        close = difflib.get_close_matches(args.reference, labels, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise DriftlabError(f"--reference {args.reference!r} is not among the runs' labels"
                            f"{hint}: {', '.join(labels)}")
    if args.random_returns == "measure":
        random_returns = random_returns_of(groups)
    rows = final_table(groups, args.bootstrap, args.seed)
    norm = normalize_groups(groups, args.reference, random_returns)
    normalized = normalized_scores(groups, args.reference, args.bootstrap, args.seed,
                                   normalization=norm)
    improvement = improvement_over(norm, args.reference, args.bootstrap, args.seed)
    out = new_run_dir(args.out, "compare", "runs")
    plots = plot_curves(groups, out, args.seed)
    taus, profiles = performance_profiles(norm, args.bootstrap, args.seed)
    plots.append(plot_performance_profiles(
        taus, profiles, out / "performance_profile.png",
        "Performance profiles: fraction of runs above each normalised score",
        args.reference, norm.scheme))
    note = f"{norm.note}; random-policy returns {source}"
    text = table_markdown(rows, normalized, improvement, note, args.reference)
    write_yaml(out / "config.yaml", {"command": "compare", "runs": list(args.runs),
                                     "reference": args.reference, "bootstrap": args.bootstrap,
                                     "seed": args.seed, "random_returns": args.random_returns})
    write_json(out / "comparison.json", {
        "final": [r.__dict__ for r in rows],
        "normalized": normalized,
        "normalization": {"scheme": norm.scheme, "note": norm.note, "random_returns": source,
                          "random_return": norm.random_returns,
                          "reference_return": norm.reference_returns},
        "probability_of_improvement": {"over": args.reference, "algorithms": improvement},
        "performance_profile": {"taus": taus, "algorithms": {
            label: {"profile": p, "ci_low": lo, "ci_high": hi}
            for label, (p, lo, hi) in profiles.items()}},
        "groups": {f"{g.env} | {g.label}": g.run_dirs for g in groups}})
    atomic_write_text(out / "comparison.md", text)
    print(text)
    print("plots: " + ", ".join(str(p) for p in plots))
    print(f"run directory: {out}")
    return 0
