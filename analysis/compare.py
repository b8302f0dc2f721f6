"""Comparison statistics over train run directories: IQM and percentile
bootstrap confidence intervals over seeds, learning curves with a bootstrap
band, scores normalised per env ((R - R_random) / (R_PPO - R_random)) with
their aggregate IQM, probability of improvement over the reference and
performance profiles (the statistics themselves: analysis/statistics.py).

Longer than ~300 lines: loading and checking runs (refusing to pool unlike
runs), the per-env and normalised tables, and their plots, which share one grouping.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from driftlab.algorithms.evaluation import final_return
from driftlab.algorithms.storage import read_json, read_jsonl, read_yaml
from driftlab.analysis.curves import plot_learning_curves
from driftlab.analysis.statistics import (  # noqa: F401  (iqm, bootstrap_ci: re-exported)
    aggregate_iqm,
    bootstrap_bytes,
    bootstrap_ci,
    iqm,
    normalize,
    performance_profile,
    probability_of_improvement_ci,
)
from driftlab.analysis.surfaces import AnalysisError


@dataclass
class RunGroup:
    """All seeds of one (env, label): returns (seeds, updates) on timesteps (updates,)."""

    env: str
    label: str
    timesteps: np.ndarray
    returns: np.ndarray
    run_dirs: list[str]
    diverged: np.ndarray | None = None  # (seeds,) bool: losses went NaN/inf (summary.json)

    @property
    def finals(self) -> np.ndarray:
        """(seeds,) final returns; NaN for a diverged seed, which is never ranked."""
        finals = final_return(self.returns)
        if self.diverged is not None:
            finals = np.where(self.diverged, np.nan, finals)
        return finals


def load_runs(run_dirs: list[str | Path]) -> list[RunGroup]:
    """Read metrics.jsonl / summary.json / config.yaml of train run directories
    and group their seeds by (env, label); label = algo, plus the drift file's
    name for learned/distilled drifts. A sweep's run directory (`train --sweep`)
    stands for its combinations, one group each, labelled by the setting as well
    (`dpo learning_rate=3e-4,drift.alpha=2`): a sweep is never pooled. A directory
    of another command (its config.yaml says so) is refused; a damaged file, or a
    metrics line that is not one update's record, is an AnalysisError naming it
    (only a torn last metrics line, of a killed run, is skipped)."""
    if not run_dirs:
        raise AnalysisError("no run directories given; pass train run directories to compare")
    groups: dict[tuple[str, str], RunGroup] = {}
    signatures: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
    base_seeds: dict[tuple[str, str], set[Any]] = {}
    seen: dict[Path, str] = {}
    for item in expand_sweeps(run_dirs):
        path = Path(item)
        real = path.resolve()
        if real in seen:  # the same run named twice (or through a link) counts once
            continue
        seen[real] = str(path)
        metrics_path = path / "metrics.jsonl"
        if not path.is_dir() or not metrics_path.is_file():
            raise AnalysisError(f"{path} is not a train run directory (no metrics.jsonl); "
                                "pass directories written by `driftlab train`")
        config = (read_yaml(path / "config.yaml", AnalysisError)
                  if (path / "config.yaml").exists() else {})
        command = config.get("command")
        if command is not None and command != "train":
            raise AnalysisError(f"{path} is a `driftlab {command}` run directory, not a train run; "
                                "pass directories written by `driftlab train`")
        if not (path / "summary.json").is_file():
            raise AnalysisError(f"{path} is an incomplete train run (no summary.json: it was "
                                "killed or is still running); rerun it or leave it out")
        summary = read_json(path / "summary.json", AnalysisError)
        env = str(summary.get("env") or config.get("env") or "unknown-env")
        algo = str(summary.get("algo") or config.get("algo") or path.name)
        label = algo
        if config.get("drift_file"):
            label = f"{algo} ({_drift_name(Path(str(config['drift_file'])))})"
        combination = config.get("sweep_combination")
        if isinstance(combination, dict) and combination.get("label"):
            label = f"{label} {combination['label']}"
        steps, returns = _read_metrics(metrics_path)
        if returns.size == 0:
            raise AnalysisError(f"{metrics_path} has no complete updates; let the run finish")
        diverged = np.zeros(returns.shape[0], bool)
        seeds_out = summary.get("diverged_seeds")
        if isinstance(seeds_out, list):
            diverged[[i for i in seeds_out if isinstance(i, int) and 0 <= i < len(diverged)]] = True
        key = (env, label)
        signature = run_signature(path, config)
        if key in groups:
            first, theirs = signatures[key]
            differing = sorted(k for k in set(theirs) | set(signature)
                               if theirs.get(k) != signature.get(k))
            if differing:
                raise AnalysisError(
                    f"{first} and {path} are both {label!r} on {env} but differ in "
                    f"{', '.join(differing[:6])}: pooling them would mix unlike runs; "
                    "compare them separately or leave one out")
            seed = config.get("seed")
            if seed is not None and seed in base_seeds[key]:
                raise AnalysisError(f"{first} and {path} are both {label!r} on {env} with base "
                                    f"seed {seed}: the same agents twice, not more seeds; "
                                    "leave one out or rerun it with another --seed")
            base_seeds[key].add(seed)
            group = groups[key]
            n = min(group.returns.shape[1], returns.shape[1])
            group.returns = np.concatenate([group.returns[:, :n], returns[:, :n]])
            group.diverged = np.concatenate([group.diverged, diverged])
            group.run_dirs.append(str(path))
        else:
            groups[key] = RunGroup(env, label, steps, returns, [str(path)], diverged)
            signatures[key] = (str(path), signature)
            base_seeds[key] = {config.get("seed")}
    return sorted(groups.values(), key=lambda g: (g.env, g.label))


def expand_sweeps(run_dirs: list[str | Path]) -> list[str | Path]:
    """`run_dirs` with each sweep run directory (its config.yaml has `sweep:`)
    replaced by its combinations' run directories, in the sweep's order."""
    out: list[str | Path] = []
    for item in run_dirs:
        path = Path(item)
        config_path = path / "config.yaml"
        if path.is_dir() and not (path / "metrics.jsonl").exists() and config_path.is_file():
            config = read_yaml(config_path, AnalysisError)
            sweep = config.get("sweep") if isinstance(config, dict) else None
            if isinstance(sweep, dict):
                combos = sweep.get("combinations")
                if not isinstance(combos, list) or not all(
                        isinstance(c, dict) and isinstance(c.get("dir"), str) for c in combos):
                    raise AnalysisError(f"{config_path}: sweep.combinations must list each "
                                        "combination's dir; the file is damaged")
                out.extend(path / c["dir"] for c in combos)
                continue
        out.append(item)
    return out


def run_signature(path: Path, config: dict[str, Any]) -> dict[str, Any]:
    """What must agree for two train runs' seeds to be pooled: every training setting
    (`train.*`), the drift and its constants (`drift.*`), the drift's parameters (a
    digest of the run's drift.params.msgpack) and the code and libraries that trained
    them (`software.source`, `software.packages.*`: other code may train otherwise).
    The machine's numerics may differ: they draw the seeds afresh, they do not change
    what is trained. Runs of older versions without a key simply lack it."""
    import hashlib

    out: dict[str, Any] = {}

    def flatten(prefix: str, values: dict[str, Any]) -> None:
        for k, v in values.items():
            if k in ("source", "note", "params_file"):
                continue
            if isinstance(v, dict):
                flatten(f"{prefix}{k}.", v)
            else:
                out[f"{prefix}{k}"] = repr(v)

    for block in ("train", "drift"):
        if isinstance(config.get(block), dict):
            flatten(f"{block}.", config[block])
    software = config.get("software")
    if isinstance(software, dict):
        out["software.source"] = repr(software.get("source"))
        for name, version in sorted((software.get("packages") or {}).items()):
            out[f"software.packages.{name}"] = repr(version)
    params = path / "drift.params.msgpack"
    if params.is_file():
        out["drift parameters"] = hashlib.sha256(params.read_bytes()).hexdigest()
    return out


def _drift_name(path: Path) -> str:
    """Name a learned drift by its run directory (`--drift RUN_DIR` or
    `RUN_DIR/drift.json`), by the file stem for other drift files, and as
    `shipped NAME` for a drift shipped with driftlab."""
    from driftlab.algorithms.shipped import shipped_dir

    if not path.exists() and shipped_dir(str(path)) is not None:
        return f"shipped {path}"
    if path.suffix != ".json":
        return path.name or "drift"
    return (path.parent.name or "drift") if path.stem == "drift" else path.stem


def _number(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def _read_metrics(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(timesteps (updates,), returns (seeds, updates)) of a metrics.jsonl (read
    by `storage.read_jsonl`: a torn last line is skipped). A record that is not
    one update's (returns that are not numbers, a different seed count) is an
    AnalysisError naming its line."""
    steps, rows = [], []
    for number, record in enumerate(read_jsonl(path, AnalysisError), 1):
        where = f"{path} line {number}"
        per_seed = record.get("episode_return_per_seed", [record.get("episode_return")])
        if not isinstance(per_seed, list) or not per_seed or not all(map(_number, per_seed)):
            raise AnalysisError(f"{where}: episode_return_per_seed must be a list of numbers, "
                                f"got {per_seed!r}; the file is damaged")
        if rows and len(per_seed) != len(rows[0]):
            raise AnalysisError(f"{where} has {len(per_seed)} seeds, the lines before it "
                                f"{len(rows[0])}; the file is damaged")
        timesteps = record.get("timesteps", len(steps) + 1)
        if not _number(timesteps) or timesteps is None:
            raise AnalysisError(f"{where}: timesteps must be a number, got {timesteps!r}")
        steps.append(timesteps)
        rows.append([np.nan if v is None else v for v in per_seed])
    if not rows:
        return np.zeros(0), np.zeros((0, 0))
    return np.asarray(steps, np.float64), np.asarray(rows, np.float64).T


