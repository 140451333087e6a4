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

Part of a model's error does not show in the spread at all: texture and native noise of the
reference that every flip removes alike. With an error floor (the default of ``meddenoise
calibrate``) the shown std is ``sqrt((s * spread)^2 + f^2)``: the ratio ``f / s`` is the one
that maximises the Gaussian likelihood of the calibration errors, then both are scaled together
to reach the target coverage. ``f`` is stored as a fraction of the volume's estimated noise std σ̂
(what the denoiser removed, the report's ``noise_sigma``): the error no flip shows (texture and
noise of the image itself) grows with the noise and follows the scan's intensity scale, which the
input normalisation's range does not (it depends on what the field of view holds).

Scaling, with or without the floor, leaves the ranking (Spearman correlation of std with error)
unchanged.
"""

from __future__ import annotations

import logging
from typing import Any, NamedTuple, Sequence

import numpy as np
from scipy.optimize import minimize_scalar

from .errors import ConfigError, rule_message

logger = logging.getLogger(__name__)

__all__ = ["CARD_KEY", "COVERAGE_FACTOR", "FLOOR_UNITS", "StdCalibration", "fit_std_scale", "fit_std_floor", "std_calibration_for",
           "coverage"]

CARD_KEY = "uncertainty_calibration"
FLOOR_UNITS = "fraction of the volume's estimated noise std (the report's noise_sigma)"
COVERAGE_FACTOR = 2.0
"""The shown interval is +/- this many stds (the Slicer labels and the fidelity report use 2)."""


def coverage(error: np.ndarray, std: np.ndarray, factor: float = COVERAGE_FACTOR) -> float:
    """Share of voxels whose absolute error lies within ``factor`` x std."""
    error, std = np.abs(np.asarray(error, np.float64)), np.asarray(std, np.float64)
    if error.shape != std.shape or error.size == 0:
        raise ConfigError(rule_message("error / std", "must be non-empty arrays of one shape",
                                       (error.shape, std.shape), "Pass the error and std of the same voxels."))
    return float(np.mean(error <= factor * std))


def _check_pair(error: np.ndarray, std: np.ndarray, target: float) -> None:
    if not 0.0 < target < 1.0:
        raise ConfigError(rule_message("target", "must lie in (0, 1)", target, "Use e.g. 0.9."))
    if error.shape != std.shape or error.size == 0:
        raise ConfigError(rule_message("error / std", "must be non-empty arrays of one shape",
                                       (error.shape, std.shape), "Pass the error and std of the same voxels."))


def fit_std_scale(error: np.ndarray, std: np.ndarray, *, target: float = 0.9,
                  factor: float = COVERAGE_FACTOR) -> float:
    """Smallest ``s`` with ``coverage(error, s * std) >= target`` (voxels with std 0 are left out).

    >>> round(fit_std_scale(np.array([1.0, 2.0, 3.0, 4.0]), np.ones(4), target=0.75), 6)
    1.5
    """
    error, std = np.abs(np.asarray(error, np.float64)).ravel(), np.asarray(std, np.float64).ravel()
    _check_pair(error, std, target)
    spread = std > 0
    if not spread.any():
        raise ConfigError(rule_message("std", "must be positive somewhere to be scaled", 0.0,
                                       "Calibrate with TTA >= 2 or MC dropout."))
    ratios = np.sort(error[spread] / std[spread])
    index = int(np.ceil(target * ratios.size)) - 1
    return float(ratios[max(index, 0)] / factor)


def fit_std_floor(error: np.ndarray, std: np.ndarray, *, target: float = 0.9,
                  factor: float = COVERAGE_FACTOR) -> tuple[float, float]:
    """``(s, f)`` for the shown std ``sqrt((s * std)^2 + f^2)``: the ratio ``f / s`` maximises the Gaussian
    likelihood of ``error``, then ``s`` and ``f`` share one factor so that ``target`` of the voxels are covered.

    For fixed ``r = f / s`` the likelihood's best ``s^2`` is ``mean(error^2 / (std^2 + r^2))``, so only ``r`` is
    searched (a coarse log grid, then a bounded refinement around its best point). Errors that the spread
    explains give ``f`` near 0; a spread of 0 everywhere gives a pure floor.

    >>> s, f = fit_std_floor(np.array([1.0, -1.0, 1.0, -1.0]), np.zeros(4), target=0.75)
    >>> round(f, 6)
    0.5
    """
    error, std = np.abs(np.asarray(error, np.float64)).ravel(), np.asarray(std, np.float64).ravel()
    _check_pair(error, std, target)
    scale_of_error = float(np.sqrt(np.mean(error ** 2)))
    if scale_of_error == 0.0:
        return 1.0, 0.0
    if not (std > 0).any():
        return 1.0, fit_std_scale(error, np.ones_like(error), target=target, factor=factor)
    squared_error = error ** 2

    def negative_log_likelihood(log_ratio: float) -> float:
        spread2 = std ** 2 + np.exp(2.0 * log_ratio)
        scale2 = np.mean(squared_error / spread2)
        return float(np.mean(np.log(scale2 * spread2)))

    grid = np.log(scale_of_error) + np.linspace(-12.0, 6.0, 73)  # coarse log grid, then refine around its best
    costs = [negative_log_likelihood(v) for v in grid]
    k = int(np.argmin(costs))
    best = minimize_scalar(negative_log_likelihood, bounds=(grid[max(k - 1, 0)], grid[min(k + 1, grid.size - 1)]),
                           method="bounded", options={"xatol": 1e-4})
    ratio = float(np.exp(best.x if best.fun <= costs[k] else grid[k]))
    scale = fit_std_scale(error, np.sqrt(std ** 2 + ratio ** 2), target=target, factor=factor)
    return scale, scale * ratio


class StdCalibration(NamedTuple):
    """How the pipeline turns the raw spread into the shown std: ``sqrt((scale * spread)^2 + (floor * σ̂)^2)``."""

    scale: float
    floor: float  # a fraction of the volume's estimated noise std
    meaning: str


def std_calibration_for(card: dict[str, Any], tta: int, source: str = "tta", mc_dropout: int = 0) -> StdCalibration:
    """The scale and floor the card records for ``tta`` flips and this uncertainty ``source``.

    Calibrations are fitted without Monte-Carlo dropout; runs with it, and models without a fitted
    scale, get scale 1, floor 0 and a description saying the std is the raw spread. Cards from before
    floors existed have none (floor 0).
    """
    if mc_dropout > 0:
        return StdCalibration(1.0, 0.0, f"raw {source} spread over flips and {mc_dropout} MC-dropout samples "
                                        "(not calibrated)")
    record = card.get(CARD_KEY) or {}
    value = ((record.get("scales") or {}).get(source) or {}).get(str(int(tta)))
    if value is None:
        return StdCalibration(1.0, 0.0, f"raw {source} spread (no calibration recorded for TTA {tta})")
    floor = float(((record.get("floors") or {}).get(source) or {}).get(str(int(tta)), 0.0))
    if "floors" in record and record.get("floor_units") != FLOOR_UNITS:
        raise ConfigError(rule_message("card uncertainty_calibration floor_units", f"must be {FLOOR_UNITS!r}",
                                       record.get("floor_units"), "Re-run meddenoise calibrate on this model."))
    shown = f"{source} spread x {float(value):.3g}" + (f" with floor {floor:.3g} x noise std" if floor > 0 else "")
    return StdCalibration(float(value), floor, f"{shown}, fitted for {record.get('target', 0.9):.0%} coverage of "
                                               "|error| <= 2 std on the model's training images")


def summarise(scales: dict[str, dict[str, float]], *, target: float, data: Sequence[str], levels: Sequence[float],
              seed: int, coverage_before: dict[str, float], floors: dict[str, dict[str, float]] | None = None,
              crop: Sequence[int] | None = None) -> dict[str, Any]:
    """The JSON-ready ``uncertainty_calibration`` card entry (``floors`` only when fitted)."""
    entry: dict[str, Any] = {"method": "sigma scaling (Laves et al., MIDL 2020)", "target": target,
                             "factor": COVERAGE_FACTOR, "scales": scales, "data": list(data),
                             "levels": [float(v) for v in levels], "seed": int(seed),
                             "coverage_before": coverage_before}
    if crop is not None:
        entry["crop"] = [int(v) for v in crop]
    if floors is not None:
        entry["method"] = "sigma scaling (Laves et al., MIDL 2020) with an error floor (Gaussian likelihood)"
        entry["floors"] = floors
        entry["floor_units"] = FLOOR_UNITS
    return entry
