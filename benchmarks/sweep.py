"""A hyperparameter sweep in one program against one `driftlab train` per setting.

8 settings (PPO on gymnax/CartPole-v1, learning_rate 1e-4, 3e-4, 1e-3, 3e-3 x
clip eps 0.1, 0.3) x 4 seeds at the CartPole preset (4 envs x 128 steps, 4 epochs
x 4 minibatches, MLP 64x64) and a small budget: ONE process

    driftlab train --algo ppo --seeds 4 --sweep learning_rate=... --sweep drift.eps=...

against 8 processes `driftlab train --algo ppo --seeds 4 --set learning_rate=...
--set drift.eps=...`, one after another, as whole processes (what a user waits
for), timed in turn in this run. `cold`: a fresh JAX compilation cache (the sweep
has its own; the 8 separate runs share one, as a user's would); `warm`: caches
filled by an untimed run of the same commands first. The figure is the ratio
separate / sweep of wall-clock seconds (above 1: the sweep is quicker). Each
setting's per-seed final returns are compared between the two ways as a check.

    python benchmarks/sweep.py [--out benchmarks/results/sweep.json] [--quick]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = str(ROOT / "benchmarks" / "results" / "sweep.json")
ENV = "gymnax/CartPole-v1"
GRID = {"learning_rate": ["1e-4", "3e-4", "1e-3", "3e-3"], "drift.eps": ["0.1", "0.3"]}
SEEDS = 4


def commands(out: Path, timesteps: int) -> dict[str, list[list[str]]]:
    """{"sweep": [one command], "separate": [one command per setting]}."""
    base = [sys.executable, "-m", "driftlab.cli", "train", "--algo", "ppo", "--env", ENV,
            "--seeds", str(SEEDS), "--timesteps", str(timesteps), "--no-progress"]
    sweep = base + [x for key, values in GRID.items()
                    for x in ("--sweep", f"{key}={','.join(values)}")]
    separate = [base + [x for key, value in zip(GRID, combo, strict=True)
                        for x in ("--set", f"{key}={value}")] + ["--out", str(out / f"s{i}")]
                for i, combo in enumerate(itertools.product(*GRID.values()))]
    return {"sweep": [sweep + ["--out", str(out / "sweep")]], "separate": separate}


def run_all(cmds: list[list[str]], cache: Path) -> float:
    """Wall-clock seconds of `cmds` run one after another with `cache` as JAX's
    compilation cache."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION_CACHE")}
    env["DRIFTLAB_JAX_CACHE"] = str(cache)
    start = time.perf_counter()
    for cmd in cmds:
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start


def finals(out: Path) -> dict[str, list[list[float]]]:
    """Per-seed final returns of each setting, from the sweep and the separate runs."""
    import yaml

    config = yaml.safe_load((out / "sweep" / "config.yaml").read_text())
    sweep = [json.loads((out / "sweep" / c["dir"] / "summary.json").read_text())
             ["final_return_per_seed"] for c in config["sweep"]["combinations"]]
    separate = [json.loads((out / f"s{i}" / "summary.json").read_text())
                ["final_return_per_seed"] for i in range(len(sweep))]
    return {"labels": [c["label"] for c in config["sweep"]["combinations"]],
            "sweep": sweep, "separate": separate}


def measure(timesteps: int) -> dict:
    work = Path(tempfile.mkdtemp(prefix="driftlab-sweep-"))
    seconds: dict[str, dict[str, float]] = {}
    try:
        warm = {name: work / f"warm-{name}" for name in ("sweep", "separate")}
        for name, cmds in commands(work / "fill", timesteps).items():
            run_all(cmds, warm[name])  # fills the warm caches; not timed
        for temperature in ("cold", "warm"):
            seconds[temperature] = {}
            out = work / temperature
            for name, cmds in commands(out, timesteps).items():
                cache = work / f"cold-{name}" if temperature == "cold" else warm[name]
                seconds[temperature][name] = run_all(cmds, cache)
                print(f"{temperature:4s} {name:8s} {seconds[temperature][name]:7.1f} s",
                      flush=True)
        returns = finals(work / "cold")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    same = [a == b for a, b in zip(returns["sweep"], returns["separate"], strict=True)]
    shown = commands(Path("OUT"), timesteps)
    return {
        "env": ENV, "algo": "ppo", "grid": GRID, "settings": len(returns["labels"]),
        "seeds": SEEDS, "timesteps_per_seed": timesteps,
        "commands": {"sweep": " ".join(shown["sweep"][0][1:]),
                     "separate_first": " ".join(shown["separate"][0][1:])},
        "wall_seconds": seconds,
        "separate_over_sweep_wall": {t: s["separate"] / s["sweep"] for t, s in seconds.items()},
        "final_returns": returns,
        "settings_with_identical_final_returns": sum(same),
        "note": "separate_over_sweep_wall = wall-clock of 8 `driftlab train` processes (one "
                "per setting, 4 seeds each, run in turn) / that of one `driftlab train "
                "--sweep` process training the same 8 x 4 agents; above 1 the sweep is "
                "quicker. cold: fresh compilation caches; warm: caches filled beforehand. "
                "One round, timed in turn on a machine that may be shared.",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=DEFAULT_OUT)
    parser.add_argument("--quick", action="store_true", help="a quarter of the budget")
    parser.add_argument("--timesteps", type=int, default=32_768,
                        help="environment steps per seed (default 32768: 64 updates)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))  # the `benchmarks` folder as a package
    from benchmarks import conditions

    started = conditions.start()
    result = measure(args.timesteps // 4 if args.quick else args.timesteps)
    out = conditions.save(result, args.out, "sweep", started, quick=args.quick)
    print(json.dumps(result["separate_over_sweep_wall"]), f"\nwrote {out}")


if __name__ == "__main__":
    main()
