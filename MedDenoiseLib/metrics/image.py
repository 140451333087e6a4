"""Full-reference image-quality metrics: PSNR, SSIM (2D and 3D), RMSE and MAE.

Every metric takes a ``reference`` and a ``test`` image of the same shape, as numpy arrays
or torch tensors (any real dtype, any device), computes in float64 numpy and returns a
Python ``float``. Inputs are validated at this boundary: shapes must match, values must be
finite, ``data_range`` must be given explicitly, and an optional ``mask`` must be a
non-empty boolean (or 0/1) array on the same grid. Nothing is clamped or coerced silently.

These metrics are for evaluation, not training: they are not differentiable (tensors are
detached and copied to the CPU).

References
----------
.. [1] Z. Wang, A. C. Bovik, H. R. Sheikh and E. P. Simoncelli, "Image quality assessment:
   from error visibility to structural similarity", IEEE Trans. Image Process. 13(4),
   600-612, 2004. doi:10.1109/TIP.2003.819861
.. [2] S. van der Walt et al., "scikit-image: image processing in Python", PeerJ 2:e453,
   2014 (``skimage.metrics.structural_similarity``, whose Gaussian-window conventions
   ``ssim`` follows).
"""

from __future__ import annotations

import math
import numbers
from typing import Union

import numpy as np
import torch
from scipy import ndimage

from ..errors import ConfigError, ShapeError, rule_message

ArrayLike = Union[np.ndarray, torch.Tensor]

#: Gaussian truncation (in standard deviations): 3.5 gives the 11-tap window of Wang et al.
#: for sigma = 1.5, as in scikit-image.
SSIM_TRUNCATE = 3.5

__all__ = ["mae", "psnr", "rmse", "ssim", "ssim_map", "ssim_margin"]


# --------------------------------------------------------------------------- validation
def _to_float64(name: str, x: ArrayLike) -> np.ndarray:
    """Return ``x`` as a float64 numpy array after checking dtype, size and finiteness."""
    if isinstance(x, torch.Tensor):
        if x.is_complex():
            raise ConfigError(rule_message(name, "must be real-valued", str(x.dtype),
                                           "Pass a magnitude image (x.abs())."))
        arr = x.detach().to(device="cpu", dtype=torch.float64).numpy()
    else:
        arr = np.asarray(x)
        if arr.dtype.kind not in "biuf":
            raise ConfigError(rule_message(name, "must have a real numeric dtype", str(arr.dtype),
                                           "Pass a float or integer array (np.abs for complex data)."))
        arr = arr.astype(np.float64, copy=False)
    if arr.ndim == 0 or arr.size == 0:
        raise ShapeError(rule_message(name, "must be a non-empty array with at least one axis",
                                      tuple(arr.shape), "Pass the image itself, not a scalar or empty batch."))
    n_bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
    if n_bad:
        raise ConfigError(rule_message(f"number of non-finite values (NaN or ±inf) in {name}", "must be 0",
                                       n_bad, f"Replace them (np.nan_to_num) or crop them out of {name} "
                                       "before scoring; metrics never skip them silently."))
    return arr


