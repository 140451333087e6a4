"""Hallucination check: low-frequency structure in the error at edges that the noise did not have.

Noise is mostly high-frequency; after a Gaussian low-pass its energy almost vanishes. What
survives a low-pass in (output - clean) is *structure*: blurred or displaced edges, invented
or erased detail. The check compares the low-pass residual of an output with that of the
noisy input, inside the clean image's strongest edges, where invented or erased anatomy
shows first.

References
----------
V. Antun, F. Renna, C. Poon, B. Adcock and A. C. Hansen, "On instabilities of deep learning
in image reconstruction and the potential costs of AI", PNAS 117(48), 30088-30095, 2020
(learned reconstructions that add or remove structure).
The DUAL-NET seed paper of this project (``evaluation/reproductions/dualnet.py``) warns of
hallucinated and erased structure; this check is MedDenoise's own operationalisation.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from ..metrics.image import ArrayLike
from ..noise.checks import check_number
from ._arrays import as_volume, same_shape

__all__ = ["edge_mask", "structured_residual"]


def edge_mask(clean: ArrayLike, *, quantile: float = 0.9, sigma_px: float = 1.0) -> np.ndarray:
    """Voxels whose in-plane Gaussian gradient magnitude of ``clean`` is in the top ``1 - quantile``.

    Examples
    --------
    >>> img = np.zeros((1, 16, 16)); img[:, :, 8:] = 1.0
    >>> bool(edge_mask(img)[0, 8, 7:9].all()), bool(edge_mask(img)[0, 8, 0])
    (True, False)
    """
    volume = as_volume("clean", clean)
    q = check_number("quantile", quantile, low=0.0, high=1.0, high_open=True, fix="Use 0.9 (the top 10 %).")
    sigma = (0.0, sigma_px, sigma_px)  # in-plane only (gaussian_gradient_magnitude would add d/dz as identity)
    magnitude = np.hypot(ndimage.gaussian_filter(volume, sigma, order=(0, 1, 0)),
                         ndimage.gaussian_filter(volume, sigma, order=(0, 0, 1)))
    level = float(np.quantile(magnitude, q))
    return magnitude >= level if level > 0 else magnitude > 0


def structured_residual(clean: ArrayLike, noisy: ArrayLike, output: ArrayLike, *, lowpass_px: float = 2.0,
                        quantile: float = 0.9) -> dict:
    """RMS of the low-passed residual inside edges, for ``output`` and for ``noisy``, and their ratio.

    Parameters
    ----------
    clean, noisy, output : arrays of one shape (z, y, x) or (H, W)
    lowpass_px : float, default 2
        In-plane Gaussian low-pass standard deviation (voxels) applied to each residual.
    quantile : float, default 0.9
        Edge mask threshold (:func:`edge_mask`).

    Returns
    -------
    dict
        ``edge_rms`` = sqrt(mean over edges of LP(output - clean)²), ``edge_rms_noisy`` the
        same for the noisy input, ``ratio`` = edge_rms / edge_rms_noisy (1 for the input;
        above 1: more edge structure in the error than the noise itself left there) and
        ``edge_voxels``.

    Examples
    --------
    >>> img = np.zeros((1, 16, 16)); img[:, :, 8:] = 1.0
    >>> round(structured_residual(img, img + 0.1, img + 0.3)["ratio"], 6)  # a constant offset passes the low-pass
    3.0
    """
    ref = as_volume("clean", clean)
    noisy_v = same_shape(ref, "noisy", noisy)
    out = same_shape(ref, "output", output)
    width = check_number("lowpass_px", lowpass_px, low=0.0, low_open=True, fix="Use 2 voxels.")
    edges = edge_mask(ref, quantile=quantile)

    def rms(residual: np.ndarray) -> float:
        low = ndimage.gaussian_filter(residual, sigma=(0.0, width, width), mode="reflect")
        return float(np.sqrt(np.mean(low[edges] ** 2)))

    value, reference = rms(out - ref), rms(noisy_v - ref)
    ratio = value / reference if reference > 0 else (math.inf if value > 0 else 1.0)
    return {"edge_rms": value, "edge_rms_noisy": reference, "ratio": ratio, "edge_voxels": int(edges.sum())}
