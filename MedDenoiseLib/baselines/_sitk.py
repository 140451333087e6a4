"""numpy <-> SimpleITK for the filter baselines (the only place they meet).

Arrays are in numpy order, ``(D, H, W)`` or ``(H, W)``; ``spacing`` is given in the same
order and reversed here into ITK's (x, y, z). A ``(1, H, W)`` volume is filtered as a 2D
image so that 3D kernels never reach across a missing slice axis.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..errors import ConfigError, rule_message
from ._common import check_image, optional_import, restore, squeeze_single_slice

__all__ = ["run_sitk_filter", "check_spacing"]


def check_spacing(spacing: Sequence[float] | None, ndim: int) -> tuple[float, ...] | None:
    """Validate ``spacing`` (numpy axis order, one positive value per axis) or pass None through."""
    if spacing is None:
        return None
    values = tuple(float(s) for s in spacing)
    if len(values) != ndim or not all(np.isfinite(values)) or min(values) <= 0:
        raise ConfigError(rule_message("spacing", f"must hold {ndim} finite values > 0 in array axis order",
                                       tuple(spacing), "Pass e.g. (2.5, 0.7, 0.7) for (z, y, x) in mm, or None "
                                       "to work in voxel units."))
    return values


def run_sitk_filter(array: np.ndarray, apply: Callable[["object", int], "object"], *,
                    spacing: Sequence[float] | None = None, method: str) -> np.ndarray:
    """Run ``apply(image, ndim)`` on ``array`` as a float64 SimpleITK image; return the array result.

    ``spacing`` (numpy order, full input ndim) sets the image spacing; a (1, H, W) input drops
    its first entry together with the singleton axis.
    """
    sitk = optional_import("SimpleITK", method=method, extra="baselines")
    work = check_image(array)
    spacing = check_spacing(spacing, work.ndim)
    plane, squeezed = squeeze_single_slice(work)
    image = sitk.GetImageFromArray(np.ascontiguousarray(plane, dtype=np.float64))
    if spacing is not None:
        image.SetSpacing(tuple(reversed(spacing[1:] if squeezed else spacing)))
    out = sitk.GetArrayFromImage(apply(image, plane.ndim))
    return restore(out, array, squeezed)
