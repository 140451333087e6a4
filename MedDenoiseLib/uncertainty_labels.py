"""Uncertainty label map: quantise a per-voxel std map into 0 (transparent) / low / medium / high.

Thresholds are fractions of the estimated noise std of the input (``noise_sigma``, the
robust std of what the denoiser removed): a voxel whose predictive std is below
``thresholds[0] * noise_sigma`` gets label 0 (not shown), then 1 = low up to
``thresholds[1] * noise_sigma``, 2 = medium up to ``thresholds[2] * noise_sigma`` and
3 = high above. Tying the scale to the noise makes the overlay read the same on HU, MR
scanner units or ultrasound grey levels: "high" means the model's outputs disagree by
more than 0.4 of the noise it removed (with the default thresholds).

The per-voxel std of 8 flips is itself noisy (salt-and-pepper labels), so the labels are
computed on ``regional_std``: the root-mean-square of the std over an in-plane Gaussian
neighbourhood (sigma 2 voxels). The exported std map stays per voxel. The defaults
(0.25, 0.3, 0.4) were chosen on the demo (shipped MR model, 8 flips, held-out brain MR,
Rician 5 %): there the regional std has median 0.22, 85th percentile 0.26 and 99th
percentile 0.33 of the noise std, so about 80 % of voxels stay transparent. The labels are
therefore computed on the *raw* spread; the exported std map is the calibrated one (the raw
spread times the model card's fitted scale, combined with an error floor where the card has one,
:mod:`MedDenoiseLib.uncertainty_calibration`),
since raw TTA spread under-states the error (on that demo |error| <= 2 raw std held for
49 % of voxels).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ConfigError, rule_message

DEFAULT_THRESHOLDS = (0.25, 0.3, 0.4)
REGION_SIGMA_VOXELS = 2.0


@dataclass(frozen=True)
class LabelColor:
    index: int
    name: str
    rgba: tuple[int, int, int, int]


UNCERTAINTY_COLORS = (
    LabelColor(0, "background", (0, 0, 0, 0)),
    LabelColor(1, "low", (46, 204, 113, 255)),
    LabelColor(2, "medium", (241, 196, 15, 255)),
    LabelColor(3, "high", (231, 76, 60, 255)),
)
COLOR_TABLE_NAME = "MedDenoiseUncertainty"


def check_thresholds(thresholds: tuple[float, float, float]) -> tuple[float, float, float]:
    values = tuple(float(t) for t in thresholds)
    if len(values) != 3 or not (0 <= values[0] < values[1] < values[2]):
        raise ConfigError(rule_message("uncertainty thresholds", "must be 3 increasing non-negative numbers",
                                       thresholds, f"Use the defaults {DEFAULT_THRESHOLDS}."))
    return values  # type: ignore[return-value]


def uncertainty_labels(std: np.ndarray, noise_sigma: float,
                       thresholds: tuple[float, float, float] = DEFAULT_THRESHOLDS) -> np.ndarray:
    """uint8 label map (same shape as ``std``) using thresholds x ``noise_sigma``.

    With ``noise_sigma == 0`` (constant or noise-free input) every voxel with a
    non-zero std is 'high' and the rest 0, so nothing is hidden.
    """
    t = check_thresholds(thresholds)
    if not np.isfinite(noise_sigma) or noise_sigma < 0:
        raise ConfigError(rule_message("noise_sigma", "must be finite and >= 0", noise_sigma,
                                       "Estimate it with inference.noise_level.residual_noise_sigma."))
    std = np.asarray(std)
    if noise_sigma == 0:
        return np.where(std > 0, 3, 0).astype(np.uint8)
    edges = np.asarray(t) * noise_sigma
    return np.digitize(std, edges, right=False).astype(np.uint8)


def regional_std(std: np.ndarray, sigma_voxels: float = REGION_SIGMA_VOXELS) -> np.ndarray:
    """RMS of a (z, y, x) std map over an in-plane Gaussian neighbourhood (never across slices)."""
    from scipy.ndimage import gaussian_filter

    variance = np.asarray(std, dtype=np.float32) ** 2
    return np.sqrt(gaussian_filter(variance, sigma=(0.0, sigma_voxels, sigma_voxels), mode="nearest")).astype(np.float32)


def write_color_table(path: str | Path) -> Path:
    """Write the label colours as a Slicer colour table (``.ctbl``: index name r g b a)."""
    path = Path(path)
    lines = [f"# Color table file {path.name}", f"# {len(UNCERTAINTY_COLORS)} values"]
    lines += [f"{c.index} {c.name} {' '.join(str(v) for v in c.rgba)}" for c in UNCERTAINTY_COLORS]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
