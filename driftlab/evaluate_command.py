"""`driftlab evaluate`: a drift against PPO and DPO on a suite of envs, one report
(the Python function: `driftlab.api.evaluate`)."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    from driftlab.cli_args import add_no_progress, add_out
    p = sub.add_parser(
        "evaluate", help="train a drift and baselines on a suite; IQM, P(improvement), profiles",
        description="Train DRIFT, PPO and the other baselines on every env of a suite (each at "
                    "its own preset and the suite's budget, all seeds of one algorithm and env "
                    "in one vmapped jit) and write one report: per-env IQM with 95%% CIs, the "
                    "PPO-normalised aggregate IQM ((R - R_random) / (R_PPO - R_random)) with a "
                    "stratified-bootstrap CI, the probability of improvement over PPO, "
                    "performance profiles and learning curves. See docs/evaluate.md.")
    p.add_argument("drift", metavar="DRIFT",
                   help="ppo, dpo, a shipped drift name (`driftlab drifts`), a drift .json or a "
                        "run directory with drift.json")
    p.add_argument("--suite", help="a shipped suite (configs/suites/): classic, minatar")
    p.add_argument("--envs", nargs="+", metavar="ID",
                   help="env ids instead of a suite, each at its preset's budget")
    p.add_argument("--seeds", type=int, default=16, help="seeds per algorithm and env (16)")
    p.add_argument("--baselines", default="ppo,dpo",
                   help="comma-separated: ppo, dpo, shipped drift names or drift paths "
                        "(default ppo,dpo; ppo is always trained: it normalises the scores)")
    add_out(p, "report folder", "runs/evaluate-...")
    p.add_argument("--resume", action="store_true",
                   help="continue the evaluation in --out: complete runs are kept")
    p.add_argument("--timesteps", type=float,
                   help="override every env's budget (for smoke tests)")
    p.add_argument("--random-returns", metavar="FILE",
                   help="JSON/YAML mapping of env id to random-policy return instead of "
                        "measuring them")
    p.add_argument("--jobs", type=int, default=1,
                   help="train this many cells (algorithm x env) side by side, each in its own "
                        "process (default 1; 2 uses both cores of a 2-core CPU); same results")
    p.add_argument("--baselines-from", metavar="DIR",
                   help="copy the baseline cells (PPO, DPO, ...) of an earlier evaluate's --out "
                        "when they were trained alike (settings, seeds, drift), instead of "
                        "training them again")
    p.add_argument("--reuse-across-software", action="store_true",
                   help="pool copied (--baselines-from) or, with --resume, kept cells that "
                        "other driftlab code, library versions or numerics (CPU features, "
                        "XLA_FLAGS) trained, instead of refusing "
                        "them; the report lists each")
    p.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples (2000)")
    p.add_argument("--seed", type=int, default=0, help="base seed of training and bootstrap (0)")
    add_no_progress(p)


def run(args: argparse.Namespace) -> int:
    from driftlab import api

    baselines = tuple(b.strip() for b in args.baselines.split(",") if b.strip())
    api.evaluate(args.drift, suite=args.suite, envs=args.envs, seeds=args.seeds,
                 baselines=baselines, out=args.out, timesteps=args.timesteps,
                 bootstrap=args.bootstrap, seed=args.seed, resume=args.resume,
                 random_returns=args.random_returns, progress=not args.no_progress,
                 jobs=args.jobs, baselines_from=args.baselines_from,
                 reuse_across_software=args.reuse_across_software)
    return 0
