"""`driftlab quickstart`: the whole loop on a CPU in minutes.

discover (cartpole-tiny) -> inspect -> distill -> train PPO, DPO, the learned
LPO and the distilled formula on a held-out env -> compare; then the shipped
drifts' measured results (driftlab.findings), which it reads rather than re-runs. Each stage is a
`driftlab.api` call writing its own run directory under one quickstart folder;
`--resume DIR` skips the stages whose outputs are complete and resumes the
discovery from its checkpoint.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ALGOS = ("ppo", "dpo", "lpo", "distilled")


def add_parser(sub: argparse._SubParsersAction) -> None:
    from driftlab.cli_args import add_out
    p = sub.add_parser("quickstart", help="discover, inspect, distill, train and compare, on CPU",
                       description="A small end-to-end run: discover a drift on cartpole-tiny, "
                                   "inspect and distill it, then train PPO, DPO, the learned "
                                   "LPO and the distilled formula on a held-out env and print "
                                   "a comparison table.")
    add_out(p, "quickstart directory", "runs/quickstart-<time>")
    p.add_argument("--resume", metavar="DIR", help="finish an interrupted quickstart in DIR")
    # Defaults are applied in run(), so --resume can tell a flag given from one left out.
    p.add_argument("--env", help="held-out env for the final comparison (default gymnax/Acrobot-v1)")
    p.add_argument("--seeds", type=int, help="seeds per algorithm (default 4)")
    p.add_argument("--timesteps", type=float,
                   help="env steps per seed in the comparison (default 2e5)")
    p.add_argument("--generations", type=int, help="ES generations (default: the preset's)")
    p.add_argument("--tiny", action="store_true",
                   help="a reduced budget for tests: 2 generations, population 8, 2 seeds, "
                        "2e4 steps, small symbolic search")


SETTINGS = ("env", "seeds", "timesteps", "generations", "tiny")  # recorded in quickstart.json
DEFAULTS = {"env": "gymnax/Acrobot-v1", "seeds": 4, "timesteps": 2e5}


def _stage(title: str) -> None:
    print(f"\n=== {title} ===", flush=True)


def _done(path: Path, marker: str) -> bool:
    return (path / marker).is_file()


def run(args: argparse.Namespace) -> int:
    from driftlab.algorithms.storage import read_json, write_json
    from driftlab.errors import DriftlabError
    from driftlab.rundir import hold_lock, new_run_dir

    if args.resume:
        root = Path(args.resume)
        if not (root / "quickstart.json").is_file():
            raise DriftlabError(f"{root} is not a quickstart directory (no quickstart.json)")
        saved = read_json(root / "quickstart.json")
        try:
            for key in SETTINGS:
                given = getattr(args, key)
                if given not in (None, False) and given != saved[key]:
                    raise DriftlabError(
                        f"--{key} {given} differs from this quickstart's {saved[key]} "
                        f"({root / 'quickstart.json'}); --resume finishes the run as it was "
                        "started, so drop the flag or start a new quickstart with --out")
                setattr(args, key, saved[key])
        except KeyError as err:
            raise DriftlabError(f"{root / 'quickstart.json'} is damaged ({type(err).__name__}: "
                                f"{err}); start a new quickstart with --out") from None
        hold_lock(root)
    else:
        for key, value in DEFAULTS.items():
            if getattr(args, key) is None:
                setattr(args, key, value)
        root = new_run_dir(args.out, "quickstart", "cartpole-tiny")
        write_json(root / "quickstart.json",
                   {k: getattr(args, k) for k in SETTINGS})
    with _resume_hint(root):
        run_stages(root, env=args.env, seeds=args.seeds, timesteps=args.timesteps,
                   generations=args.generations, tiny=args.tiny)
    return 0


@contextmanager
def _resume_hint(root: Path) -> Iterator[None]:
    """A stage's own error, with how to continue once it is fixed."""
    from driftlab.errors import user_errors

    try:
        yield
    except user_errors() as err:
        if len(err.args) == 1 and isinstance(err.args[0], str):
            err.args = (f"{err.args[0]}; fix it, then continue with --resume {root}",)
        raise


