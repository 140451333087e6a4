"""Tests of MedDenoiseLib.io.sitk_io: read_volume / write_volume."""

import logging
import os

import numpy as np
import pytest
import SimpleITK as sitk

from MedDenoiseLib.errors import ConfigError, InputError
from MedDenoiseLib.io import read_volume, write_volume
from MedDenoiseLib.volume import Geometry, Volume


def _rotation(axis, degrees: float) -> np.ndarray:
    """Rodrigues' rotation matrix about ``axis``."""
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    theta = np.deg2rad(degrees)
    return np.eye(3) + np.sin(theta) * k + (1 - np.cos(theta)) * k @ k


OBLIQUE = Geometry(spacing=(0.7, 0.8, 2.5), origin=(-120.3, 20.1, 5.7),
                   direction=tuple(_rotation([1, 2, 3], 30.0).ravel()))


def _oblique_int16() -> Volume:
    array = (np.arange(60).reshape(3, 4, 5) * 7 - 1024).astype(np.int16)
    return Volume(array, OBLIQUE, source_dtype="int16")


class TestReadVolumeErrors:
    def test_missing_file(self, tmp_path):
        with pytest.raises(InputError, match="path must exist.*absent.nii.gz"):
            read_volume(tmp_path / "absent.nii.gz")

    def test_empty_file(self, tmp_path):
        (tmp_path / "empty.nrrd").write_bytes(b"")
        with pytest.raises(InputError, match=r"must not be an empty file.*0 bytes.*Re-export"):
            read_volume(tmp_path / "empty.nrrd")

    def test_corrupt_file(self, tmp_path):
        (tmp_path / "junk.mha").write_bytes(b"not an image at all")
        with pytest.raises(InputError, match="must be a readable image file"):
            read_volume(tmp_path / "junk.mha")

    def test_unknown_extension(self, tmp_path):
        (tmp_path / "scan.png").write_bytes(b"x")
        with pytest.raises(InputError, match=r"supported extension.*\.nii, \.nii\.gz, \.nrrd.*DICOM series folder"):
            read_volume(tmp_path / "scan.png")

    def test_folder_without_dicom(self, tmp_path):
        (tmp_path / "notes.txt").write_text("hello", encoding="utf-8")
        with pytest.raises(InputError, match="folder holding a DICOM series"):
            read_volume(tmp_path)
        empty = tmp_path / "empty"
        empty.mkdir()
        with pytest.raises(InputError, match="empty folder"):
            read_volume(empty)

    def test_bad_options(self, tmp_path):
        with pytest.raises(ConfigError, match="nonfinite must be one of"):
            read_volume(tmp_path / "x.nii", nonfinite="nan")


