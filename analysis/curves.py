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
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


@contextlib.contextmanager
def _quiet():
    """Silence numpy's warnings about all-NaN slices (no episode finished yet)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield
