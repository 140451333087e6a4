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

Neither the spread nor the floor says *where* a smoothing model errs most: at edges, which it blurs,
and more so the steeper they are. With an edge term (also the default) the shown std adds
``(e * |∇ŷ|)^2`` under the root, ``|∇ŷ|`` being the in-plane gradient magnitude of the denoised image
per voxel (:func:`edge_strength`), so ``e`` is a length in voxels: how far an edge seems to move. All
ratios to ``s`` are fitted together by the same likelihood, so a term the errors do not support gets a
weight near 0. A blurred edge is wrong on both sides of it, over about the blur's width, not only on
the voxel of steepest gradient; so the gradient magnitude may be spread in-plane by a Gaussian whose
width (0 = not spread) is chosen from :data:`EDGE_WIDTHS` by the same likelihood.

Scaling alone leaves the ranking (Spearman correlation of std with error) unchanged; the floor
flattens it and the edge term is what sharpens it again.
"""

from __future__ import annotations

import logging
from typing import Any, NamedTuple, Sequence

import numpy as np
from scipy import ndimage
from scipy.optimize import minimize

from .errors import ConfigError, rule_message
from .inference.tta import SHARED_VIEWS
from .noise.checks import check_number

logger = logging.getLogger(__name__)

__all__ = ["CARD_KEY", "COVERAGE_FACTOR", "EDGE_UNITS", "EDGE_WIDTHS", "EDGE_WIDTH_UNITS", "FLOOR_UNITS",
           "StdCalibration", "coverage", "edge_strength", "fit_std_floor", "fit_std_scale", "fit_std_terms",
           "profile_nll", "shown_std", "std_calibration_for"]

CARD_KEY = "uncertainty_calibration"
FLOOR_UNITS = "fraction of the volume's estimated noise std (the report's noise_sigma)"
EDGE_UNITS = "voxels (times the in-plane gradient magnitude of the denoised image per voxel)"
EDGE_WIDTH_UNITS = "voxels (in-plane Gaussian sigma spreading the gradient magnitude; 0 = not spread)"
EDGE_WIDTHS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)
"""Widths the calibration tries for the edge term's spread, in voxels."""
_LOG_RATIO_LIMIT = 60.0  # |log| of a term's weight ratio (arrays scaled to max 1): e^120 cannot overflow a square
_GRID_VOXELS = 100_000  # the coarse likelihood grid looks at most at this many voxels (an even stride)
COVERAGE_FACTOR = 2.0
"""The shown interval is +/- this many stds (the Slicer labels and the fidelity report use 2)."""


def coverage(error: np.ndarray, std: np.ndarray, factor: float = COVERAGE_FACTOR) -> float:
    """Share of voxels whose absolute error lies within ``factor`` x std."""
    error, std = np.abs(np.asarray(error, np.float64)), np.asarray(std, np.float64)
    if error.shape != std.shape or error.size == 0:
        raise ConfigError(rule_message("error / std", "must be non-empty arrays of one shape",
                                       (error.shape, std.shape), "Pass the error and std of the same voxels."))
    return float(np.mean(error <= factor * std))


def _check_pair(error: np.ndarray, std: np.ndarray, target: float, name: str = "std") -> None:
    if not 0.0 < target < 1.0:
        raise ConfigError(rule_message("target", "must lie in (0, 1)", target, "Use e.g. 0.9."))
    if error.shape != std.shape or error.size == 0:
        raise ConfigError(rule_message(f"error / {name}", "must be non-empty arrays of one shape",
                                       (error.shape, std.shape), "Pass the error and std of the same voxels."))
    for label, array in (("error", error), (name, std)):
        bad = int(array.size - np.count_nonzero(np.isfinite(array)))
        if bad:
            raise ConfigError(rule_message(label, "must be finite", f"{bad} NaN/Inf values",
                                           "Calibrate on finite images (check the model's output and the data)."))


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
    """``(s, f)`` for the shown std ``sqrt((s * std)^2 + f^2)``: :func:`fit_std_terms` with a constant second term.

    Errors that the spread explains give ``f`` near 0; a spread of 0 everywhere gives a pure floor.

    >>> s, f = fit_std_floor(np.array([1.0, -1.0, 1.0, -1.0]), np.zeros(4), target=0.75)
    >>> round(f, 6)
    0.5
    """
    scale, floor = fit_std_terms(error, [std, np.ones(np.shape(std))], target=target, factor=factor)
    return scale, floor