@dataclass
class Row:
    env: str
    label: str
    seeds: int
    mean: float
    iqm: float
    ci_low: float
    ci_high: float
    normalized_iqm: float = float("nan")
    diverged: int = 0  # seeds whose losses went NaN/inf: no final return, not ranked


def final_table(groups: list[RunGroup], resamples: int = 2000, seed: int = 0) -> list[Row]:
    """IQM of the final returns over seeds with a 95% percentile bootstrap CI."""
    rows = []
    for group in groups:
        finals = group.finals
        finite = finals[np.isfinite(finals)]
        low, high = bootstrap_ci(finals, iqm, resamples, seed=seed)
        diverged = int(group.diverged.sum()) if group.diverged is not None else 0
        if finite.size == 0:  # nothing to rank: every seed diverged (or never finished)
            rows.append(Row(group.env, group.label, len(finals), float("nan"), float("nan"),
                            low, high, diverged=diverged))
            continue
        rows.append(Row(group.env, group.label, len(finals), float(finite.mean()),
                        float(iqm(finite)), low, high, diverged=diverged))
    return rows


RANDOM_EPISODES = 256  # random-policy episodes per env (`random_policy_return`)


def random_returns_of(groups: list[RunGroup], seed: int = 0) -> dict[str, float]:
    """Measure each env's random-policy return (`evaluation.random_policy_return`,
    RANDOM_EPISODES episodes, key `seed`) with the env options of its first run's
    config.yaml (they change e.g. the episode length). An env that cannot be made
    here, or has no episode length, is left out (its scores then fall back)."""
    import jax

    from driftlab import envs
    from driftlab.algorithms.evaluation import random_policy_return

    out: dict[str, float] = {}
    for group in {g.env: g for g in reversed(groups)}.values():  # each env's first group
        config_path = Path(group.run_dirs[0]) / "config.yaml"
        config = read_yaml(config_path, AnalysisError) if config_path.is_file() else {}
        train = config.get("train") if isinstance(config.get("train"), dict) else {}
        options = train.get("env_options") or {}
        try:
            env = envs.make(group.env, **options)
            out[group.env] = random_policy_return(env, jax.random.key(seed), RANDOM_EPISODES)
        except ValueError:  # unknown or unavailable env, no episode length
            continue
    return out


