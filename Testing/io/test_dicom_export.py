"""Derived DICOM series (MedDenoiseLib.io.dicom_export): round trip through the library's reader, tags, refusals."""

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from MedDenoiseLib.errors import ConfigError, InputError
from MedDenoiseLib.io import read_volume
from MedDenoiseLib.io import dicom_export
from MedDenoiseLib.io.dicom_export import (CT_IMAGE, MR_IMAGE, SECONDARY_CAPTURE, check_dicom_target, int16_rescale,
                                           write_derived_series)
from MedDenoiseLib.io.dicom_tags import derivation_from_report, new_uid, read_source_tags
from MedDenoiseLib.volume import Geometry, Volume

ROOT = Path(__file__).resolve().parents[2]
SOURCE_STUDY, SOURCE_SERIES = "1.2.826.0.1.3680043.2.1125.7.1", "1.2.826.0.1.3680043.2.1125.7.2"
PATIENT = {"0010|0010": "Doe^Jane", "0010|0020": "P-0042", "0010|0040": "F", "0008|0020": "20260102"}
REPORT = {"model": "ct_tiny", "model_sha256": "f" * 64, "tta": 8, "mc_dropout": 0}


def oblique(handed: float = 1.0) -> tuple:
    """Rotation about z by 0.3 then x by 0.2; ``handed=-1`` flips the slice axis (left-handed grid)."""
    cz, sz, cx, sx = math.cos(0.3), math.sin(0.3), math.cos(0.2), math.sin(0.2)
    matrix = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]]) @ np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    matrix[:, 2] *= handed
    return tuple(matrix.ravel())


def ct_volume(handed: float = 1.0) -> Volume:
    """Float 'HU' (3, 4, 5) on an oblique grid, values not on an integer grid."""
    values = np.random.default_rng(1).uniform(-1024.0, 3071.0, (3, 4, 5)).astype(np.float32)
    return Volume(values, Geometry((0.5, 0.6, 2.0), (-10.0, 20.0, 30.0), oblique(handed)), source_dtype="int16",
                  metadata={"Modality": "CT"})


def write_source_series(folder: Path, volume: Volume) -> None:
    """A plain CT source series (int16, slope 1) with patient tags, one file per slice."""
    folder.mkdir()
    image = sitk.GetImageFromArray(np.rint(volume.array).astype(np.int16))
    image.SetSpacing(volume.geometry.spacing)
    image.SetOrigin(volume.geometry.origin)
    image.SetDirection(volume.geometry.direction)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k in range(image.GetDepth()):
        one = image[:, :, k:k + 1]
        for key, value in {**PATIENT, "0008|0060": "CT", "0020|000d": SOURCE_STUDY, "0020|000e": SOURCE_SERIES,
                           "0008|0016": CT_IMAGE, "0008|0018": f"{SOURCE_SERIES}.{k + 1}", "0020|0011": "3",
                           "0008|103e": "Chest"}.items():
            one.SetMetaData(key, value)
        writer.SetFileName(str(folder / f"src{k}.dcm"))
        writer.Execute(one)


def headers(series) -> list:
    """One ImageFileReader (header read) per written file."""
    readers = []
    for path in series.files:
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(path))
        reader.ReadImageInformation()
        readers.append(reader)
    return readers


def assert_same_grid(back: Volume, volume: Volume) -> None:
    np.testing.assert_allclose(back.geometry.spacing, volume.geometry.spacing, rtol=0, atol=1e-9)
    np.testing.assert_allclose(back.geometry.origin, volume.geometry.origin, rtol=0, atol=1e-9)
    np.testing.assert_allclose(back.geometry.direction, volume.geometry.direction, rtol=0, atol=1e-9)


class TestInt16Rescale:
    def test_integers_in_range_are_exact(self):
        stored, slope, intercept = int16_rescale(np.array([[-1024.0, 0.0, 3071.0]]))
        assert (slope, intercept) == (1.0, 0.0) and stored.tolist() == [[-1024, 0, 3071]]

    def test_floats_are_within_half_a_step(self):
        values = np.linspace(-0.37, 12.9, 1001)
        stored, slope, intercept = int16_rescale(values)
        assert stored.dtype == np.int16 and slope <= (12.9 + 0.37) / 65000 * (1 + 1e-9)
        assert np.max(np.abs(stored * slope + intercept - values)) <= slope / 2 * (1 + 1e-6)

    def test_round_mode_and_its_range(self):
        assert int16_rescale(np.array([1.5, 2.5, -0.6]), quantization="round")[0].tolist() == [2, 2, -1]
        with pytest.raises(InputError, match="int16 range.*quantization='auto'"):
            int16_rescale(np.array([40000.0]), quantization="round")

    def test_constant_and_refusals(self):
        stored, slope, intercept = int16_rescale(np.full((2, 2), 0.125))
        assert not stored.any() and (slope, intercept) == (1.0, 0.125)
        with pytest.raises(InputError, match="2 NaN/Inf voxels"):
            int16_rescale(np.array([np.nan, np.inf, 1.0]))
        with pytest.raises(ConfigError, match="quantization must be one of"):
            int16_rescale(np.zeros(2), quantization="clip")


