"""Training throughput against raw environment throughput, on one batch shape.

For each case: raw vectorised env steps/s with random actions, PPO training
steps/s with the preset settings, their ratio, compile time and peak memory,
for 1 seed and for 8 seeds vmapped. For the gymnax cases also the trainer
against a straightforward single-file PPO (`reference_ppo.py`, same settings),
timed in turn in one process. Each measurement runs in its own process (clean
peak-memory figure, no cache effects between cases). Ratios measured in one
run are the figures to compare across machines.

    python benchmarks/throughput.py [--out benchmarks/results/throughput.json] [--quick]
        [--scale 1.0] [--pair-rounds 5]

`--scale` multiplies every step budget (`--quick` is 0.1) and `--pair-rounds` sets
the rounds of the trainer-against-reference timing, for a loaded machine where the
full run takes too long; both are recorded in the JSON.

`--whole-process` instead times what a user waits for: the whole `driftlab train`
command against the whole reference script (`python benchmarks/reference_ppo.py`)
on the same settings (Breakout-MinAtar, 64 envs x 128 steps, 4 epochs x 4
minibatches, MLP 64x64 tanh, 1e6 steps, 1 seed), as subprocesses taken in turn,
several rounds, medians, with a cold compilation cache (a fresh directory per
run) and a warm one (filled by an untimed run first). It writes
benchmarks/results/whole_process.json; `--quick` runs CartPole on a tiny budget.

    python benchmarks/throughput.py --whole-process [--quick] [--rounds 3]

Longer than ~300 lines: three measurements (raw env, training, the single-file
reference) and the whole-process timing, each run in its own process.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GYMNAX_PPO = {"actor_hidden": [64, 64], "critic_hidden": [64, 64], "activation": "tanh",
              "update_epochs": 4, "num_minibatches": 4}
CASES = {
    "gymnax/CartPole-v1": {"settings": {"num_envs": 4, "num_steps": 128, **GYMNAX_PPO},
                           "timesteps": 500_000, "timesteps_8": 250_000},
    "gymnax/Breakout-MinAtar": {"settings": {"num_envs": 64, "num_steps": 128, **GYMNAX_PPO},
                                "timesteps": 1_000_000, "timesteps_8": 262_144},
    "brax/ant": {"settings": {"num_envs": 128, "num_steps": 80, "env_options":
                              {"backend": "spring", "episode_length": 1000}},
                 "timesteps": 204_800, "timesteps_8": 40_960},
}


def measure(env_id: str, mode: str, seeds: int, timesteps: int, rounds: int = 5) -> dict:
    """Runs inside a child process; prints one JSON line."""
    import resource

    import jax

    from driftlab import envs
    from driftlab.training import build, resolve_settings

    settings = resolve_settings(env_id, overrides=CASES[env_id]["settings"], timesteps=timesteps)
    env, config, drift, drift_params = build(env_id, "ppo", settings)
    keys = jax.random.split(jax.random.key(0), seeds)
    if mode == "raw":
        vec = envs.Vectorized(env, config.num_envs)

        def one_seed(key):
            k_reset, k_act, k_env = jax.random.split(key, 3)
            obs, state = vec.reset(k_reset)
            steps = config.num_updates * config.num_steps
            # Random actions drawn up front, so the loop times the env step alone.
            actions = jax.vmap(env.action_space.sample)(jax.random.split(k_act, steps * config.num_envs))
            actions = actions.reshape((steps, config.num_envs) + actions.shape[1:])

            def step(state, xs):
                k, action = xs
                obs, state, reward, *_ = vec.step(k, state, action)
                return state, reward.sum()

            return jax.lax.scan(step, state, (jax.random.split(k_env, steps), actions))[1].sum()

        fn = jax.jit(jax.vmap(one_seed))
        args = (keys,)
    else:
        fn = trainer_fn(env, config, drift, drift_params)
        args = (keys,)
    if mode == "pair":
        return measure_against_reference(env_id, config, fn, keys, rounds=rounds)
    start = time.perf_counter()
    compiled = fn.lower(*args).compile()
    compile_s = time.perf_counter() - start
    jax.block_until_ready(compiled(*args))  # warm-up run
    start = time.perf_counter()
    jax.block_until_ready(compiled(*args))
    run_s = time.perf_counter() - start
    steps = config.num_updates * config.batch_size * seeds
    return {"env": env_id, "mode": mode, "seeds": seeds, "num_envs": config.num_envs,
            "num_steps": config.num_steps, "steps": steps, "seconds": run_s,
            "steps_per_second": steps / run_s, "compile_seconds": compile_s,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def trainer_fn(env, config, drift, drift_params):
    """jit(vmap(train)) over seed keys, returning the per-update returns."""
    import jax

    from driftlab.algorithms import Trainer

    trainer = Trainer(env, config, drift)
    return jax.jit(jax.vmap(lambda key: trainer.train(key, drift_params).metrics["episode_return"]))


def measure_against_reference(env_id: str, config, train_fn, keys, rounds: int = 5) -> dict:
    """driftlab's trainer and the single-file reference PPO (same settings), timed in
    turn A B A B ... in one process; medians and their ratio."""
    import jax

    sys.path.insert(0, str(ROOT))  # the `benchmarks` folder as a package, run as a script or not
    from benchmarks.reference_ppo import make_train

    settings = CASES[env_id]["settings"]
    reference = make_train(env_id.removeprefix("gymnax/"), num_envs=config.num_envs,
                           num_steps=config.num_steps, total_timesteps=config.total_timesteps,
                           update_epochs=settings["update_epochs"],
                           num_minibatches=settings["num_minibatches"])
    reference_fn = jax.jit(jax.vmap(reference))
    times: dict[str, list[float]] = {"train": [], "reference": []}
    for fn in (train_fn, reference_fn):
        jax.block_until_ready(fn(keys))  # compile and warm up
    for _ in range(rounds):
        for name, fn in (("train", train_fn), ("reference", reference_fn)):
            start = time.perf_counter()
            jax.block_until_ready(fn(keys))
            times[name].append(time.perf_counter() - start)
    steps = config.num_updates * config.batch_size * len(keys)
    median = {name: sorted(t)[len(t) // 2] for name, t in times.items()}
    return {"train_steps_per_second": steps / median["train"],
            "reference_steps_per_second": steps / median["reference"],
            "train_over_reference": median["reference"] / median["train"], "rounds": rounds}


DEFAULT_OUT = str(ROOT / "benchmarks" / "results" / "throughput.json")
WHOLE_PROCESS_OUT = str(ROOT / "benchmarks" / "results" / "whole_process.json")


def run_child(env_id: str, mode: str, seeds: int, timesteps: int, rounds: int = 5) -> dict:
    cmd = [sys.executable, __file__, "--child", env_id, mode, str(seeds), str(timesteps),
           str(rounds)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    lines = [x for x in proc.stdout.splitlines() if x.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{env_id} {mode} failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1])


# The reference script's remaining settings, for driftlab's side of a whole-process run.
REFERENCE_HYPERPARAMS = {"learning_rate": 2.5e-4, "adam_b1": 0.9, "adam_b2": 0.999,
                         "gamma": 0.99, "gae_lambda": 0.95, "ent_coef": 0.01, "vf_coef": 0.5,
                         "max_grad_norm": 0.5, "anneal_lr": True}
WHOLE_PROCESS = {"env": "gymnax/Breakout-MinAtar", "timesteps": 1_000_000}
WHOLE_PROCESS_QUICK = {"env": "gymnax/CartPole-v1", "timesteps": 20_000}


def whole_process_commands(env_id: str, timesteps: int, out_dir: Path) -> dict[str, list[str]]:
    """The `driftlab train` command and the reference script, on the same settings."""
    settings = {**CASES[env_id]["settings"], **REFERENCE_HYPERPARAMS}
    train = [sys.executable, "-m", "driftlab.cli", "train", "--algo", "ppo", "--env", env_id,
             "--seeds", "1", "--timesteps", str(timesteps), "--no-progress",
             "--out", str(out_dir / "train")]
    train += [f"--set={key}={value if isinstance(value, str) else json.dumps(value, separators=(',', ':'))}"
              for key, value in settings.items()]
    reference = [sys.executable, str(ROOT / "benchmarks" / "reference_ppo.py"), env_id,
                 "--timesteps", str(timesteps), "--num-envs", str(settings["num_envs"]),
                 "--num-steps", str(settings["num_steps"]),
                 "--update-epochs", str(settings["update_epochs"]),
                 "--num-minibatches", str(settings["num_minibatches"]),
                 "--lr", str(settings["learning_rate"])]
    return {"train": train, "reference": reference}


def timed_run(cmd: list[str], cache_dir: Path) -> float:
    """Wall-clock seconds of one whole process using `cache_dir` as JAX's
    compilation cache (both programs get the same cache settings)."""
    from driftlab.cli import CACHE_MIN_COMPILE_SECONDS

    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION_CACHE")}
    env.update(DRIFTLAB_JAX_CACHE=str(cache_dir), JAX_COMPILATION_CACHE_DIR=str(cache_dir),
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=CACHE_MIN_COMPILE_SECONDS)
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return seconds


def whole_process(quick: bool, rounds: int) -> dict:
    """`driftlab train` vs the reference script as whole processes, alternated;
    cold cache (fresh per run) and warm cache (filled beforehand); medians."""
    case = WHOLE_PROCESS_QUICK if quick else WHOLE_PROCESS
    work = Path(tempfile.mkdtemp(prefix="driftlab-whole-"))
    times: dict[str, dict[str, list[float]]] = {"cold": {"train": [], "reference": []},
                                                "warm": {"train": [], "reference": []}}
    try:
        warm_dirs = {name: work / f"warm-{name}" for name in ("train", "reference")}
        for name, cmd in whole_process_commands(case["env"], case["timesteps"],
                                                work / "fill").items():
            timed_run(cmd, warm_dirs[name])  # fills the warm cache; not timed
        for i in range(rounds):
            cmds = whole_process_commands(case["env"], case["timesteps"], work / f"round-{i}")
            for temperature in ("cold", "warm"):
                for name, cmd in cmds.items():
                    cache = (work / f"cold-{name}-{i}" if temperature == "cold"
                             else warm_dirs[name])
                    shutil.rmtree(work / f"round-{i}" / "train", ignore_errors=True)
                    seconds = timed_run(cmd, cache)
                    times[temperature][name].append(seconds)
                    print(f"round {i + 1}/{rounds} {temperature:4s} {name:9s} {seconds:7.2f} s",
                          flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    medians = {t: {name: sorted(v)[len(v) // 2] for name, v in by.items()}
               for t, by in times.items()}
    commands = whole_process_commands(case["env"], case["timesteps"], Path("OUT"))
    return {"env": case["env"], "timesteps": case["timesteps"], "seeds": 1, "rounds": rounds,
            "quick": quick,
            "commands": {name: " ".join("python" if c == sys.executable
                                        else c.removeprefix(f"{ROOT}/") for c in cmd)
                         for name, cmd in commands.items()},
            "wall_seconds": times, "median_wall_seconds": medians,
            "train_over_reference_wall": {t: m["train"] / m["reference"]
                                          for t, m in medians.items()},
            "note": "train_over_reference_wall = median wall-clock of the whole `driftlab "
                    "train` process / that of the reference script (below 1: driftlab is "
                    "quicker); cold: a fresh compilation cache per run, warm: a filled one"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=DEFAULT_OUT)
    parser.add_argument("--quick", action="store_true", help="a tenth of the budgets")
    parser.add_argument("--envs", nargs="*", default=list(CASES))
    parser.add_argument("--whole-process", action="store_true",
                        help="time whole `driftlab train` vs reference-script processes")
    parser.add_argument("--rounds", type=int, default=3, help="--whole-process rounds")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="fraction of the step budgets (default 1; --quick: 0.1)")
    parser.add_argument("--pair-rounds", type=int, default=5,
                        help="rounds of the trainer-vs-reference timing (default 5)")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        env_id, mode, seeds, timesteps, rounds = args.child
        print(json.dumps(measure(env_id, mode, int(seeds), int(timesteps), int(rounds))))
        return
    sys.path.insert(0, str(ROOT))  # the `benchmarks` folder as a package
    from benchmarks import conditions

    started = conditions.start()
    if args.whole_process:
        result = whole_process(args.quick, args.rounds)
        out = conditions.save(result, args.out if args.out != DEFAULT_OUT else WHOLE_PROCESS_OUT,
                              "whole_process", started)
        print(json.dumps(result["train_over_reference_wall"]), f"\nwrote {out}")
        return

    scale = 0.1 if args.quick else args.scale
    results = []
    for env_id in args.envs:
        case = CASES[env_id]
        for seeds, key in ((1, "timesteps"), (8, "timesteps_8")):
            one_batch = case["settings"]["num_envs"] * case["settings"]["num_steps"]
            budget = max(int(case[key] * scale), one_batch)
            raw = run_child(env_id, "raw", seeds, budget)
            train = run_child(env_id, "train", seeds, budget)
            if env_id.startswith("gymnax/"):  # the reference PPO is for discrete gymnax envs
                pair = run_child(env_id, "pair", seeds, budget, args.pair_rounds)
            else:
                pair = {}
            row = {"env": env_id, "seeds": seeds, "num_envs": raw["num_envs"],
                   "num_steps": raw["num_steps"], "steps_per_seed": budget,
                   "raw_env_steps_per_second": raw["steps_per_second"],
                   "train_steps_per_second": train["steps_per_second"],
                   "train_over_raw": train["steps_per_second"] / raw["steps_per_second"],
                   "train_compile_seconds": train["compile_seconds"],
                   "raw_compile_seconds": raw["compile_seconds"],
                   "train_peak_rss_mb": train["peak_rss_mb"]}
            if pair:
                row.update(paired_train_steps_per_second=pair["train_steps_per_second"],
                           reference_steps_per_second=pair["reference_steps_per_second"],
                           train_over_reference=pair["train_over_reference"],
                           reference_rounds=pair["rounds"])
            results.append(row)
            print(f"{env_id:26s} seeds={seeds}  raw {row['raw_env_steps_per_second']:>12,.0f}/s  "
                  f"train {row['train_steps_per_second']:>10,.0f}/s  "
                  f"ratio {row['train_over_raw']:.4f}  compile {row['train_compile_seconds']:.1f}s  "
                  f"peak {row['train_peak_rss_mb']:.0f} MB"
                  + (f"  vs reference PPO {row['train_over_reference']:.3f}x" if pair else ""),
                  flush=True)
    for env_id in args.envs:
        one, eight = [r for r in results if r["env"] == env_id]
        eight["vmap8_over_1_train_throughput"] = (eight["train_steps_per_second"]
                                                 / one["train_steps_per_second"])
    import jax

    summary = {"benchmark": "throughput", "date": datetime.now(UTC).isoformat(),
               "quick": args.quick, "scale": scale, "pair_rounds": args.pair_rounds,
               "machine": {"platform": platform.platform(), "processor": platform.machine(),
                           "cpus": os.cpu_count(), "jax": jax.__version__,
                           "backend": jax.default_backend()},
               "conditions": conditions.finish(started, jax.default_backend()),
               "results": results}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
