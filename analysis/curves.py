"""Learning-curve plots (PNG) from per-update returns of several seeds, and an
ES run's progress."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from driftlab.analysis.plots import save_png


def bootstrap_band(returns: np.ndarray, resamples: int = 1000, level: float = 0.95,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, low, high) per update of the mean over seeds (NaN ignored), with a
    percentile bootstrap band; returns (seeds, updates). Each resample's means
    come from seed counts, (resamples, seeds) @ (seeds, updates), so memory
    does not grow with resamples x seeds x updates."""
    returns = np.atleast_2d(np.asarray(returns, np.float64))
    seeds = returns.shape[0]
    rng = np.random.default_rng(seed)
    index = rng.integers(0, seeds, (resamples, seeds))
    counts = (index[..., None] == np.arange(seeds)).sum(axis=1).astype(np.float64)
    present = ~np.isnan(returns)
    alpha = (1.0 - level) / 2
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN updates: no episode yet
        means = (counts @ np.where(present, returns, 0.0)) / (counts @ present)
        mean = np.nanmean(returns, 0)
        low, high = np.nanquantile(means, [alpha, 1 - alpha], axis=0)
    return mean, low, high


def plot_learning_curves(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: str | Path,
                         title: str, seed: int = 0) -> Path:
    """Learning curves, 750 x 450 pixels: one line per label, the mean return over
    seeds with a 95% bootstrap band (`bootstrap_band`, keyed by `seed`), each
    labelled at its end with its seed count. `curves[label] = (timesteps
    (updates,), returns (seeds, updates))`. Used for a train run's
    learning_curve.png and compare's per-env plots."""
    fig = Figure(figsize=(7.5, 4.5), dpi=100, layout="constrained")
    ax = fig.subplots()
    for index, (label, (steps, returns)) in enumerate(curves.items()):
        colour = f"C{index}"
        returns = np.atleast_2d(np.asarray(returns, np.float64))
        mean, low, high = bootstrap_band(returns, seed=seed)
        ax.fill_between(steps, low, high, color=colour, alpha=0.2, linewidth=0)
        ax.plot(steps, mean, color=colour, linewidth=2)
        last = np.flatnonzero(np.isfinite(mean))
        if last.size:
            i = last[-1]
            ax.annotate(f"{label} (n={returns.shape[0]})", xy=(steps[i], mean[i]), xytext=(5, 0),
                        textcoords="offset points", color=colour, fontsize=9, va="center")
    ax.set_xlim(right=ax.get_xlim()[1] * 1.25)  # room for the end labels
    ax.set_xlabel("environment steps")
    ax.set_ylabel("episodic return (mean over seeds)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return save_png(fig, path)


def plot_discovery_progress(records: list[dict], path: str | Path, title: str,
                            start_validation: float | None = None) -> Path:
    """An ES run at a glance, from its metrics.jsonl records: the population's mean
    fitness per generation (thin) with a 10-generation rolling mean (thick) and
    the max-min band; the ES mean's periodic evaluations (fresh seeds) per env,
    mean +- std over seeds; where logged, the members' split-half rank correlation
    per generation (with its running mean) and the ES mean's validation scores
    (`start_validation`: the start's, drawn at generation 0); with randomised inner
    settings also `score_of_means`, the members' mean return relative to PPO's (the
    figure to quote: the ranked fitness is a mean of per-rollout ratios,
    discovery/loop.py `score_of_means`). Higher is better throughout."""
    gens = np.array([r["generation"] for r in records], np.float64)

    def column(key: str) -> np.ndarray:
        return np.array([np.nan if r.get(key) is None else r[key] for r in records], np.float64)

    mean, low, high = column("fitness_mean"), column("fitness_min"), column("fitness_max")
    evals = [r for r in records if isinstance(r.get("eval"), dict)]
    envs = sorted({env for r in evals for env in r["eval"]})
    ranked = [(r["generation"], r["ranking_reliability"].get("split_half")) for r in records
              if isinstance(r.get("ranking_reliability"), dict)]
    validated = [(r["generation"], r["validation"].get("score")) for r in records
                 if isinstance(r.get("validation"), dict)]
    if validated and start_validation is not None:  # the start is a selection candidate too
        validated.insert(0, (0, start_validation))
    extra = [panel for panel, points in (("ranking", ranked), ("validation", validated))
             if points]
    fig = Figure(figsize=(5.2 * (1 + len(envs) + len(extra)), 3.8), dpi=110)
    axes = fig.subplots(1, 1 + len(envs) + len(extra), squeeze=False)
    ax = axes[0, 0]
    ax.fill_between(gens, low, high, color="C0", alpha=0.12, linewidth=0, label="population min-max")
    ax.plot(gens, mean, color="C0", alpha=0.35, linewidth=0.8, label="population mean")
    window = min(10, len(mean))
    if window > 1:
        kernel = np.ones(window) / window
        rolling = np.convolve(np.nan_to_num(mean, nan=np.nanmean(mean)), kernel, mode="valid")
        ax.plot(gens[window - 1:], rolling, color="C0", linewidth=2,
                label=f"population mean, {window}-generation rolling")
    quoted = column("score_of_means")
    if np.isfinite(quoted).any():  # randomised settings: members' mean return / PPO's
        ax.plot(gens, quoted, color="C1", linewidth=1.2,
                label="members' mean return, x PPO's (same settings)")
        ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xlabel("generation")
    ax.set_ylabel("fitness")
    ax.set_title("fitness (each generation: new keys)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    for index, env in enumerate(envs, 1):
        ax = axes[0, index]
        points = [(r["generation"], r["eval"][env].get("return_mean"), r["eval"][env].get("return_std"))
                  for r in evals if env in r["eval"]]
        g, m, s = (np.array([np.nan if v is None else v for v in col], np.float64)
                   for col in zip(*points, strict=True))
        ax.errorbar(g, m, yerr=s, color=f"C{index}", marker="o", markersize=3, capsize=2,
                    linewidth=1.2)
        ax.set_xlabel("generation")
        ax.set_ylabel("final return of the ES mean")
        ax.set_title(f"{env} (mean +- std over fresh seeds)", fontsize=9)
        ax.grid(alpha=0.3)
    for index, panel in enumerate(extra, 1 + len(envs)):
        ax = axes[0, index]
        if panel == "ranking":  # is the ES stepping on signal? (discovery/ranking_noise.py)
            g, rho = (np.array([np.nan if v is None else v for v in col], np.float64)
                      for col in zip(*ranked, strict=True))
            ax.plot(g, rho, "o", color="C3", markersize=3, alpha=0.6, label="one generation")
            finite = np.isfinite(rho)
            if finite.sum() > 1:
                running = np.cumsum(np.where(finite, rho, 0.0)) / np.maximum(
                    np.cumsum(finite), 1)
                ax.plot(g, running, color="C3", linewidth=2, label="mean so far")
            ax.axhline(0.0, color="black", linewidth=0.8)
            ax.set_ylim(-1.05, 1.05)
            ax.set_ylabel("split-half rank correlation")
            ax.set_title("members' order: signal (1) or seed noise (0)", fontsize=9)
            ax.legend(fontsize=7, loc="lower right")
        else:
            g, score = (np.array([np.nan if v is None else v for v in col], np.float64)
                        for col in zip(*validated, strict=True))
            ax.plot(g, score, marker="o", markersize=3, color="C4", linewidth=1.2)
            ax.set_ylabel("validation score (PPO = 1)")
            ax.set_title("the ES mean on the validation envs", fontsize=9)
        ax.set_xlabel("generation")
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_png(fig, path)