def read_random_returns(path: str | Path) -> dict[str, float]:
    """{env id: random-policy return} from a JSON or YAML mapping (evaluate writes
    one as random_returns.json); anything else is an AnalysisError naming the file."""
    path = Path(path)
    data = (read_json if path.suffix == ".json" else read_yaml)(path, AnalysisError)
    bad = {k: v for k, v in data.items()
           if not (_number(v) and v is not None and math.isfinite(v))}
    if bad:
        raise AnalysisError(f"{path}: random-policy returns must be finite numbers per env id, "
                            f"got {bad!r}")
    return {str(k): float(v) for k, v in data.items()}


@dataclass
class Normalization:
    """Per-env scores of every label, and how they were made: `scheme` "random" is
    (R - R_random) / (R_ref - R_random) (0 = random policy, 1 = the reference's
    mean); "reference" is 1 + (R - R_ref) / |R_ref| (used when some env has no
    random-policy return, no reference run, or a reference not above random)."""

    scheme: str
    note: str
    scores: dict[str, dict[str, np.ndarray]]  # label -> env -> (seeds,), NaN: diverged
    reference_returns: dict[str, float]  # env -> the reference's mean final return
    random_returns: dict[str, float]


def _mean(group: RunGroup) -> float:
    finals = group.finals
    return float(np.nanmean(finals)) if np.isfinite(finals).any() else float("nan")


