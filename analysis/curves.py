"""Learning-curve plots (PNG) from per-update returns of several seeds."""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def final_returns(returns: np.ndarray, fraction: float = 0.1) -> np.ndarray:
    """Mean of the last `fraction` of updates per seed; returns (seeds, updates) -> (seeds,)."""
    returns = np.asarray(returns, dtype=np.float64)
    tail = max(1, int(round(returns.shape[-1] * fraction)))
    with _quiet():
        return np.nanmean(returns[..., -tail:], axis=-1)


def plot_learning_curves(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: str | Path,
                         title: str, ylabel: str = "mean episodic return") -> Path:
    """One line per label (mean over seeds) with the min-max band over seeds
    shaded and each seed drawn thin. `curves[label] = (timesteps, returns)`
    with returns of shape (seeds, updates)."""
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for index, (label, (steps, returns)) in enumerate(curves.items()):
        color = f"C{index}"
        returns = np.atleast_2d(np.asarray(returns, dtype=np.float64))
        steps = np.asarray(steps)
        with _quiet():
            mean = np.nanmean(returns, 0)
            low, high = np.nanmin(returns, 0), np.nanmax(returns, 0)
        for seed_curve in returns:
            ax.plot(steps, seed_curve, color=color, alpha=0.25, linewidth=0.7)
        ax.fill_between(steps, low, high, color=color, alpha=0.15, linewidth=0)
        n = returns.shape[0]
        ax.plot(steps, mean, color=color, linewidth=2,
                label=f"{label} (mean of {n} seed{'s' * (n > 1)}, band = min-max)")
    ax.set_xlabel("environment steps")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return _save(fig, path)


@contextlib.contextmanager
def _quiet():
    """Silence numpy's warnings about all-NaN slices (no episode finished yet)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def plot_discovery_progress(records: list[dict], path: str | Path, title: str) -> Path:
    """An ES run at a glance, from its metrics.jsonl records: the population's mean
    fitness per generation (thin) with a 10-generation rolling mean (thick) and
    the max-min band; and the ES mean's periodic evaluations (fresh seeds) per env,
    mean +- std over seeds. Higher is better throughout."""
    gens = np.array([r["generation"] for r in records], np.float64)

    def column(key: str) -> np.ndarray:
        return np.array([np.nan if r.get(key) is None else r[key] for r in records], np.float64)

    mean, low, high = column("fitness_mean"), column("fitness_min"), column("fitness_max")
    evals = [r for r in records if isinstance(r.get("eval"), dict)]
    envs = sorted({env for r in evals for env in r["eval"]})
    fig, axes = plt.subplots(1, 1 + len(envs), figsize=(5.2 * (1 + len(envs)), 3.8), dpi=110,
                             squeeze=False)
    ax = axes[0, 0]
    ax.fill_between(gens, low, high, color="C0", alpha=0.12, linewidth=0, label="population min-max")
    ax.plot(gens, mean, color="C0", alpha=0.35, linewidth=0.8, label="population mean")
    window = min(10, len(mean))
    if window > 1:
        kernel = np.ones(window) / window
        rolling = np.convolve(np.nan_to_num(mean, nan=np.nanmean(mean)), kernel, mode="valid")
        ax.plot(gens[window - 1:], rolling, color="C0", linewidth=2,
                label=f"population mean, {window}-generation rolling")
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
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def _save(fig, path: str | Path) -> Path:
    """Lay out, write the PNG (making its folder) and free the figure."""
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
