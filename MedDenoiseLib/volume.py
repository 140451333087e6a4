"""The in-memory volume: voxels in (z, y, x) order plus ITK/LPS geometry.

SimpleITK orders sizes, spacing and origin as (x, y, z); numpy arrays from
``sitk.GetArrayFromImage`` are (z, y, x). This module keeps the two apart:
``Volume.array`` is always (z, y, x) and ``Geometry`` is always in ITK (x, y, z) order.
Tensors inside the library are (B, C, D, H, W) with D = z, H = y, W = x.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import ShapeError, rule_message


@dataclass(frozen=True)
class Geometry:
    """Physical placement of a voxel grid (ITK convention, LPS, x-y-z order).

    Attributes
    ----------
    spacing : tuple of 3 floats, millimetres between voxel centres along x, y, z.
    origin : tuple of 3 floats, physical position of voxel (0, 0, 0).
    direction : tuple of 9 floats, row-major 3x3 direction cosine matrix.
    """

    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)

    def __post_init__(self) -> None:
        if len(self.spacing) != 3 or len(self.origin) != 3 or len(self.direction) != 9:
            raise ShapeError(
                rule_message(
                    "geometry",
                    "needs 3 spacing, 3 origin and 9 direction values",
                    (len(self.spacing), len(self.origin), len(self.direction)),
                    "Pass a 3D geometry; 2D images are read as 1-slice volumes.",
                )
            )

    def to_dict(self) -> dict[str, list[float]]:
        """JSON-ready form."""
        return {"spacing": list(self.spacing), "origin": list(self.origin), "direction": list(self.direction)}


#: Relative tolerance under which x and y spacings count as equal.
ISOTROPY_TOLERANCE = 1e-3


def isotropic_in_plane(spacing_xyz: tuple[float, float, float]) -> bool:
    """True when the x and y spacings agree to 0.1 % (rot90 in the H-W plane is then physical).

    Examples
    --------
    >>> isotropic_in_plane((0.7, 0.7, 5.0)), isotropic_in_plane((0.5, 1.0, 1.0))
    (True, False)
    """
    sx, sy = float(spacing_xyz[0]), float(spacing_xyz[1])
    return abs(sx - sy) <= ISOTROPY_TOLERANCE * max(sx, sy)


@dataclass
class Volume:
    """Voxels (z, y, x) with their geometry.

    Attributes
    ----------
    array : np.ndarray, 3D, (z, y, x).
    geometry : Geometry.
    source_dtype : str, numpy dtype name of the voxels as stored on disk (e.g. ``"int16"``).
    metadata : dict of str, header entries worth keeping (e.g. DICOM ``0008|0060`` Modality).
    """

    array: np.ndarray
    geometry: Geometry = field(default_factory=Geometry)
    source_dtype: str = "float32"
    metadata: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.array.ndim != 3:
            raise ShapeError(
                rule_message(
                    "Volume.array",
                    "must be 3D (z, y, x)",
                    tuple(self.array.shape),
                    "Add a slice axis for 2D images (array[None]).",
                )
            )

    @property
    def shape(self) -> tuple[int, int, int]:
        """(z, y, x) size."""
        return tuple(int(s) for s in self.array.shape)  # type: ignore[return-value]

    def with_array(self, array: np.ndarray) -> "Volume":
        """A new Volume on the same grid holding ``array`` (the source is never modified)."""
        return Volume(array=array, geometry=self.geometry, source_dtype=self.source_dtype,
                      metadata=dict(self.metadata))
