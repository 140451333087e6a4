"""Median filter baseline (SimpleITK ``Median``)."""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError, rule_message
from ._common import check_sigma
from ._sitk import run_sitk_filter

__all__ = ["denoise_median"]


def denoise_median(array: np.ndarray, *, sigma: float | None = None, radius: int = 1) -> np.ndarray:
    """Replace each voxel by the median of its ``(2 radius + 1)``-wide box neighbourhood.

    Parameters
    ----------
    array : np.ndarray
        ``(H, W)``, ``(D, H, W)`` or ``(1, H, W)`` (filtered as 2D), real and finite.
    sigma : float, optional
        Noise standard deviation; accepted for the common signature, not used (the
        strength of a rank filter is its ``radius``).
    radius : int, default 1
        Half-width in voxels along every axis (1 gives 3x3 or 3x3x3, as in Gondara 2016's
        median-filter comparison).

    Returns
    -------
    np.ndarray
        Same shape; same dtype for float input, float32 for integer input.

    Notes
    -----
    ``SimpleITK.Median`` (ITK ``MedianImageFilter``; Slicer's "Median Image Filter" module).

    References
    ----------
    J. W. Tukey, "Exploratory Data Analysis", Addison-Wesley, 1977 (running medians).

    Examples
    --------
    >>> img = np.zeros((5, 5)); img[2, 2] = 9.0  # an isolated impulse disappears
    >>> float(denoise_median(img).max())
    0.0
    """
    check_sigma(sigma)
    if isinstance(radius, bool) or not isinstance(radius, (int, np.integer)) or radius < 1:
        raise ConfigError(rule_message("radius", "must be an integer >= 1", radius, "Use 1 for a 3-voxel window."))

    def apply(image, ndim):
        import SimpleITK as sitk

        return sitk.Median(image, [int(radius)] * ndim)

    return run_sitk_filter(array, apply, method="median")
