"""`driftlab quickstart`: the whole loop on a CPU in minutes.

discover (cartpole-tiny) -> inspect -> distill -> train PPO, DPO, the learned
LPO and the distilled formula on a held-out env -> compare; then the shipped
drifts' measured results (driftlab.findings), which it reads rather than re-runs. Each stage is a
`driftlab.api` call writing its own run directory under one quickstart folder;
`--resume DIR` skips the stages whose outputs are complete and resumes the
discovery from its checkpoint.

Longer than ~300 lines: every flag checked before stage 1 (a bad one writes
nothing), then the five stages, each resumable.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from driftlab.background import Background

ALGOS = ("ppo", "dpo", "lpo", "distilled")
# Trained by a child process while stages 1-2 run (driftlab.background).
BACKGROUND_ALGOS = ("ppo", "dpo", "lpo")


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
    p.add_argument("--generations", type=int, help="ES generations (default 4)")
    p.add_argument("--tiny", action="store_true",
                   help="a reduced budget for tests: 2 generations, population 8, 2 seeds, "
                        "2e4 steps, small symbolic search (so not with --seeds or --timesteps)")


SETTINGS = ("env", "seeds", "timesteps", "generations", "tiny")  # recorded in quickstart.json
DEFAULTS = {"env": "gymnax/Acrobot-v1", "seeds": 4, "timesteps": 2e5}
# What --tiny sets in place of the flags of the same name (run_stages applies it, also to
# a quickstart.json written before the record held these values).
TINY = {"seeds": 2, "timesteps": 2e4}
TINY_DISCOVERY = {"population": 8, "generations": 2, "eval_seeds": 2}
# The quickstart's discovery: half the preset's population and generations, and no
# fresh-seed evaluation of the ES mean (stage 4 trains it on the held-out env anyway):
# 88 s -> 33 s of a 2-core machine (docs/benchmarks.md has the whole first run).
QUICK_DISCOVERY = {"generations": 4, "population": 8, "eval_every": 0}
# The distillation's symbolic search (its fitted families do not depend on it).
DISTILL_SEARCH = {"population": 300, "generations": 5}
TINY_DISTILL = {**DISTILL_SEARCH, "points": 31}
DISCOVERY_PRESET = "cartpole-tiny"


def _stage(title: str, started: float) -> None:
    print(f"\n=== {title} === ({time.time() - started:.0f} s in)", flush=True)


def _done(path: Path, marker: str) -> bool:
    return (path / marker).is_file()


def run(args: argparse.Namespace) -> int:
    from driftlab.algorithms.storage import read_json, write_json
    from driftlab.errors import DriftlabError
    from driftlab.rundir import check_output_dir, hold_lock, new_run_dir

    # The flags, then the settings the stages will run with, are checked before
    # anything is written or computed.
    check_flags(args)
    if args.resume is not None:
        root = Path(args.resume)
        record = root / "quickstart.json"
        if not record.is_file():
            raise DriftlabError(f"{root} is not a quickstart directory (no quickstart.json)")
        saved = read_json(record)
        try:
            for key in SETTINGS:
                given = getattr(args, key)
                if given is not None and given is not False and given != saved[key]:
                    raise DriftlabError(
                        f"--{key} {given} differs from this quickstart's {saved[key]} "
                        f"({record}); --resume finishes the run as it was "
                        "started, so drop the flag or start a new quickstart with --out")
                setattr(args, key, saved[key])
        except (KeyError, TypeError) as err:
            raise DriftlabError(f"{record} is damaged ({type(err).__name__}: "
                                f"{err}); start a new quickstart with --out") from None
        check_settings(_settings(args), record)
        check_stages(**_settings(args))
        hold_lock(root)
    else:
        for key, value in {**DEFAULTS, **(TINY if args.tiny else {})}.items():
            if getattr(args, key) is None:
                setattr(args, key, value)
        check_settings(_settings(args))
        check_output_dir(args.out)
        check_stages(**_settings(args))
        root = new_run_dir(args.out, "quickstart", DISCOVERY_PRESET)
        write_json(root / "quickstart.json", _settings(args))
    with _resume_hint(root):
        run_stages(root, **_settings(args))
    return 0


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    return {key: getattr(args, key) for key in SETTINGS}


def check_flags(args: argparse.Namespace) -> None:
    """The flags as given on the command line: a DriftlabError naming the flag and
    the fix for a value no stage could use, a flag --resume or --tiny would ignore,
    or an unknown env."""
    from driftlab.errors import DriftlabError

    if args.resume is not None:
        if not str(args.resume).strip():
            raise DriftlabError("--resume is empty; give the quickstart directory to finish, "
                                "or leave --resume out to start a new quickstart")
        if args.out is not None:
            raise DriftlabError(f"--out cannot be used with --resume: --resume finishes the "
                                f"quickstart in {args.resume}; drop --out, or drop --resume "
                                "to start a new quickstart in --out")
    check_settings({key: getattr(args, key) for key in SETTINGS if key != "tiny"})
    if args.tiny:
        for key, value in TINY.items():
            given = getattr(args, key)
            if given is not None:
                raise DriftlabError(
                    f"--{key} {given:g} cannot be used with --tiny: --tiny sets --{key} to "
                    f"{value:g}; drop --{key}, or drop --tiny for a full-size run")


def check_settings(settings: dict[str, Any], record: Path | None = None) -> None:
    """env, seeds, timesteps, generations (and tiny): each None or a value a stage can
    use; `record` names the quickstart.json they were read from (else they are flags)."""
    from driftlab.errors import DriftlabError

    def refuse(key: str, value: Any, need: str, example: str) -> None:
        if record is None:
            hint = "; `driftlab envs` lists all ids" if key == "env" else ""
            raise DriftlabError(f"--{key} must be {need} such as {example}, got {value!r}{hint}")
        raise DriftlabError(f"{record} records {key} {value!r}, not {need}; start a new "
                            "quickstart with --out")

    def whole(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 1

    # A record holds every setting (seeds and timesteps may be anything under tiny,
    # which sets them); a flag left out is None.
    optional = record is None or settings.get("tiny") is True
    if record is not None and settings.get("env") is None:
        refuse("env", None, "an environment id", "gymnax/Acrobot-v1")
    seeds, generations = settings.get("seeds"), settings.get("generations")
    if not (seeds is None and optional) and not whole(seeds):
        refuse("seeds", seeds, "a whole number >= 1", "4")
    if generations is not None and not whole(generations):
        refuse("generations", generations, "a whole number >= 1", "10")
    timesteps = settings.get("timesteps")
    if not (timesteps is None and optional) and not (
            isinstance(timesteps, (int, float)) and not isinstance(timesteps, bool)
            and math.isfinite(timesteps) and timesteps >= 1):
        refuse("timesteps", timesteps, "a positive, finite number of environment steps", "2e5")
    if "tiny" in settings and not isinstance(settings["tiny"], bool):
        refuse("tiny", settings["tiny"], "true or false", "false")
    env = settings.get("env")
    if env is not None:
        if not isinstance(env, str) or not env.strip():
            refuse("env", env, "an environment id", "gymnax/Acrobot-v1")
        check_env(env, "--env" if record is None else f"{record}: env")


def check_env(env: str, what: str) -> None:
    """`env` a registered id, or the registry's own one-line error with its "did
    you mean" hint, prefixed by `what`. Builds nothing."""
    from driftlab.envs import UnknownEnvironmentError, list_envs, make
    from driftlab.errors import DriftlabError

    if env in list_envs():
        return
    try:
        make(env)  # an unregistered id is refused before anything is built
    except UnknownEnvironmentError as err:
        raise DriftlabError(f"{what} {env}: {err}") from None
    raise DriftlabError(f"{what} {env}: unknown environment; `driftlab envs` lists all ids")


