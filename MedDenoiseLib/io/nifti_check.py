"""Find NaN/Inf voxels in float NIfTI files straight from the bytes on disk.

SimpleITK 2.5.7 (ITK 5.4) reads NaN and infinite voxels of a NIfTI file as 0 without
a warning (NRRD and MetaImage keep them), so a corrupt scan would pass unnoticed. This
module parses the NIfTI-1 (348-byte) or NIfTI-2 (540-byte) header itself, streams the
data block with numpy (through gzip for ``.nii.gz``) and reports where the non-finite
values are.
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

#: NIfTI datatype codes of real floating-point voxels and their numpy types.
_FLOAT_CODES = {16: "f4", 64: "f8"}
_CHUNK_BYTES = 1 << 24


@dataclass(frozen=True)
class NiftiNonfinite:
    """Non-finite voxels of a float NIfTI file.

    Attributes
    ----------
    dims : tuple of int, sizes along NIfTI axes 1..n (x first, as in the header's ``dim``).
    indices : np.ndarray of int64, flat positions in file order (x fastest) of NaN/Inf voxels.
    """

    dims: tuple[int, ...]
    indices: np.ndarray

    @property
    def count(self) -> int:
        """Number of non-finite voxels in the whole file."""
        return int(self.indices.size)

    def volume_mask(self, index: int = 0) -> np.ndarray:
        """Boolean (z, y, x) mask of non-finite voxels in 3D block ``index``.

        Blocks are the 3D volumes that follow one another in the file: time points of a
        4D series, or components of a vector image (NIfTI dim 5).
        """
        nx, ny, nz = (list(self.dims[:3]) + [1, 1])[:3]
        per_block = nx * ny * nz
        mask = np.zeros(per_block, dtype=bool)
        local = self.indices[(self.indices >= index * per_block) & (self.indices < (index + 1) * per_block)]
        mask[local - index * per_block] = True
        return mask.reshape(nz, ny, nx)


def _open(path: Path) -> BinaryIO:
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")


def _parse_header(raw: bytes) -> tuple[str, int, tuple[int, ...], int] | None:
    """(byte order, datatype, dims, vox_offset) of a NIfTI-1/2 header, or None if it is not one."""
    for order in "<>":
        if len(raw) >= 348 and struct.unpack(order + "i", raw[:4])[0] == 348:
            dim = struct.unpack(order + "8h", raw[40:56])
            datatype = struct.unpack(order + "h", raw[70:72])[0]
            vox_offset = int(struct.unpack(order + "f", raw[108:112])[0])
            break
        if len(raw) >= 540 and struct.unpack(order + "i", raw[:4])[0] == 540:
            datatype = struct.unpack(order + "h", raw[12:14])[0]
            dim = struct.unpack(order + "8q", raw[16:80])
            vox_offset = struct.unpack(order + "q", raw[168:176])[0]
            break
    else:
        return None
    if not 1 <= dim[0] <= 7 or any(d < 1 for d in dim[1 : dim[0] + 1]):
        return None
    return order, int(datatype), tuple(int(d) for d in dim[1 : dim[0] + 1]), int(vox_offset)


def find_nonfinite(path: str | Path) -> NiftiNonfinite | None:
    """Locate NaN/Inf voxels of a float32/float64 NIfTI file by reading its raw data.

    Parameters
    ----------
    path : str or Path
        A ``.nii`` or ``.nii.gz`` file (single-file NIfTI-1 or NIfTI-2).

    Returns
    -------
    NiftiNonfinite or None
        ``None`` when the file is not a single-file NIfTI, its voxels are not float32 or
        float64 (datatype 16 or 64; integer voxels cannot be NaN), or its data block is
        shorter than the header says (SimpleITK reports that case itself).

    Notes
    -----
    The data are streamed in 16 MiB chunks, so memory use is the indices of the
    non-finite voxels, not a second copy of the volume.
    """
    path = Path(path)
    with _open(path) as stream:
        parsed = _parse_header(stream.read(540))
        if parsed is None or parsed[1] not in _FLOAT_CODES:
            return None
        order, datatype, dims, vox_offset = parsed
        dtype = np.dtype(order + _FLOAT_CODES[datatype])
        total = int(np.prod(dims))
        stream.seek(vox_offset)
        found: list[np.ndarray] = []
        done = 0
        chunk_items = _CHUNK_BYTES // dtype.itemsize
        while done < total:
            want = min(chunk_items, total - done)
            block = stream.read(want * dtype.itemsize)
            if len(block) < want * dtype.itemsize:
                return None
            values = np.frombuffer(block, dtype=dtype)
            found.append(np.flatnonzero(~np.isfinite(values)).astype(np.int64) + done)
            done += want
    return NiftiNonfinite(dims=dims, indices=np.concatenate(found) if found else np.zeros(0, np.int64))
