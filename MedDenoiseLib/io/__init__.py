"""Volume input/output: files and DICOM series to :class:`~MedDenoiseLib.volume.Volume` and back.

Importing this package loads SimpleITK but reads and writes nothing.
"""

from .axes import sitk_from_volume, volume_from_sitk
from .dtypes import as_float, cast_array, is_constant
from .regions import Region, read_region, split_region
from .sitk_io import READ_EXTENSIONS, WRITE_EXTENSIONS, read_volume, write_volume

__all__ = [
    "READ_EXTENSIONS",
    "Region",
    "WRITE_EXTENSIONS",
    "as_float",
    "cast_array",
    "is_constant",
    "read_region",
    "read_volume",
    "sitk_from_volume",
    "split_region",
    "volume_from_sitk",
    "write_volume",
]