def check_stages(*, env: str, seeds: int, timesteps: float, generations: int | None,
                 tiny: bool) -> None:
    """The settings the stages will be called with, through the same checks the API
    makes (the discovery's settings, each training run's), without building or
    compiling anything: a budget the trainer cannot run fails here, not in stage 4."""
    from driftlab.discovery_settings import build_config
    from driftlab.errors import DriftlabError, user_errors
    from driftlab.train_checks import check_settings as check_train_settings
    from driftlab.training import resolve_settings

    build_config(DISCOVERY_PRESET, None, _discovery_settings(tiny, generations))
    seeds, timesteps = _budget(seeds, timesteps, tiny)
    for algo in ALGOS:
        # The learned and distilled drifts come from stages 1 and 3; only their
        # presence matters to these checks.
        drift = {"lpo": "discover", "distilled": "distill"}.get(algo)
        try:
            resolved = resolve_settings(env, None, {}, int(timesteps),
                                        algo=None if drift else algo)
            check_train_settings(algo, resolved, drift)
        except user_errors() as err:
            raise DriftlabError(f"the comparison's {algo} runs on {env} ({int(timesteps)} env "
                                f"steps per seed): {err}; choose another --timesteps or "
                                "--env") from None


def _budget(seeds: int, timesteps: float, tiny: bool) -> tuple[int, float]:
    """(seeds, env steps per seed) of each comparison run."""
    return (TINY["seeds"], TINY["timesteps"]) if tiny else (seeds, timesteps)


