"""Report figures (matplotlib, Agg backend, no display): panels, metric-vs-noise curves, timing."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["plot_panels", "plot_metric_curves", "plot_timing"]


def _figure(width: float, height: float):
    """A figure drawn by the Agg canvas, without pyplot (no global backend or figure state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def plot_panels(panel: dict, level: float, level_name: str, path: Path) -> Path:
    """Clean | noisy | every method (same grey window), then each model's uncertainty (std) map."""
    images = [("clean", panel["clean"]), ("noisy", panel["noisy"])]
    images += [(name, img) for name, img in panel["outputs"].items() if name != "noisy"]
    extra = [(f"{name}\nuncertainty (std)", img) for name, img in panel["uncertainty"].items()]
    low, high = np.percentile(panel["clean"], [1, 99])
    if high <= low:
        low, high = float(panel["clean"].min()), float(panel["clean"].max()) + 1e-6
    n = len(images) + len(extra)
    cols = min(n, 5)
    rows = math.ceil(n / cols)
    fig = _figure(3.0 * cols, 3.1 * rows)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (title, img) in zip(axes.ravel(), images + extra):
        if "uncertainty" in title:
            shown = ax.imshow(img, cmap="magma")
            fig.colorbar(shown, ax=ax, fraction=0.046)
        else:
            ax.imshow(img, cmap="gray", vmin=low, vmax=high)
        ax.set_title(title, fontsize=9)
    fig.suptitle(f"{panel['case']}, {level_name} = {level:g} (middle slice)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def plot_metric_curves(summary: list[dict], methods: list[str], levels: list[float], level_name: str,
                       path: Path, metrics: tuple[str, ...] = ("psnr", "ssim", "dice")) -> Path:
    """Mean ± SD of each metric against the noise level, one line per method."""
    fig = _figure(4.2 * len(metrics), 3.4)
    axes = fig.subplots(1, len(metrics), squeeze=False)
    order = sorted(levels)
    for ax, metric in zip(axes[0], metrics):
        for method in methods:
            rows = {r["level"]: r for r in summary if r["metric"] == metric and r["method"] == method}
            mean = [rows[lv]["mean"] for lv in order]
            sd = [0.0 if math.isnan(rows[lv]["sd"]) else rows[lv]["sd"] for lv in order]
            ax.errorbar(order, mean, yerr=sd, marker="o", capsize=3, label=method)
        ax.set_xlabel(level_name)
        ax.set_title(metric.upper() if metric != "dice" else "Dice (tissue classes)")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def plot_timing(timing: list[dict], path: Path) -> Path:
    """Mean seconds per image for each method (log scale; ``noisy`` omitted)."""
    rows = [r for r in timing if r["method"] != "noisy" and r["mean_seconds"] > 0]
    fig = _figure(6.0, 0.45 * max(len(rows), 1) + 1.2)
    ax = fig.subplots()
    ax.barh([r["method"] for r in rows], [r["mean_seconds"] for r in rows],
            xerr=[0.0 if math.isnan(r["sd_seconds"]) else r["sd_seconds"] for r in rows], color="tab:blue")
    ax.set_xscale("log")
    ax.set_xlabel("seconds per image (mean ± SD)")
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path
