"""Clean in -> clean out: what a denoiser does to an image that has no noise to remove.

An already clean, high-CNR scan must come back unchanged: a denoiser that smooths it
anyway costs sharp images their edges. The metric is the PSNR between the clean
reference and the method's output *on that clean reference*; an exact identity gives
PSNR = ∞, reported as ``cap_db`` so tables and means stay finite.
"""

from __future__ import annotations

import math

from ..metrics import psnr
from ..metrics.image import ArrayLike
from ..noise.checks import check_number
from ._arrays import as_volume, same_shape

__all__ = ["IDENTITY_CAP_DB", "clean_in_clean_out"]

IDENTITY_CAP_DB = 100.0
"""PSNR reported for an output identical to the clean input (float32 round-off sits near 140 dB)."""


def clean_in_clean_out(clean: ArrayLike, output_on_clean: ArrayLike, *, data_range: float | None = None,
                       cap_db: float = IDENTITY_CAP_DB) -> float:
    """PSNR(clean, f(clean)) in dB, capped at ``cap_db``.

    Parameters
    ----------
    clean : array (z, y, x) or (H, W)
        Clean reference image.
    output_on_clean : array, same shape
        The method's output when its input is ``clean`` itself.
    data_range : float, optional
        Intensity scale R of the PSNR; default the clean image's max - min.
    cap_db : float, default 100
        Value reported for identical images (and any higher PSNR).

    Returns
    -------
    float
        min(PSNR, ``cap_db``); PSNR = 10 log10(R² / MSE).

    References
    ----------
    A. Horé and D. Ziou, "Image quality metrics: PSNR vs. SSIM", ICPR 2010 (PSNR).

    Examples
    --------
    >>> import numpy as np
    >>> img = np.arange(16.0).reshape(4, 4)
    >>> clean_in_clean_out(img, img)
    100.0
    >>> round(clean_in_clean_out(img, img + 0.15), 2)  # 10 log10(15² / 0.15²)
    40.0
    """
    ref = as_volume("clean", clean)
    out = same_shape(ref, "output_on_clean", output_on_clean)
    cap = check_number("cap_db", cap_db, low=0.0, low_open=True, fix="Use 100 dB.")
    span = float(ref.max() - ref.min()) if data_range is None else data_range
    value = psnr(ref, out, data_range=span)
    return cap if math.isinf(value) or value > cap else float(value)
