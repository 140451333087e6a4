"""BM4D baseline through the ``bm4d`` package (optional extra, non-commercial licence).

The ``bm4d`` wheel (Mäkinen, Azzari & Foi, Tampere University) is free for non-commercial
use only: MedDenoise never imports it at runtime unless this method is requested, and
installs it only through ``pip install 'meddenoise[bm4d]'``. Version 4.2 takes Gaussian
noise (a std or a PSD) and has no variance-stabilising transform of its own, so Rician data
go through :mod:`~MedDenoiseLib.baselines.vst` (Foi 2011) first.
"""

from __future__ import annotations

import logging

import numpy as np

from ..errors import ConfigError, rule_message
from ._common import check_image, check_sigma, optional_import, resolve_sigma, restore, squeeze_single_slice
from .vst import rician_vst, rician_vst_inverse

logger = logging.getLogger(__name__)

__all__ = ["denoise_bm4d", "BM4D_NOISE", "BM4D_PROFILES"]

BM4D_NOISE = ("gaussian", "rician")
BM4D_PROFILES = ("np", "refilter")


def denoise_bm4d(array: np.ndarray, *, sigma: float | None = None, noise: str = "gaussian",
                 profile: str = "np") -> np.ndarray:
    """Block-matching and 4D collaborative filtering (hard thresholding, then Wiener).

    Parameters
    ----------
    array : np.ndarray
        ``(H, W)``, ``(D, H, W)`` or ``(1, H, W)`` (denoised as one slice), real and finite.
    sigma : float, optional
        Noise std in image units (for ``noise="rician"``: the std of each complex channel);
        None estimates it (:func:`~MedDenoiseLib.baselines.estimate_noise_sigma`).
    noise : {"gaussian", "rician"}, default "gaussian"
        - ``"gaussian"``: additive white noise of std ``sigma`` (CT, X-ray after log, generic).
        - ``"rician"``: MR magnitude; the data are stabilised with
          :func:`~MedDenoiseLib.baselines.vst.rician_vst`, denoised with unit std, and mapped
          back with the exact unbiased inverse (Foi 2011).
    profile : {"np", "refilter"}, default "np"
        The package's parameter sets: normal profile, or with refiltering.

    Returns
    -------
    np.ndarray
        Same shape; same dtype for float input, float32 for integer input.

    Raises
    ------
    MissingDependencyError
        If the ``bm4d`` package is not installed.
    ConfigError
        Unknown ``noise`` or ``profile``, or a negative ``sigma``.

    Notes
    -----
    Cost grows quickly with volume size (about 10 s for 16 x 48 x 48 voxels on one CPU core):
    crop volumes for evaluation. Volumes thinner than the package's 3D block (fewer slices
    than its block depth) are denoised slice by slice in 2D. With ``sigma == 0`` the input is
    returned unchanged.

    References
    ----------
    M. Maggioni, V. Katkovnik, K. Egiazarian and A. Foi, "Nonlocal transform-domain filter for
    volumetric data denoising and reconstruction", IEEE TIP 22(1), 119-133, 2013.
    Y. Mäkinen, L. Azzari and A. Foi, "Collaborative filtering of correlated noise: exact
    transform-domain variance for improved shrinkage and patch matching", IEEE TIP 29,
    8339-8354, 2020 (the ``bm4d`` package).
    A. Foi, ISBI 2011 (Rician VST).

    Examples
    --------
    >>> denoise_bm4d(np.zeros((4, 4)), sigma=0.0).shape  # doctest: +SKIP
    (4, 4)
    """
    sigma = check_sigma(sigma)
    if noise not in BM4D_NOISE:
        raise ConfigError(rule_message("noise", f"must be one of {BM4D_NOISE}", noise,
                                       "Use 'rician' for MR magnitude images, 'gaussian' otherwise."))
    if profile not in BM4D_PROFILES:
        raise ConfigError(rule_message("profile", f"must be one of {BM4D_PROFILES}", profile, "Use 'np'."))
    bm4d = optional_import("bm4d", method="bm4d", extra="bm4d")
    work = check_image(array)
    level = resolve_sigma(work, sigma)
    plane, squeezed = squeeze_single_slice(work)
    if level == 0.0:
        return restore(plane.copy(), array, squeezed)

    def run(data: np.ndarray) -> np.ndarray:  # 2D data go in as one slice along the last axis
        z = data[..., None] if data.ndim == 2 else data
        if noise == "rician":
            result = rician_vst_inverse(bm4d.bm4d(rician_vst(z, level), 1.0, profile=profile), level)
        else:
            result = bm4d.bm4d(z, level, profile=profile)
        return np.asarray(result, dtype=np.float64).reshape(data.shape)

    reference = bm4d.BM4DProfile()
    min_depth = max(reference.bs_ht[0], reference.bs_wiener[0])
    if plane.ndim == 3 and plane.shape[0] < min_depth:  # thinner than a 3D block: slice by slice
        logger.info("bm4d: %d slices < block depth %d, denoising slice by slice", plane.shape[0], min_depth)
        out = np.stack([run(s) for s in plane])
    else:
        out = run(plane)
    logger.debug("bm4d (%s, sigma %.4g) on %s", noise, level, plane.shape)
    return restore(out, array, squeezed)
