"""DICOM export of a denoised output node on real MRML: oblique geometry to LPS, source tags, refusals."""

import json

import numpy as np
import pytest
import SimpleITK as sitk
import slicer

from meddenoise_slicer_helpers import oblique_matrix
from MedDenoiseLib.errors import InputError
from MedDenoiseLib.io import read_volume
from MedDenoiseSlicer import nodes
from MedDenoiseSlicer.dicom_export import export_derived_series, node_volume, source_tags
from MedDenoiseSlicer.logic import DenoiseLogic

REPORT = {"model": "mr_tiny", "model_sha256": "0" * 64, "tta": 2, "mc_dropout": 0,
          "normalization": {"modality": "mr"}}
STUDY, SERIES = "1.2.826.0.1.3680043.2.1125.8.1", "1.2.826.0.1.3680043.2.1125.8.2"
FRAME = "1.2.826.0.1.3680043.2.1125.8.3"
RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def denoised_output(volume, tmp_path):
    """A "<input> denoised" node made by MedDenoise's own import (role, report, source reference, geometry)."""
    values = slicer.util.arrayFromVolume(volume).astype(np.float32) * 0.5 + 0.25
    staging = slicer.util.addVolumeFromArray(values, ijkToRAS=np.eye(4), name="staging")
    path = nodes.export_volume(staging, str(tmp_path / "den.nrrd"))
    nodes.remove_nodes(staging)
    return nodes.add_output_nodes(volume, path, report=REPORT).denoised, values


def assert_lps_grid(back, ijk_to_ras):
    lps = RAS_TO_LPS @ ijk_to_ras
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    np.testing.assert_allclose(back.geometry.spacing, spacing, rtol=0, atol=1e-9)
    np.testing.assert_allclose(back.geometry.origin, lps[:3, 3], rtol=0, atol=1e-9)
    np.testing.assert_allclose(np.reshape(back.geometry.direction, (3, 3)), lps[:3, :3] / spacing, rtol=0, atol=1e-9)


def write_source_file(path):
    """One DICOM slice carrying the source series' patient and study."""
    image = sitk.Image(4, 3, 1, sitk.sitkInt16)
    for key, value in {"0010|0010": "Roe^Richard", "0010|0020": "P-7", "0008|0060": "MR", "0020|000d": STUDY,
                       "0020|000e": SERIES, "0008|103e": "T1 axial", "0008|0018": SERIES + ".1",
                       "0020|0052": FRAME}.items():
        image.SetMetaData(key, value)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    writer.SetFileName(str(path))
    writer.Execute(image)
    return str(path)


class TestGeometry:
    def test_oblique_output_round_trips_through_dicom(self, volume, tmp_path):
        denoised, values = denoised_output(volume, tmp_path)
        source_before = slicer.util.arrayFromVolume(volume).copy()
        series = export_derived_series(denoised, str(tmp_path / "dicom"))
        back = read_volume(tmp_path / "dicom")
        assert back.shape == values.shape
        assert_lps_grid(back, oblique_matrix())
        assert np.max(np.abs(back.array - values)) <= series.rescale_slope / 2 + 1e-4
        np.testing.assert_array_equal(slicer.util.arrayFromVolume(volume), source_before)
        assert back.metadata["SeriesDescription"] == "Brain denoised" and back.metadata["Modality"] == "MR"
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(series.files[0]))
        reader.ReadImageInformation()
        assert reader.GetMetaData("0008|0008").strip() == "DERIVED\\SECONDARY"
        assert "mr_tiny" in reader.GetMetaData("0008|2111") and "0" * 64 in reader.GetMetaData("0008|2111")

    def test_linear_parent_transform_is_applied(self, volume, tmp_path):
        denoised, _values = denoised_output(volume, tmp_path)
        transform = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLLinearTransformNode")
        shift = np.eye(4)
        shift[:3, 3] = (5.0, -7.0, 11.0)
        transform.SetMatrixTransformToParent(slicer.util.vtkMatrixFromArray(shift))
        denoised.SetAndObserveTransformNodeID(transform.GetID())
        np.testing.assert_allclose(node_volume(denoised).geometry.origin,
                                   (RAS_TO_LPS @ shift @ oblique_matrix())[:3, 3], atol=1e-9)


