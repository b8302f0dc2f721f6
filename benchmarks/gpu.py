"""Accelerator figures in one command, under 8 minutes on one modern GPU.

1. The trainer against the single-file reference PPO (`reference_ppo.py`), same
   settings (Breakout-MinAtar, 64 envs x 128 steps, 4 epochs x 4 minibatches,
   MLP 64x64), timed in turn in one process, for 1 seed and 64 seeds vmapped.
2. One `minatar-breakout` discovery generation at population 64. The full
   inner runs (1e7 steps each) are measured when a shorter probe generation
   says they fit the remaining time budget; otherwise the largest inner budget
   that fits is measured and the 1e7-step figure is extrapolated linearly in
   the inner steps, labelled `extrapolated`.

    python benchmarks/gpu.py [--out FILE] [--budget-seconds 420] [--quick]

`--quick` shrinks every budget so the script runs on a CPU in about a minute
(a test of the script, not a measurement). benchmarks/gpu.sh installs the
CUDA build of JAX and runs this.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

FULL_INNER_STEPS = 10_000_000


def trainer_vs_reference(seeds: int, timesteps: int, rounds: int) -> dict:
    import jax

    sys.path.insert(0, str(ROOT))  # the `benchmarks` folder as a package, run as a script or not
    from benchmarks.throughput import CASES, measure_against_reference, trainer_fn
    from driftlab.training import build, resolve_settings

    env_id = "gymnax/Breakout-MinAtar"
    settings = resolve_settings(env_id, overrides=CASES[env_id]["settings"], timesteps=timesteps)
    env, config, drift, params = build(env_id, "ppo", settings)
    keys = jax.random.split(jax.random.key(0), seeds)
    row = measure_against_reference(env_id, config, trainer_fn(env, config, drift, params), keys,
                                    rounds=rounds)
    return {"env": env_id, "seeds": seeds, "timesteps_per_seed": timesteps, **row}


def discovery_generation(inner_steps: int, population: int) -> dict:
    """Compile time and the time of one (second) generation of minatar-breakout."""
    import jax

    from driftlab.discover_command import build_config
    from driftlab.discovery.loop import Discovery

    config = build_config("minatar-breakout", None, {
        "population": population, "heldout_envs": [],
        "inner": {"total_timesteps": inner_steps}})
    discovery = Discovery(config, {})
    state = discovery.init()
    start = time.perf_counter()
    compiled = discovery.step.lower(state).compile()
    compile_s = time.perf_counter() - start
    state, info = compiled(state)
    jax.block_until_ready(info["fitness"])
    start = time.perf_counter()
    state, info = compiled(state)
    jax.block_until_ready(info["fitness"])
    seconds = time.perf_counter() - start
    steps = population * config.train[config.envs[0]]["total_timesteps"]
    return {"population": population, "inner_steps": inner_steps, "seconds": seconds,
            "compile_seconds": compile_s, "env_steps_per_second": steps / seconds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "gpu.json"))
    parser.add_argument("--budget-seconds", type=float, default=420.0,
                        help="time the whole script may take (default 420 s)")
    parser.add_argument("--quick", action="store_true", help="tiny budgets: a test on CPU")
    args = parser.parse_args()
    import jax

    sys.path.insert(0, str(ROOT))  # the `benchmarks` folder as a package
    from benchmarks import conditions

    recorded = conditions.start()
    started = time.perf_counter()
    quick = args.quick
    result: dict = {"date": datetime.now(UTC).isoformat(timespec="seconds"),
                    "backend": jax.default_backend(), "devices": [str(d) for d in jax.devices()],
                    "python": platform.python_version(), "jax": jax.__version__, "quick": quick}
    pair_steps = 65_536 if quick else 2_000_000
    result["trainer_vs_reference"] = [
        trainer_vs_reference(seeds, pair_steps, 2 if quick else 3)
        for seeds in ((1, 4) if quick else (1, 64))]
    print(json.dumps(result["trainer_vs_reference"], indent=1), flush=True)

    population = 4 if quick else 64
    probe_steps = 16_384 if quick else 1_000_000
    full_steps = 65_536 if quick else FULL_INNER_STEPS
    probe = discovery_generation(probe_steps, population)
    elapsed = time.perf_counter() - started
    per_step = probe["seconds"] / probe_steps
    left = args.budget_seconds - elapsed - 2 * probe["compile_seconds"]
    # A generation is run twice (the first is untimed): fit two of them in what is left.
    fit_steps = int(min(full_steps, left / (2 * per_step))) if per_step > 0 else full_steps
    rows = [probe]
    if fit_steps >= 2 * probe_steps:
        rows.append(discovery_generation(fit_steps, population))
    largest = rows[-1]
    full = {"inner_steps": full_steps, "population": population}
    if largest["inner_steps"] >= full_steps:
        full.update(seconds=largest["seconds"], label="measured")
    else:
        full.update(seconds=largest["seconds"] * full_steps / largest["inner_steps"],
                    label=f"extrapolated from {largest['inner_steps']:,}-step inner runs")
    result["discovery_generation"] = {"measured": rows, "full_inner_runs": full,
                                      "hours_for_800_generations": 800 * full["seconds"] / 3600}
    result["seconds_total"] = time.perf_counter() - started
    result["conditions"] = conditions.finish(recorded, jax.default_backend())
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["discovery_generation"], indent=1))
    print(f"wrote {args.out} ({result['seconds_total']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
