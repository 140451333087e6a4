"""Before/after/uncertainty figure of the middle slice (matplotlib, Agg backend, no display)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..uncertainty_labels import UNCERTAINTY_COLORS


def std_title(report: dict) -> str:
    """Panel title naming what the std map holds: the raw spread, or the calibrated std and its terms."""
    if report.get("std_scale") in (None, 1.0) and not report.get("std_floor") and not report.get("std_edge"):
        return "uncertainty (raw TTA std)"
    terms = ["spread"] + (["floor"] if report.get("std_floor") else []) + (["edge"] if report.get("std_edge") else [])
    return f"uncertainty (calibrated std: {' + '.join(terms)})"


def save_comparison_figure(path: Path, clean, noisy, denoised, std, labels, scores: dict,
                           std_label: str = "uncertainty (std)") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    k = noisy.shape[0] // 2
    low, high = np.percentile(clean[k], [0.5, 99.5])
    panels = [(clean, "clean reference"), (noisy, f"noisy  PSNR {scores['psnr_noisy']:.2f} dB"),
              (denoised, f"denoised  PSNR {scores['psnr_denoised']:.2f} dB")]
    fig, axes = plt.subplots(1, 5, figsize=(17, 3.8))
    for ax, (image, title) in zip(axes, panels):
        ax.imshow(image[k], cmap="gray", vmin=low, vmax=high)
        ax.set_title(title, fontsize=9)
    shown = axes[3].imshow(std[k], cmap="magma")
    axes[3].set_title(std_label, fontsize=9)
    fig.colorbar(shown, ax=axes[3], fraction=0.046)
    colors = [tuple(v / 255 for v in c.rgba) for c in UNCERTAINTY_COLORS]
    axes[4].imshow(denoised[k], cmap="gray", vmin=low, vmax=high)
    axes[4].imshow(labels[k], cmap=ListedColormap(colors), vmin=0, vmax=len(colors) - 1, interpolation="nearest", alpha=0.6)
    axes[4].set_title("uncertainty labels (low/med/high)", fontsize=9)
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