class TestWriteDerivedSeries:
    def test_round_trip_oblique_ct_with_source_tags(self, tmp_path):
        volume = ct_volume()
        write_source_series(tmp_path / "source", volume)
        source_files = sorted((tmp_path / "source").iterdir())
        tags = read_source_tags(tmp_path / "source")
        assert tags["PatientID"] == "P-0042" and tags["SeriesInstanceUID"] == SOURCE_SERIES

        series = write_derived_series(volume, tmp_path / "derived", source_tags=tags,
                                      derivation_description=derivation_from_report(REPORT))
        back = read_volume(tmp_path / "derived")
        assert back.shape == volume.shape
        assert_same_grid(back, volume)
        assert np.max(np.abs(back.array - volume.array)) <= series.rescale_slope / 2 + 1e-3
        assert series.rescale_slope < 0.07  # 4095 HU over ~65000 steps
        assert back.metadata["StudyInstanceUID"] == SOURCE_STUDY == series.study_instance_uid
        assert back.metadata["SeriesInstanceUID"] == series.series_instance_uid != SOURCE_SERIES
        assert back.metadata["Modality"] == "CT" and back.metadata["SeriesDescription"] == "Chest denoised"
        readers = headers(series)
        sop_uids = {r.GetMetaData("0008|0018").strip() for r in readers}
        assert len(sop_uids) == 3 and not sop_uids & {f"{SOURCE_SERIES}.{k}" for k in (1, 2, 3)}
        first = readers[0]
        assert first.GetMetaData("0008|0008").strip() == "DERIVED\\SECONDARY"
        assert first.GetMetaData("0008|0016").strip() == CT_IMAGE == series.sop_class_uid
        derivation = first.GetMetaData("0008|2111")
        assert "ct_tiny" in derivation and "f" * 64 in derivation and "TTA 8" in derivation
        assert [first.GetMetaData(k).strip() for k in PATIENT] == list(PATIENT.values())
        assert first.GetMetaData("0020|0011").strip() == "1003" and SOURCE_SERIES in first.GetMetaData("0020|4000")
        assert sorted((tmp_path / "source").iterdir()) == source_files  # the source folder is untouched

    def test_left_handed_grid_comes_back_as_the_same_physical_points(self, tmp_path):
        volume = ct_volume(handed=-1.0)
        series = write_derived_series(volume, tmp_path / "d", derivation_description="test", quantization="round")
        back = read_volume(tmp_path / "d")
        direction = np.reshape(volume.geometry.direction, (3, 3))
        np.testing.assert_allclose(np.reshape(back.geometry.direction, (3, 3)), direction * [1, 1, -1], atol=1e-9)
        last = np.asarray(volume.geometry.origin) + 2 * 2.0 * direction[:, 2]
        np.testing.assert_allclose(back.geometry.origin, last, atol=1e-9)
        np.testing.assert_array_equal(back.array, np.rint(volume.array)[::-1])
        assert series.rescale_slope == 1.0

    def test_sop_class_and_modality_without_source(self, tmp_path):
        integers = Volume(np.arange(24, dtype=np.int16).reshape(2, 3, 4))
        mr = write_derived_series(integers, tmp_path / "mr", modality="mr", derivation_description="test")
        assert mr.sop_class_uid == MR_IMAGE and (mr.rescale_slope, mr.rescale_intercept) == (1.0, 0.0)
        np.testing.assert_array_equal(read_volume(tmp_path / "mr").array, integers.array)
        floats = Volume(np.linspace(0, 1, 60, dtype=np.float32).reshape(3, 4, 5), ct_volume().geometry)
        rescaled = write_derived_series(floats, tmp_path / "mr_float", modality="MR", derivation_description="t")
        assert rescaled.sop_class_uid == SECONDARY_CAPTURE  # the MR Image IOD has no rescale
        back = read_volume(tmp_path / "mr_float")
        assert_same_grid(back, floats)
        assert back.metadata["Modality"] == "MR" and back.metadata["SeriesDescription"] == "MedDenoise denoised"
        assert np.max(np.abs(back.array - floats.array)) <= rescaled.rescale_slope / 2 + 1e-7
        other = write_derived_series(floats, tmp_path / "other", derivation_description="t")
        assert headers(other)[0].GetMetaData("0008|0060").strip() == "OT"
        assert len({mr.study_instance_uid, rescaled.study_instance_uid, other.study_instance_uid}) == 3

    def test_existing_folder_without_dicom_is_used(self, tmp_path):
        (tmp_path / "out").mkdir()
        (tmp_path / "out" / "den.nrrd").write_bytes(b"not dicom")
        series = write_derived_series(ct_volume(), tmp_path / "out", derivation_description="test")
        assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["MedDenoise_00001.dcm", "MedDenoise_00002.dcm",
                                                                        "MedDenoise_00003.dcm", "den.nrrd"]
        assert series.directory == tmp_path / "out"


