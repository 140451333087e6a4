"""Tests of MedDenoiseLib.io.axes: the SimpleITK image <-> Volume conversion."""

import numpy as np
import pytest
import SimpleITK as sitk

from MedDenoiseLib.errors import ConfigError, ShapeError
from MedDenoiseLib.io.axes import sitk_from_volume, volume_from_sitk
from MedDenoiseLib.volume import Geometry, Volume

OBLIQUE = (0.0, -1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0)


def _image(array: np.ndarray) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.5, 0.75, 2.0))
    image.SetOrigin((-3.25, 4.5, 10.0))
    image.SetDirection(OBLIQUE)
    return image


class TestVolumeFromSitk:
    def test_smoke(self):
        volume = volume_from_sitk(_image(np.zeros((2, 3, 4), np.int16)))
        assert volume.shape == (2, 3, 4)

    def test_axes_and_geometry(self):
        array = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
        volume = volume_from_sitk(_image(array), metadata={"Modality": "CT"})
        np.testing.assert_array_equal(volume.array, array)
        assert volume.array.dtype == np.int16 and volume.source_dtype == "int16"
        assert volume.geometry == Geometry((0.5, 0.75, 2.0), (-3.25, 4.5, 10.0), OBLIQUE)
        assert volume.metadata == {"Modality": "CT"}

    def test_2d_becomes_one_slice(self):
        image = sitk.GetImageFromArray(np.arange(12, dtype=np.uint8).reshape(3, 4))
        image.SetSpacing((0.5, 0.6))
        image.SetOrigin((1.0, 2.0))
        image.SetDirection((0.0, 1.0, 1.0, 0.0))
        volume = volume_from_sitk(image)
        assert volume.shape == (1, 3, 4)
        assert volume.geometry.spacing == (0.5, 0.6, 1.0)
        assert volume.geometry.origin == (1.0, 2.0, 0.0)
        assert volume.geometry.direction == (0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0)

    def test_exception(self):
        vector = sitk.GetImageFromArray(np.zeros((2, 3, 4, 3), np.uint8), isVector=True)
        with pytest.raises(ShapeError, match="one component per voxel"):
            volume_from_sitk(vector)
        four_d = sitk.JoinSeries([sitk.Image(2, 2, 2, sitk.sitkFloat32)] * 2)
        with pytest.raises(ShapeError, match="must be 2D or 3D"):
            volume_from_sitk(four_d)


class TestSitkFromVolume:
    def test_round_trip(self):
        image = _image(np.arange(24, dtype=np.float32).reshape(2, 3, 4))
        back = sitk_from_volume(volume_from_sitk(image))
        assert back.GetSize() == (4, 3, 2)
        assert back.GetSpacing() == image.GetSpacing()
        assert back.GetOrigin() == image.GetOrigin()
        assert back.GetDirection() == image.GetDirection()
        np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(image))

    @pytest.mark.parametrize(("given", "expected"), [(np.bool_, sitk.sitkUInt8), (np.float16, sitk.sitkFloat32),
                                                     (np.int16, sitk.sitkInt16)])
    def test_default_dtype(self, given, expected):
        assert sitk_from_volume(Volume(np.zeros((1, 2, 2), given))).GetPixelID() == expected

    def test_dtype_cast_rounds_and_clips(self):
        volume = Volume(np.array([[[-1.5, 0.4, 300.0]]], np.float32))
        image = sitk_from_volume(volume, dtype="uint8")
        np.testing.assert_array_equal(sitk.GetArrayFromImage(image), [[[0, 0, 255]]])

    def test_exception(self):
        with pytest.raises(ConfigError, match="dtype must be one of"):
            sitk_from_volume(Volume(np.zeros((1, 2, 2))), dtype="complex64")
