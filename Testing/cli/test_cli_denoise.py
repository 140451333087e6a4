"""`meddenoise denoise` / `models`: outputs with geometry, JSON progress, clear errors, nothing half-written."""

import json

import numpy as np
import pytest
import SimpleITK as sitk

from MedDenoiseLib.cli.main import EXIT_ERROR, main
from MedDenoiseLib.io import read_volume
from MedDenoiseLib.io.dicom_export import write_derived_series
from MedDenoiseLib.io.dicom_tags import read_source_tags
from MedDenoiseLib.models.resolve import MODELS_ENV
from MedDenoiseLib.testing import write_tiny_models_root
from MedDenoiseLib.volume import Geometry, Volume

STUDY = "1.2.826.0.1.3680043.2.1125.6.1"


@pytest.fixture()
def models_dir(tmp_path, monkeypatch):
    root = write_tiny_models_root(tmp_path / "models", ("ct",))
    monkeypatch.setenv(MODELS_ENV, str(root))
    return root


@pytest.fixture()
def ct_file(tmp_path):
    rng = np.random.default_rng(0)
    array = (rng.normal(40, 20, (5, 30, 34)) - 1000 * (rng.random((5, 30, 34)) < 0.1)).astype(np.int16)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.7, 0.8, 3.0))
    image.SetOrigin((10.0, -20.0, 5.5))
    image.SetDirection((0.0, 1.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0))
    path = tmp_path / "ct.nrrd"
    sitk.WriteImage(image, str(path))
    return path


def test_denoise_writes_every_output_with_geometry(tmp_path, models_dir, ct_file, capsys):
    out = tmp_path / "den.nrrd"
    code = main(["denoise", str(ct_file), str(out), "--modality", "ct", "--tta", "2", "--device", "cpu",
                 "--uncertainty", str(tmp_path / "std.nrrd"), "--uncertainty-labels", str(tmp_path / "lab.nrrd"),
                 "--dtype", "source", "--progress", "json"])
    assert code == 0
    source = sitk.ReadImage(str(ct_file))
    for name in ("den.nrrd", "std.nrrd", "lab.nrrd"):
        image = sitk.ReadImage(str(tmp_path / name))
        assert image.GetSize() == source.GetSize()
        assert image.GetOrigin() == source.GetOrigin() and image.GetDirection() == source.GetDirection()
        np.testing.assert_allclose(image.GetSpacing(), source.GetSpacing(), rtol=0, atol=1e-12)
    assert sitk.ReadImage(str(out)).GetPixelID() == sitk.sitkInt16  # --dtype source
    assert sitk.ReadImage(str(tmp_path / "lab.nrrd")).GetPixelID() == sitk.sitkUInt8
    assert (tmp_path / "lab.ctbl").read_text(encoding="utf-8").count("\n") == 6
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[-1]["event"] == "done" and lines[-1]["report"]["model"] == "ct_tiny"
    assert any(line["event"] == "progress" and line["tta_total"] == 2 for line in lines)


def test_unknown_extension_is_a_clear_error(tmp_path, models_dir, caplog):
    bad = tmp_path / "scan.xyz"
    bad.write_bytes(b"123")
    assert main(["denoise", str(bad), str(tmp_path / "o.nrrd"), "--modality", "ct"]) == EXIT_ERROR
    assert "extension" in caplog.text and not (tmp_path / "o.nrrd").exists()


def test_bad_output_path_is_refused_before_any_work(tmp_path, models_dir, ct_file, caplog, monkeypatch):
    def must_not_run(*args, **kwargs):
        raise AssertionError("inference started although the output path is unusable")

    monkeypatch.setattr("MedDenoiseLib.cli.denoise.denoise_volume", must_not_run)
    assert main(["denoise", str(ct_file), str(tmp_path / "out.png"), "--modality", "ct"]) == EXIT_ERROR
    assert "output path must end in one of" in caplog.text
    assert main(["denoise", str(ct_file), str(tmp_path / "nowhere" / "o.nrrd"), "--modality", "ct"]) == EXIT_ERROR
    assert "output folder must exist" in caplog.text


def test_missing_default_model_is_a_clear_error(tmp_path, models_dir, ct_file, caplog):
    assert main(["denoise", str(ct_file), str(tmp_path / "o.nrrd"), "--modality", "us"]) == EXIT_ERROR
    assert "needs a shipped default model" in caplog.text and not (tmp_path / "o.nrrd").exists()


def test_models_lists_architectures_and_shipped(models_dir, capsys):
    assert main(["models"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert {"cdae", "cae", "dncnn", "resunet", "slab25d"} <= set(listing["architectures"])
    assert listing["shipped"]["ct_tiny"]["modality"] == "ct"


@pytest.fixture()
def ct_series(tmp_path):
    """A small int16 CT series with a patient and a study (written by the library's own writer)."""
    rng = np.random.default_rng(0)
    array = np.rint(rng.normal(40, 20, (4, 24, 26))).astype(np.int16)
    volume = Volume(array, Geometry((0.7, 0.8, 3.0), (10.0, -20.0, 5.5), (0, 1, 0, -1, 0, 0, 0, 0, 1)))
    tags = {"PatientID": "P-1", "PatientName": "Doe^John", "StudyInstanceUID": STUDY, "Modality": "CT"}
    return write_derived_series(volume, tmp_path / "source", source_tags=tags, series_description="Abdomen",
                                derivation_description="fixture")


def test_dicom_out_files_the_result_into_the_source_study(tmp_path, models_dir, ct_series):
    code = main(["denoise", str(ct_series.directory), str(tmp_path / "den.nrrd"), "--tta", "1", "--device", "cpu",
                 "--dtype", "source", "--progress", "none", "--dicom-out", str(tmp_path / "derived")])
    assert code == 0
    back, source = read_volume(tmp_path / "derived"), read_volume(ct_series.directory)
    assert back.shape == source.shape and back.geometry == source.geometry
    np.testing.assert_array_equal(back.array, read_volume(tmp_path / "den.nrrd").array)  # --dtype source: rounded
    assert back.metadata["StudyInstanceUID"] == STUDY and back.metadata["Modality"] == "CT"
    assert back.metadata["SeriesInstanceUID"] != ct_series.series_instance_uid
    assert back.metadata["SeriesDescription"] == "Abdomen denoised"
    assert read_source_tags(tmp_path / "derived")["PatientName"] == "Doe^John"


def test_dicom_out_into_the_source_folder_is_refused_before_any_work(tmp_path, models_dir, ct_series, caplog,
                                                                    monkeypatch):
    def must_not_run(*args, **kwargs):
        raise AssertionError("inference started although --dicom-out is unusable")

    monkeypatch.setattr("MedDenoiseLib.cli.denoise.denoise_volume", must_not_run)
    files = sorted(ct_series.directory.iterdir())
    assert main(["denoise", str(ct_series.directory), str(tmp_path / "den.nrrd"),
                 "--dicom-out", str(ct_series.directory)]) == EXIT_ERROR
    assert "must not already hold DICOM files" in caplog.text
    assert sorted(ct_series.directory.iterdir()) == files and not (tmp_path / "den.nrrd").exists()
