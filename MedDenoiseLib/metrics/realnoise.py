r"""Scoring a denoiser on real noise, without a clean image, from two repeated acquisitions.

Let :math:`y_1 = x + n_1` and :math:`y_2 = x + n_2` be two acquisitions of the same anatomy
:math:`x` (same position, no motion), with noise that is zero-mean, independent between the
two acquisitions, and of variance :math:`\sigma^2` per voxel. For a denoiser :math:`f` applied
to :math:`y_1` only, :math:`f(y_1)` is independent of :math:`n_2`, so

.. math::

   E\,\lVert f(y_1) - y_2 \rVert^2 = E\,\lVert f(y_1) - x \rVert^2 + N\sigma^2,

and :math:`\widehat{\mathrm{SE}} = \lVert f(y_1) - y_2 \rVert^2 - N\sigma^2` is an *unbiased*
estimate of the squared error to the unknown clean image (N voxels). Divided by N it
estimates the MSE; a perfect denoiser scores about 0 and the identity scores about
:math:`\sigma^2`. The same identity is what lets Noise2Noise train on noisy pairs.

:math:`\sigma^2` is estimated from the pair itself: :math:`\mathrm{Var}(y_1 - y_2) = 2\sigma^2`.
This needs identical noise levels in both acquisitions and no misregistration (motion between
the two scans inflates the estimate and the score alike).

Caveats
-------
* MR magnitude images are Rician, not zero-mean: in low-SNR regions (< 3σ) both acquisitions
  carry the same positive bias, which the difference cancels but :math:`f(y_1) - y_2` does not.
  Score inside a foreground mask, or on complex / real-valued reconstructions.
* CT and X-ray noise is signal dependent: use a per-voxel variance map ``sigma`` (e.g. from
  local variance of :math:`(y_1 - y_2)/\sqrt{2}`) or accept an average.

References
----------
J. Lehtinen et al., "Noise2Noise: learning image restoration without clean data", ICML 2018.
C. M. Stein, "Estimation of the mean of a multivariate normal distribution", Ann. Stat. 9(6),
1981 (unbiased risk estimation without the clean signal).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ConfigError, rule_message
from .image import ArrayLike, _data_range, _mask, _pair, _to_float64

__all__ = ["noise_sigma_from_pairs", "paired_acquisition_mse", "paired_acquisition_psnr"]


def noise_sigma_from_pairs(first: ArrayLike, second: ArrayLike, *, mask: ArrayLike | None = None) -> float:
    """Noise std of one acquisition from two repeats: std(y1 - y2) / sqrt(2) (ddof = 1).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = np.linspace(0, 1, 40_000)
    >>> y1, y2 = x + rng.normal(0, 0.1, x.size), x + rng.normal(0, 0.1, x.size)
    >>> round(noise_sigma_from_pairs(y1, y2), 2)
    0.1
    """
    a, b = _pair(first, second)
    sel = _mask(mask, a.shape)
    diff = (a - b)[sel] if sel is not None else (a - b).ravel()
    if diff.size < 2:
        raise ConfigError(rule_message("number of voxels compared", "must be >= 2", diff.size,
                                       "Use a larger mask or image."))
    return float(np.std(diff, ddof=1) / math.sqrt(2.0))


def paired_acquisition_mse(denoised_first: ArrayLike, second: ArrayLike, *, sigma: float | ArrayLike,
                           mask: ArrayLike | None = None) -> float:
    """Unbiased estimate of mean((f(y1) - x)²) from ``f(y1)`` and a second acquisition ``y2``.

    Parameters
    ----------
    denoised_first : array or tensor
        The denoiser's output on the first acquisition, f(y1).
    second : array or tensor
        The second acquisition y2 (never seen by the denoiser), same grid.
    sigma : float or array
        Noise std of y2 in its units: a number, or a per-voxel map of the same shape
        (signal-dependent noise). :func:`noise_sigma_from_pairs` estimates a global value.
    mask : array, optional
        Voxels to score (e.g. foreground, where MR noise is close to Gaussian).

    Returns
    -------
    float
        mean((f(y1) - y2)²) - mean(σ²). It can be negative by chance when the true error is
        small compared with the noise (it is unbiased, not non-negative).

    Examples
    --------
    >>> y2 = np.array([1.0, -1.0, 1.0, -1.0])  # clean x = 0, noise of std 1
    >>> paired_acquisition_mse(np.zeros(4), y2, sigma=1.0)  # a perfect f(y1) = x
    0.0
    """
    f, y2 = _pair(denoised_first, second)
    sel = _mask(mask, f.shape)
    if isinstance(sigma, (int, float)) and not isinstance(sigma, bool):
        if not math.isfinite(sigma) or sigma < 0:
            raise ConfigError(rule_message("sigma", "must be a finite number >= 0", sigma,
                                           "Estimate it with noise_sigma_from_pairs(y1, y2)."))
        variance = np.full(f.shape, float(sigma) ** 2)
    else:
        s = _to_float64("sigma", sigma)
        if s.shape != f.shape or np.any(s < 0):
            raise ConfigError(rule_message("sigma map", f"must be >= 0 with the image shape {f.shape}", s.shape,
                                           "Pass one number, or a per-voxel std map on the image grid."))
        variance = s * s
    err = (f - y2) ** 2 - variance
    return float(err[sel].mean() if sel is not None else err.mean())


def paired_acquisition_psnr(denoised_first: ArrayLike, second: ArrayLike, *, sigma: float | ArrayLike,
                            data_range: float, mask: ArrayLike | None = None) -> float:
    """PSNR (dB) from :func:`paired_acquisition_mse`; ``math.inf`` when the estimate is <= 0.

    Examples
    --------
    >>> round(paired_acquisition_psnr(np.zeros(4), np.array([1.1, -0.9, 1.1, -0.9]), sigma=1.0,
    ...                               data_range=1.0), 2)  # MSE estimate 1.01 - 1 = 0.01
    20.0
    """
    r = _data_range(data_range)
    mse = paired_acquisition_mse(denoised_first, second, sigma=sigma, mask=mask)
    return math.inf if mse <= 0 else float(10.0 * math.log10(r * r / mse))