class TestGeometryRoundTrip:
    def test_nrrd_and_mha(self, tmp_path):
        # Measured with SimpleITK 2.5.7: MetaImage stores direction and spacing as written
        # (bit-exact); NRRD stores "space directions" = direction * spacing, so dividing back
        # costs up to ~1e-16.
        volume = _oblique_int16()
        for name, atol in (("o.mha", 0.0), ("o.nrrd", 1e-12)):
            back = read_volume(write_volume(volume, tmp_path / name))
            np.testing.assert_allclose(back.geometry.direction, OBLIQUE.direction, rtol=0, atol=atol)
            np.testing.assert_allclose(back.geometry.spacing, OBLIQUE.spacing, rtol=0, atol=atol)
            np.testing.assert_array_equal(back.geometry.origin, OBLIQUE.origin)
            np.testing.assert_array_equal(back.array, volume.array)
            assert back.array.dtype == np.int16 and back.source_dtype == "int16"

    def test_nifti(self, tmp_path):
        # NIfTI stores qform/sform as float32. Measured with SimpleITK 2.5.7 on this
        # 30-degree oblique rotation: direction error 2.3e-8, spacing 1.2e-8, origin 3.8e-7
        # at 20.1 mm (float32 relative precision ~6e-8). Asserted with margin below.
        volume = _oblique_int16()
        back = read_volume(write_volume(volume, tmp_path / "o.nii.gz"))
        np.testing.assert_allclose(back.geometry.direction, OBLIQUE.direction, rtol=0, atol=1e-6)
        np.testing.assert_allclose(back.geometry.spacing, OBLIQUE.spacing, rtol=1e-6)
        np.testing.assert_allclose(back.geometry.origin, OBLIQUE.origin, rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(back.array, volume.array)
        assert back.array.dtype == np.int16

    @pytest.mark.parametrize("suffix", [".nii", ".nhdr", ".mhd"])
    def test_other_extensions(self, tmp_path, suffix):
        volume = _oblique_int16()
        back = read_volume(write_volume(volume, tmp_path / f"o{suffix}"))
        np.testing.assert_array_equal(back.array, volume.array)

    @pytest.mark.parametrize("suffix", [".nrrd", ".mha"])
    def test_2d_slice(self, tmp_path, suffix):
        image = sitk.GetImageFromArray(np.arange(12, dtype=np.uint8).reshape(3, 4))
        image.SetSpacing((0.5, 0.6))
        sitk.WriteImage(image, str(tmp_path / f"xray{suffix}"))
        back = read_volume(tmp_path / f"xray{suffix}")
        assert back.shape == (1, 3, 4)
        assert back.geometry.spacing == (0.5, 0.6, 1.0)
        np.testing.assert_array_equal(back.array[0], np.arange(12).reshape(3, 4))

    def test_constant_volume_reads(self, tmp_path):
        volume = Volume(np.full((2, 2, 2), 42, np.uint16), source_dtype="uint16")
        back = read_volume(write_volume(volume, tmp_path / "c.nrrd"))
        assert back.array.dtype == np.uint16 and np.all(back.array == 42)


class TestNonfinite:
    @pytest.mark.parametrize("name", ["n.nii", "n.nii.gz", "n.nrrd", "n.mha"])
    def test_error(self, tmp_path, name):
        array = np.ones((2, 3, 4), np.float32)
        array[0, 1, 2], array[1, 0, 0] = np.nan, -np.inf
        sitk.WriteImage(sitk.GetImageFromArray(array), str(tmp_path / name))
        with pytest.raises(InputError, match=r"2 NaN/Inf voxels.*nonfinite='zero'"):
            read_volume(tmp_path / name)

    @pytest.mark.parametrize("name", ["n.nii.gz", "n.nrrd"])
    def test_zero(self, tmp_path, caplog, name):
        array = np.ones((2, 3, 4), np.float64)
        array[0, 1, 2] = np.inf
        sitk.WriteImage(sitk.GetImageFromArray(array), str(tmp_path / name))
        with caplog.at_level(logging.WARNING):
            volume = read_volume(tmp_path / name, nonfinite="zero")
        assert volume.array[0, 1, 2] == 0 and np.isfinite(volume.array).all()
        assert volume.array.sum() == array.size - 1
        assert "replaced 1 NaN/Inf voxels" in caplog.text

    def test_simpleitk_hides_nifti_nan(self, tmp_path):
        # The reason for nifti_check: SimpleITK 2.5.7 returns 0 where the file holds NaN.
        array = np.ones((1, 2, 2), np.float32)
        array[0, 0, 0] = np.nan
        sitk.WriteImage(sitk.GetImageFromArray(array), str(tmp_path / "n.nii"))
        assert sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "n.nii")))[0, 0, 0] == 0

    def test_nan_in_other_time_point_is_ignored(self, tmp_path):
        frames = [np.ones((2, 2, 2), np.float32), np.ones((2, 2, 2), np.float32)]
        frames[1][0, 0, 0] = np.nan
        sitk.WriteImage(sitk.JoinSeries([sitk.GetImageFromArray(f) for f in frames]), str(tmp_path / "t.nii.gz"))
        assert np.isfinite(read_volume(tmp_path / "t.nii.gz", channel=0).array).all()
        with pytest.raises(InputError, match="1 NaN/Inf voxels"):
            read_volume(tmp_path / "t.nii.gz", channel=1)


