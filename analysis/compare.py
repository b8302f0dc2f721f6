"""Comparison statistics over train run directories: IQM and percentile
bootstrap confidence intervals over seeds (numpy only, the rliable recipe),
learning curves with a bootstrap band, normalised scores across envs."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from driftlab.algorithms.evaluation import final_return
from driftlab.algorithms.storage import read_json, read_jsonl, read_yaml
from driftlab.analysis.curves import plot_learning_curves
from driftlab.analysis.surfaces import AnalysisError


def iqm(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """Interquartile mean: the mean of the middle 50% (25% trimmed on each side,
    as scipy.stats.trim_mean(x, 0.25) and rliable do)."""
    values = np.sort(np.asarray(values, np.float64), axis=axis)
    n = values.shape[axis]
    cut = int(math.floor(0.25 * n))
    kept = np.take(values, np.arange(cut, n - cut), axis=axis)
    return kept.mean(axis=axis)


def bootstrap_ci(values: np.ndarray, statistic=iqm, resamples: int = 2000, level: float = 0.95,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of `statistic` over the seeds (last axis).
    values: (seeds,)."""
    values = np.asarray(values, np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    index = rng.integers(0, values.size, (resamples, values.size))
    stats = statistic(values[index], axis=-1)
    alpha = (1.0 - level) / 2
    low, high = np.quantile(stats, [alpha, 1 - alpha])
    return float(low), float(high)


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
    name for learned/distilled drifts. A directory of another command (its
    config.yaml says so) is refused; a damaged file, or a metrics line that is
    not one update's record, is an AnalysisError naming it (only a torn last
    metrics line, of a killed run, is skipped)."""
    if not run_dirs:
        raise AnalysisError("no run directories given; pass train run directories to compare")
    groups: dict[tuple[str, str], RunGroup] = {}
    for item in run_dirs:
        path = Path(item)
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
        steps, returns = _read_metrics(metrics_path)
        if returns.size == 0:
            raise AnalysisError(f"{metrics_path} has no complete updates; let the run finish")
        diverged = np.zeros(returns.shape[0], bool)
        seeds_out = summary.get("diverged_seeds")
        if isinstance(seeds_out, list):
            diverged[[i for i in seeds_out if isinstance(i, int) and 0 <= i < len(diverged)]] = True
        key = (env, label)
        if key in groups:
            group = groups[key]
            n = min(group.returns.shape[1], returns.shape[1])
            if group.returns.shape[1] != returns.shape[1]:
                # Different budgets: compare on the common prefix of updates.
                group.timesteps = group.timesteps[:n]
            group.returns = np.concatenate([group.returns[:, :n], returns[:, :n]])
            group.diverged = np.concatenate([group.diverged, diverged])
            group.run_dirs.append(str(path))
        else:
            groups[key] = RunGroup(env, label, steps, returns, [str(path)], diverged)
    return sorted(groups.values(), key=lambda g: (g.env, g.label))


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


def normalized_scores(groups: list[RunGroup], reference: str | None = "ppo",
                      resamples: int = 2000, seed: int = 0) -> dict[str, dict[str, float]]:
    """Per label: IQM over all (env, seed) of scores normalised per env by the
    reference label's mean final return `ref` (if it ran on that env, else the
    largest-magnitude mean on that env) as 1 + (x - ref)/|ref|; with a
    stratified (per env) bootstrap CI."""
    by_env: dict[str, list[RunGroup]] = {}
    for group in groups:
        by_env.setdefault(group.env, []).append(group)
    scores: dict[str, list[np.ndarray]] = {}
    for env_groups in by_env.values():
        means = {g.label: float(np.nanmean(g.finals)) if np.isfinite(g.finals).any()
                 else float("nan") for g in env_groups}
        means = {k: v for k, v in means.items() if math.isfinite(v)} or {"": 1.0}
        denom = means.get(reference) if reference else None
        if denom is None or denom == 0:
            denom = max(means.values(), key=abs)
        denom = denom if denom != 0 else 1.0
        for g in env_groups:
            # 1 + (x - ref)/|ref|: x/ref for positive returns, and for envs with
            # negative returns (Acrobot, Pendulum) still 1 at the reference and
            # higher when better.
            scores.setdefault(g.label, []).append(1.0 + (g.finals - denom) / abs(denom))
    rng = np.random.default_rng(seed)
    out = {}
    for label, per_env in scores.items():
        # Diverged seeds have no score: the IQM is over the seeds that have one.
        per_env = [s[np.isfinite(s)] for s in per_env]
        if not all(s.size for s in per_env):
            out[label] = {"iqm": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"),
                          "envs": len(per_env), "runs": int(sum(s.size for s in per_env))}
            continue
        flat = np.concatenate(per_env)
        # Stratified bootstrap: resample seeds within each env, as rliable does.
        samples = np.stack([np.concatenate([s[rng.integers(0, len(s), len(s))] for s in per_env])
                            for _ in range(resamples)])
        low, high = np.quantile(iqm(samples, -1), [0.025, 0.975])
        out[label] = {"iqm": float(iqm(flat)), "ci_low": float(low), "ci_high": float(high),
                      "envs": len(per_env), "runs": int(flat.size)}
    return out


def plot_curves(groups: list[RunGroup], out: Path, seed: int = 0) -> list[Path]:
    """learning_curves_<env>.png per env (`curves.plot_learning_curves`)."""
    return [plot_learning_curves({g.label: (g.timesteps, g.returns) for g in groups if g.env == env},
                                 out / f"learning_curves_{env.replace('/', '_')}.png",
                                 f"{env}: mean and 95% bootstrap band over seeds", seed)
            for env in sorted({g.env for g in groups})]


def table_markdown(rows: list[Row], normalized: dict[str, dict[str, float]]) -> str:
    """The final-return table and the normalised-score table as markdown."""
    lines = ["| env | algorithm | seeds | mean | IQM | 95% CI (IQM) |",
             "|---|---|---:|---:|---:|---|"]
    for row in rows:
        seeds = f"{row.seeds}" + (f" ({row.diverged} diverged)" if row.diverged else "")
        if not math.isfinite(row.iqm):
            lines.append(f"| {row.env} | {row.label} | {seeds} | diverged | diverged | - |")
            continue
        lines.append(f"| {row.env} | {row.label} | {seeds} | {row.mean:.2f} | {row.iqm:.2f} "
                     f"| [{row.ci_low:.2f}, {row.ci_high:.2f}] |")
    lines += ["", "| algorithm | envs | normalised IQM | 95% CI |", "|---|---:|---:|---|"]
    for label, s in normalized.items():
        if not math.isfinite(s["iqm"]):
            lines.append(f"| {label} | {s['envs']} | diverged | - |")
            continue
        lines.append(f"| {label} | {s['envs']} | {s['iqm']:.3f} | "
                     f"[{s['ci_low']:.3f}, {s['ci_high']:.3f}] |")
    return "\n".join(lines) + "\n"