def normalize_groups(groups: list[RunGroup], reference: str | None = "ppo",
                     random_returns: dict[str, float] | None = None) -> Normalization:
    """Scores per (label, env). With `random_returns` and a reference that ran and
    beat the random policy on every env: (R - R_random) / (R_ref - R_random), R_ref
    the reference's mean final return there. Otherwise, for every env alike, the
    fallback 1 + (R - ref) / |ref| with ref the reference's mean; an env where the
    reference has no result is not scored (with no reference at all, ref is the
    largest-magnitude mean); `note` says which and why."""
    by_env: dict[str, list[RunGroup]] = {}
    for group in groups:
        by_env.setdefault(group.env, []).append(group)
    refs = {env: next((_mean(g) for g in gs if g.label == reference), float("nan"))
            for env, gs in by_env.items()}
    given = random_returns is not None
    random_returns = dict(random_returns or {})
    problems = []
    if given and reference:
        for env in by_env:
            if not math.isfinite(refs[env]):
                problems.append(f"{env} has no {reference} result")
            elif env not in random_returns:
                problems.append(f"{env} has no random-policy return")
            elif refs[env] <= random_returns[env]:
                problems.append(f"on {env} {reference} ({refs[env]:.4g}) is not above the "
                                f"random policy ({random_returns[env]:.4g})")
    scores: dict[str, dict[str, np.ndarray]] = {}
    if reference and random_returns and not problems:
        for env, env_groups in by_env.items():
            for g in env_groups:
                scores.setdefault(g.label, {})[env] = normalize(g.finals, random_returns[env],
                                                                refs[env])
        note = (f"(R - R_random) / (R_{reference} - R_random) per env: 0 = random policy, "
                f"1 = {reference}'s mean final return")
        return Normalization("random", note, scores, refs, random_returns)
    unscored = []  # envs where the reference has no result: nothing to score against
    for env, env_groups in by_env.items():
        means = {g.label: _mean(g) for g in env_groups}
        means = {k: v for k, v in means.items() if math.isfinite(v)} or {"": 1.0}
        denom = means.get(reference) if reference else None
        if reference and denom is None:
            unscored.append(env)
            continue
        if denom is None or denom == 0:
            denom = max(means.values(), key=abs)
        denom = denom if denom != 0 else 1.0
        for g in env_groups:
            # 1 + (x - ref)/|ref|: x/ref for positive returns, and for envs with
            # negative returns (Acrobot, Pendulum) still 1 at the reference and
            # higher when better.
            scores.setdefault(g.label, {})[env] = 1.0 + (g.finals - denom) / abs(denom)
    why = ("; ".join(problems) if problems else
           f"no reference ({reference})" if given and not reference else "no random-policy returns")
    note = (f"1 + (R - R_ref) / |R_ref| per env (R_ref: {reference}'s mean final return, else "
            f"the largest-magnitude mean), not (R - R_random) / (R_ref - R_random): {why}")
    if unscored:
        note += (f"; not scored: {', '.join(unscored)} (no {reference} result there to "
                 "normalise against)")
    return Normalization("reference", note, scores, refs, random_returns)


def normalized_scores(groups: list[RunGroup], reference: str | None = "ppo",
                      resamples: int = 2000, seed: int = 0,
                      random_returns: dict[str, float] | None = None,
                      normalization: Normalization | None = None) -> dict[str, dict[str, float]]:
    """Per label: the IQM over all (env, seed) of the scores of `normalize_groups`
    with a stratified (per env) bootstrap CI (`statistics.aggregate_iqm`).
    Diverged seeds have no score; a label with an env where none has one gets NaN."""
    norm = normalization or normalize_groups(groups, reference, random_returns)
    out = {}
    for label, per_env in norm.scores.items():
        estimate = aggregate_iqm(list(per_env.values()), resamples, seed=seed)
        out[label] = {**estimate.as_dict("iqm"), "envs": len(per_env),
                      "runs": int(sum(np.isfinite(s).sum() for s in per_env.values()))}
    return out