def fit_std_terms(error: np.ndarray, terms: Sequence[np.ndarray], *, target: float = 0.9,
                  factor: float = COVERAGE_FACTOR) -> tuple[float, ...]:
    """Weights ``w`` of the shown std ``sqrt(sum_i (w_i * terms[i])^2)``: the ratios ``w_i / w_0`` maximise the
    Gaussian likelihood of ``error``, then all weights share one factor so that ``target`` of the voxels are covered.

    For fixed ratios ``r`` the likelihood's best ``w_0^2`` is ``mean(error^2 / v)`` with
    ``v = terms[0]^2 + sum_i r_i^2 terms[i]^2``, so only the ratios are searched: a coarse log grid, then a
    Nelder-Mead refinement from its best point. Voxels where every term is 0 are left out of the likelihood (no
    weight can cover them). A term that is 0 everywhere gets weight 0; when the first one is, the rest are
    fitted without it and it gets weight 1 (it adds nothing).

    >>> fit_std_terms(np.array([2.0, -2.0]), [np.zeros(2), np.ones(2)], target=0.5)
    (1.0, 1.0)
    """
    error = np.abs(np.asarray(error, np.float64)).ravel()
    arrays = [np.abs(np.asarray(term, np.float64)).ravel() for term in terms]
    if not arrays:
        raise ConfigError(rule_message("terms", "must hold at least one array", 0, "Pass the spread first."))
    for index, array in enumerate(arrays):
        _check_pair(error, array, target, f"terms[{index}]")
    if not np.any(error):
        return (1.0,) + (0.0,) * (len(arrays) - 1)
    if not arrays[0].any():
        if len(arrays) == 1:
            raise ConfigError(rule_message("std", "must be positive somewhere to be scaled", 0.0,
                                           "Calibrate with TTA >= 2 or MC dropout."))
        return (1.0,) + fit_std_terms(error, arrays[1:], target=target, factor=factor)
    live = [i for i in range(1, len(arrays)) if arrays[i].any()]
    ratios = np.zeros(len(arrays))
    if live:
        ratios[live] = _best_ratios(error, arrays[0], [arrays[i] for i in live])
    spread = np.sqrt(sum((r * a) ** 2 for r, a in zip(ratios[1:], arrays[1:])) + arrays[0] ** 2)
    scale = fit_std_scale(error, spread, target=target, factor=factor)
    weights = (scale,) + tuple(float(scale * r) for r in ratios[1:])
    if not np.all(np.isfinite(weights)):
        raise ConfigError(rule_message("fitted std weights", "must be finite", weights,
                                       "Rescale the calibration data (its values under- or overflow)."))
    return weights