class TestChannels:
    def test_4d_needs_channel(self, tmp_path):
        frames = [sitk.GetImageFromArray(np.full((2, 2, 2), t, np.float32)) for t in range(5)]
        sitk.WriteImage(sitk.JoinSeries(frames), str(tmp_path / "t.nrrd"))
        with pytest.raises(InputError, match=r"5 time points.*channel=0\.\.4"):
            read_volume(tmp_path / "t.nrrd")
        volume = read_volume(tmp_path / "t.nrrd", channel=3)
        assert volume.shape == (2, 2, 2) and np.all(volume.array == 3)
        with pytest.raises(ConfigError, match=r"channel must be an integer in \[0, 5\); got 5"):
            read_volume(tmp_path / "t.nrrd", channel=5)

    def test_vector_needs_channel(self, tmp_path):
        array = np.stack([np.full((2, 2, 2), c, np.float32) for c in range(2)], axis=-1)
        sitk.WriteImage(sitk.GetImageFromArray(array, isVector=True), str(tmp_path / "v.mha"))
        with pytest.raises(InputError, match=r"2 components per voxel.*channel=0\.\.1"):
            read_volume(tmp_path / "v.mha")
        assert np.all(read_volume(tmp_path / "v.mha", channel=1).array == 1)
        with pytest.raises(ConfigError, match="rgb_to_gray needs 3-component uint8"):
            read_volume(tmp_path / "v.mha", rgb_to_gray=True)

    def test_rgb_to_gray(self, tmp_path):
        rgb = np.array([[[[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]]]], np.uint8)
        sitk.WriteImage(sitk.GetImageFromArray(rgb, isVector=True), str(tmp_path / "rgb.nrrd"))
        with pytest.raises(InputError, match="rgb_to_gray=True"):
            read_volume(tmp_path / "rgb.nrrd")
        gray = read_volume(tmp_path / "rgb.nrrd", rgb_to_gray=True)
        # 0.299*255 = 76.2, 0.587*255 = 149.7, 0.114*255 = 29.1, 2.99+11.74+3.42 = 18.15
        np.testing.assert_array_equal(gray.array, [[[76, 150, 29, 18]]])
        assert gray.array.dtype == np.uint8
        with pytest.raises(ConfigError, match="cannot be combined with channel"):
            read_volume(tmp_path / "rgb.nrrd", rgb_to_gray=True, channel=0)

    def test_scalar_channel_zero(self, tmp_path):
        write_volume(Volume(np.ones((1, 2, 2), np.int16)), tmp_path / "s.nrrd")
        assert read_volume(tmp_path / "s.nrrd", channel=0).shape == (1, 2, 2)
        with pytest.raises(ConfigError, match=r"\[0, 1\)"):
            read_volume(tmp_path / "s.nrrd", channel=1)


class TestWriteVolume:
    def test_source_dtype_rounds_and_clips(self, tmp_path):
        volume = Volume(np.array([[[-40000.0, -1.5, 0.4, 2.5]]], np.float32), source_dtype="int16")
        back = read_volume(write_volume(volume, tmp_path / "o.nrrd", dtype="source"))
        assert back.array.dtype == np.int16
        np.testing.assert_array_equal(back.array, [[[-32768, -2, 0, 2]]])

    def test_default_keeps_array_dtype(self, tmp_path):
        volume = Volume(np.array([[[0.25, 1.5]]], np.float32), source_dtype="int16")
        back = read_volume(write_volume(volume, tmp_path / "o.mha"))
        assert back.array.dtype == np.float32 and back.source_dtype == "float32"

    def test_metadata_round_trip(self, tmp_path):
        volume = Volume(np.zeros((1, 2, 2), np.int16), metadata={"Modality": "CT"})
        for name in ("m.nrrd", "m.mha"):
            assert read_volume(write_volume(volume, tmp_path / name)).metadata == {"Modality": "CT"}

    def test_overwrite_and_no_leftovers(self, tmp_path):
        target = tmp_path / "o.nii.gz"
        write_volume(Volume(np.zeros((1, 2, 2), np.int16)), target)
        write_volume(Volume(np.ones((1, 2, 2), np.int16)), target)
        assert np.all(read_volume(target).array == 1)
        assert os.listdir(tmp_path) == ["o.nii.gz"]
        with pytest.raises(InputError, match="overwrite=False"):
            write_volume(Volume(np.ones((1, 2, 2), np.int16)), target, overwrite=False)

    def test_failed_write_leaves_old_file(self, tmp_path):
        target = tmp_path / "o.nrrd"
        write_volume(Volume(np.zeros((1, 2, 2), np.int16)), target)
        before = target.read_bytes()
        with pytest.raises(InputError, match="must be finite to cast to int16"):
            write_volume(Volume(np.full((1, 2, 2), np.nan, np.float32)), target, dtype="int16")
        assert target.read_bytes() == before and os.listdir(tmp_path) == ["o.nrrd"]

    def test_exception(self, tmp_path):
        volume = Volume(np.zeros((1, 2, 2), np.int16))
        with pytest.raises(InputError, match=r"supported extension for writing.*\.mhd\."):
            write_volume(volume, tmp_path / "o.dcm")
        with pytest.raises(InputError, match="must be in an existing folder"):
            write_volume(volume, tmp_path / "missing" / "o.nrrd")
        with pytest.raises(ConfigError, match="dtype must be one of"):
            write_volume(volume, tmp_path / "o.nrrd", dtype="float16")