def run_stages(root: Path, *, env: str, seeds: int, timesteps: float,
               generations: int | None, tiny: bool) -> None:
    """Every stage whose output under `root` is not complete, through driftlab.api."""
    from driftlab import api
    from driftlab.compare_command import print_result as print_comparison
    from driftlab.discover_command import print_result as print_discovery
    from driftlab.distill_command import print_result as print_distillation
    from driftlab.findings import findings
    from driftlab.inspect_command import print_result as print_inspection
    from driftlab.train_command import print_outcome

    if tiny:
        seeds, timesteps = 2, 2e4
    started = time.time()

    discover = root / "discover"
    _stage("1/5 discover a drift with OpenES on cartpole-tiny")
    settings: dict[str, Any] = {"population": 8, "generations": 2, "eval_seeds": 2} \
        if tiny else {}
    if generations:
        settings["generations"] = generations
    if (discover / "config.yaml").is_file():
        finished = _done(discover, "drift.json") and _resumable_done(discover)
        if not finished:
            # Only generations and eval_seeds may change on resume; the rest is in the run.
            resumed = {k: v for k, v in settings.items() if k in ("generations", "eval_seeds")}
            print_discovery(api.discover(resume=discover, settings=resumed))
        else:
            print(f"already done: {discover}")
    else:
        print_discovery(api.discover("cartpole-tiny", out=discover, settings=settings))

    inspect = root / "inspect"
    _stage("2/5 inspect: drift surfaces and the Mirror-Learning conditions")
    if not _done(inspect, "conditions.json"):
        _clear(inspect)
        print_inspection(api.inspect(str(discover), compare=["ppo", "dpo"], out=inspect))
    else:
        print(f"already done: {inspect}")

    distill = root / "distill"
    _stage("3/5 distill the learned drift into a closed-form formula")
    if not _done(distill, "drift.json"):
        _clear(distill)
        search = {"population": 300, "generations": 5, "points": 31} if tiny \
            else {"population": 500, "generations": 10}
        print_distillation(api.distill(str(discover), out=distill, **search))
    else:
        print(f"already done: {distill}")

    _stage("4/5 train PPO, DPO, the learned drift and its formula on held-out " + env)
    runs = []
    for algo in ALGOS:
        out = root / f"train-{algo}"
        runs.append(out)
        if _done(out, "summary.json"):
            print(f"already done: {out}")
            continue
        _clear(out)
        drift = {"lpo": discover, "distilled": distill}.get(algo)
        print_outcome(api.train(algo, env, drift=None if drift is None else str(drift), out=out,
                                seeds=seeds, timesteps=int(timesteps)))

    _stage("5/5 compare")
    found = findings()
    if found:
        print("What driftlab has found: the shipped drifts, each measured by `driftlab "
              "evaluate` (16 seeds per env, every env at its own preset; normalised: 1 = PPO, "
              "0 = the random policy; drifts/<name>/ holds each report):\n" + found)
        print(f"\nThis quickstart's runs on {env}:")
    compare = root / "compare"
    _clear(compare)
    print_comparison(api.compare(runs, out=compare))
    minutes = (time.time() - started) / 60
    print(f"\nThis quickstart's own drift (`lpo ({discover.name})`) is a few generations of a "
          "tiny ES on CartPole: it shows the loop, it is not a result, and on a held-out env "
          "it can do much worse than PPO. Transfer takes a discovery over several envs with "
          "randomised settings and a validation selection (docs/shipped-drifts.md).")
    print(f"\nquickstart finished in {minutes:.1f} min. Artefacts under {root}:")
    for name, path in [("learned drift", discover / "drift.json"),
                       ("discovery metrics", discover / "metrics.jsonl"),
                       ("drift surfaces", inspect), ("condition report", inspect / "conditions.json"),
                       ("distilled formula", distill / "drift.json"),
                       ("training runs", root / "train-*"), ("comparison", compare)]:
        print(f"  {name:18s} {path}")


def _resumable_done(discover: Path) -> bool:
    """A discovery whose metrics reach its configured number of generations."""
    from driftlab.algorithms.storage import read_jsonl, read_yaml

    target = read_yaml(discover / "config.yaml").get("discovery", {}).get("generations")
    records = read_jsonl(discover / "metrics.jsonl") if (discover / "metrics.jsonl").is_file() else []
    return bool(records) and records[-1].get("generation") == target


def _clear(path: Path) -> None:
    """Remove a stage's partial output so the stage can be redone."""
    import shutil

    if path.exists():
        shutil.rmtree(path)
