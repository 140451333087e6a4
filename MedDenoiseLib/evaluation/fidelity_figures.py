"""Clinical fidelity figures (matplotlib, Agg canvas): NPS and TTF curves, reliability diagram, lesion CNR."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np

from .figures import _figure

logger = logging.getLogger(__name__)

__all__ = ["plot_nps_curves", "plot_ttf_curves", "plot_reliability", "plot_lesion_cnr"]


def _save(fig, ax, path: Path, *, legend: bool = True) -> Path:
    if legend and ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def plot_nps_curves(curves: dict[str, dict], case: str, path: Path) -> Path:
    """Radial NPS of each method's residual noise, normalised to unit area (texture, not magnitude)."""
    fig = _figure(5.6, 3.8)
    ax = fig.subplots()
    for method, c in curves.items():
        if "nps" not in c:
            continue
        f, nps = np.asarray(c["nps"]["frequency"]), np.asarray(c["nps"]["nps"])
        area = float(np.sum(nps))
        if area > 0:
            ax.plot(f, nps / area, label=method, lw=2.0 if method == "noisy" else 1.2,
                    ls="--" if method == "noisy" else "-")
    ax.set_xlabel("spatial frequency (cycles/mm)")
    ax.set_ylabel("NPS / Σ NPS")
    ax.set_title(f"Noise power spectrum of the residual noise ({case})", fontsize=9)
    return _save(fig, ax, path)


def plot_ttf_curves(curves: dict[str, dict], clean_ttf: dict | None, case: str, path: Path) -> Path:
    """TTF of the inserted disc for the clean insert, the noisy input and each method."""
    fig = _figure(5.6, 3.8)
    ax = fig.subplots()
    if clean_ttf:
        ax.plot(clean_ttf["frequency"], clean_ttf["ttf"], color="black", lw=2.0, label="clean insert")
    for method, c in curves.items():
        if "ttf" in c:
            ax.plot(c["ttf"]["frequency"], c["ttf"]["ttf"], label=method, lw=2.0 if method == "noisy" else 1.2,
                    ls="--" if method == "noisy" else "-")
    ax.axhline(0.5, color="grey", lw=0.8)
    ax.set_ylim(0, 1.1)
    ax.set_xlabel("spatial frequency (cycles/mm)")
    ax.set_ylabel("TTF")
    ax.set_title(f"Task transfer function of the inserted disc ({case})", fontsize=9)
    return _save(fig, ax, path)


def plot_reliability(curves: dict[str, dict], case: str, path: Path) -> Path:
    """RMS error against mean predicted std per std bin; calibrated maps lie on the diagonal."""
    fig = _figure(4.6, 4.2)
    ax = fig.subplots()
    top = 0.0
    for method, c in curves.items():
        bins = c.get("reliability")
        if not bins:
            continue
        std = [b["std_mean"] for b in bins]
        rmse = [b["rmse"] for b in bins]
        ax.plot(std, rmse, marker="o", label=method)
        top = max(top, max(std), max(rmse))
    if top > 0:
        ax.plot([0, top], [0, top], color="grey", lw=0.8, ls=":", label="calibrated")
    ax.set_xlabel("predicted std (bin mean)")
    ax.set_ylabel("RMS error in the bin")
    ax.set_title(f"Reliability of the uncertainty map ({case})", fontsize=9)
    return _save(fig, ax, path)


def plot_lesion_cnr(records: list[dict], path: Path) -> Path:
    """Each lesion's CNR after a method against its CNR in the noisy input (every case)."""
    fig = _figure(4.6, 4.2)
    ax = fig.subplots()
    top = 0.0
    for method in dict.fromkeys(r["method"] for r in records if r["method"] != "noisy"):
        pairs = [(les.get("cnr_noisy"), les["cnr"]) for r in records if r["method"] == method for les in r["lesions"]]
        pairs = [(a, b) for a, b in pairs if a is not None and math.isfinite(a) and math.isfinite(b)]
        if pairs:
            x, y = zip(*pairs)
            ax.scatter(x, y, s=18, label=method)
            top = max(top, max(x), max(y))
    if top > 0:
        ax.plot([0, top], [0, top], color="grey", lw=0.8, ls=":", label="same as noisy")
    ax.set_xlabel("lesion CNR, noisy input")
    ax.set_ylabel("lesion CNR, method output")
    ax.set_title("Inserted low-contrast lesions", fontsize=9)
    return _save(fig, ax, path)
