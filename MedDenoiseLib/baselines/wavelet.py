"""Wavelet-shrinkage baseline (``skimage.restoration.denoise_wavelet``, BayesShrink)."""

from __future__ import annotations

import warnings

import numpy as np

from ..errors import ConfigError, rule_message
from ._common import check_image, check_sigma, optional_import, resolve_sigma, restore, squeeze_single_slice

__all__ = ["denoise_wavelet"]

WAVELET_METHODS = ("BayesShrink", "VisuShrink")


def denoise_wavelet(array: np.ndarray, *, sigma: float | None = None, wavelet: str = "sym4",
                    method: str = "BayesShrink", mode: str = "soft", levels: int | None = None) -> np.ndarray:
    """Soft-threshold the detail coefficients of an orthogonal wavelet decomposition.

    Parameters
    ----------
    array : np.ndarray
        ``(H, W)``, ``(D, H, W)`` or ``(1, H, W)`` (filtered as 2D), real and finite.
    sigma : float, optional
        Noise std in image units; None estimates it (Donoho's MAD, as scikit-image does).
    wavelet : str, default "sym4"
        Any PyWavelets discrete wavelet; the smooth, near-symmetric ``sym4`` avoids the blocky
        artefacts of scikit-image's default Haar (``db1``).
    method : {"BayesShrink", "VisuShrink"}, default "BayesShrink"
        Sub-band adaptive threshold σ²/σ_x (Chang et al. 2000), or the universal threshold
        σ sqrt(2 log N) (Donoho & Johnstone 1994).
    mode : {"soft", "hard"}, default "soft"
    levels : int, optional
        Decomposition levels; None lets scikit-image choose (3 below the maximum).

    Returns
    -------
    np.ndarray
        Same shape; same dtype for float input, float32 for integer input. sigma = 0 returns
        the input unchanged.

    Notes
    -----
    Needs PyWavelets, a dependency of scikit-image's wavelet module. Float data are not
    rescaled or clipped by scikit-image, so intensities keep their units.

    References
    ----------
    S. G. Chang, B. Yu and M. Vetterli, "Adaptive wavelet thresholding for image denoising and
    compression", IEEE TIP 9(9), 1532-1546, 2000.
    D. L. Donoho and I. M. Johnstone, Biometrika 81(3), 1994.
    """
    sigma = check_sigma(sigma)
    if method not in WAVELET_METHODS:
        raise ConfigError(rule_message("method", f"must be one of {WAVELET_METHODS}", method, "Use 'BayesShrink'."))
    if mode not in ("soft", "hard"):
        raise ConfigError(rule_message("mode", "must be 'soft' or 'hard'", mode, "Use 'soft'."))
    optional_import("pywt", method="wavelet", extra="baselines", package="PyWavelets")
    restoration = optional_import("skimage.restoration", method="wavelet", extra="baselines", package="scikit-image")
    work = check_image(array)
    plane, squeezed = squeeze_single_slice(work)
    level = resolve_sigma(work, sigma)
    if level == 0.0:
        return restore(plane.copy(), array, squeezed)
    try:
        with warnings.catch_warnings():  # PyWavelets warns that small images have boundary effects at level 1
            warnings.filterwarnings("ignore", message="Level value of", category=UserWarning)
            out = restoration.denoise_wavelet(plane, sigma=level, wavelet=wavelet, mode=mode, wavelet_levels=levels,
                                              method=method, rescale_sigma=True, channel_axis=None)
    except ValueError as exc:  # unknown wavelet name, too many levels
        raise ConfigError(rule_message("wavelet / levels", "must be accepted by PyWavelets", (wavelet, levels),
                                       f"Use wavelet='sym4' and levels=None ({exc}).")) from exc
    return restore(np.asarray(out, dtype=np.float64), array, squeezed)
