"""PNG plots of drift surfaces, readable without a legend: every panel is
titled, every line is labelled at its end, colour bars name their quantity,
and the r = 1 line (where a valid drift is zero and flat) is drawn and named.

Figures have fixed sizes (`figure_size`) so callers and tests know the pixel
size: width = FIG_WIDTH_PER_PANEL * columns * DPI, height likewise.
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure

from driftlab.algorithms.storage import atomic_write_bytes
from driftlab.analysis.surfaces import Surface

DPI = 100
PANEL_W, PANEL_H = 4.6, 3.8  # inches per panel
SLICE_ADVANTAGES = (-2.0, -1.0, -0.5, 0.5, 1.0, 2.0)
R_LABEL = "ratio r = π_new / π_old"
A_LABEL = "advantage A"


def figure_size(columns: int, rows: int) -> tuple[int, int]:
    """Pixel (width, height) of a figure of `columns` x `rows` panels."""
    return int(round(PANEL_W * columns * DPI)), int(round(PANEL_H * rows * DPI))


def _figure(columns: int, rows: int):
    # matplotlib's object API, not pyplot: no global figure state and no backend
    # switch, so importing driftlab leaves a notebook's inline plots alone.
    fig = Figure(figsize=(PANEL_W * columns, PANEL_H * rows), dpi=DPI, layout="constrained")
    return fig, fig.subplots(rows, columns, squeeze=False)


def save_png(fig, path: str | Path) -> Path:
    """Write `fig` as a PNG at its own size and dpi (no bbox "tight": the pixel
    size stays fixed) atomically, making the folder."""
    path = Path(path)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi="figure")
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _mark_r1(ax, label: bool = True) -> None:
    ax.axvline(1.0, color="black", linestyle="--", linewidth=1.0)
    if label:
        ax.annotate("r = 1", xy=(1.0, 1.0), xycoords=("data", "axes fraction"),
                    xytext=(3, -12), textcoords="offset points", fontsize=8,
                    bbox={"facecolor": "white", "alpha": 0.75, "linewidth": 0, "pad": 1})


def _robust_top(arrays, absolute: bool) -> float:
    """98th percentile of the values: a few huge values (e.g. log r as r -> 0)
    would otherwise wash out the whole colour scale; the bar shows the clipping."""
    values = np.concatenate([np.ravel(np.abs(x) if absolute else x) for x in arrays])
    values = values[np.isfinite(values)]
    return max(float(np.percentile(values, 98)) if values.size else 0.0, 1e-8)


def _heatmap(ax, surface: Surface, values: np.ndarray, kind: str, vmax: float | None = None):
    r, a = surface.grid.ratio, surface.grid.advantage
    if kind == "drift":
        top = vmax if vmax is not None else _robust_top([values], absolute=False)
        mesh = ax.pcolormesh(r, a, values, cmap="viridis", vmin=0.0, vmax=top, shading="auto")
        if float(np.nanmin(values)) < 0:  # a violation of D >= 0: outline it in red
            ax.contour(r, a, values, levels=[0.0], colors="red", linewidths=1.0)
    else:
        top = vmax if vmax is not None else _robust_top([values], absolute=True)
        mesh = ax.pcolormesh(r, a, values, cmap="RdBu_r",
                             norm=TwoSlopeNorm(0.0, -top, top), shading="auto")
    ax.axhline(0.0, color="grey", linewidth=0.6)
    _mark_r1(ax)
    ax.set_xlabel(R_LABEL)
    ax.set_ylabel(A_LABEL)
    return mesh


def plot_heatmaps(surface: Surface, path: str | Path, progress_index: int = 0) -> Path:
    """Two panels: D(r, A) and d(r*A - D)/dr over (r, A), r = 1 marked."""
    fig, axes = _figure(2, 1)
    suffix = _progress_suffix(surface, progress_index)
    mesh = _heatmap(axes[0, 0], surface, surface.drift[progress_index], "drift")
    fig.colorbar(mesh, ax=axes[0, 0], label="drift D(r, A)", extend="max")
    axes[0, 0].set_title(f"{surface.label}: drift D{suffix}")
    mesh = _heatmap(axes[0, 1], surface, surface.d_objective[progress_index], "grad")
    fig.colorbar(mesh, ax=axes[0, 1], label="d(rA - D)/dr  (red: pushes r up)", extend="both")
    axes[0, 1].set_title(f"{surface.label}: d objective / dr{suffix}")
    return save_png(fig, path)


def _slice_axes(ax, surface: Surface, advantages, progress_index: int = 0) -> None:
    r = surface.grid.ratio
    colours = matplotlib.colormaps["coolwarm"]
    span = max(abs(x) for x in advantages)
    ends = []
    for value in advantages:
        row = int(np.argmin(np.abs(surface.grid.advantage - value)))
        a = surface.grid.advantage[row]
        colour = colours(0.5 + 0.5 * a / span)
        y = surface.d_objective[progress_index, row]
        ax.plot(r, y, color=colour, linewidth=1.8)
        ends.append((float(y[-1]), f"A={a:+.2g}", colour))
    # y-limits from the central 98% so a blow-up as r -> 0 does not flatten the rest.
    rows = [int(np.argmin(np.abs(surface.grid.advantage - v))) for v in advantages]
    values = surface.d_objective[progress_index, rows]
    low, high = np.percentile(values[np.isfinite(values)], [1, 99])
    pad = 0.08 * max(high - low, 1e-6)
    ax.set_ylim(low - pad, high + pad)
    # Labels at the right end of the lines instead of a legend, pushed apart
    # where lines end at the same height (e.g. PPO's clipped ones at 0).
    gap = 0.06 * (high - low + 2 * pad)
    placed: list[float] = []
    for y_end, text, colour in sorted(ends):
        y_text = max(y_end, placed[-1] + gap) if placed else y_end
        placed.append(y_text)
        ax.annotate(text, xy=(r[-1], y_end), xytext=(r[-1] + 0.03 * (r[-1] - r[0]), y_text),
                    fontsize=8, color=colour, va="center",
                    arrowprops={"arrowstyle": "-", "color": colour, "linewidth": 0.5})
    ax.axhline(0.0, color="grey", linewidth=0.6)
    _mark_r1(ax)
    ax.set_xlim(r[0], r[-1] + 0.2 * (r[-1] - r[0]))  # room for the end labels
    ax.set_xlabel(R_LABEL)
    ax.set_ylabel("d(rA - D)/dr")
    ax.grid(alpha=0.3)


def plot_slices(surfaces: list[Surface], path: str | Path,
                advantages: tuple[float, ...] = SLICE_ADVANTAGES) -> Path:
    """One panel per drift: d(objective)/dr against r at fixed advantages,
    each line labelled with its A (blue negative, red positive)."""
    fig, axes = _figure(len(surfaces), 1)
    for ax, surface in zip(axes[0], surfaces, strict=True):
        _slice_axes(ax, surface, advantages)
        ax.set_title(f"{surface.label}: slices at fixed A")
    return save_png(fig, path)


def plot_panel(surfaces: list[Surface], path: str | Path) -> Path:
    """Drifts side by side: top row D, bottom row d(objective)/dr, one colour
    scale per row so the drifts are directly comparable."""
    fig, axes = _figure(len(surfaces), 2)
    top_d = _robust_top([s.drift[0] for s in surfaces], absolute=False)
    top_g = _robust_top([s.d_objective[0] for s in surfaces], absolute=True)
    for column, surface in enumerate(surfaces):
        mesh_d = _heatmap(axes[0, column], surface, surface.drift[0], "drift", top_d)
        axes[0, column].set_title(f"{surface.label}: D")
        mesh_g = _heatmap(axes[1, column], surface, surface.d_objective[0], "grad", top_g)
        axes[1, column].set_title(f"{surface.label}: d objective / dr")
    fig.colorbar(mesh_d, ax=list(axes[0]), label="drift D(r, A)", extend="max")
    fig.colorbar(mesh_g, ax=list(axes[1]), label="d(rA - D)/dr", extend="both")
    return save_png(fig, path)


def plot_progress(surface: Surface, path: str | Path) -> Path:
    """Small multiples of d(objective)/dr over (r, A), one per progress value
    (temporal drifts), on one shared colour scale."""
    n = len(surface.grid.progress)
    fig, axes = _figure(n, 1)
    top = _robust_top([surface.d_objective], absolute=True)
    for index, ax in enumerate(axes[0]):
        mesh = _heatmap(ax, surface, surface.d_objective[index], "grad", top)
        ax.set_title(f"{surface.label}: progress {surface.grid.progress[index]:.2f}")
    fig.colorbar(mesh, ax=list(axes[0]), label="d(rA - D)/dr", extend="both")
    return save_png(fig, path)


def _progress_suffix(surface: Surface, index: int) -> str:
    if len(surface.grid.progress) > 1 or surface.grid.progress[index] != 0:
        return f" (progress {surface.grid.progress[index]:.2f})"
    return ""
