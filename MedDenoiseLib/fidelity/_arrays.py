"""Input checks shared by the fidelity metrics: volumes, matching shapes, voxel spacing.

Every fidelity metric works on (z, y, x) volumes; a 2D image ``(H, W)`` is taken as one
slice ``(1, H, W)``. Values must be real and finite (the image metrics' checks are reused),
and nothing is clamped silently.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..errors import ConfigError, ShapeError, rule_message
from ..metrics.image import ArrayLike, _to_float64

__all__ = ["as_volume", "same_shape", "check_spacing"]


def as_volume(name: str, x: ArrayLike) -> np.ndarray:
    """``x`` as a finite float64 (z, y, x) array; 2D images gain a leading slice axis.

    Examples
    --------
    >>> as_volume("clean", np.zeros((3, 4))).shape
    (1, 3, 4)
    """
    arr = _to_float64(name, x)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise ShapeError(rule_message(f"{name} dimensions", "must be 2 (H, W) or 3 (z, y, x)", arr.ndim,
                                      "Pass one image or one volume (select a channel of 4D data first)."))
    return arr


def same_shape(reference: np.ndarray, name: str, x: ArrayLike) -> np.ndarray:
    """``x`` checked by :func:`as_volume` and required to have ``reference``'s shape."""
    arr = as_volume(name, x)
    if arr.shape != reference.shape:
        raise ShapeError(rule_message(f"{name} shape", f"must equal the clean image's shape {reference.shape}",
                                      arr.shape, "Score outputs on the clean image's grid."))
    return arr


def check_spacing(spacing_zyx: Sequence[float] | None) -> tuple[float, float, float]:
    """Voxel size (z, y, x) in mm, each finite and > 0; None means 1 mm voxels.

    Examples
    --------
    >>> check_spacing([3, 0.5, 0.5])
    (3.0, 0.5, 0.5)
    """
    if spacing_zyx is None:
        return (1.0, 1.0, 1.0)
    values = tuple(spacing_zyx)
    ok = len(values) == 3 and all(isinstance(v, (int, float, np.floating)) and not isinstance(v, bool)
                                  and math.isfinite(float(v)) and float(v) > 0 for v in values)
    if not ok:
        raise ConfigError(rule_message("spacing_zyx", "must be 3 finite numbers > 0 (mm, z-y-x order)", spacing_zyx,
                                       "Pass the volume's spacing reversed from ITK's (x, y, z), e.g. (3, 0.7, 0.7)."))
    return tuple(float(v) for v in values)  # type: ignore[return-value]
