"""MRML helpers on a real scene: export/import geometry, label map + colour table, subject hierarchy, views."""

import json

import numpy as np
import pytest
import slicer

from meddenoise_slicer_helpers import oblique_matrix, volume_nodes
from MedDenoiseLib.uncertainty_labels import COLOR_TABLE_NAME, UNCERTAINTY_COLORS
from MedDenoiseSlicer import nodes, views


def write_outputs(tmp_path, source, *, labels=None, shape=None):
    """Write a 'denoised' and a 'labels' file the way the worker would (through storage nodes)."""
    array = slicer.util.arrayFromVolume(source)
    shape = shape or array.shape
    den = slicer.util.addVolumeFromArray(np.full(shape, 7.5, np.float32), ijkToRAS=np.eye(4), name="tmpden")
    lab_array = labels if labels is not None else (np.arange(np.prod(shape)) % 4).reshape(shape).astype(np.uint8)
    lab = slicer.util.addVolumeFromArray(lab_array, ijkToRAS=np.eye(4), name="tmplab")
    paths = (nodes.export_volume(den, str(tmp_path / "den.nrrd")), nodes.export_volume(lab, str(tmp_path / "lab.nrrd")))
    nodes.remove_nodes(den, lab)
    return paths


class TestExportImport:
    def test_export_keeps_oblique_geometry_and_does_not_touch_the_source(self, volume, tmp_path):
        before = slicer.util.arrayFromVolume(volume).copy()
        mtime = volume.GetMTime()
        path = nodes.export_volume(volume, str(tmp_path / "in.nrrd"))
        back = nodes.read_volume_file(path)
        np.testing.assert_allclose(nodes.ijk_to_ras(back), oblique_matrix(), atol=1e-9)
        np.testing.assert_array_equal(_array(back), before)
        assert volume.GetStorageNode() is None and volume.GetMTime() == mtime
        np.testing.assert_array_equal(slicer.util.arrayFromVolume(volume), before)

    def test_outputs_get_the_input_geometry_names_and_references(self, volume, tmp_path):
        den_path, lab_path = write_outputs(tmp_path, volume)
        out = nodes.add_output_nodes(volume, den_path, lab_path, report={"device": "cpu", "seconds": 1.5})
        assert out.denoised.GetName() == "Brain denoised" and out.uncertainty.GetName() == "Brain uncertainty"
        for node in (out.denoised, out.uncertainty):
            np.testing.assert_array_equal(nodes.ijk_to_ras(node), nodes.ijk_to_ras(volume))  # exact, not approx
            assert node.GetImageData().GetDimensions() == volume.GetImageData().GetDimensions()
            assert node.GetNodeReference(nodes.SOURCE_REFERENCE_ROLE) is volume
            assert node.GetAttribute(nodes.SOURCE_ATTRIBUTE) == volume.GetID()
            assert json.loads(node.GetAttribute(nodes.REPORT_ATTRIBUTE))["device"] == "cpu"
        assert out.denoised.IsA("vtkMRMLScalarVolumeNode") and not out.denoised.IsA("vtkMRMLLabelMapVolumeNode")
        assert np.all(slicer.util.arrayFromVolume(out.denoised) == 7.5)

    def test_label_map_is_uint8_with_the_meddenoise_colour_table(self, volume, tmp_path):
        shape = slicer.util.arrayFromVolume(volume).shape
        labels = (np.arange(np.prod(shape)) % 4).reshape(shape).astype(np.int16)  # worker wrote short: cast
        den_path, lab_path = write_outputs(tmp_path, volume, labels=labels)
        out = nodes.add_output_nodes(volume, den_path, lab_path)
        assert out.uncertainty.IsA("vtkMRMLLabelMapVolumeNode")
        assert slicer.util.arrayFromVolume(out.uncertainty).dtype == np.uint8
        np.testing.assert_array_equal(slicer.util.arrayFromVolume(out.uncertainty), labels)
        display = out.uncertainty.GetDisplayNode()
        assert display.IsA("vtkMRMLLabelMapVolumeDisplayNode")
        table = display.GetColorNode()
        assert table.GetName() == COLOR_TABLE_NAME and table.GetNumberOfColors() == 4
        assert [table.GetColorName(i) for i in (1, 2, 3)] == ["low", "medium", "high"]
        rgba = [0.0] * 4
        table.GetColor(0, rgba)
        assert rgba[3] == 0.0  # label 0 transparent
        assert table.GetLookupTable().GetTableValue(0) == (0.0, 0.0, 0.0, 0.0)
        for color in UNCERTAINTY_COLORS[1:]:
            table.GetColor(color.index, rgba)
            np.testing.assert_allclose(np.array(rgba) * 255, color.rgba, atol=1e-6)

    def test_colour_table_is_created_once(self, scene):
        assert nodes.uncertainty_color_table(scene) is nodes.uncertainty_color_table(scene)

    def test_existing_nodes_are_filled_not_duplicated(self, volume, scene, tmp_path):
        target = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "my output")
        label_target = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "my labels")
        count = len(volume_nodes(scene))
        out = nodes.add_output_nodes(volume, *write_outputs(tmp_path, volume), denoised_node=target,
                                     labels_node=label_target)
        assert out.denoised is target and out.uncertainty is label_target and len(volume_nodes(scene)) == count
        assert target.GetName() == "my output"
        np.testing.assert_array_equal(nodes.ijk_to_ras(target), nodes.ijk_to_ras(volume))

    def test_wrong_grid_is_refused_and_adds_nothing(self, volume, scene, tmp_path):
        shape = slicer.util.arrayFromVolume(volume).shape
        paths = write_outputs(tmp_path, volume, shape=(shape[0], shape[1] - 1, shape[2]))
        count = scene.GetNumberOfNodes()
        with pytest.raises(nodes.OutputError, match="grid"):
            nodes.add_output_nodes(volume, *paths)
        assert scene.GetNumberOfNodes() == count

    def test_labels_out_of_range_are_refused(self, volume, scene, tmp_path):
        labels = np.full(slicer.util.arrayFromVolume(volume).shape, 9, np.uint8)
        with pytest.raises(nodes.OutputError, match="0..3"):
            nodes.add_output_nodes(volume, *write_outputs(tmp_path, volume, labels=labels))
        assert [n.GetName() for n in volume_nodes(scene)] == ["Brain"]

    def test_missing_file_is_a_clear_error(self, volume, tmp_path):
        with pytest.raises(nodes.OutputError, match="could not read"):
            nodes.add_output_nodes(volume, str(tmp_path / "nothing.nrrd"))

    def test_parent_transform_is_shared(self, volume, scene, tmp_path):
        transform = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", "T")
        volume.SetAndObserveTransformNodeID(transform.GetID())
        out = nodes.add_output_nodes(volume, *write_outputs(tmp_path, volume))
        assert out.denoised.GetTransformNodeID() == transform.GetID() == out.uncertainty.GetTransformNodeID()


