"""Uncertainty calibration: does the shown standard deviation match the actual error?

A std map is useful to a reader only if large values mark large errors. Three views: the
coverage, the fraction of voxels with |error| <= k · std (95.4 % for k = 2 if errors were
Gaussian with that std); the Spearman rank correlation of std with |error| (does a higher
std mean a larger error at all?); and a reliability diagram, voxels binned by predicted std
(equal-count bins) against their root-mean-square error (on the diagonal when calibrated).

References
----------
D. Levi, L. Gispan, N. Giladi and E. Fetaya, "Evaluating and calibrating uncertainty
prediction in regression tasks", Sensors 22(15), 5540, 2022 (RMSE-vs-std reliability
diagrams for regression).
V. Kuleshov, N. Fenner and S. Ermon, "Accurate uncertainties for deep learning using
calibrated regression", ICML 2018.
C. Spearman, "The proof and measurement of association between two things", Am. J.
Psychol. 15(1), 72-101, 1904.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
from scipy import stats

from ..errors import ConfigError, rule_message
from ..metrics.image import ArrayLike
from ..noise.checks import check_number
from ._arrays import as_volume, same_shape

__all__ = ["empirical_error_std", "std_error_spearman", "uncertainty_calibration"]


def _reliability(std: np.ndarray, err: np.ndarray, n_bins: int, k: float) -> list[dict]:
    order = np.argsort(std, kind="stable")
    bins = []
    for part in np.array_split(order, n_bins):
        if part.size:
            s, e = std[part], err[part]
            bins.append({"std_mean": float(s.mean()), "rmse": float(np.sqrt(np.mean(e * e))),
                         "coverage": float(np.mean(np.abs(e) <= k * s)), "count": int(part.size)})
    return bins


def std_error_spearman(std: np.ndarray, error: np.ndarray) -> float:
    """Spearman's ρ of ``std`` with ``|error|`` (same voxels, flat); NaN when either is constant.

    >>> std_error_spearman(np.array([1.0, 2.0, 3.0]), np.array([-0.1, 0.5, -0.9]))
    1.0
    """
    if np.ptp(std) == 0 or np.ptp(np.abs(error)) == 0:
        return math.nan
    return float(stats.spearmanr(std, np.abs(error)).statistic)


def uncertainty_calibration(clean: ArrayLike, output: ArrayLike, std: ArrayLike, *, k: float = 2.0,
                            n_bins: int = 10, max_voxels: int = 200_000,
                            empirical_std: ArrayLike | None = None) -> dict:
    """Coverage, Spearman correlation and reliability bins of ``std`` against |output - clean|.

    Parameters
    ----------
    clean, output, std : arrays of one shape
        Reference, denoised image and the shown per-voxel standard deviation (>= 0).
    k : float, default 2
        Coverage multiplier: |error| <= k · std counts as covered.
    n_bins : int, default 10
        Reliability bins (equal voxel counts, by std).
    max_voxels : int, default 200 000
        Spearman's ρ and the bins use every ⌈n / max_voxels⌉-th voxel (deterministic stride).
    empirical_std : array, optional
        The per-voxel RMS error of the same method over other noise draws of the same image
        (:func:`empirical_error_std`): a std that knows where the method errs. Its Spearman ρ with
        |error| (``spearman_empirical``) is what a std map could reach on this image, up to the
        scatter of a finite number of draws: a yardstick for ``spearman``.

    Returns
    -------
    dict
        ``coverage`` (all voxels), ``spearman`` (NaN when std or error is constant),
        ``bins`` (``std_mean``, ``rmse``, ``coverage``, ``count``), ``k``; with ``empirical_std``
        also ``spearman_empirical`` (same voxels as ``spearman``).

    Raises
    ------
    ConfigError
        Negative std values, or ``k`` / ``n_bins`` out of range.

    Examples
    --------
    >>> err = np.array([[0.1, -0.2, 0.3, -0.4]])
    >>> uncertainty_calibration(np.zeros((1, 4)), err, np.abs(err) / 2.0, n_bins=2)["coverage"]
    1.0
    """
    ref = as_volume("clean", clean)
    err = (same_shape(ref, "output", output) - ref).ravel()
    spread = same_shape(ref, "std", std).ravel()
    if spread.min() < 0:
        raise ConfigError(rule_message("std minimum", "must be >= 0", float(spread.min()),
                                       "Pass a standard deviation map, not a signed difference."))
    k = check_number("k", k, low=0.0, low_open=True, fix="Use 2 (a 95 % band for Gaussian errors).")
    bins = int(check_number("n_bins", n_bins, low=1, integer=True, fix="Use 10."))
    stride = max(1, math.ceil(err.size / int(max_voxels)))
    e, s = err[::stride], spread[::stride]
    result = {"coverage": float(np.mean(np.abs(err) <= k * spread)), "spearman": std_error_spearman(s, e),
              "bins": _reliability(s, e, bins, k), "k": k}
    if empirical_std is not None:
        empirical = same_shape(ref, "empirical_std", empirical_std).ravel()[::stride]
        result["spearman_empirical"] = std_error_spearman(empirical, e)
    return result


def empirical_error_std(clean: ArrayLike, outputs: Iterable[ArrayLike]) -> np.ndarray:
    """Per-voxel root-mean-square of ``output - clean`` over ``outputs`` (one per independent noise draw; any
    iterable, consumed one at a time): the error's spread *and* its bias at each voxel, which is what a shown std
    should track.

    >>> empirical_error_std(np.zeros((1, 1, 2)), [np.array([[[3.0, 0.0]]]), np.array([[[-3.0, 4.0]]])]).round(4)
    array([[[3.    , 2.8284]]])
    """
    ref = as_volume("clean", clean)
    total, count = np.zeros(ref.shape, np.float64), 0
    for output in outputs:
        total += (same_shape(ref, f"outputs[{count}]", output) - ref) ** 2
        count += 1
    if count == 0:
        raise ConfigError(rule_message("outputs", "must hold at least one denoised draw", 0,
                                       "Denoise one or more fresh noise draws of the same image."))
    return np.sqrt(total / count)
