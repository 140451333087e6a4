"""Calibrated uncertainty: one scale per model and TTA count, fitted on the model's own training data.

The spread of test-time-augmentation (TTA) predictions is a useful *ranking* of where a
model is unsure, but its size is not the size of the error: flips of one network agree
with each other far more than they agree with the truth. Sigma scaling (Laves et al.,
"Well-calibrated regression uncertainty in medical imaging with deep learning", MIDL 2020;
Kuleshov et al., ICML 2018) fixes the size with one factor ``s`` fitted on data with a known
answer: the shown std is ``s * spread``. Here ``s`` is chosen so that a target share of
foreground voxels (default 90 %) satisfies ``|error| <= 2 * s * spread`` on fresh noise
drawn over the model's training images (never the held-out evaluation cases). The factor
depends on how many flips are averaged, so one is fitted per TTA count and stored in the
model card under ``uncertainty_calibration``; the pipeline applies it and says so.

Scaling leaves the ranking (Spearman correlation of std with error) unchanged.
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

import numpy as np

from .errors import ConfigError, rule_message

logger = logging.getLogger(__name__)

__all__ = ["CARD_KEY", "COVERAGE_FACTOR", "fit_std_scale", "std_scale_for", "coverage"]

CARD_KEY = "uncertainty_calibration"
COVERAGE_FACTOR = 2.0
"""The shown interval is +/- this many stds (the Slicer labels and the fidelity report use 2)."""


def coverage(error: np.ndarray, std: np.ndarray, factor: float = COVERAGE_FACTOR) -> float:
    """Share of voxels whose absolute error lies within ``factor`` x std."""
    error, std = np.abs(np.asarray(error, np.float64)), np.asarray(std, np.float64)
    if error.shape != std.shape or error.size == 0:
        raise ConfigError(rule_message("error / std", "must be non-empty arrays of one shape",
                                       (error.shape, std.shape), "Pass the error and std of the same voxels."))
    return float(np.mean(error <= factor * std))


def fit_std_scale(error: np.ndarray, std: np.ndarray, *, target: float = 0.9,
                  factor: float = COVERAGE_FACTOR) -> float:
    """Smallest ``s`` with ``coverage(error, s * std) >= target`` (voxels with std 0 are left out).

    >>> round(fit_std_scale(np.array([1.0, 2.0, 3.0, 4.0]), np.ones(4), target=0.75), 6)
    1.5
    """
    if not 0.0 < target < 1.0:
        raise ConfigError(rule_message("target", "must lie in (0, 1)", target, "Use e.g. 0.9."))
    error, std = np.abs(np.asarray(error, np.float64)).ravel(), np.asarray(std, np.float64).ravel()
    if error.shape != std.shape:
        raise ConfigError(rule_message("error / std", "must have one shape", (error.shape, std.shape),
                                       "Pass the error and std of the same voxels."))
    spread = std > 0
    if not spread.any():
        raise ConfigError(rule_message("std", "must be positive somewhere to be scaled", 0.0,
                                       "Calibrate with TTA >= 2 or MC dropout."))
    ratios = np.sort(error[spread] / std[spread])
    index = int(np.ceil(target * ratios.size)) - 1
    return float(ratios[max(index, 0)] / factor)


def std_scale_for(card: dict[str, Any], tta: int, source: str = "tta", mc_dropout: int = 0) -> tuple[float, str]:
    """(scale, description) the card records for ``tta`` flips and this uncertainty ``source``.

    Scales are fitted without Monte-Carlo dropout; runs with it, and models without a fitted
    scale, get 1.0 and a description saying the std is the raw spread.
    """
    if mc_dropout > 0:
        return 1.0, f"raw {source} spread over flips and {mc_dropout} MC-dropout samples (not calibrated)"
    record = card.get(CARD_KEY) or {}
    scales = (record.get("scales") or {}).get(source) or {}
    value = scales.get(str(int(tta)))
    if value is None:
        return 1.0, f"raw {source} spread (no calibration recorded for TTA {tta})"
    return float(value), (f"{source} spread x {float(value):.3g}, fitted for {record.get('target', 0.9):.0%} "
                          f"coverage of |error| <= 2 std on the model's training images")


def summarise(scales: dict[str, dict[str, float]], *, target: float, data: Sequence[str], levels: Sequence[float],
              seed: int, coverage_before: dict[str, float]) -> dict[str, Any]:
    """The JSON-ready ``uncertainty_calibration`` card entry."""
    return {"method": "sigma scaling (Laves et al., MIDL 2020)", "target": target, "factor": COVERAGE_FACTOR,
            "scales": scales, "data": list(data), "levels": [float(v) for v in levels], "seed": int(seed),
            "coverage_before": coverage_before}
