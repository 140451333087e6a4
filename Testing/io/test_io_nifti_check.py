"""Tests of MedDenoiseLib.io.nifti_check on NIfTI files written by hand and by SimpleITK."""

import gzip
import struct

import numpy as np
import pytest
import SimpleITK as sitk

from MedDenoiseLib.errors import InputError
from MedDenoiseLib.io import read_volume
from MedDenoiseLib.io.nifti_check import find_nonfinite


def _nifti1(array_xyz: np.ndarray, order: str) -> bytes:
    """A minimal single-file NIfTI-1 (identity geometry); ``array_xyz`` is indexed [x, y, z]."""
    header = bytearray(352)
    dim = [array_xyz.ndim, *array_xyz.shape] + [1] * (7 - array_xyz.ndim)
    code = {"f4": 16, "f8": 64}[array_xyz.dtype.str[1:]]
    struct.pack_into(order + "i", header, 0, 348)
    struct.pack_into(order + "8h", header, 40, *dim)
    struct.pack_into(order + "hh", header, 70, code, array_xyz.dtype.itemsize * 8)
    struct.pack_into(order + "8f", header, 76, 1, 1, 1, 1, 0, 0, 0, 0)
    struct.pack_into(order + "f", header, 108, 352.0)
    struct.pack_into(order + "f", header, 112, 1.0)
    header[344:348] = b"n+1\x00"
    return bytes(header) + array_xyz.astype(array_xyz.dtype.newbyteorder(order)).tobytes(order="F")


def _nifti2(array_xyz: np.ndarray) -> bytes:
    """A minimal little-endian single-file NIfTI-2."""
    header = bytearray(544)
    dim = [array_xyz.ndim, *array_xyz.shape] + [1] * (7 - array_xyz.ndim)
    struct.pack_into("<i", header, 0, 540)
    header[4:12] = b"n+2\x00\r\n\x1a\n"
    struct.pack_into("<hh", header, 12, 16, 32)
    struct.pack_into("<8q", header, 16, *dim)
    struct.pack_into("<8d", header, 104, 1, 1, 1, 1, 0, 0, 0, 0)
    struct.pack_into("<qd", header, 168, 544, 1.0)
    return bytes(header) + array_xyz.astype("<f4").tobytes(order="F")


def _with_nan() -> np.ndarray:
    array = np.ones((4, 3, 2), np.float32)  # x, y, z
    array[3, 1, 0] = np.nan
    array[0, 2, 1] = np.inf
    return array


class TestFindNonfinite:
    @pytest.mark.parametrize("order", ["<", ">"])
    @pytest.mark.parametrize("gz", [False, True])
    def test_nifti1_by_hand(self, tmp_path, order, gz):
        data = _nifti1(_with_nan(), order)
        path = tmp_path / ("h.nii.gz" if gz else "h.nii")
        path.write_bytes(gzip.compress(data) if gz else data)
        found = find_nonfinite(path)
        assert found.count == 2 and found.dims == (4, 3, 2)
        mask = found.volume_mask(0)  # (z, y, x)
        assert mask.shape == (2, 3, 4) and mask[0, 1, 3] and mask[1, 2, 0] and mask.sum() == 2
        with pytest.raises(InputError, match="2 NaN/Inf voxels"):
            read_volume(path)

    def test_nifti2_by_hand(self, tmp_path):
        (tmp_path / "h2.nii").write_bytes(_nifti2(_with_nan()))
        assert find_nonfinite(tmp_path / "h2.nii").count == 2

    def test_float64_and_clean(self, tmp_path):
        array = np.zeros((2, 2, 2))
        array[1, 1, 1] = -np.inf
        sitk.WriteImage(sitk.GetImageFromArray(array), str(tmp_path / "d.nii.gz"))
        assert find_nonfinite(tmp_path / "d.nii.gz").volume_mask().sum() == 1
        sitk.WriteImage(sitk.GetImageFromArray(np.ones((2, 2, 2), np.float32)), str(tmp_path / "c.nii"))
        assert find_nonfinite(tmp_path / "c.nii").count == 0

    def test_not_applicable(self, tmp_path):
        sitk.WriteImage(sitk.GetImageFromArray(np.ones((2, 2, 2), np.int16)), str(tmp_path / "i.nii"))
        assert find_nonfinite(tmp_path / "i.nii") is None
        (tmp_path / "junk.nii").write_bytes(b"\x00" * 600)
        assert find_nonfinite(tmp_path / "junk.nii") is None
        (tmp_path / "short.nii").write_bytes(_nifti1(_with_nan(), "<")[:360])
        assert find_nonfinite(tmp_path / "short.nii") is None

    def test_vector_components(self, tmp_path):
        array = np.ones((2, 2, 2, 3), np.float32)  # (z, y, x, component)
        array[1, 0, 1, 2] = np.nan
        sitk.WriteImage(sitk.GetImageFromArray(array, isVector=True), str(tmp_path / "v.nii"))
        found = find_nonfinite(tmp_path / "v.nii")
        assert found.volume_mask(0).sum() == 0 and found.volume_mask(2)[1, 0, 1]
        assert np.isfinite(read_volume(tmp_path / "v.nii", channel=1).array).all()
        with pytest.raises(InputError, match="1 NaN/Inf voxels"):
            read_volume(tmp_path / "v.nii", channel=2)
