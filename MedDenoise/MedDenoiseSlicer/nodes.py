"""MRML side of a run: export the input, import the outputs, colour table, subject hierarchy.

Every function takes its nodes (and reaches the scene through ``node.GetScene()``), so
the same code runs inside Slicer and on the PyPI ``slicer-core`` wheel. Files are read
and written with temporary ``vtkMRMLVolumeArchetypeStorageNode`` objects that are never
added to the scene: the source node gains no storage node and is never modified, and
outputs are read into detached nodes that enter the scene only once both are valid.
"""

from __future__ import annotations

import json
import logging
from typing import Mapping, NamedTuple

import numpy as np
import slicer
import vtk
from vtk.util import numpy_support
from MedDenoiseLib.uncertainty_labels import COLOR_TABLE_NAME, UNCERTAINTY_COLORS

logger = logging.getLogger(__name__)

#: Node reference role and attributes that tie outputs to their source volume.
SOURCE_REFERENCE_ROLE = "MedDenoiseSource"
SOURCE_ATTRIBUTE = "MedDenoise.sourceVolumeID"
ROLE_ATTRIBUTE = "MedDenoise.role"
REPORT_ATTRIBUTE = "MedDenoise.report"
DENOISED_SUFFIX, UNCERTAINTY_SUFFIX = " denoised", " uncertainty"
_GEOMETRY_TOLERANCE = 1e-4


class OutputError(RuntimeError):
    """A worker output that cannot become a node (missing file, wrong grid, bad labels)."""


class OutputNodes(NamedTuple):
    """The nodes of one finished run (``uncertainty`` is None when no label map was asked for)."""

    denoised: object
    uncertainty: object
    report: dict


# -- files ------------------------------------------------------------------------------------
def export_volume(volume_node, path: str) -> str:
    """Write ``volume_node`` (voxels and oblique IJK-to-RAS) to ``path`` without touching the node.

    Raises
    ------
    OutputError
        If the storage node reports a failure (unwritable directory, unsupported extension).
    """
    if volume_node is None or volume_node.GetImageData() is None:
        raise ValueError("the input volume node has no image data; load or select a volume first.")
    storage = slicer.vtkMRMLVolumeArchetypeStorageNode()
    storage.SetFileName(str(path))
    storage.UseCompressionOff()
    if not storage.WriteData(volume_node):
        raise OutputError(f"could not write {volume_node.GetName()!r} to {path}; check the disk space and "
                          "that the temporary directory is writable.")
    return str(path)


def read_volume_file(path: str, *, label_map: bool = False):
    """Read ``path`` into a new node that is *not* in any scene (voxels and geometry from the file)."""
    node = slicer.vtkMRMLLabelMapVolumeNode() if label_map else slicer.vtkMRMLScalarVolumeNode()
    storage = slicer.vtkMRMLVolumeArchetypeStorageNode()
    storage.SetFileName(str(path))
    if not storage.ReadData(node) or node.GetImageData() is None:
        raise OutputError(f"could not read the worker output {path}; the worker log above says why.")
    return node


def ijk_to_ras(volume_node) -> np.ndarray:
    """The 4x4 IJK-to-RAS matrix of a volume node as a numpy array."""
    matrix = vtk.vtkMatrix4x4()
    volume_node.GetIJKToRASMatrix(matrix)
    return slicer.util.arrayFromVTKMatrix(matrix)


def same_geometry(a, b, *, tolerance: float = _GEOMETRY_TOLERANCE) -> bool:
    """True when both nodes have the same voxel grid dimensions and IJK-to-RAS (within ``tolerance``)."""
    if a.GetImageData() is None or b.GetImageData() is None:
        return False
    return (a.GetImageData().GetDimensions() == b.GetImageData().GetDimensions()
            and bool(np.allclose(ijk_to_ras(a), ijk_to_ras(b), rtol=0, atol=tolerance)))


# -- colour table -----------------------------------------------------------------------------
def uncertainty_color_table(scene):
    """The scene's ``MedDenoiseUncertainty`` colour table (created once): 0 transparent, low/medium/high."""
    for index in range(scene.GetNumberOfNodesByClass("vtkMRMLColorTableNode")):
        node = scene.GetNthNodeByClass(index, "vtkMRMLColorTableNode")
        if node.GetName() == COLOR_TABLE_NAME and node.GetAttribute(ROLE_ATTRIBUTE) == "colors":
            return node
    table = scene.AddNewNodeByClass("vtkMRMLColorTableNode", COLOR_TABLE_NAME)
    table.SetTypeToUser()
    table.SetNumberOfColors(len(UNCERTAINTY_COLORS))
    for color in UNCERTAINTY_COLORS:
        red, green, blue, alpha = (channel / 255.0 for channel in color.rgba)
        table.SetColor(color.index, color.name, red, green, blue, alpha)
    table.SetAttribute(ROLE_ATTRIBUTE, "colors")
    table.SetAttribute("Category", "MedDenoise")
    return table


# -- subject hierarchy ------------------------------------------------------------------------
def subject_hierarchy_item(sh_node, node, parent: int | None = None) -> int:
    """The SH item of ``node``, created under ``parent`` (default: scene) when missing (headless)."""
    item = sh_node.GetItemByDataNode(node)
    if not item:
        item = sh_node.CreateItem(parent if parent else sh_node.GetSceneItemID(), node)
    return item


