"""Before/after compare in the slice views: layers, fade opacity, linked side-by-side.

Only slice composite nodes (and the layout node, when the scene has one) are touched,
so this runs headless; fitting the views needs the application and is left to the Widget.
"""

from __future__ import annotations

import logging

import slicer

logger = logging.getLogger(__name__)

#: Default fade between original (0) and denoised (1), and uncertainty overlay opacity (anatomy shows through).
DEFAULT_FOREGROUND_OPACITY = 0.5
DEFAULT_LABEL_OPACITY = 0.5


def composite_nodes(scene, layout_name: str | None = None) -> list:
    """Slice composite nodes of ``scene`` (only the one of view ``layout_name``, e.g. "Red", if given)."""
    nodes = []
    for index in range(scene.GetNumberOfNodesByClass("vtkMRMLSliceCompositeNode")):
        node = scene.GetNthNodeByClass(index, "vtkMRMLSliceCompositeNode")
        if layout_name is None or node.GetLayoutName() == layout_name:
            nodes.append(node)
    return nodes


def _check_opacity(name: str, value: float) -> float:
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1]; got {value}. Use 0.5 to fade halfway between before and after.")
    return value


def show_compare(source, denoised, labels=None, *, opacity: float = DEFAULT_FOREGROUND_OPACITY,
                 label_opacity: float = DEFAULT_LABEL_OPACITY) -> list:
    """Every slice view: background = ``source``, foreground = ``denoised`` at ``opacity``, label = ``labels``.

    Returns the composite nodes that were set (empty when the scene has no slice views).
    """
    opacity = _check_opacity("opacity", opacity)
    label_opacity = _check_opacity("label_opacity", label_opacity)
    nodes = composite_nodes(source.GetScene())
    for node in nodes:
        node.SetBackgroundVolumeID(source.GetID())
        node.SetForegroundVolumeID(denoised.GetID() if denoised is not None else None)
        node.SetForegroundOpacity(opacity)
        node.SetLabelVolumeID(labels.GetID() if labels is not None else None)
        node.SetLabelOpacity(label_opacity)
    if not nodes:
        logger.info("no slice views in this scene; compare layers not set")
    return nodes


def set_foreground_opacity(scene, opacity: float) -> int:
    """Fade every slice view that shows a foreground volume; returns how many views changed."""
    opacity = _check_opacity("opacity", opacity)
    changed = 0
    for node in composite_nodes(scene):
        if node.GetForegroundVolumeID():
            node.SetForegroundOpacity(opacity)
            changed += 1
    return changed


def show_side_by_side(source, denoised, labels=None, *, left: str = "Red", right: str = "Yellow") -> bool:
    """Original in view ``left``, denoised in view ``right``, same labels, linked slice controls.

    Switches the layout to side-by-side when the scene has a layout node (inside Slicer).
    Returns False when either view does not exist in this scene.
    """
    scene = source.GetScene()
    for index in range(scene.GetNumberOfNodesByClass("vtkMRMLLayoutNode")):
        scene.GetNthNodeByClass(index, "vtkMRMLLayoutNode").SetViewArrangement(
            slicer.vtkMRMLLayoutNode.SlicerLayoutSideBySideView)
    left_nodes, right_nodes = composite_nodes(scene, left), composite_nodes(scene, right)
    if not left_nodes or not right_nodes:
        logger.warning("side-by-side needs the %s and %s slice views", left, right)
        return False
    for node, volume in ((left_nodes[0], source), (right_nodes[0], denoised)):
        node.SetBackgroundVolumeID(volume.GetID())
        node.SetForegroundVolumeID(None)
        node.SetLabelVolumeID(labels.GetID() if labels is not None else None)
        node.SetLinkedControl(True)
    return True
