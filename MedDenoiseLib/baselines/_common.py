"""Shared checks for the classical baselines: input arrays, noise level, optional imports.

Every baseline takes a real, finite numpy array of 2 or 3 axes — an image ``(H, W)``, a
volume ``(D, H, W)``, or a single-slice volume ``(1, H, W)`` (treated as 2D) — and returns
an array of the same shape. Floating inputs keep their dtype; integer inputs come back as
float32 (rounding a denoised image back to integers would discard what the filter did).
"""

from __future__ import annotations

import importlib
import math
import numbers
from types import ModuleType

import numpy as np

from ..errors import ConfigError, InputError, MedDenoiseError, ShapeError, rule_message

__all__ = ["MissingDependencyError", "check_image", "check_sigma", "check_positive", "optional_import",
           "restore", "resolve_sigma", "squeeze_single_slice"]


class MissingDependencyError(MedDenoiseError, ImportError):
    """An optional package needed by one baseline is not installed."""


def optional_import(module: str, *, method: str, extra: str, package: str | None = None) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming the extra to install.

    Examples
    --------
    >>> optional_import("math", method="demo", extra="baselines").sqrt(4.0)
    2.0
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        pip_name = package or module.split(".")[0]
        raise MissingDependencyError(rule_message(
            f"baseline {method!r}", f"needs the optional package {pip_name!r}", f"ImportError: {exc}",
            f"Install it with `pip install 'meddenoise[{extra}]'` (or `pip install {pip_name}`), "
            "or leave this method out of --methods.")) from exc


def check_image(array: object, *, name: str = "array") -> np.ndarray:
    """Validate a 2D/3D real finite array and return it as float64 (a copy only when needed).

    Raises
    ------
    ShapeError
        If the array does not have 2 or 3 axes, or an axis is empty.
    InputError
        If the dtype is not real numeric or the array holds NaN/inf.
    """
    arr = np.asarray(array)
    if arr.dtype.kind not in "biuf":
        raise InputError(rule_message(f"{name}.dtype", "must be real numeric", str(arr.dtype),
                                      "Pass a magnitude image (np.abs for complex data)."))
    if arr.ndim not in (2, 3) or arr.size == 0:
        raise ShapeError(rule_message(f"{name}.shape", "must be (H, W), (D, H, W) or (1, H, W), non-empty",
                                      tuple(arr.shape), "Pass one image or volume; loop over a batch yourself."))
    work = arr.astype(np.float64, copy=False)
    bad = int(work.size - np.count_nonzero(np.isfinite(work)))
    if bad:
        raise InputError(rule_message(f"number of NaN/inf voxels in {name}", "must be 0", bad,
                                      "Replace them first, e.g. np.nan_to_num(array)."))
    return work


def check_positive(name: str, value: object, fix: str, *, allow_zero: bool = False) -> float:
    """Return ``value`` as a float after checking it is finite and > 0 (or >= 0)."""
    ok = not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        rule = "must be a finite number >= 0" if allow_zero else "must be a finite number > 0"
        raise ConfigError(rule_message(name, rule, value, fix))
    return float(value)


def check_sigma(sigma: object) -> float | None:
    """``None`` or a finite noise standard deviation >= 0 in the image's intensity units."""
    if sigma is None:
        return None
    return check_positive("sigma", sigma, "sigma is the noise standard deviation in image units, e.g. 0.05 "
                          "for [0, 1] images; pass None to estimate it from the image.", allow_zero=True)


def resolve_sigma(work: np.ndarray, sigma: float | None) -> float:
    """``sigma`` if given, else the robust wavelet estimate of :func:`~MedDenoiseLib.baselines.estimate_noise_sigma`."""
    if sigma is not None:
        return sigma
    from .sigma import estimate_noise_sigma

    return estimate_noise_sigma(work)


def squeeze_single_slice(work: np.ndarray) -> tuple[np.ndarray, bool]:
    """Return ``(H, W)`` for a ``(1, H, W)`` volume (so 2D filters run on it) and whether it was squeezed."""
    if work.ndim == 3 and work.shape[0] == 1:
        return work[0], True
    return work, False


def restore(result: np.ndarray, original: np.ndarray, squeezed: bool) -> np.ndarray:
    """Undo :func:`squeeze_single_slice` and give the result the documented output dtype."""
    out = result[None] if squeezed else result
    dtype = np.asarray(original).dtype
    out_dtype = dtype if dtype.kind == "f" else np.dtype(np.float32)
    if out.shape != np.shape(original):  # a library changed the shape: never hide it
        raise ShapeError(rule_message("baseline output shape", f"must equal the input shape {np.shape(original)}",
                                      out.shape, "Report this as a bug with the method name."))
    return np.ascontiguousarray(out, dtype=out_dtype)