def place_beside(source, *nodes) -> None:
    """Put ``nodes`` in the same subject-hierarchy folder/study as ``source``."""
    scene = source.GetScene()
    sh_node = slicer.vtkMRMLSubjectHierarchyNode.ResolveSubjectHierarchy(scene)
    if sh_node is None:
        logger.warning("no subject hierarchy in this scene; outputs stay at the top level")
        return
    parent = sh_node.GetItemParent(subject_hierarchy_item(sh_node, source))
    for node in nodes:
        if node is not None:
            sh_node.SetItemParent(subject_hierarchy_item(sh_node, node, parent), parent)


# -- outputs ----------------------------------------------------------------------------------
def add_output_nodes(source, denoised_path: str, labels_path: str | None = None, *, denoised_node=None,
                     labels_node=None, report: Mapping | None = None) -> OutputNodes:
    """Read the worker's files and turn them into nodes beside ``source``.

    Both files are read and checked before the scene changes, so a bad output leaves the
    scene as it was. Geometry always comes from ``source`` (``CopyOrientation`` and the same
    parent transform); the files only supply voxels, which must be on the source's grid.

    Parameters
    ----------
    source : vtkMRMLScalarVolumeNode
        The input volume (read, never modified).
    denoised_path, labels_path : str
        Worker outputs; ``labels_path`` may be None.
    denoised_node, labels_node : optional
        Existing nodes to fill; None creates ``"<input> denoised"`` / ``"<input> uncertainty"``.
    report : mapping, optional
        The engine's report, stored as JSON in the ``MedDenoise.report`` attribute.

    Raises
    ------
    OutputError
        If an output is missing, unreadable or not on the source's voxel grid.
    """
    scene = source.GetScene()
    denoised_data = _checked_image(source, read_volume_file(denoised_path), "denoised volume")
    labels_data = None
    if labels_path is not None:
        labels_data = _as_uint8_labels(_checked_image(source, read_volume_file(labels_path, label_map=True),
                                                      "uncertainty label map"))
    name = source.GetName() or "volume"
    created: list = []
    try:
        denoised = _store(scene, denoised_node, "vtkMRMLScalarVolumeNode", name + DENOISED_SUFFIX, denoised_data,
                          created)
        _finish_node(source, denoised, "denoised", report)
        _copy_window_level(source, denoised)
        labels = None
        if labels_data is not None:
            labels = _store(scene, labels_node, "vtkMRMLLabelMapVolumeNode", name + UNCERTAINTY_SUFFIX,
                            labels_data, created)
            _finish_node(source, labels, "uncertainty", report)
            labels.GetDisplayNode().SetAndObserveColorNodeID(uncertainty_color_table(scene).GetID())
        place_beside(source, denoised, labels)
    except BaseException:
        remove_nodes(*created)
        raise
    return OutputNodes(denoised, labels, dict(report or {}))


def _checked_image(source, node, what: str):
    image = node.GetImageData()
    expected = source.GetImageData().GetDimensions()
    if image.GetDimensions() != expected:
        raise OutputError(f"the worker's {what} has grid {image.GetDimensions()} but the input has {expected}; "
                          "the outputs were discarded. Re-run; if it repeats, report it with the log.")
    if not same_geometry(source, node, tolerance=1e-3):
        logger.warning("the worker's %s geometry differs from the input's; the input's geometry is used", what)
    return image


def _as_uint8_labels(image):
    values = numpy_support.vtk_to_numpy(image.GetPointData().GetScalars())
    if values.size and (values.min() < 0 or values.max() >= len(UNCERTAINTY_COLORS)):
        raise OutputError(f"uncertainty labels must be 0..{len(UNCERTAINTY_COLORS) - 1}; got "
                          f"{values.min()}..{values.max()}. The outputs were discarded.")
    if image.GetScalarType() == vtk.VTK_UNSIGNED_CHAR:
        return image
    cast = vtk.vtkImageCast()
    cast.SetInputData(image)
    cast.SetOutputScalarTypeToUnsignedChar()
    cast.Update()
    return cast.GetOutput()


def _store(scene, node, class_name: str, name: str, image, created: list):
    if node is None:
        node = scene.AddNewNodeByClass(class_name, name)
        created.append(node)
    node.SetAndObserveImageData(image)
    return node


def _finish_node(source, node, role: str, report: Mapping | None) -> None:
    node.CopyOrientation(source)
    node.SetAndObserveTransformNodeID(source.GetTransformNodeID())
    if node.GetDisplayNode() is None:
        node.CreateDefaultDisplayNodes()
    node.SetAttribute(SOURCE_ATTRIBUTE, source.GetID())
    node.SetAttribute(ROLE_ATTRIBUTE, role)
    node.SetNodeReferenceID(SOURCE_REFERENCE_ROLE, source.GetID())
    if report:
        node.SetAttribute(REPORT_ATTRIBUTE, json.dumps(dict(report), default=str))


def _copy_window_level(source, target) -> None:
    source_display, target_display = source.GetDisplayNode(), target.GetDisplayNode()
    if source_display is None or target_display is None:
        return
    if source_display.GetColorNodeID():
        target_display.SetAndObserveColorNodeID(source_display.GetColorNodeID())
    target_display.AutoWindowLevelOff()
    target_display.SetWindowLevel(source_display.GetWindow(), source_display.GetLevel())


def remove_nodes(*nodes) -> None:
    """Remove nodes (and their display nodes) from their scene; None entries are skipped."""
    for node in nodes:
        if node is None or node.GetScene() is None:
            continue
        scene = node.GetScene()
        for index in reversed(range(node.GetNumberOfDisplayNodes())):
            display = node.GetNthDisplayNode(index)
            if display is not None and display.GetScene() is scene:
                scene.RemoveNode(display)
        scene.RemoveNode(node)
