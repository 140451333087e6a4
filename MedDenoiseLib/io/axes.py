"""The only conversion between SimpleITK images and :class:`~MedDenoiseLib.volume.Volume`.

SimpleITK indexes voxels (x, y, z) and ``GetArrayFromImage`` returns (z, y, x); the
library keeps arrays (z, y, x) and geometry in ITK (x, y, z) order, so the arrays pass
through unchanged and only the geometry needs care. 2D images become one-slice volumes.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from ..errors import ShapeError, rule_message
from ..volume import Geometry, Volume
from .dtypes import cast_array, resolve_dtype


def _geometry_3d(image: sitk.Image) -> Geometry:
    """Geometry of a 2D or 3D image, a 2D one lifted to 3D (z spacing 1, origin z 0)."""
    spacing = [float(s) for s in image.GetSpacing()]
    origin = [float(o) for o in image.GetOrigin()]
    direction = [float(d) for d in image.GetDirection()]
    if image.GetDimension() == 2:
        spacing.append(1.0)
        origin.append(0.0)
        direction = [direction[0], direction[1], 0.0, direction[2], direction[3], 0.0, 0.0, 0.0, 1.0]
    return Geometry(spacing=tuple(spacing), origin=tuple(origin), direction=tuple(direction))


def volume_from_sitk(image: sitk.Image, *, metadata: dict[str, str] | None = None) -> Volume:
    """Turn a scalar 2D or 3D SimpleITK image into a Volume, geometry copied exactly.

    Parameters
    ----------
    image : sitk.Image
        Scalar (one component) image of dimension 2 or 3.
    metadata : dict of str, optional
        Entries stored in ``Volume.metadata`` (copied).

    Returns
    -------
    Volume
        ``array`` (z, y, x) in the image's own pixel type, which is also ``source_dtype``.
        A 2D image of size (W, H) becomes a (1, H, W) volume with z spacing 1, origin z 0
        and its 2x2 direction placed in the top-left of a 3x3 matrix whose last row and
        column are (0, 0, 1).

    Raises
    ------
    ShapeError
        If the image has more than one component or a dimension other than 2 or 3.

    Examples
    --------
    >>> import SimpleITK as sitk
    >>> volume_from_sitk(sitk.Image(4, 3, sitk.sitkInt16)).shape
    (1, 3, 4)
    """
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise ShapeError(
            rule_message("image", "must have one component per voxel", image.GetNumberOfComponentsPerPixel(),
                         "Select a channel first (read_volume(..., channel=k)).")
        )
    if image.GetDimension() not in (2, 3):
        raise ShapeError(
            rule_message("image", "must be 2D or 3D", image.GetDimension(),
                         "Extract a 3D volume first (read_volume(..., channel=k) for 4D series).")
        )
    array = sitk.GetArrayFromImage(image)
    if image.GetDimension() == 2:
        array = array[None]
    return Volume(array=array, geometry=_geometry_3d(image), source_dtype=array.dtype.name,
                  metadata=dict(metadata or {}))


def sitk_from_volume(volume: Volume, *, dtype: str | np.dtype | None = None) -> sitk.Image:
    """Turn a Volume into a 3D SimpleITK image carrying its spacing, origin and direction.

    Parameters
    ----------
    volume : Volume
        Voxels (z, y, x) and geometry.
    dtype : str or np.dtype, optional
        Pixel type of the image. ``None`` keeps the array's type (bool becomes uint8,
        float16 becomes float32). An integer type rounds and clips (see ``cast_array``).

    Returns
    -------
    sitk.Image
        3D scalar image of size (x, y, z); ``volume.metadata`` is not copied.

    Raises
    ------
    ConfigError
        If ``dtype`` (or the array's own type) cannot be written by SimpleITK.

    Examples
    --------
    >>> import numpy as np
    >>> sitk_from_volume(Volume(np.zeros((2, 3, 4), np.int16)), dtype="float32").GetSize()
    (4, 3, 2)
    """
    array = np.asarray(volume.array)
    if dtype is None:
        dtype = {np.dtype(bool): np.uint8, np.dtype(np.float16): np.float32}.get(array.dtype, array.dtype)
    target = resolve_dtype(dtype)
    image = sitk.GetImageFromArray(np.ascontiguousarray(cast_array(array, target)))
    image.SetSpacing(volume.geometry.spacing)
    image.SetOrigin(volume.geometry.origin)
    image.SetDirection(volume.geometry.direction)
    return image
