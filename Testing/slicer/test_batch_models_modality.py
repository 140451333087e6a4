"""Batch denoiseFiles, model cards without torch, modality guessing on nodes, dependency checks."""

import json

import numpy as np
import pytest
import slicer
import SimpleITK as sitk

from meddenoise_slicer_helpers import FakeLauncher, phantom
from MedDenoiseSlicer import dependencies, models
from MedDenoiseSlicer.batch import output_paths
from MedDenoiseSlicer.logic import DenoiseLogic
from MedDenoiseSlicer.modality import guess_node_modality


def write_image(path, array, spacing=(0.9, 0.8, 3.0)):
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetOrigin((4.0, -2.0, 1.0))
    sitk.WriteImage(image, str(path))
    return path


class TestDenoiseFiles:
    def test_writes_outputs_for_each_file_and_reports_progress(self, tmp_path, caplog):
        inputs = [write_image(tmp_path / "a.nii.gz", phantom(seed=1)), write_image(tmp_path / "b.nrrd", phantom(seed=2))]
        caplog.set_level("INFO")
        results = DenoiseLogic(FakeLauncher()).denoiseFiles([str(p) for p in inputs], str(tmp_path / "out"),
                                                            modality="mr", tta=2, device="cpu")
        assert [r.ok for r in results] == [True, True]
        assert [r.denoised.name for r in results] == ["a_denoised.nii.gz", "b_denoised.nrrd"]
        for result, source in zip(results, inputs):
            assert result.denoised.is_file() and result.uncertainty.is_file()
            assert sitk.ReadImage(str(result.uncertainty)).GetPixelID() == sitk.sitkUInt8
            assert sitk.ReadImage(str(result.denoised)).GetSize() == sitk.ReadImage(str(source)).GetSize()
            assert result.report["device"] == "cpu"
        assert "100% patch 3/3 · TTA 2/2" in caplog.text and "2 of 2 done, 0 failed" in caplog.text

    def test_a_failing_file_does_not_stop_the_batch(self, tmp_path):
        good = write_image(tmp_path / "good.nrrd", phantom())
        results = DenoiseLogic(FakeLauncher()).denoiseFiles([str(tmp_path / "missing.nrrd"), str(good)],
                                                            str(tmp_path / "out"), modality="mr")
        assert not results[0].ok and "does not exist" in results[0].error and results[1].ok

    def test_worker_error_is_recorded_or_raised(self, tmp_path):
        source = str(write_image(tmp_path / "x.nrrd", phantom()))
        results = DenoiseLogic(FakeLauncher("error")).denoiseFiles(source, str(tmp_path / "out"))
        assert results[0].error == "input has 12 NaN voxels; must be finite. Replace them before denoising."
        with pytest.raises(Exception, match="NaN voxels"):
            DenoiseLogic(FakeLauncher("error")).denoiseFiles([source], str(tmp_path / "out"), stopOnError=True)

    def test_output_names(self):
        assert [p.name for p in output_paths("/d/ct.nii", "/o")] == ["ct_denoised.nii", "ct_uncertainty.nii"]
        assert [p.name for p in output_paths("/d/series1", "/o")] == ["series1_denoised.nrrd",
                                                                      "series1_uncertainty.nrrd"]
        assert [p.name for p in output_paths("/d/img.dcm", "/o")][0] == "img_denoised.nrrd"


def make_model_dir(root, name, modality, weights=b"weights"):
    import hashlib

    folder = root / name
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(weights)
    card = {"name": name + "_card", "modality": modality, "sha256": hashlib.sha256(weights).hexdigest(),
            "weights_file": "model.safetensors"}
    (folder / "card.json").write_text(json.dumps(card), encoding="utf-8")
    return folder


class TestModels:
    def test_shipped_models_and_default_follow_the_env(self, tmp_path, monkeypatch):
        make_model_dir(tmp_path, "mr_a", "mr")
        make_model_dir(tmp_path, "ct_b", "ct")
        (tmp_path / "index.json").write_text(json.dumps({"defaults": {"mr": "mr_a"}}), encoding="utf-8")
        monkeypatch.setenv(models.MODELS_ENV, str(tmp_path))
        assert [m.name for m in models.shipped_models()] == ["ct_b", "mr_a"]
        assert [m.title for m in models.shipped_models("mr")] == ["mr_a_card"]
        assert models.default_model_name("mr") == "mr_a" and models.default_model_name("us") is None

    def test_default_root_matches_the_engine(self, monkeypatch):
        pytest.importorskip("torch")
        from MedDenoiseLib.models import resolve

        monkeypatch.delenv(models.MODELS_ENV, raising=False)
        assert models.models_root() == resolve.models_root()

    def test_verify_model_checks_sha256(self, tmp_path):
        folder = make_model_dir(tmp_path, "m", "mr")
        assert models.verify_model(folder / "card.json").path == folder
        (folder / "model.safetensors").write_bytes(b"tampered")
        with pytest.raises(models.ModelError, match="sha256"):
            models.verify_model(folder)
        with pytest.raises(models.ModelError, match="card.json"):
            models.verify_model(tmp_path / "nowhere")

    def test_real_card_verifies(self, tiny_models):
        info = models.verify_model(tiny_models / "mr_tiny")
        assert info.modality == "mr" and info.title == "mr_tiny"


class TestModality:
    def test_intensity_rules(self, scene):
        ct = slicer.util.addVolumeFromArray((phantom() * 3 - 1024).astype(np.int16), name="ct")
        us = slicer.util.addVolumeFromArray(phantom().clip(0, 255).astype(np.uint8), name="us")
        mr = slicer.util.addVolumeFromArray(phantom(), name="mr")
        assert [guess_node_modality(n)[0] for n in (ct, us, mr)] == ["ct", "us", "mr"]

    def test_dicom_modality_wins(self, scene):
        node = slicer.util.addVolumeFromArray(phantom(), name="x")
        sh = slicer.vtkMRMLSubjectHierarchyNode.ResolveSubjectHierarchy(scene)
        sh.SetItemAttribute(sh.CreateItem(sh.GetSceneItemID(), node), "DICOM.Modality", "DX")
        assert guess_node_modality(node) == ("xr", "DICOM Modality is 'DX'")
        other = slicer.util.addVolumeFromArray(phantom(), name="y")
        other.SetAttribute("DICOM.Modality", "CT")
        assert guess_node_modality(other)[0] == "ct"


class TestDependencies:
    def test_requirements_file_is_read_and_checked(self):
        from meddenoise_slicer_helpers import MODULE_DIR

        requirements = dependencies.read_requirements(MODULE_DIR / "Resources" / "requirements.txt")
        names = [dependencies.requirement_name(r).lower() for r in requirements]
        assert "safetensors" in names and not {"simpleitk", "numpy", "torch"} & set(names)
        assert dependencies.missing_requirements(requirements) == []  # the test venv has them all
        assert dependencies.missing_requirements(["surely-not-installed-pkg>=1"]) == ["surely-not-installed-pkg>=1"]