class TestRefusals:
    def test_folder_with_dicom_is_refused(self, tmp_path):
        write_source_series(tmp_path / "source", ct_volume())
        before = {p: p.stat().st_mtime_ns for p in (tmp_path / "source").iterdir()}
        with pytest.raises(InputError, match=r"out_dir must not already hold DICOM files .* \(3 DICOM files"):
            write_derived_series(ct_volume(), tmp_path / "source", derivation_description="test")
        assert {p: p.stat().st_mtime_ns for p in (tmp_path / "source").iterdir()} == before
        renamed = tmp_path / "source" / "src0.dcm"
        renamed.rename(tmp_path / "source" / "IMG0001")  # no extension: found by its DICM preamble
        with pytest.raises(InputError, match="must not already hold DICOM files"):
            check_dicom_target(tmp_path / "source")

    def test_paths_are_checked(self, tmp_path):
        (tmp_path / "file").write_text("x", encoding="utf-8")
        with pytest.raises(InputError, match="out_dir must be a folder"):
            check_dicom_target(tmp_path / "file")
        with pytest.raises(InputError, match="must be in an existing folder"):
            check_dicom_target(tmp_path / "missing" / "series")

    @pytest.mark.parametrize("existing", [False, True])
    def test_a_failed_write_leaves_nothing(self, tmp_path, monkeypatch, existing):
        calls = []

        def fail_on_second(writer, image, path):
            calls.append(path)
            if len(calls) == 2:
                raise RuntimeError("disk full")
            original(writer, image, path)

        original = dicom_export._write_slice
        monkeypatch.setattr(dicom_export, "_write_slice", fail_on_second)
        target = tmp_path / "out"
        if existing:
            target.mkdir()
            (target / "keep.txt").write_text("x", encoding="utf-8")
        with pytest.raises(InputError, match="GDCM said: disk full"):
            write_derived_series(ct_volume(), target, derivation_description="test")
        assert len(calls) == 2
        assert sorted(p.name for p in tmp_path.rglob("*")) == (["keep.txt", "out"] if existing else [])

    def test_bad_arguments(self, tmp_path):
        volume = ct_volume()
        with pytest.raises(ConfigError, match="source_tags keys must be DICOM keywords.*'ImageType'"):
            write_derived_series(volume, tmp_path / "a", source_tags={"ImageType": "ORIGINAL"},
                                 derivation_description="t")
        with pytest.raises(ConfigError, match=r"source_tags\['StudyInstanceUID'\] must be a DICOM UID"):
            write_derived_series(volume, tmp_path / "a", source_tags={"0020|000D": "1.2.abc"},
                                 derivation_description="t")
        with pytest.raises(ConfigError, match="series_description must be 1 to 64 characters"):
            write_derived_series(volume, tmp_path / "a", series_description="x" * 65, derivation_description="t")
        with pytest.raises(ConfigError, match="derivation_description must be 1 to 1024"):
            write_derived_series(volume, tmp_path / "a", derivation_description="")
        sheared = Volume(volume.array, Geometry(direction=(1, 0.5, 0, 0, 1, 0, 0, 0, 1)))
        with pytest.raises(InputError, match="must be orthonormal"):
            write_derived_series(sheared, tmp_path / "a", derivation_description="t")
        assert not (tmp_path / "a").exists()


def test_first_write_of_a_fresh_process_keeps_the_geometry(tmp_path):
    """GDCM writes Secondary Capture geometry only after ITK has read a DICOM header in the process."""
    code = ("import sys, numpy as np; from MedDenoiseLib.volume import Volume; "
            "from MedDenoiseLib.io.dicom_export import write_derived_series; "
            "write_derived_series(Volume(np.full((2, 2, 2), 0.5)), sys.argv[1], derivation_description='t')")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "d")], check=True, env=env, timeout=120)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(tmp_path / "d" / "MedDenoise_00002.dcm"))
    reader.ReadImageInformation()
    assert reader.GetMetaData("0008|0016").strip() == SECONDARY_CAPTURE
    assert [float(v) for v in reader.GetMetaData("0020|0032").split("\\")] == [0.0, 0.0, 1.0]


def test_new_uids_are_valid_and_distinct():
    uids = {new_uid() for _ in range(100)}
    assert len(uids) == 100 and all(u.startswith("2.25.") and len(u) <= 64 for u in uids)