def improvement_over(norm: Normalization, reference: str = "ppo", resamples: int = 2000,
                     seed: int = 0) -> dict[str, dict[str, float]]:
    """Per label other than `reference`: the probability of improvement P(label >
    reference) over the envs both ran on, with a stratified-bootstrap CI
    (`statistics.probability_of_improvement_ci`). Ranks within an env, so it does
    not depend on the normalisation."""
    ref = norm.scores.get(reference)
    out: dict[str, dict[str, float]] = {}
    if ref is None:
        return out
    for label, per_env in norm.scores.items():
        if label == reference:
            continue
        envs = [env for env in per_env if env in ref]
        if not envs:
            continue
        estimate = probability_of_improvement_ci([per_env[e] for e in envs],
                                                 [ref[e] for e in envs], resamples, seed=seed)
        out[label] = {**estimate.as_dict("probability"), "envs": len(envs)}
    return out


def performance_profiles(norm: Normalization, resamples: int = 2000, seed: int = 0,
                         points: int = 101) -> tuple[np.ndarray, dict[str, tuple]]:
    """(taus (points,), {label: (profile, low, high)}): score distributions
    (`statistics.performance_profile`) on one tau grid from min(0, lowest score)
    to max(1.5, highest score) over every label's finite scores."""
    every = np.concatenate([s for per_env in norm.scores.values() for s in per_env.values()])
    every = every[np.isfinite(every)]
    low = min(0.0, float(every.min())) if every.size else 0.0
    high = max(1.5, float(every.max())) if every.size else 1.5
    taus = np.linspace(low, high, points)
    return taus, {label: performance_profile(list(per_env.values()), taus, resamples, seed=seed)
                  for label, per_env in norm.scores.items()}