def _array(node):
    from vtk.util import numpy_support

    image = node.GetImageData()
    return numpy_support.vtk_to_numpy(image.GetPointData().GetScalars()).reshape(image.GetDimensions()[::-1])


class TestSubjectHierarchy:
    def test_outputs_are_placed_beside_the_input(self, volume, scene, tmp_path):
        sh = slicer.vtkMRMLSubjectHierarchyNode.ResolveSubjectHierarchy(scene)
        patient = sh.CreateSubjectItem(sh.GetSceneItemID(), "Patient 1")
        study = sh.CreateStudyItem(patient, "Study 1")
        sh.CreateItem(study, volume)
        out = nodes.add_output_nodes(volume, *write_outputs(tmp_path, volume))
        for node in (out.denoised, out.uncertainty):
            assert sh.GetItemParent(sh.GetItemByDataNode(node)) == study

    def test_items_are_created_when_missing(self, volume, scene, tmp_path):
        sh = slicer.vtkMRMLSubjectHierarchyNode.ResolveSubjectHierarchy(scene)
        assert not sh.GetItemByDataNode(volume)  # headless: no plugin creates items
        out = nodes.add_output_nodes(volume, *write_outputs(tmp_path, volume))
        items = [sh.GetItemByDataNode(n) for n in (volume, out.denoised, out.uncertainty)]
        assert all(items) and {sh.GetItemParent(i) for i in items} == {sh.GetSceneItemID()}


class TestViews:
    def test_compare_layers_and_opacity(self, app, volume, tmp_path):
        red, yellow = app.slice_view("Red"), app.slice_view("Yellow", "Sagittal")
        out = nodes.add_output_nodes(volume, *write_outputs(tmp_path, volume))
        set_nodes = views.show_compare(volume, out.denoised, out.uncertainty, opacity=0.3)
        assert len(set_nodes) == 2
        for logic in (red, yellow):
            composite = logic.GetSliceCompositeNode()
            assert composite.GetBackgroundVolumeID() == volume.GetID()
            assert composite.GetForegroundVolumeID() == out.denoised.GetID()
            assert composite.GetLabelVolumeID() == out.uncertainty.GetID()
            assert composite.GetForegroundOpacity() == pytest.approx(0.3)
        assert views.set_foreground_opacity(app.scene, 0.8) == 2
        assert red.GetSliceCompositeNode().GetForegroundOpacity() == pytest.approx(0.8)
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            views.set_foreground_opacity(app.scene, 1.5)

    def test_side_by_side(self, app, volume, tmp_path):
        red, yellow = app.slice_view("Red"), app.slice_view("Yellow")
        layout = app.scene.AddNewNodeByClass("vtkMRMLLayoutNode")
        out = nodes.add_output_nodes(volume, *write_outputs(tmp_path, volume))
        assert views.show_side_by_side(volume, out.denoised, out.uncertainty)
        assert layout.GetViewArrangement() == slicer.vtkMRMLLayoutNode.SlicerLayoutSideBySideView
        assert red.GetSliceCompositeNode().GetBackgroundVolumeID() == volume.GetID()
        assert yellow.GetSliceCompositeNode().GetBackgroundVolumeID() == out.denoised.GetID()
        assert red.GetSliceCompositeNode().GetLinkedControl() and yellow.GetSliceCompositeNode().GetLinkedControl()

    def test_no_views_is_not_an_error(self, volume, tmp_path):
        out = nodes.add_output_nodes(volume, *write_outputs(tmp_path, volume))
        assert views.show_compare(volume, out.denoised, out.uncertainty) == []
        assert not views.show_side_by_side(volume, out.denoised)