class TestSourceTags:
    def test_instance_file_gives_patient_and_study(self, volume, tmp_path):
        denoised, _values = denoised_output(volume, tmp_path)
        files = {SERIES + ".1": write_source_file(tmp_path / "src.dcm")}
        volume.SetAttribute("DICOM.instanceUIDs", f"{SERIES}.9 {SERIES}.1")  # .9 is not in the database
        series = export_derived_series(denoised, str(tmp_path / "dicom"),
                                       file_for_instance=lambda uid: files.get(uid, ""))
        back = read_volume(tmp_path / "dicom")
        assert back.metadata["StudyInstanceUID"] == STUDY == series.study_instance_uid
        assert back.metadata["SeriesInstanceUID"] == series.series_instance_uid != SERIES
        assert back.metadata["SeriesDescription"] == "T1 axial denoised"
        assert read_volume(tmp_path / "src.dcm").metadata["SeriesInstanceUID"] == SERIES  # source untouched

    def _export_with_source_file(self, denoised, volume, tmp_path, name):
        files = {SERIES + ".1": write_source_file(tmp_path / f"{name}.dcm")}
        volume.SetAttribute("DICOM.instanceUIDs", f"{SERIES}.1")
        series = export_derived_series(denoised, str(tmp_path / name), file_for_instance=lambda uid: files.get(uid, ""))
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(series.files[0]))
        reader.ReadImageInformation()
        return reader.GetMetaData("0020|0052").strip()

    def test_frame_of_reference_kept_unless_transformed(self, volume, tmp_path):
        denoised, _values = denoised_output(volume, tmp_path)
        assert self._export_with_source_file(denoised, volume, tmp_path, "plain") == FRAME
        transform = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLLinearTransformNode")
        denoised.SetAndObserveTransformNodeID(transform.GetID())
        moved = self._export_with_source_file(denoised, volume, tmp_path, "moved")
        assert moved and moved != FRAME

    def test_subject_hierarchy_fallback(self, volume, tmp_path):
        denoised, _values = denoised_output(volume, tmp_path)
        sh = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(slicer.mrmlScene)
        patient = sh.CreateSubjectItem(sh.GetSceneItemID(), "Roe")
        sh.SetItemAttribute(patient, "DICOM.PatientName", "Roe^Richard")
        sh.SetItemAttribute(patient, "DICOM.PatientID", "P-7")
        study = sh.CreateStudyItem(patient, "MR brain")
        sh.SetItemUID(study, "DICOM", STUDY)
        item = nodes.subject_hierarchy_item(sh, volume, study)
        sh.SetItemParent(item, study)
        sh.SetItemUID(item, "DICOM", "not a uid")
        sh.SetItemAttribute(item, "DICOM.Modality", "MR")
        tags = source_tags(volume)
        assert tags == {"PatientName": "Roe^Richard", "PatientID": "P-7", "StudyInstanceUID": STUDY, "Modality": "MR"}
        series = DenoiseLogic().exportDicom(denoised, str(tmp_path / "dicom"), addToDatabase=True)
        assert series.study_instance_uid == STUDY and len(series.files) == volume.GetImageData().GetDimensions()[2]

    def test_no_dicom_source_gives_a_new_study(self, volume, tmp_path):
        denoised, _values = denoised_output(volume, tmp_path)
        assert source_tags(volume) == {}
        first = export_derived_series(denoised, str(tmp_path / "a"))
        second = export_derived_series(denoised, str(tmp_path / "b"), series_description="second try")
        assert first.study_instance_uid != second.study_instance_uid
        assert read_volume(tmp_path / "b").metadata["SeriesDescription"] == "second try"


class TestRefusals:
    def test_only_denoised_outputs_and_never_into_dicom(self, volume, tmp_path):
        denoised, _values = denoised_output(volume, tmp_path)
        with pytest.raises(ValueError, match="'Brain' is not a MedDenoise denoised output"):
            export_derived_series(volume, str(tmp_path / "x"))
        export_derived_series(denoised, str(tmp_path / "dicom"))
        with pytest.raises(InputError, match="must not already hold DICOM files"):
            DenoiseLogic().exportDicom(denoised, str(tmp_path / "dicom"))
        assert json.loads(denoised.GetAttribute(nodes.REPORT_ATTRIBUTE))["model"] == "mr_tiny"