def _discovery_settings(tiny: bool, generations: int | None, *,
                        resume: bool = False) -> dict[str, Any]:
    """A new discovery's settings over the preset; with `resume`, those a resumed one
    may change (generations, eval_seeds), and only where given or set by --tiny: a
    discovery started before QUICK_DISCOVERY keeps its own number of generations."""
    settings: dict[str, Any] = {**({} if resume else QUICK_DISCOVERY),
                                **(TINY_DISCOVERY if tiny else {})}
    if generations is not None:
        settings["generations"] = generations
    if resume:
        return {k: v for k, v in settings.items() if k in ("generations", "eval_seeds")}
    return settings


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
    from driftlab.background import Background, Job

    seeds, timesteps = _budget(seeds, timesteps, tiny)
    started = time.time()
    # One child process runs what needs nothing or only the discovery (PPO, DPO, the
    # inspection, the learned drift's run) while this one discovers and distils.
    discover, inspect = root / "discover", root / "inspect"
    runs = {algo: root / f"train-{algo}" for algo in ALGOS}
    jobs = []
    for algo in BACKGROUND_ALGOS:
        if not _done(runs[algo], "summary.json"):
            _clear(runs[algo])
            drift = str(discover) if algo == "lpo" else None
            jobs.append(Job(algo, "train", str(runs[algo]),
                            {"algo": algo, "env": env, "drift": drift, "seeds": seeds,
                             "timesteps": int(timesteps)}, "discovered" if drift else None))
    if not _done(inspect, "conditions.json"):
        _clear(inspect)
        jobs.insert(len([j for j in jobs if j.after is None]), Job(
            "inspect", "inspect", str(inspect),
            {"drift": str(discover), "compare": ["ppo", "dpo"]}, "discovered"))
    # compare's random-policy returns, measured as compare would, once the child is idle
    randoms = root / "random_returns.json"
    if not randoms.is_file():
        jobs.append(Job("random-returns", "random-returns", str(randoms),
                        {"runs": [str(runs["ppo"])]}))
    with Background(jobs, root / "background.json") as background:
        if jobs:
            print(f"in the background, one after the other: {', '.join(j.name for j in jobs)} "
                  f"(logs: {root}/*.log)")
        _stages(root, api, background, runs, env=env, seeds=seeds, timesteps=timesteps,
                settings=_discovery_settings(tiny, generations),
                resumed=_discovery_settings(tiny, generations, resume=True), tiny=tiny,
                started=started)


def _stages(root: Path, api: Any, background: Background, runs: dict[str, Path], *, env: str,
            seeds: int, timesteps: float, settings: dict[str, Any],
            resumed: dict[str, Any], tiny: bool, started: float) -> None:
    from driftlab.compare_command import print_result as print_comparison
    from driftlab.discover_command import print_result as print_discovery
    from driftlab.distill_command import print_result as print_distillation
    from driftlab.findings import findings
    from driftlab.train_command import print_outcome

    discover, inspect, distill = root / "discover", root / "inspect", root / "distill"
    _stage("1/5 discover a drift with OpenES on cartpole-tiny", started)
    if (discover / "config.yaml").is_file():
        finished = _done(discover, "drift.json") and _resumable_done(discover)
        if not finished:
            print_discovery(api.discover(resume=discover, settings=resumed))
        else:
            print(f"already done: {discover}")
    else:
        print_discovery(api.discover(DISCOVERY_PRESET, out=discover, settings=settings))
    background.signal("discovered")

    _stage("2/5 distill the learned drift into a closed-form formula", started)
    if not _done(distill, "drift.json"):
        _clear(distill)
        print_distillation(api.distill(str(discover), out=distill,
                                       **(TINY_DISTILL if tiny else DISTILL_SEARCH)))
    else:
        print(f"already done: {distill}")

    _stage("3/5 inspect: drift surfaces and the Mirror-Learning conditions", started)
    if "inspect" in background.jobs:
        print(background.collect("inspect").rstrip())
    else:
        print(f"already done: {inspect}")

    _stage("4/5 train PPO, DPO, the learned drift and its formula on held-out " + env, started)
    for algo, out in runs.items():
        if algo in background.jobs:
            continue
        if _done(out, "summary.json"):
            print(f"already done: {out}")
            continue
        _clear(out)
        drift = {"lpo": discover, "distilled": distill}.get(algo)
        print_outcome(api.train(algo, env, drift=None if drift is None else str(drift), out=out,
                                seeds=seeds, timesteps=int(timesteps)))
    for algo in runs:
        if algo in background.jobs:
            print(f"{algo} (trained in the background):")
            print(background.collect(algo).rstrip())

    _stage("5/5 compare", started)
    found = findings()
    if found:
        print("What driftlab has found: the shipped drifts, each measured by `driftlab "
              "evaluate` (16 seeds per env, every env at its own preset; normalised: 1 = PPO, "
              "0 = the random policy; drifts/<name>/ holds each report):\n" + found)
        print(f"\nThis quickstart's runs on {env}:")
    compare = root / "compare"
    _clear(compare)
    if "random-returns" in background.jobs:
        background.collect("random-returns")
    print_comparison(api.compare(list(runs.values()), out=compare,
                                 random_returns=root / "random_returns.json"))
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
