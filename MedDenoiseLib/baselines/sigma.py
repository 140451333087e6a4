"""Blind noise-level estimate used when a baseline is called with ``sigma=None``.

References
----------
D. L. Donoho and I. M. Johnstone, "Ideal spatial adaptation by wavelet shrinkage",
Biometrika 81(3), 425-455, 1994 (the median absolute deviation of the finest diagonal
wavelet sub-band, divided by 0.6745, estimates the standard deviation of white Gaussian
noise). Implemented by ``skimage.restoration.estimate_sigma``.
"""

from __future__ import annotations

import logging

import numpy as np

from ._common import check_image, optional_import, squeeze_single_slice

logger = logging.getLogger(__name__)

__all__ = ["estimate_noise_sigma"]


def estimate_noise_sigma(array: np.ndarray) -> float:
    """Robust standard deviation of additive white noise, in the image's intensity units.

    Parameters
    ----------
    array : np.ndarray
        ``(H, W)``, ``(D, H, W)`` or ``(1, H, W)`` image, real and finite.

    Returns
    -------
    float
        sigma_hat = median(|d|) / 0.6745 over the finest diagonal Daubechies-1 detail
        coefficients d (Donoho & Johnstone 1994), via ``skimage.restoration.estimate_sigma``.

    Notes
    -----
    The estimate assumes white, signal-independent noise; for Rician, Poisson or speckle
    noise it returns an average level, and correlated noise (CT after filtered back-projection)
    is under-estimated because its power is not concentrated in the finest sub-band.
    Needs scikit-image (``pip install 'meddenoise[baselines]'``).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> round(estimate_noise_sigma(rng.normal(0, 0.1, (128, 128))), 2)
    0.1
    """
    work, _ = squeeze_single_slice(check_image(array))
    restoration = optional_import("skimage.restoration", method="sigma estimate", extra="baselines",
                                  package="scikit-image")
    sigma = float(restoration.estimate_sigma(work, channel_axis=None))
    logger.debug("estimated noise sigma %.6g on shape %s", sigma, work.shape)
    return sigma
