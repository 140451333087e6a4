"""Tests of MedDenoiseLib.io.dicom through read_volume, on small series written by SimpleITK."""

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from MedDenoiseLib.errors import InputError
from MedDenoiseLib.io import read_volume
from MedDenoiseLib.io.dicom import read_dicom_series

STUDY = "1.2.826.0.1.3680043.2.1125.9.1"


def _write_series(folder: Path, array: np.ndarray, series_uid: str, *, modality: str = "CT") -> None:
    """Write ``array`` (z, y, x, int16) as one CT slice file per z, spacing (0.5, 0.6, 2.0)."""
    folder.mkdir(exist_ok=True)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.5, 0.6, 2.0))
    image.SetOrigin((-10.0, 20.0, 30.0))
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for z in range(image.GetDepth()):
        position = "\\".join(str(v) for v in image.TransformIndexToPhysicalPoint((0, 0, z)))
        tags = {"0008|0060": modality, "0020|000d": STUDY, "0020|000e": series_uid,
                "0008|0016": "1.2.840.10008.5.1.4.1.1.2", "0008|0018": f"{series_uid}.{z + 1}",
                "0020|0032": position, "0020|0037": "1\\0\\0\\0\\1\\0", "0020|0013": str(z + 1),
                "0018|0050": "2.0", "0008|103e": "denoise test"}
        slice_ = image[:, :, z]
        for key, value in tags.items():
            slice_.SetMetaData(key, value)
        writer.SetFileName(str(folder / f"{series_uid}_{z:03d}.dcm"))
        writer.Execute(slice_)


def _ct(depth: int) -> np.ndarray:
    return (np.arange(depth * 4 * 5).reshape(depth, 4, 5) * 10 - 1000).astype(np.int16)


class TestDicomSeries:
    def test_series_folder(self, tmp_path):
        _write_series(tmp_path / "ct", _ct(3), "1.2.826.0.1.3680043.2.1125.9.2")
        volume = read_volume(tmp_path / "ct")
        assert volume.shape == (3, 4, 5)
        np.testing.assert_array_equal(volume.array, _ct(3))
        assert volume.array.dtype == np.int16 and volume.source_dtype == "int16"
        np.testing.assert_allclose(volume.geometry.spacing, (0.5, 0.6, 2.0))
        np.testing.assert_allclose(volume.geometry.origin, (-10.0, 20.0, 30.0))
        assert volume.metadata["Modality"] == "CT"
        assert volume.metadata["SeriesInstanceUID"] == "1.2.826.0.1.3680043.2.1125.9.2"
        assert volume.metadata["SeriesDescription"] == "denoise test"

    def test_single_file(self, tmp_path):
        _write_series(tmp_path / "ct", _ct(2), "1.2.826.0.1.3680043.2.1125.9.3", modality="DX")
        volume = read_volume(sorted((tmp_path / "ct").iterdir())[1])
        assert volume.shape == (1, 4, 5)
        np.testing.assert_array_equal(volume.array[0], _ct(2)[1])
        assert volume.metadata["Modality"] == "DX"

    def test_largest_series_and_choice(self, tmp_path):
        small, large = "1.2.826.0.1.3680043.2.1125.9.4", "1.2.826.0.1.3680043.2.1125.9.5"
        _write_series(tmp_path / "mixed", _ct(2), small)
        _write_series(tmp_path / "mixed", _ct(4), large)
        assert read_volume(tmp_path / "mixed").shape == (4, 4, 5)
        assert read_volume(tmp_path / "mixed", series_uid=small).shape == (2, 4, 5)
        with pytest.raises(InputError, match=f"series_uid must name a series.*{small}, {large}"):
            read_dicom_series(tmp_path / "mixed", series_uid="9.9.9")

    def test_not_dicom(self, tmp_path):
        (tmp_path / "fake.dcm").write_bytes(b"DICM" * 64)
        with pytest.raises(InputError, match="must be a readable DICOM file"):
            read_volume(tmp_path / "fake.dcm")
