"""`driftlab evaluate --jobs 2` against `--jobs 1` on the same request.

DPO against PPO on gymnax/CartPole-v1 and gymnax/Acrobot-v1 (each env's preset),
16 seeds per cell, 4 cells: one `driftlab evaluate` process with `--jobs 1` (cells
one after another in that process) and one with `--jobs 2` (cells in two spawned
processes), as whole processes (what a user waits for), timed in turn in this run
with a compilation cache filled by an untimed `--jobs 1` run first. The figure is
the ratio jobs-1 / jobs-2 of wall-clock seconds (above 1: two jobs are quicker; 2
is the most two cores can give). Each cell's per-seed final returns are compared
between the two as a check.

    python benchmarks/evaluate_jobs.py [--out benchmarks/results/evaluate_jobs.json] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = str(ROOT / "benchmarks" / "results" / "evaluate_jobs.json")
ENVS = ["gymnax/CartPole-v1", "gymnax/Acrobot-v1"]
SEEDS = 16


def command(out: Path, jobs: int, timesteps: int) -> list[str]:
    return [sys.executable, "-m", "driftlab.cli", "evaluate", "dpo", "--envs", *ENVS,
            "--seeds", str(SEEDS), "--baselines", "ppo", "--timesteps", str(timesteps),
            "--bootstrap", "200", "--jobs", str(jobs), "--no-progress", "--out", str(out)]


def timed(cmd: list[str], cache: Path) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION_CACHE")}
    env["DRIFTLAB_JAX_CACHE"] = str(cache)
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start


def finals(out: Path) -> dict[str, list[float]]:
    return {f"{cell.parent.name}/{cell.name}":
            json.loads((cell / "summary.json").read_text())["final_return_per_seed"]
            for cell in sorted((out / "runs").glob("*/*"))}


def measure(timesteps: int) -> dict:
    work = Path(tempfile.mkdtemp(prefix="driftlab-evaluate-jobs-"))
    try:
        cache = work / "cache"
        timed(command(work / "fill", 1, timesteps), cache)  # fills the cache; not timed
        seconds = {}
        for jobs in (1, 2):
            seconds[str(jobs)] = timed(command(work / f"jobs{jobs}", jobs, timesteps), cache)
            print(f"--jobs {jobs}: {seconds[str(jobs)]:.1f} s", flush=True)
        one, two = finals(work / "jobs1"), finals(work / "jobs2")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    shown = command(Path("OUT"), 2, timesteps)
    return {
        "envs": ENVS, "algorithms": ["dpo", "ppo"], "cells": len(one), "seeds": SEEDS,
        "timesteps_per_seed": timesteps, "command": " ".join(shown[1:]),
        "wall_seconds": seconds,
        "jobs1_over_jobs2_wall": seconds["1"] / seconds["2"],
        "cells_with_identical_final_returns": sum(one[k] == two.get(k) for k in one),
        "note": "jobs1_over_jobs2_wall = wall-clock of one `driftlab evaluate --jobs 1` "
                "process / that of `--jobs 2` on the same 4 cells (2 envs x DPO, PPO; 16 "
                "seeds each); above 1 two jobs are quicker. Warm compilation cache (filled "
                "by an untimed --jobs 1 run). One round, timed in turn on a machine that may "
                "be shared.",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=DEFAULT_OUT)
    parser.add_argument("--quick", action="store_true", help="a quarter of the budget")
    parser.add_argument("--timesteps", type=int, default=100_000,
                        help="environment steps per seed (default 1e5, the presets' budget)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))  # the `benchmarks` folder as a package
    from benchmarks import conditions

    started = conditions.start()
    result = measure(args.timesteps // 4 if args.quick else args.timesteps)
    out = conditions.save(result, args.out, "evaluate_jobs", started, quick=args.quick)
    print(json.dumps({"jobs1_over_jobs2_wall": result["jobs1_over_jobs2_wall"]}), f"\nwrote {out}")


if __name__ == "__main__":
    main()
