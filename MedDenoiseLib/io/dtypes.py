"""Voxel data types: float views, casts back to the source type, constant checks.

``read_volume`` returns voxels in the type they were stored in (an int16 CT stays int16)
and records that type in ``Volume.source_dtype``. Computation happens in float
(``as_float``); ``cast_array`` brings results back to an integer type by rounding
and clipping to that type's range.
"""

from __future__ import annotations

import logging

import numpy as np

from ..errors import ConfigError, InputError, rule_message
from ..volume import Volume

logger = logging.getLogger(__name__)

#: numpy dtypes SimpleITK can write as scalar images.
WRITABLE_DTYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64", "float32", "float64")


def resolve_dtype(dtype: str | np.dtype, *, name: str = "dtype") -> np.dtype:
    """Check that ``dtype`` is one SimpleITK can write and return it as a numpy dtype.

    Raises
    ------
    ConfigError
        If ``dtype`` is not one of :data:`WRITABLE_DTYPES`.
    """
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved is None or resolved.name not in WRITABLE_DTYPES:
        raise ConfigError(
            rule_message(name, f"must be one of {', '.join(WRITABLE_DTYPES)}", dtype,
                         "Pick a listed numpy dtype name, e.g. 'int16' or 'float32'.")
        )
    return resolved


def as_float(volume: Volume) -> np.ndarray:
    """The voxels of ``volume`` as a float32 (z, y, x) array (a copy unless already float32).

    Examples
    --------
    >>> import numpy as np
    >>> from MedDenoiseLib.volume import Volume
    >>> as_float(Volume(np.full((1, 2, 2), 7, np.int16), source_dtype="int16")).dtype
    dtype('float32')
    """
    return np.asarray(volume.array, dtype=np.float32)


def is_constant(volume: Volume) -> bool:
    """True when every voxel holds the same value (NaN voxels count as different).

    Constant volumes read and write like any other; normalisation maps them to a
    fixed value without dividing by zero (see ``MedDenoiseLib.normalization``).
    """
    array = np.asarray(volume.array)
    if array.size == 0:
        return True
    first = array.flat[0]
    return bool(np.all(array == first))


def cast_array(array: np.ndarray, dtype: str | np.dtype) -> np.ndarray:
    """Cast ``array`` to ``dtype``, rounding and clipping when the target is an integer type.

    Parameters
    ----------
    array : np.ndarray
        Voxels of any real type.
    dtype : str or np.dtype
        Target type, one of :data:`WRITABLE_DTYPES`.

    Returns
    -------
    np.ndarray
        ``array`` itself when it already has ``dtype``, else a new array.

    Raises
    ------
    ConfigError
        If ``dtype`` is not writable.
    InputError
        If an integer target is asked for and ``array`` holds NaN or infinite values.

    Notes
    -----
    For an integer target the float64 values are rounded half to even (``np.rint``) and
    clipped to ``[iinfo(dtype).min, iinfo(dtype).max]``; clipping is logged as a warning
    with the number of voxels affected. A float target is a plain ``astype``.

    Examples
    --------
    >>> cast_array(np.array([-40000.0, 1.6, 2.5]), "int16")
    array([-32768,      2,      2], dtype=int16)
    """
    target = resolve_dtype(dtype)
    array = np.asarray(array)
    if array.dtype == target:
        return array
    if target.kind == "f" or (array.dtype.kind in "biu" and np.can_cast(array.dtype, target, "safe")):
        return array.astype(target)
    values = np.asarray(array, dtype=np.float64)
    bad = int(np.count_nonzero(~np.isfinite(values)))
    if bad:
        raise InputError(
            rule_message("array", f"must be finite to cast to {target.name}", f"{bad} non-finite voxels",
                         "Replace NaN/Inf first, or write with a float dtype such as 'float32'.")
        )
    info = np.iinfo(target)
    rounded = np.rint(values)
    clipped = int(np.count_nonzero((rounded < info.min) | (rounded > info.max)))
    if clipped:
        logger.warning("Casting to %s clipped %d voxels to [%d, %d].", target.name, clipped, info.min, info.max)
    return np.clip(rounded, info.min, info.max).astype(target)
