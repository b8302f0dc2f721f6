"""Discovery throughput: seconds per ES generation and inner env-steps/s.

For cartpole-tiny (32768-step inner runs) and Breakout-MinAtar with a short
inner budget, at population sizes 8, 16, 32, on 1 and 2 CPU devices (the
2-device figure runs in a child process with
XLA_FLAGS=--xla_force_host_platform_device_count=2). `vmap_efficiency` is the
population's env-steps/s divided by one training run's env-steps/s (same
settings, same process, timed in turn): how well the population runs (1.0 = as
fast as single runs back to back). Each size is measured with `member_batch: all`
(the whole population in one vmapped batch) and `auto` (on CPU as many members per
vmapped batch as keep their rollout buffers within CPU_BATCH_BYTES, the batches in
sequence, per device; recorded as `member_batch_resolved`).

    python benchmarks/discovery.py [--out benchmarks/results/discovery.json]
        [--populations 8 16 32] [--devices 1 2] [--repeats 2] [--quick]

`--quick` (a test of the script): cartpole-tiny, population 8, 1 device, 1 repeat.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASES = {
    "cartpole-tiny": {"preset": "cartpole-tiny", "overrides": {}},
    "breakout-short": {"preset": "minatar-breakout", "overrides": {
        "inner": {"total_timesteps": 16384, "num_envs": 16, "num_steps": 128},
        "heldout_envs": []}},
}


def measure(case: str, populations: list[int], repeats: int) -> list[dict]:
    """Inside a child process: one row per (population size, member_batch), the two
    member_batch settings ("all": one vmapped batch; "auto": batches of as many members
    as fit CPU_BATCH_BYTES, in sequence) and a plain single run timed in turn, so their
    ratios share the load."""
    import dataclasses

    import jax

    from driftlab.discover_command import build_config
    from driftlab.discovery.loop import Discovery
    from driftlab.presets import deep_merge

    spec = CASES[case]
    rows = []
    for population in populations:
        config = build_config(spec["preset"], None, deep_merge(
            spec["overrides"], {"population": population, "generations": 1 + repeats}))
        runs = {}
        for batch in ("all", "auto"):
            disc = Discovery(dataclasses.replace(config, member_batch=batch))
            state = disc.init()
            tick = time.perf_counter()
            state, info = disc.step(state)
            jax.block_until_ready(info["fitness"])
            runs[batch] = {"disc": disc, "state": state, "times": [],
                           "first": time.perf_counter() - tick}
        trainer = runs["all"]["disc"].trainers[config.envs[0]]
        init_params = runs["all"]["disc"].init_params
        steps_per_run = trainer.config.num_updates * trainer.config.batch_size
        train = jax.jit(trainer.train)  # one plain training run, compiled first
        jax.block_until_ready(train(jax.random.key(0), init_params))
        single_times = []
        for _ in range(repeats):
            tick = time.perf_counter()
            jax.block_until_ready(train(jax.random.key(1), init_params))
            single_times.append(time.perf_counter() - tick)
            for run in runs.values():
                tick = time.perf_counter()
                run["state"], info = run["disc"].step(run["state"])
                jax.block_until_ready(info["fitness"])
                run["times"].append(time.perf_counter() - tick)
        single_sps = steps_per_run / min(single_times)
        for batch, run in runs.items():
            seconds = min(run["times"])
            sps = population * config.rollouts_per_member * steps_per_run / seconds
            rows.append({"case": case, "env": config.envs[0], "devices": jax.device_count(),
                         "backend": jax.default_backend(),
                         "population": population, "member_batch": batch,
                         "member_batch_resolved": run["disc"].member_batch,
                         "inner_steps_per_run": steps_per_run,
                         "seconds_per_generation": seconds,
                         "seconds_per_generation_all": run["times"],
                         "first_generation_with_compile_s": run["first"],
                         "env_steps_per_second": sps, "single_run_steps_per_second": single_sps,
                         "vmap_efficiency": sps / single_sps})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "discovery.json"))
    parser.add_argument("--populations", nargs="*", type=int, default=[8, 16, 32])
    parser.add_argument("--devices", nargs="*", type=int, default=[1, 2])
    parser.add_argument("--cases", nargs="*", default=list(CASES))
    parser.add_argument("--repeats", type=int, default=2, help="timed generations per size")
    parser.add_argument("--quick", action="store_true",
                        help="cartpole-tiny, population 8, 1 device, 1 repeat")
    parser.add_argument("--child", nargs=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.cases, args.populations, args.devices, args.repeats = ["cartpole-tiny"], [8], [1], 1
    if args.child:
        print(json.dumps(measure(args.child[0], args.populations, args.repeats)))
        return 0
    sys.path.insert(0, str(ROOT))  # the `benchmarks` folder as a package
    from benchmarks import conditions

    started = conditions.start()
    rows = []
    for case in args.cases:
        for devices in args.devices:
            env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
            cmd = [sys.executable, __file__, "--child", case, "--repeats", str(args.repeats),
                   "--populations", *map(str, args.populations)]
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
            if proc.returncode:
                print(proc.stderr[-2000:], file=sys.stderr)
                return proc.returncode
            for row in json.loads(proc.stdout.splitlines()[-1]):
                rows.append(row)
                print(f"{row['case']:15s} devices={row['devices']} pop={row['population']:3d} "
                      f"member_batch={row['member_batch']:4s}: "
                      f"{row['seconds_per_generation']:6.2f} s/gen, "
                      f"{row['env_steps_per_second']:9,.0f} steps/s, "
                      f"vmap efficiency {row['vmap_efficiency']:.2f}", flush=True)
    summary = {"benchmark": "discovery", "date": datetime.now(UTC).isoformat(), "quick": args.quick,
               "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                           "python": platform.python_version()},
               "settings": {"populations": args.populations, "devices": args.devices,
                            "cases": args.cases, "repeats": args.repeats},
               "conditions": conditions.finish(started, rows[0]["backend"] if rows else None),
               "note": "1 and 2 devices are virtual CPU devices on the same cores",
               "results": rows}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
