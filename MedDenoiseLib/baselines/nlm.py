"""Non-local means baselines: scikit-image (Gaussian noise) and DIPY (Rician-corrected)."""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError, rule_message
from ._common import check_image, check_positive, check_sigma, optional_import, resolve_sigma, restore
from ._common import squeeze_single_slice

__all__ = ["denoise_nlm", "denoise_dipy_nlm"]


def _int_at_least(name: str, value: object, low: int, fix: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ConfigError(rule_message(name, f"must be an integer >= {low}", value, fix))
    return int(value)


def denoise_nlm(array: np.ndarray, *, sigma: float | None = None, h_factor: float = 0.8,
                patch_size: int | None = None, patch_distance: int | None = None) -> np.ndarray:
    """Non-local means of scikit-image (``skimage.restoration.denoise_nl_means``, fast mode).

    Parameters
    ----------
    array : np.ndarray
        ``(H, W)``, ``(D, H, W)`` or ``(1, H, W)`` (filtered as 2D), real and finite.
    sigma : float, optional
        Noise std in image units; None estimates it. Passed to scikit-image, which subtracts
        2 sigma² from patch distances, and sets the filtering strength h = h_factor x sigma.
    h_factor : float, default 0.8
        h / sigma; scikit-image's gallery uses 0.6-0.8 with ``sigma`` given.
    patch_size, patch_distance : int, optional
        Patch width and search radius in voxels; None gives 5 and 6 in 2D (Buades et al.'s
        small-window setting), 3 and 4 in 3D (to keep 3D run times in minutes).

    Returns
    -------
    np.ndarray
        Same shape; same dtype for float input, float32 for integer input. sigma = 0
        returns the input unchanged.

    Notes
    -----
    NL(v)(i) = sum_j w(i, j) v(j), w ∝ exp(-max(d²(P_i, P_j) - 2σ², 0) / h²) over the search
    window, with the blockwise "fast mode" of Darbon et al. (2008). Float data are not
    rescaled by scikit-image, so intensities keep their units.

    References
    ----------
    A. Buades, B. Coll and J.-M. Morel, "A non-local algorithm for image denoising", CVPR 2005.
    J. Darbon et al., "Fast nonlocal filtering applied to electron cryomicroscopy", ISBI 2008.

    Examples
    --------
    >>> denoise_nlm(np.ones((12, 12)), sigma=0.1).shape  # doctest: +SKIP
    (12, 12)
    """
    sigma = check_sigma(sigma)
    h_factor = check_positive("h_factor", h_factor, "Use 0.8.")
    restoration = optional_import("skimage.restoration", method="nlm", extra="baselines", package="scikit-image")
    work = check_image(array)
    plane, squeezed = squeeze_single_slice(work)
    level = resolve_sigma(work, sigma)
    if level == 0.0:
        return restore(plane.copy(), array, squeezed)
    size = (5 if plane.ndim == 2 else 3) if patch_size is None else \
        _int_at_least("patch_size", patch_size, 1, "Use 5 (2D) or 3 (3D).")
    distance = (6 if plane.ndim == 2 else 4) if patch_distance is None else \
        _int_at_least("patch_distance", patch_distance, 1, "Use 6 (2D) or 4 (3D).")
    out = restoration.denoise_nl_means(plane, patch_size=size, patch_distance=distance, h=h_factor * level,
                                       sigma=level, fast_mode=True, preserve_range=True, channel_axis=None)
    return restore(np.asarray(out, dtype=np.float64), array, squeezed)


def denoise_dipy_nlm(array: np.ndarray, *, sigma: float | None = None, rician: bool = True,
                     patch_radius: int = 1, block_radius: int = 3) -> np.ndarray:
    """DIPY's blockwise non-local means with the Rician bias correction (MR magnitude).

    Parameters
    ----------
    array : np.ndarray
        ``(H, W)``, ``(D, H, W)`` or ``(1, H, W)``, real, finite; 2D images are filtered as a
        one-slice volume.
    sigma : float, optional
        Std of the Gaussian noise in each complex channel; None estimates it.
    rician : bool, default True
        Subtract the Rician bias 2σ² from the weighted second moment (Wiest-Daesslé et al. 2008);
        False for Gaussian noise.
    patch_radius, block_radius : int, default 1 and 3
        Patch half-width and search half-width in voxels (DIPY's defaults are 1 and 5; 3
        keeps 3D volumes affordable on a CPU).

    Returns
    -------
    np.ndarray
        Same shape; same dtype for float input, float32 for integer input.

    References
    ----------
    P. Coupé et al., "An optimized blockwise nonlocal means denoising filter for 3-D magnetic
    resonance images", IEEE TMI 27(4), 425-441, 2008.
    N. Wiest-Daesslé et al., "Rician noise removal by non-local means filtering for low
    signal-to-noise ratio MRI", MICCAI 2008.
    E. Garyfallidis et al., "DIPY, a library for the analysis of diffusion MRI data",
    Front. Neuroinform. 8:8, 2014.
    """
    sigma = check_sigma(sigma)
    patch_radius = _int_at_least("patch_radius", patch_radius, 1, "Use 1.")
    block_radius = _int_at_least("block_radius", block_radius, 1, "Use 3 (DIPY's default is 5).")
    nlmeans = optional_import("dipy.denoise.nlmeans", method="dipy_nlm", extra="baselines", package="dipy").nlmeans
    work = check_image(array)
    level = resolve_sigma(work, sigma)
    volume = work[None] if work.ndim == 2 else work
    if level == 0.0:
        return restore(work.copy(), array, False)
    out = nlmeans(np.ascontiguousarray(volume), level, patch_radius=patch_radius, block_radius=block_radius,
                  rician=bool(rician), num_threads=1)
    out = np.asarray(out, dtype=np.float64).reshape(work.shape)
    return restore(out, array, False)
