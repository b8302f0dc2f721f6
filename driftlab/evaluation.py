"""`evaluate`: train a drift and its baselines on every env of a suite, each env at
its own preset and budget, and write one report of the field's statistics
(Agarwal et al. 2021): per-env IQM with 95% CIs, the PPO-normalised aggregate
IQM with a stratified-bootstrap CI, the probability of improvement over PPO,
performance profiles and learning curves.

Layout of the report folder:

    evaluation.yaml          the request (drift, baselines, envs and budgets, seeds)
    random_returns.json      {env: random-policy return}, measured once per env
    runs/<name>/<env>/       one ordinary train run directory per (algorithm, env)
    report.md, report.json   the report
    performance_profile.png, learning_curves_<env>.png

Scores are (R - R_random) / (R_PPO - R_random) per env, R_PPO the mean of PPO's
final returns there (same seeds, same preset), so 0 is the random policy and 1
is PPO. `resume=True` continues an interrupted evaluation in the same folder:
every (algorithm, env) whose run directory is complete is kept.

Longer than ~300 lines: suites, contestants, resumable training of every
(env, algorithm) cell and the report, which share the suite's budgets.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from driftlab.algorithms.storage import atomic_write_text, read_json, read_yaml, write_json, write_yaml
from driftlab.errors import DriftlabError
from driftlab.evaluation_cells import (
    REUSED_FILE,
    Cell,
    check_source,
    copy_cells,
    other_software,
    plan_reuse,
    refuse_other_software,
    run_complete,
    train_cells,
)
from driftlab.hints import did_you_mean

REFERENCE = "ppo"  # the baseline every score is normalised by
BUILTIN = ("ppo", "dpo")  # built-in algorithms evaluate accepts by name
DEFAULT_BASELINES = ("ppo", "dpo")
# The request keys a resumed evaluation must share with the saved one.
RESUME_KEYS = ("drift", "algorithms", "envs", "seeds", "seed")


@dataclass(frozen=True)
class Contestant:
    """One algorithm of the evaluation: its report name, `train --algo` and `--drift`."""

    name: str
    algo: str
    drift_file: str | None = None


@dataclass
class EvaluationReport:
    """What `evaluate` wrote: the folder, report.json's content and report.md's text."""

    out: Path
    data: dict[str, Any]
    text: str

    @property
    def aggregate(self) -> dict[str, dict[str, float]]:
        """{name: {iqm, ci_low, ci_high, envs, runs}}: PPO-normalised IQM over env x seed."""
        return self.data["aggregate"]

    @property
    def improvement(self) -> dict[str, dict[str, float]]:
        """{name: {probability, ci_low, ci_high, envs}}: P(name > PPO), every name but PPO."""
        return self.data["probability_of_improvement"]["algorithms"]


# ---- suites ---------------------------------------------------------------------------

def suite_dir() -> Path:
    from driftlab.presets import CONFIG_DIR

    return CONFIG_DIR / "suites"


def list_suites() -> list[str]:
    """Names of the shipped suites (configs/suites/*.yaml)."""
    return sorted(p.stem for p in suite_dir().glob("*.yaml"))


def load_suite(name: str) -> dict[str, int]:
    """{env id: total_timesteps} of configs/suites/<name>.yaml (`envs:` maps each env
    id to `{total_timesteps: N}`; every other setting is the env's preset)."""
    path = suite_dir() / f"{name}.yaml"
    if "/" in name or not path.is_file():
        names = list_suites()
        raise DriftlabError(f"unknown suite {name!r}{did_you_mean(name, names)}; choose one "
                            f"of {', '.join(names)} "
                            "or give --envs ID ...")
    entries = read_yaml(path).get("envs")
    if not isinstance(entries, dict) or not entries:
        raise DriftlabError(f"{path}: `envs:` must map env ids to {{total_timesteps: N}}")
    budgets = {}
    for env_id, entry in entries.items():
        steps = entry.get("total_timesteps") if isinstance(entry, dict) else None
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
            raise DriftlabError(f"{path}: {env_id} needs total_timesteps, a whole number >= 1, "
                                f"got {steps!r}")
        budgets[str(env_id)] = steps
    return budgets


# ---- inputs -----------------------------------------------------------------------------

def contestant(spec: str, role: str) -> Contestant:
    """A built-in algorithm (ppo, dpo), a shipped drift name, a drift .json or a run
    directory with drift.json; anything else is a DriftlabError naming the choices.
    `role` ("drift", "baseline") names the argument in that message."""
    from driftlab.algorithms.drift_io import load_drift
    from driftlab.algorithms.shipped import list_shipped, shipped_dir, written_as_path
    from driftlab.analysis.compare import _drift_name

    spec = str(spec).strip()
    if spec in BUILTIN:
        return Contestant(spec, spec)
    path = Path(spec)
    if not path.exists() or (not written_as_path(spec) and shipped_dir(spec) is not None):
        if shipped_dir(spec) is None:
            choices = [*BUILTIN, *list_shipped()]
            raise DriftlabError(f"unknown {role} {spec!r}{did_you_mean(spec, choices)}; give "
                                f"{', '.join(choices)}, "
                                "a drift .json or a run directory with drift.json")
        drift, _ = load_drift(spec)
        return Contestant(spec, str(drift.spec.get("kind", drift.name)), spec)
    drift, _ = load_drift(spec)
    # `spec` as written: str(Path("./dpo")) is "dpo", which would name the built-in again
    return Contestant(_drift_name(path), str(drift.spec.get("kind", drift.name)), spec)


def contestants(drift: str, baselines: tuple[str, ...] | list[str]) -> list[Contestant]:
    """The drift first, then PPO (always: it normalises every score), then the
    other baselines; each name once (a later duplicate name gets a -2 suffix)."""
    chosen = [contestant(drift, "drift"), Contestant(REFERENCE, REFERENCE)]
    chosen += [contestant(b, "baseline") for b in baselines]
    out: list[Contestant] = []
    for item in chosen:
        if any(item.algo == c.algo and item.drift_file == c.drift_file for c in out):
            continue
        name, suffix = item.name, 1
        while any(c.name == name for c in out):
            suffix += 1
            name = f"{item.name}-{suffix}"
        out.append(Contestant(name, item.algo, item.drift_file))
    return out


def resolve_envs(suite: str | None, env_ids: list[str] | None,
                 timesteps: float | None) -> dict[str, int]:
    """{env id: budget}: a suite's envs and budgets, or `env_ids` at their presets'
    total_timesteps; `timesteps` overrides every budget."""
    from driftlab.envs import list_envs, make
    from driftlab.training import resolve_settings

    if (suite is None) == (not env_ids):
        raise DriftlabError("give --suite NAME or --envs ID ... (one of them)")
    if timesteps is not None and not (math.isfinite(timesteps) and timesteps >= 1):
        raise DriftlabError(f"--timesteps must be a positive, finite number of environment "
                            f"steps such as 5e4, got {timesteps}")
    if suite is not None:
        budgets = load_suite(suite)
    else:
        budgets = {}
        for env_id in env_ids or []:
            if env_id not in list_envs():
                make(env_id)  # raises UnknownEnvironmentError with its "did you mean"
            budgets[env_id] = int(resolve_settings(env_id).get("total_timesteps", 0)) or None
    for env_id in budgets:
        if env_id not in list_envs():
            make(env_id)
    if timesteps is not None:
        budgets = dict.fromkeys(budgets, int(timesteps))
    missing = [e for e, b in budgets.items() if not b]
    if missing:
        raise DriftlabError(f"{missing[0]} has no total_timesteps in its preset; give --timesteps")
    return budgets


def settings_for(env_id: str, who: Contestant, budget: int) -> dict[str, Any]:
    """The env's preset at `budget` steps (a built-in's drift_by_algo constants applied)."""
    from driftlab.training import resolve_settings

    return resolve_settings(env_id, timesteps=budget,
                            algo=None if who.drift_file else who.algo)


# ---- the evaluation -----------------------------------------------------------------------

def evaluate(drift: str, suite: str | None = None, envs: list[str] | None = None,
             seeds: int = 16, baselines: tuple[str, ...] | list[str] = DEFAULT_BASELINES,
             out: str | Path | None = None, timesteps: float | None = None,
             bootstrap: int = 2000, seed: int = 0, resume: bool = False,
             random_returns: str | Path | dict[str, float] | None = None,
             progress: bool = True, jobs: int = 1,
             baselines_from: str | Path | None = None,
             reuse_across_software: bool = False) -> EvaluationReport:
    """Train `drift` and `baselines` (PPO always) on every env of `suite` (or `envs`)
    with `seeds` seeds each (one vmapped jit per algorithm and env), measure each
    env's random-policy return (or take `random_returns`, a mapping or a JSON/YAML
    file of them), and write the report folder (see the module docstring).
    `jobs`: train that many cells side by side in their own processes (same run
    directories as one at a time). `baselines_from`: another evaluation's report
    folder whose baseline cells (never the drift's) are copied when they were trained
    alike (settings, seeds, drift; `evaluation_cells.reuse_cells`), so PPO is not
    trained twice; reused_cells.json and the report say which. A cell trained by other
    code, libraries or numerics (a copied one, or on `resume` one kept from before) is refused
    unless `reuse_across_software`; the report lists every such cell it pools.

    Every input is checked before anything is trained or written; an env on which
    PPO's mean final return is not above the random policy's stops the evaluation
    with a DriftlabError (its scores cannot be normalised at that budget)."""
    from driftlab.algorithms.config import check_seed
    from driftlab.analysis.statistics import bootstrap_bytes
    from driftlab.memory import check_host_bytes
    from driftlab.rundir import check_output_dir, hold_lock, new_run_dir
    from driftlab.software import software_record
    from driftlab.train_checks import check_settings

    if seeds < 1:
        raise DriftlabError(f"--seeds must be >= 1, got {seeds}")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise DriftlabError(f"--jobs must be a whole number >= 1 (cells trained side by "
                            f"side), got {jobs!r}")
    check_seed(seed, "--seed")
    if bootstrap < 10:
        raise DriftlabError(f"--bootstrap must be >= 10, got {bootstrap}")
    if resume:
        if out is None or not (Path(out) / "evaluation.yaml").is_file():
            raise DriftlabError(f"--resume needs --out DIR of an earlier evaluate (with "
                                f"evaluation.yaml); {out} has none")
    else:
        check_output_dir(out)
    budgets = resolve_envs(suite, envs, timesteps)
    who = contestants(drift, tuple(baselines))
    check_host_bytes(bootstrap_bytes(bootstrap, seeds, seeds * len(budgets)),
                     f"--bootstrap {bootstrap} over {len(budgets)} envs x {seeds} seeds",
                     "use fewer resamples (default 2000)")
    for env_id, budget in budgets.items():
        for item in who:
            check_settings(item.algo, settings_for(env_id, item, budget), item.drift_file)
    given_random = _given_random_returns(random_returns, budgets)
    # PPO first on each env: its cell normalises the env's scores (checked when it is done)
    cells = [Cell(env_id, item.name, item.algo, item.drift_file, budget,
                  settings_for(env_id, item, budget), Path(out) if resume else None)
             for env_id, budget in budgets.items()
             for item in sorted(who, key=lambda c: c.name != REFERENCE)]
    reuse = []  # planned before anything is written: a mismatch stops here
    if baselines_from is not None:  # never the evaluated drift itself: only its baselines
        reuse = plan_reuse([c for c in cells if c.name != who[0].name],
                           check_source(baselines_from), seeds, seed, reuse_across_software)
    request = {"command": "evaluate", "drift": str(drift), "suite": suite,
               "algorithms": [c.__dict__ for c in who], "envs": budgets, "seeds": seeds,
               "seed": seed, "bootstrap": bootstrap}
    if resume:
        root = Path(out)
        _check_resume(root, request)
        hold_lock(root)
    else:
        root = new_run_dir(out, "evaluate", who[0].name)
        write_yaml(root / "evaluation.yaml", {**request, "software": software_record()})

    randoms = given_random or _random_returns(root, budgets, seed)
    copied = {(c.name, c.env_id): source for c, source in reuse}
    copy_cells([(dataclasses.replace(c, root=root), source) for c, source in reuse], root)
    started = time.time()
    cells = [dataclasses.replace(c, root=root) for c in cells]
    run_dirs = {(c.name, c.env_id): c.run_dir for c in cells}

    def check(cell: Cell) -> None:
        if cell.name == REFERENCE:
            _check_normalisable(cell.run_dir, cell.env_id, randoms[cell.env_id], cell.budget)

    todo = []
    for index, cell in enumerate(cells, 1):
        head = (f"[{index}/{len(cells)}] {cell.name} on {cell.env_id}: {cell.budget:,} steps x "
                f"{seeds} seeds")
        if (cell.name, cell.env_id) in copied:
            print(f"{head}: copied from {copied[(cell.name, cell.env_id)]}", flush=True)
            check(cell)
        elif run_complete(cell.run_dir, seeds, cell.budget):
            why = other_software(cell.run_dir)
            if why is not None and not reuse_across_software:
                raise refuse_other_software(cell.run_dir, f"trained before this resume, but {why}",
                                            "delete it to train it again with this code")
            print(f"{head}: done before, kept ({cell.run_dir})", flush=True)
            check(cell)
        else:
            todo.append((cell, head))
    train_cells(todo, seeds, seed, jobs, progress, check)
    print(f"trained in {time.time() - started:.0f} s; writing the report", flush=True)
    return write_report(root, who, budgets, run_dirs, randoms, seeds, bootstrap, seed,
                        suite, str(drift))


def _given_random_returns(given: str | Path | dict[str, float] | None,
                          budgets: dict[str, int]) -> dict[str, float] | None:
    from driftlab.analysis.compare import read_random_returns
    from driftlab.analysis.surfaces import AnalysisError

    if given is None:
        return None
    try:
        values = dict(given) if isinstance(given, dict) else read_random_returns(given)
    except AnalysisError as err:
        raise DriftlabError(str(err)) from None
    missing = [env for env in budgets if env not in values]
    if missing:
        raise DriftlabError(f"random-policy returns given for {', '.join(values) or 'no env'} "
                            f"but not for {', '.join(missing)}")
    return {env: float(values[env]) for env in budgets}


def _check_resume(root: Path, request: dict[str, Any]) -> None:
    saved = read_yaml(root / "evaluation.yaml")
    for key in RESUME_KEYS:
        if saved.get(key) != request[key]:
            raise DriftlabError(f"{root} holds an evaluation with another {key} (saved "
                                f"{saved.get(key)!r}, now {request[key]!r}); resume it with the "
                                "same arguments or choose a new --out")


def _random_returns(root: Path, budgets: dict[str, int], seed: int) -> dict[str, float]:
    """Each env's random-policy return (`compare.RANDOM_EPISODES` episodes under the
    env options of its PPO preset), cached in random_returns.json."""
    import jax

    from driftlab import envs
    from driftlab.algorithms import TrainConfig
    from driftlab.algorithms.evaluation import random_policy_return
    from driftlab.analysis.compare import RANDOM_EPISODES

    path = root / "random_returns.json"
    cached = read_json(path) if path.is_file() else {}
    for env_id in budgets:
        if env_id in cached:
            continue
        settings = settings_for(env_id, Contestant(REFERENCE, REFERENCE), budgets[env_id])
        settings.pop("drift", None)
        env = envs.make(env_id, **TrainConfig.from_dict(settings).env_options)
        try:
            cached[env_id] = random_policy_return(env, jax.random.key(seed), RANDOM_EPISODES)
        except ValueError as err:
            raise DriftlabError(f"{env_id}: {err}") from None
        print(f"random policy on {env_id}: {cached[env_id]:.2f} "
              f"(mean of {RANDOM_EPISODES} episodes)", flush=True)
        write_json(path, cached)
    return {env: float(cached[env]) for env in budgets}


def _check_normalisable(run_dir: Path, env_id: str, random_return: float, budget: int) -> None:
    finals = np.asarray([np.nan if v is None else v for v in
                         read_json(run_dir / "summary.json").get("final_return_per_seed", [])],
                        np.float64)
    if not np.isfinite(finals).any():
        raise DriftlabError(
            f"{env_id}: PPO has no final return at {budget:,} steps (no episode ended in the "
            "last 10% of updates, or every seed diverged), so scores cannot be normalised; "
            "raise the budget (--timesteps) or leave the env out")
    mean = float(np.nanmean(finals))
    if not mean > random_return:
        raise DriftlabError(
            f"{env_id}: PPO's mean final return ({mean:.4g}) is not above the random "
            f"policy's ({random_return:.4g}) at {budget:,} steps, so its scores cannot be "
            "normalised; raise the budget (--timesteps) or leave the env out")


# ---- the report -------------------------------------------------------------------------

def write_report(root: Path, who: list[Contestant], budgets: dict[str, int],
                 run_dirs: dict[tuple[str, str], Path], randoms: dict[str, float], seeds: int,
                 bootstrap: int, seed: int, suite: str | None, drift: str) -> EvaluationReport:
    """Read the run directories and write report.json, report.md and the plots."""
    from driftlab.analysis.compare import group_statistics, load_runs
    from driftlab.analysis.statistics import bootstrap_ci, iqm

    groups = []
    for env_id in budgets:
        for item in who:
            (group,) = load_runs([run_dirs[(item.name, env_id)]])
            group.label = item.name
            groups.append(group)
    stats = group_statistics(groups, REFERENCE, randoms, bootstrap, seed)
    rows, norm = stats.rows, stats.norm
    if norm.scheme != "random":  # checked per env after PPO trained; a damaged run otherwise
        raise DriftlabError(f"cannot normalise the scores: {norm.note}")
    per_env = []
    for row in rows:
        scores = norm.scores[row.label][row.env]
        finite = scores[np.isfinite(scores)]
        row.normalized_iqm = float(iqm(finite)) if finite.size else float("nan")
        low, high = bootstrap_ci(scores, iqm, bootstrap, seed=seed)
        per_env.append({**row.__dict__, "normalized_ci_low": low, "normalized_ci_high": high,
                        "timesteps": budgets[row.env], "random_return": randoms[row.env],
                        "ppo_return": norm.reference_returns[row.env],
                        "run_dir": str(run_dirs[(row.label, row.env)])})
    plots = stats.plot(groups, root, f"{len(budgets)} envs x {seeds} seeds: fraction of runs "
                                     "above each PPO-normalised score", seed)
    data = {
        "drift": drift, "suite": suite, "seeds": seeds, "bootstrap": bootstrap, "level": 0.95,
        "normalization": norm.note, "reference": REFERENCE,
        "algorithms": [c.__dict__ for c in who],
        "envs": {env: {"timesteps": budgets[env], "random_return": randoms[env],
                       "ppo_return": norm.reference_returns[env]} for env in budgets},
        "per_env": per_env,
        "aggregate": stats.normalized,
        **stats.record(),
        "plots": [p.name for p in plots],
        "reused_cells": (read_json(root / REUSED_FILE).get("cells", [])
                         if (root / REUSED_FILE).is_file() else []),
        "other_software_cells": [
            {"algorithm": name, "env": env, "why": why}
            for (name, env), run_dir in run_dirs.items()
            if (why := other_software(run_dir)) is not None],
    }
    text = report_markdown(data, [c.name for c in who])
    write_json(root / "report.json", data)
    atomic_write_text(root / "report.md", text)
    print(text)
    print(f"report: {root / 'report.md'}")
    return EvaluationReport(root, data, text)


def format_ci(value: float, low: float, high: float, digits: int) -> str:
    if not math.isfinite(value):
        return "-"
    interval = f" [{low:.{digits}f}, {high:.{digits}f}]" if math.isfinite(low) else ""
    return f"{value:.{digits}f}{interval}"


def report_markdown(data: dict[str, Any], names: list[str]) -> str:
    """report.md: the aggregate table, the per-env table and the plots."""
    envs = list(data["envs"])
    title = data["suite"] and f"suite {data['suite']}" or ", ".join(envs)
    lines = [f"# driftlab evaluate: {data['drift']} on {title}", "",
             f"{len(envs)} envs x {data['seeds']} seeds per algorithm, each env at its own "
             f"preset and budget; final return = mean episodic return over the last 10% of "
             f"updates. Scores: {data['normalization']}. Intervals: 95% percentile bootstrap "
             f"({data['bootstrap']} resamples; stratified over seeds within each env for the "
             "aggregates). How to read it: docs/evaluate.md.", ""]
    reused = data.get("reused_cells") or []
    if reused:
        cells = ", ".join(f"{c['algorithm']} on {c['env']}" for c in reused)
        sources = sorted({str(Path(c["from"]).parent.parent.parent) for c in reused})
        lines += [f"Copied from {', '.join(sources)} (trained alike: settings, seeds, drift; "
                  f"`--baselines-from`), not trained here: {cells}.", ""]
    for cell in data.get("other_software_cells") or []:
        lines += [f"**Pooled across software** (`--reuse-across-software`): {cell['algorithm']} "
                  f"on {cell['env']}: {cell['why']}.", ""]
    lines += ["| algorithm | PPO-normalised IQM [95% CI] | P(algorithm > PPO) [95% CI] | "
              "lowest per-env normalised IQM |", "|---|---|---|---|"]
    rows = data["per_env"]
    for name in names:
        agg = data["aggregate"][name]
        poi = data["probability_of_improvement"]["algorithms"].get(name)
        mine = [r for r in rows if r["label"] == name and math.isfinite(r["normalized_iqm"])]
        worst = min(mine, key=lambda r: r["normalized_iqm"], default=None)
        lines.append(f"| {name} | {format_ci(agg['iqm'], agg['ci_low'], agg['ci_high'], 3)} | "
                     + ("(reference)" if poi is None else
                        format_ci(poi["probability"], poi["ci_low"], poi["ci_high"], 3))
                     + " | " + (f"{worst['normalized_iqm']:.3f} ({worst['env']})" if worst else "-")
                     + " |")
    lines += ["", "## Per env", "",
              "| env | steps | random policy | algorithm | seeds | IQM return [95% CI] | "
              "normalised IQM [95% CI] |", "|---|---:|---:|---|---:|---|---|"]
    for env in envs:
        for name in names:
            r = next(x for x in rows if x["env"] == env and x["label"] == name)
            seeds = f"{r['seeds']}" + (f" ({r['diverged']} diverged)" if r["diverged"] else "")
            lines.append(f"| {env} | {r['timesteps']:,} | {r['random_return']:.2f} | {name} | "
                         f"{seeds} | {format_ci(r['iqm'], r['ci_low'], r['ci_high'], 2)} | "
                         f"{format_ci(r['normalized_iqm'], r['normalized_ci_low'], r['normalized_ci_high'], 3)} |")
    diverged = sum(r["diverged"] for r in rows)
    if diverged:
        lines += ["", f"**{diverged} seed(s) diverged** (losses or parameters NaN/inf): they have "
                      "no final return and are left out of every statistic above."]
    lines += ["", "## Performance profile", "", "![performance profile](performance_profile.png)",
              "", "## Learning curves", ""]
    lines += [f"![{env}]({name})" for env, name in
              zip(envs, [f"learning_curves_{e.replace('/', '_')}.png" for e in envs], strict=True)]
    return "\n".join(lines) + "\n"