def _best_ratios(error: np.ndarray, anchor: np.ndarray, others: list[np.ndarray]) -> np.ndarray:
    """Ratios of ``others`` to ``anchor`` that maximise the profile Gaussian likelihood of ``error``.

    Every array is divided by its maximum first (so squares neither overflow nor underflow); the ratios found
    on those are converted back at the end.
    """
    covered = (anchor > 0) | np.any([o > 0 for o in others], axis=0)
    peaks = [float(anchor.max())] + [float(o.max()) for o in others]
    anchor, others = anchor[covered] / peaks[0], [o[covered] / p for o, p in zip(others, peaks[1:])]
    error = error[covered] / max(float(error.max()), np.finfo(np.float64).tiny)
    centres = np.array([np.log(np.sqrt(np.mean(anchor ** 2)) / np.sqrt(np.mean(o ** 2))) for o in others])

    def negative_log_likelihood(log_ratios: np.ndarray, stride: int = 1) -> float:
        log_ratios = np.clip(log_ratios, -_LOG_RATIO_LIMIT, _LOG_RATIO_LIMIT)  # a search running off stays finite
        variance = anchor[::stride] ** 2 + sum(np.exp(2.0 * v) * o[::stride] ** 2 for v, o in zip(log_ratios, others))
        return float(np.log(np.mean(error[::stride] ** 2 / variance)) + np.mean(np.log(variance)))

    stride = max(1, error.size // _GRID_VOXELS)
    axis = np.linspace(-9.0, 9.0, {1: 73, 2: 37}.get(len(others), 13))
    grid = np.stack(np.meshgrid(*[axis] * len(others), indexing="ij"), -1).reshape(-1, len(others)) + centres
    start = grid[int(np.argmin([negative_log_likelihood(point, stride) for point in grid]))]
    refined = minimize(negative_log_likelihood, start, method="Nelder-Mead",
                       options={"xatol": 1e-4, "fatol": 1e-10, "maxiter": 2000})
    best = refined.x if refined.fun <= negative_log_likelihood(start) else start
    return np.exp(np.clip(best, -_LOG_RATIO_LIMIT, _LOG_RATIO_LIMIT)) * peaks[0] / np.array(peaks[1:])


def fit_edge_width(error: np.ndarray, terms: Sequence[np.ndarray], gradients: Sequence[np.ndarray], *,
                   widths: Sequence[float] = EDGE_WIDTHS, target: float = 0.9) -> tuple[tuple[float, ...], float]:
    """``(weights, width)``: :func:`fit_std_terms` of ``terms`` plus an edge term, tried with each gradient map
    of ``gradients`` (one per entry of ``widths``); the width kept is the one whose std has the highest
    likelihood (:func:`profile_nll`; the first on a tie), and 0 when the edge term gets weight 0.

    >>> errors = np.array([0.0, 1.0, 4.0, 1.0, 0.0])
    >>> weights, width = fit_edge_width(errors, [np.full(5, 0.1)], [[0, 0, 4, 0, 0], [0, 1, 2, 1, 0]],
    ...                                 widths=(0.0, 1.0), target=0.8)
    >>> width
    1.0
    """
    if len(gradients) != len(widths):
        raise ConfigError(rule_message("gradients", "must hold one map per width", (len(gradients), list(widths)),
                                       "Compute edge_strength(denoised, width) for each width."))
    fits, stds = [], []
    for width, gradient in zip(widths, gradients):
        candidate = [*terms, gradient]
        weights = fit_std_terms(error, candidate, target=target)
        fits.append((weights, float(width)))
        stds.append(np.sqrt(sum((w * np.asarray(t, np.float64)) ** 2 for w, t in zip(weights, candidate))).ravel())
    scored = np.all([std > 0 for std in stds], axis=0)  # every width judged on the same voxels
    if not scored.any():
        raise ConfigError(rule_message("std terms", "must leave some voxel with std > 0 at every width", 0,
                                       "Fit with an error floor."))
    error = np.asarray(error, np.float64).ravel()[scored]
    scores = [profile_nll(error, std[scored]) for std in stds]
    weights, width = fits[int(np.argmin(scores))]  # the first on a tie
    return weights, width if weights[-1] > 0 else 0.0


def profile_nll(error: np.ndarray, std: np.ndarray) -> float:
    """Gaussian negative log-likelihood per voxel of ``error`` under ``c * std`` at the best common factor ``c``
    (up to a constant): ``log(mean(error^2 / std^2)) + mean(log std^2)``, over the voxels with std > 0. Lower is
    better; a common factor on ``std`` does not change it, so it compares std *shapes*.

    >>> round(profile_nll(np.array([1.0, 2.0]), np.array([1.0, 2.0])), 6)  # log(1) + mean(log(1), log(4))
    0.693147
    """
    error, std = np.asarray(error, np.float64).ravel(), np.asarray(std, np.float64).ravel()
    _check_pair(error, std, 0.5)
    live = std > 0
    if not live.any():
        raise ConfigError(rule_message("std", "must be positive somewhere", 0.0, "Fit with an error floor."))
    variance = std[live] ** 2
    misfit = max(float(np.mean(error[live] ** 2 / variance)), np.finfo(np.float64).tiny)
    return float(np.log(misfit) + np.mean(np.log(variance)))


class StdCalibration(NamedTuple):
    """How the pipeline turns the raw spread into the shown std (:func:`shown_std`)."""

    scale: float
    floor: float  # a fraction of the volume's estimated noise std
    meaning: str
    edge: float = 0.0  # voxels, times the denoised image's in-plane gradient magnitude
    edge_width: float = 0.0  # voxels: in-plane Gaussian sigma spreading that magnitude (0 = not spread)


def edge_strength(image: np.ndarray, width: float = 0.0) -> np.ndarray:
    """In-plane gradient magnitude per voxel: Sobel derivatives over y and x (each normalised so that a ramp
    rising by 1 per voxel gives 1), never mixing slices; float32 on the image's grid. With ``width`` > 0 the
    magnitude is then spread in-plane by a Gaussian of that sigma (voxels), which keeps a ramp's value.

    >>> ramp = np.tile(np.arange(5.0), (1, 4, 1))
    >>> float(edge_strength(ramp)[0, 1, 2])
    1.0
    """
    array = np.asarray(image, np.float32)
    if array.ndim < 2:
        raise ConfigError(rule_message("image", "must have at least 2 dimensions (y, x)", array.shape,
                                       "Pass a slice or a volume."))
    smooth, derive = np.array([1.0, 2.0, 1.0]) / 4.0, np.array([-1.0, 0.0, 1.0]) / 2.0
    along_x = ndimage.correlate1d(ndimage.correlate1d(array, derive, axis=-1, mode="nearest"), smooth, axis=-2,
                                  mode="nearest")
    along_y = ndimage.correlate1d(ndimage.correlate1d(array, derive, axis=-2, mode="nearest"), smooth, axis=-1,
                                  mode="nearest")
    magnitude = np.hypot(along_x, along_y).astype(np.float32)
    width = check_number("width", width, low=0.0, fix="Use 0 (not spread) or a Gaussian sigma in voxels.")
    if width > 0:
        sigmas = (0.0,) * (magnitude.ndim - 2) + (width, width)
        magnitude = ndimage.gaussian_filter(magnitude, sigmas, mode="nearest").astype(np.float32)
    return magnitude


def shown_std(raw_std: np.ndarray, calibration: StdCalibration, noise_sigma: float,
              denoised: np.ndarray) -> np.ndarray:
    """``sqrt((scale * raw)^2 + (floor * σ̂)^2 + (edge * |∇ denoised|)^2)`` as float32 (terms at 0 drop out),
    computed in place in float32 so a large volume needs no float64 temporaries."""
    std = np.multiply(raw_std, np.float32(calibration.scale), dtype=np.float32)
    np.square(std, out=std)
    std += np.float32((calibration.floor * noise_sigma) ** 2)
    if calibration.edge > 0:
        edges = edge_strength(denoised, calibration.edge_width)
        edges *= np.float32(calibration.edge)
        np.square(edges, out=edges)
        std += edges
    return np.sqrt(std, out=std)


def _entry(record: dict, key: str, source: str, tta: int) -> float:
    return float(((record.get(key) or {}).get(source) or {}).get(str(int(tta)), 0.0))


def _check_units(record: dict, key: str, units_key: str, expected: str) -> None:
    if key in record and record.get(units_key) != expected:
        raise ConfigError(rule_message(f"card uncertainty_calibration {units_key}", f"must be {expected!r}",
                                       record.get(units_key), "Re-run meddenoise calibrate on this model."))


def std_calibration_for(card: dict[str, Any], tta: int, source: str = "tta", mc_dropout: int = 0,
                        views: str | None = None) -> StdCalibration:
    """The scale, floor and edge term the card records for ``tta`` views and this uncertainty ``source``.

    Calibrations are fitted without Monte-Carlo dropout; runs with it, and models without a fitted
    scale, get scale 1, no floor or edge term and a description saying the std is the raw spread. Cards
    from before floors (or edge terms) existed have none (0). ``views``: the TTA view set of this run
    (``inference.tta``); above :data:`~.inference.tta.SHARED_VIEWS` passes a calibration fitted with another
    set (cards from before view sets: ``flips``) does not apply, and the raw spread is shown with a warning.
    """
    if mc_dropout > 0:
        return StdCalibration(1.0, 0.0, f"raw {source} spread over flips and {mc_dropout} MC-dropout samples "
                                        "(not calibrated)")
    record = card.get(CARD_KEY) or {}
    value = ((record.get("scales") or {}).get(source) or {}).get(str(int(tta)))
    if value is None:
        return StdCalibration(1.0, 0.0, f"raw {source} spread (no calibration recorded for TTA {tta})")
    fitted_views = record.get("tta_views") or ["flips"]
    if views is not None and tta > SHARED_VIEWS and views not in fitted_views:
        logger.warning("the card's std calibration was fitted with the %s TTA views, this run uses %s: showing the "
                       "raw spread (re-run meddenoise calibrate, or pass tta_views=%r)", fitted_views, views,
                       fitted_views[0])
        return StdCalibration(1.0, 0.0, f"raw {source} spread (calibrated with the {'/'.join(fitted_views)} views, "
                                        f"this run used {views}; re-run meddenoise calibrate)")
    _check_units(record, "floors", "floor_units", FLOOR_UNITS)
    _check_units(record, "edges", "edge_units", EDGE_UNITS)
    _check_units(record, "edge_widths", "edge_width_units", EDGE_WIDTH_UNITS)
    floor, edge = _entry(record, "floors", source, tta), _entry(record, "edges", source, tta)
    width = _entry(record, "edge_widths", source, tta) if edge > 0 else 0.0
    shown = (f"{source} spread x {float(value):.3g}" + (f" with floor {floor:.3g} x noise std" if floor > 0 else "")
             + (f" and edge term {edge:.3g} voxel x gradient" if edge > 0 else "")
             + (f" spread over {width:.3g} voxel" if width > 0 else ""))
    return StdCalibration(float(value), floor, f"{shown}, fitted for {record.get('target', 0.9):.0%} coverage of "
                                               "|error| <= 2 std on the model's training images", edge, width)


def summarise(scales: dict[str, dict[str, float]], *, target: float, data: Sequence[str], levels: Sequence[float],
              seed: int, coverage_before: dict[str, float], floors: dict[str, dict[str, float]] | None = None,
              crop: Sequence[int] | None = None, edges: dict[str, dict[str, float]] | None = None,
              spearman: dict[str, dict[str, float | None]] | None = None,
              edge_widths: dict[str, dict[str, float]] | None = None) -> dict[str, Any]:
    """The JSON-ready ``uncertainty_calibration`` card entry (``floors`` / ``edges`` / ``edge_widths`` only when
    fitted).

    ``spearman``: per ``source/tta``, the Spearman correlation of the raw spread and of the shown std with |error|
    on the calibration data (how well each ranks where the error is)."""
    terms = [name for name, fitted in (("an error floor", floors), ("an edge term", edges)) if fitted is not None]
    method = "sigma scaling (Laves et al., MIDL 2020)"
    entry: dict[str, Any] = {"method": method + (f" with {' and '.join(terms)} (Gaussian likelihood)" if terms else ""),
                             "target": target, "factor": COVERAGE_FACTOR, "scales": scales, "data": list(data),
                             "levels": [float(v) for v in levels], "seed": int(seed),
                             "coverage_before": coverage_before}
    if crop is not None:
        entry["crop"] = [int(v) for v in crop]
    if spearman is not None:
        entry["spearman"] = spearman
    if floors is not None:
        entry["floors"] = floors
        entry["floor_units"] = FLOOR_UNITS
    if edges is not None:
        entry["edges"] = edges
        entry["edge_units"] = EDGE_UNITS
    if edge_widths is not None:
        entry["edge_widths"] = edge_widths
        entry["edge_width_units"] = EDGE_WIDTH_UNITS
    return entry