def plot_performance_profiles(taus: np.ndarray, profiles: dict[str, tuple], path: str | Path,
                              title: str, reference: str = "ppo", scheme: str = "random") -> Path:
    """performance_profile.png, 750 x 450 pixels: per label the fraction of runs
    with a normalised score above tau, with its 95% bootstrap band; tau = 1 (the
    reference's mean) marked; `scheme` as in `Normalization` names the scale on the
    x axis. Built on matplotlib's object API (`Figure`)."""
    from matplotlib.figure import Figure

    from driftlab.analysis.plots import save_png

    fig = Figure(figsize=(7.5, 4.5), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    for index, (label, (profile, low, high)) in enumerate(profiles.items()):
        colour = f"C{index}"
        ax.fill_between(taus, low, high, color=colour, alpha=0.2, linewidth=0, step="post")
        ax.step(taus, profile, where="post", color=colour, linewidth=2, label=label)
    ax.axvline(1.0, color="black", linestyle="--", linewidth=1)
    ax.annotate(f"{reference} mean", xy=(1.0, 1.0), xycoords=("data", "axes fraction"),
                xytext=(3, -12), textcoords="offset points", fontsize=8)
    zero = "random policy" if scheme == "random" else f"{reference} minus |{reference}|"
    ax.set_xlabel(f"normalised score tau (0 = {zero}, 1 = {reference})")
    ax.set_ylabel("fraction of runs with score > tau")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    return save_png(fig, path)


def plot_curves(groups: list[RunGroup], out: Path, seed: int = 0) -> list[Path]:
    """learning_curves_<env>.png per env (`curves.plot_learning_curves`)."""
    return [plot_learning_curves({g.label: (g.timesteps, g.returns) for g in groups if g.env == env},
                                 out / f"learning_curves_{env.replace('/', '_')}.png",
                                 f"{env}: mean and 95% bootstrap band over seeds", seed)
            for env in sorted({g.env for g in groups})]


def statistics_bytes(groups: list[RunGroup], resamples: int) -> float:
    """Peak bytes `group_statistics` needs for `groups` (statistics.bootstrap_bytes)."""
    largest = max((len(g.returns) for g in groups), default=0)
    per_label: dict[str, int] = {}
    for g in groups:
        per_label[g.label] = per_label.get(g.label, 0) + len(g.returns)
    return bootstrap_bytes(resamples, largest, max(per_label.values(), default=0))


@dataclass
class GroupStatistics:
    """Every statistic of a comparison, computed once from the same groups (used by
    `driftlab compare` and `driftlab evaluate`): the per-env table, the normalised
    scores, their aggregate IQM per label, P(label > reference) and performance
    profiles on one tau grid."""

    rows: list[Row]
    norm: Normalization
    normalized: dict[str, dict[str, float]]
    improvement: dict[str, dict[str, float]]
    taus: np.ndarray
    profiles: dict[str, tuple]
    reference: str

    def record(self) -> dict[str, Any]:
        """The JSON both reports hold: probability of improvement and profiles."""
        return {
            "probability_of_improvement": {"over": self.reference,
                                           "algorithms": self.improvement},
            "performance_profile": {"taus": self.taus, "algorithms": {
                label: {"profile": p, "ci_low": lo, "ci_high": hi}
                for label, (p, lo, hi) in self.profiles.items()}}}

    def plot(self, groups: list[RunGroup], folder: Path, title: str,
             seed: int = 0) -> list[Path]:
        """performance_profile.png (titled `title`), then learning_curves_<env>.png."""
        profile = plot_performance_profiles(self.taus, self.profiles,
                                            folder / "performance_profile.png", title,
                                            self.reference, self.norm.scheme)
        return [profile, *plot_curves(groups, folder, seed)]


def group_statistics(groups: list[RunGroup], reference: str,
                     random_returns: dict[str, float] | None, resamples: int = 2000,
                     seed: int = 0) -> GroupStatistics:
    """`GroupStatistics` of `groups`, scores normalised by `reference` and
    `random_returns` (`normalize_groups`), every interval from `resamples`
    bootstrap resamples drawn from `seed`."""
    rows = final_table(groups, resamples, seed)
    norm = normalize_groups(groups, reference, random_returns)
    normalized = normalized_scores(groups, reference, resamples, seed, normalization=norm)
    improvement = improvement_over(norm, reference, resamples, seed)
    taus, profiles = performance_profiles(norm, resamples, seed)
    return GroupStatistics(rows, norm, normalized, improvement, taus, profiles, reference)


def table_markdown(rows: list[Row], normalized: dict[str, dict[str, float]],
                   improvement: dict[str, dict[str, float]] | None = None,
                   note: str | None = None, reference: str = "ppo") -> str:
    """The final-return table, the normalised-score table (with `note`, how scores
    were normalised) and the probability-of-improvement table as markdown."""
    lines = ["| env | algorithm | seeds | mean | IQM | 95% CI (IQM) |",
             "|---|---|---:|---:|---:|---|"]
    for row in rows:
        seeds = f"{row.seeds}" + (f" ({row.diverged} diverged)" if row.diverged else "")
        if not math.isfinite(row.iqm):
            lines.append(f"| {row.env} | {row.label} | {seeds} | diverged | diverged | - |")
            continue
        lines.append(f"| {row.env} | {row.label} | {seeds} | {row.mean:.2f} | {row.iqm:.2f} "
                     f"| [{row.ci_low:.2f}, {row.ci_high:.2f}] |")
    lines += [""] + ([f"Normalised scores: {note}.", ""] if note else [])
    lines += ["| algorithm | envs | normalised IQM | 95% CI |", "|---|---:|---:|---|"]
    for label, s in normalized.items():
        if not math.isfinite(s["iqm"]):
            lines.append(f"| {label} | {s['envs']} | diverged | - |")
            continue
        lines.append(f"| {label} | {s['envs']} | {s['iqm']:.3f} | "
                     f"[{s['ci_low']:.3f}, {s['ci_high']:.3f}] |")
    if improvement:
        lines += ["", f"| algorithm | envs | P(algorithm > {reference}) | 95% CI |",
                  "|---|---:|---:|---|"]
        for label, s in improvement.items():
            value = "-" if not math.isfinite(s["probability"]) else f"{s['probability']:.3f}"
            interval = ("-" if not math.isfinite(s["ci_low"]) else
                        f"[{s['ci_low']:.3f}, {s['ci_high']:.3f}]")
            lines.append(f"| {label} | {s['envs']} | {value} | {interval} |")
    return "\n".join(lines) + "\n"
