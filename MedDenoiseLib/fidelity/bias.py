"""Intensity (HU) bias of an output in uniform regions of the clean image.

A denoiser must not shift mean intensities: in CT a 2 HU shift of soft tissue changes
quantitative reads (liver steatosis, lesion enhancement). The bias is the mean of
(output - clean) over every voxel of the uniform ROIs (:mod:`.rois`), in image units
(HU for CT) and in percent of the clean mean there (the unit used for MR, US, X-ray).

References
----------
E. Samei et al., AAPM Task Group 233, Med. Phys. 46(11), e735-e756, 2019 (CT number
accuracy and uniformity in uniform ROIs).
"""

from __future__ import annotations

import math

import numpy as np

from ..metrics.image import ArrayLike
from ._arrays import as_volume, same_shape
from .rois import UniformROIs

__all__ = ["intensity_bias"]


def intensity_bias(clean: ArrayLike, output: ArrayLike, rois: UniformROIs, *, modality: str = "ct") -> dict:
    """Mean (output - clean) in the uniform ROIs.

    Parameters
    ----------
    clean, output : array (z, y, x) or (H, W), same shape
    rois : UniformROIs
        Uniform regions of ``clean`` (:func:`find_uniform_rois`).
    modality : str, default "ct"
        ``"ct"`` reports ``value`` in HU; any other modality in percent of the clean mean.

    Returns
    -------
    dict
        ``bias`` (image units), ``bias_percent`` (100 · bias / mean clean in the ROIs; NaN
        when that mean is 0), ``value`` and ``unit`` (HU or %, what the verdict reads),
        ``roi_max_abs`` (largest |bias| of a single ROI) and ``n_rois``.

    Examples
    --------
    >>> from MedDenoiseLib.fidelity.rois import find_uniform_rois
    >>> clean = np.full((1, 8, 8), 40.0)
    >>> rois = find_uniform_rois(clean, size=4, foreground=False)
    >>> intensity_bias(clean, clean + 2.5, rois)["value"]
    2.5
    """
    ref = as_volume("clean", clean)
    out = same_shape(ref, "output", output)
    diff = rois.patches(out - ref)
    bias = float(diff.mean())
    level = float(rois.patches(ref).mean())
    percent = 100.0 * bias / abs(level) if level != 0 else math.nan
    is_ct = modality == "ct"
    return {"bias": bias, "bias_percent": percent, "value": bias if is_ct else percent, "unit": "HU" if is_ct else "%",
            "roi_max_abs": float(np.abs(diff.mean(axis=(1, 2))).max()), "n_rois": len(rois)}