def _pair(reference: ArrayLike, test: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    ref = _to_float64("reference", reference)
    tst = _to_float64("test", test)
    if ref.shape != tst.shape:
        raise ShapeError(rule_message("test", f"must have the same shape as reference {tuple(ref.shape)}",
                                      tuple(tst.shape), "Resample or crop test onto the reference grid."))
    return ref, tst


def _positive(name: str, value: object, fix: str) -> float:
    """Check that ``value`` is a finite real number > 0 and return it as a float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) \
            or value <= 0:
        raise ConfigError(rule_message(name, "must be a finite number > 0", value, fix))
    return float(value)


def _data_range(value: object) -> float:
    return _positive("data_range", value,
                     "Pass the width of the intensity scale explicitly, e.g. data_range=1.0 for images in "
                     "[0, 1] or the reference's max - min; it is never inferred.")


def _mask(mask: ArrayLike | None, shape: tuple[int, ...]) -> np.ndarray | None:
    """Return ``mask`` as a boolean numpy array of ``shape``, or None."""
    if mask is None:
        return None
    arr = mask.detach().cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
    if tuple(arr.shape) != tuple(shape):
        raise ConfigError(rule_message("mask", f"must have the image shape {tuple(shape)}", tuple(arr.shape),
                                       "Pass a boolean mask on the same grid as reference."))
    if arr.dtype != np.bool_:
        if arr.dtype.kind not in "iuf" or not np.all((arr == 0) | (arr == 1)):
            raise ConfigError(rule_message("mask", "must be boolean or contain only 0 and 1",
                                           f"dtype {arr.dtype}", "Threshold it first, e.g. mask=labels > 0."))
        arr = arr != 0
    count = int(np.count_nonzero(arr))
    if count == 0:
        raise ConfigError(rule_message("number of voxels selected by mask", "must be >= 1", count,
                                       "Pass a mask that selects the region to score, or mask=None."))
    return arr


# --------------------------------------------------------------------------- error metrics
def _squared_or_abs_error(reference: ArrayLike, test: ArrayLike, mask: ArrayLike | None,
                          squared: bool) -> float:
    ref, tst = _pair(reference, test)
    sel = _mask(mask, ref.shape)
    diff = ref - tst
    err = diff * diff if squared else np.abs(diff)
    return float(err[sel].mean() if sel is not None else err.mean())


def rmse(reference: ArrayLike, test: ArrayLike, *, mask: ArrayLike | None = None) -> float:
    """Root-mean-square error, sqrt(mean((reference - test)²)), optionally inside ``mask``.

    Parameters
    ----------
    reference, test : np.ndarray or torch.Tensor
        Images of identical shape (any number of axes), real and finite.
    mask : array or tensor of bool, optional
        Same shape as the images; only selected voxels enter the mean. Must select at least one.

    Returns
    -------
    float
        RMSE in the intensity units of the inputs.

    Raises
    ------
    ShapeError
        If the shapes differ or an input is empty.
    ConfigError
        If an input has non-finite values, or the mask has the wrong shape or is empty.

    Examples
    --------
    >>> import numpy as np
    >>> rmse(np.zeros((2, 2)), np.full((2, 2), 0.5))
    0.5
    """
    return math.sqrt(_squared_or_abs_error(reference, test, mask, squared=True))


def mae(reference: ArrayLike, test: ArrayLike, *, mask: ArrayLike | None = None) -> float:
    """Mean absolute error, mean(|reference - test|), optionally inside ``mask``.

    Parameters, Raises: as :func:`rmse`.

    Returns
    -------
    float
        MAE in the intensity units of the inputs.

    Examples
    --------
    >>> import numpy as np
    >>> mae(np.zeros(4), np.array([0.0, 1.0, -1.0, 2.0]))
    1.0
    """
    return _squared_or_abs_error(reference, test, mask, squared=False)


def psnr(reference: ArrayLike, test: ArrayLike, *, data_range: float,
         mask: ArrayLike | None = None) -> float:
    """Peak signal-to-noise ratio in decibels.

    Parameters
    ----------
    reference, test : np.ndarray or torch.Tensor
        Images of identical shape, real and finite.
    data_range : float
        Width R of the intensity scale (> 0), e.g. 1.0 for [0, 1] images or 4095 for 12-bit
        CT. Required: inferring it from the data makes scores incomparable across images.
    mask : array or tensor of bool, optional
        Same shape as the images; the MSE is taken over the selected voxels only.

    Returns
    -------
    float
        PSNR in dB; ``math.inf`` when the images are identical (inside the mask).

    Raises
    ------
    ShapeError, ConfigError
        As :func:`rmse`; also ConfigError when ``data_range`` is not a finite number > 0.

    Notes
    -----
    PSNR = 10 · log10(R² / MSE), MSE = mean((reference - test)²). Matches
    ``skimage.metrics.peak_signal_noise_ratio`` with the same ``data_range``.

    Examples
    --------
    >>> import numpy as np
    >>> ref = np.zeros((2, 2)); test = ref.copy(); test[0, 0] = 0.1
    >>> round(psnr(ref, test, data_range=1.0), 4)  # 10 log10(1 / (0.01 / 4))
    26.0206
    """
    r = _data_range(data_range)
    mse = _squared_or_abs_error(reference, test, mask, squared=True)
    if mse == 0.0:
        return math.inf
    return float(10.0 * math.log10(r * r / mse))


# --------------------------------------------------------------------------- SSIM
def ssim_margin(sigma: float = 1.5) -> int:
    """Border width (voxels per side) that :func:`ssim` discards: the Gaussian radius.

    ``int(3.5 * sigma + 0.5)``, i.e. (win_size - 1) // 2 of scikit-image; 5 for sigma = 1.5.
    """
    return int(SSIM_TRUNCATE * _positive("sigma", sigma, "Use sigma=1.5 (Wang et al. 2004).") + 0.5)


def _spatial_dims(ndim: int, shape: tuple[int, ...], spatial_dims: int | None) -> int:
    if spatial_dims is None:
        if ndim == 2 or (ndim == 3 and shape[0] == 1):
            return 2
        if ndim == 3:
            return 3
        raise ShapeError(rule_message("reference", "must be 2D or 3D when spatial_dims is None", tuple(shape),
                                      "Pass spatial_dims=2 or 3: the last axes are spatial and leading "
                                      "axes (batch, channel) are averaged."))
    if isinstance(spatial_dims, bool) or spatial_dims not in (2, 3) or spatial_dims > ndim:
        raise ConfigError(rule_message("spatial_dims", f"must be 2 or 3 and <= the image ndim {ndim}",
                                       spatial_dims, "Use None to infer it, 2 for slice-wise SSIM, 3 for volumes."))
    return int(spatial_dims)


def _ssim_full(reference: ArrayLike, test: ArrayLike, data_range: float, sigma: float, k1: float,
               k2: float, spatial_dims: int | None) -> tuple[np.ndarray, int, int]:
    """Validated SSIM map over the whole grid, plus the spatial ndim and the border margin."""
    r = _data_range(data_range)
    k1 = _positive("k1", k1, "Use k1=0.01 (Wang et al. 2004).")
    k2 = _positive("k2", k2, "Use k2=0.03 (Wang et al. 2004).")
    margin = ssim_margin(sigma)
    ref, tst = _pair(reference, test)
    sd = _spatial_dims(ref.ndim, ref.shape, spatial_dims)
    spatial = ref.shape[ref.ndim - sd:]
    win = 2 * margin + 1
    if min(spatial) < win:
        raise ShapeError(rule_message(f"spatial shape of reference (last {sd} axes)",
                                      f"must be >= the {win}-voxel Gaussian window on every axis",
                                      tuple(spatial), "Use a larger image, a smaller sigma, or spatial_dims=2 "
                                      "for thin volumes (SSIM averaged over slices)."))
    sigmas = [0.0] * (ref.ndim - sd) + [float(sigma)] * sd  # 0: no filtering across batch/slice axes

    def blur(a: np.ndarray) -> np.ndarray:
        return ndimage.gaussian_filter(a, sigma=sigmas, truncate=SSIM_TRUNCATE, mode="reflect")

    mu_x, mu_y = blur(ref), blur(tst)
    var_x = blur(ref * ref) - mu_x * mu_x  # population (weighted) moments, as Wang et al.
    var_y = blur(tst * tst) - mu_y * mu_y
    cov = blur(ref * tst) - mu_x * mu_y
    c1, c2 = (k1 * r) ** 2, (k2 * r) ** 2
    num = (2.0 * mu_x * mu_y + c1) * (2.0 * cov + c2)
    den = (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
    return num / den, sd, margin


def ssim_map(reference: ArrayLike, test: ArrayLike, *, data_range: float, sigma: float = 1.5,
             k1: float = 0.01, k2: float = 0.03, spatial_dims: int | None = None) -> np.ndarray:
    """Per-voxel SSIM map on the full grid (for figures); see :func:`ssim` for parameters.

    Returns
    -------
    np.ndarray of float64
        Same shape as ``reference``. The outer ``ssim_margin(sigma)`` voxels of every spatial
        axis come from reflect-padded windows; :func:`ssim` leaves them out of its mean.

    Examples
    --------
    >>> import numpy as np
    >>> ssim_map(np.ones((11, 11)), np.ones((11, 11)), data_range=1.0).shape
    (11, 11)
    """
    return _ssim_full(reference, test, data_range, sigma, k1, k2, spatial_dims)[0]


def ssim(reference: ArrayLike, test: ArrayLike, *, data_range: float, mask: ArrayLike | None = None,
         sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03, spatial_dims: int | None = None) -> float:
    """Mean structural similarity with a Gaussian window (Wang et al. 2004), 2D or 3D.

    Parameters
    ----------
    reference, test : np.ndarray or torch.Tensor
        Images of identical shape, real and finite. The last ``spatial_dims`` axes are spatial;
        leading axes (slices, batch, channel) are scored separately and averaged.
    data_range : float
        Width L of the intensity scale (> 0); sets C1 = (k1 L)², C2 = (k2 L)². Required.
    mask : array or tensor of bool, optional
        Same shape as the images. The SSIM map is averaged over voxels that are both in the
        mask and in the interior (outside the discarded border); at least one must remain.
    sigma : float, default 1.5
        Standard deviation of the Gaussian window in voxels; the window is truncated at 3.5 σ
        (11 taps for 1.5).
    k1, k2 : float, default 0.01 and 0.03
        Stabilising constants of Wang et al.
    spatial_dims : {None, 2, 3}, default None
        None infers from ``ndim``: 2 → 2D; 3 → 3D, except a (1, H, W) volume → 2D on its
        slice; other ndims must say it. 2 on a (D, H, W) volume gives the mean over slices.

    Returns
    -------
    float
        Mean SSIM, at most 1 (1 for identical images).

    Raises
    ------
    ShapeError
        If the shapes differ, a spatial axis is shorter than the window, or ndim is not 2/3
        with ``spatial_dims=None``.
    ConfigError
        If an input has non-finite values; ``data_range``, ``sigma``, ``k1`` or ``k2`` is not a
        finite number > 0; ``spatial_dims`` is invalid; the mask has the wrong shape, or
        selects no voxel of the interior.

    Notes
    -----
    With Gaussian-weighted local means μ, variances σ² and covariance σ_xy (population
    moments),

        SSIM = (2 μx μy + C1)(2 σxy + C2) / ((μx² + μy² + C1)(σx² + σy² + C2)).

    Filtering uses ``scipy.ndimage.gaussian_filter`` (mode "reflect", truncate 3.5) along the
    spatial axes only, and a margin of ``ssim_margin(sigma)`` voxels is dropped from each side
    of every spatial axis before averaging. Without a mask this equals
    ``skimage.metrics.structural_similarity(reference, test, data_range=..., gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False)``.

    References
    ----------
    Wang et al. 2004, IEEE TIP 13(4):600-612, doi:10.1109/TIP.2003.819861.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.linspace(0.0, 1.0, 256).reshape(16, 16)
    >>> ssim(img, img, data_range=1.0)
    1.0
    """
    smap, sd, m = _ssim_full(reference, test, data_range, sigma, k1, k2, spatial_dims)
    lead = smap.ndim - sd
    interior = (slice(None),) * lead + tuple(slice(m, n - m) for n in smap.shape[lead:])
    sel = _mask(mask, smap.shape)
    if sel is None:
        return float(smap[interior].mean())
    sel = sel[interior]
    count = int(np.count_nonzero(sel))
    if count == 0:
        raise ConfigError(rule_message(
            f"number of mask voxels inside the SSIM interior (border of {m} voxels dropped per side)",
            "must be >= 1", count,
            "Move the region away from the image border, lower sigma, or inspect ssim_map instead."))
    return float(smap[interior][sel].mean())
