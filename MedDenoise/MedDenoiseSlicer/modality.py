"""Guess the modality of a volume node: DICOM Modality first, then the intensity range.

The intensity rules are the engine's own (``MedDenoiseLib.normalization.guess_modality``,
which imports numpy only), so the module and ``meddenoise denoise`` guess alike.
"""

from __future__ import annotations

import slicer
from MedDenoiseLib.normalization import DICOM_MODALITY_MAP, guess_modality
from MedDenoiseLib.volume import Volume

#: Attribute name Slicer's DICOM plugins set on a series item (``DICOM.Modality``).
DICOM_MODALITY_ATTRIBUTE = "DICOM.Modality"


def dicom_modality(volume_node) -> str:
    """The DICOM Modality code of a volume (node attribute or its subject-hierarchy item), else ``""``."""
    code = volume_node.GetAttribute(DICOM_MODALITY_ATTRIBUTE) or ""
    scene = volume_node.GetScene()
    sh_node = slicer.vtkMRMLSubjectHierarchyNode.ResolveSubjectHierarchy(scene) if scene is not None else None
    if not code and sh_node is not None:
        name = slicer.vtkMRMLSubjectHierarchyConstants.GetDICOMSeriesModalityAttributeName()
        item = sh_node.GetItemByDataNode(volume_node)
        code = sh_node.GetItemAttribute(item, name) if item else ""
    return str(code or "").strip().upper()


def guess_node_modality(volume_node) -> tuple[str, str]:
    """``(modality, reason)`` for a scalar volume node; modality is one of ct, mr, us, xr.

    Raises
    ------
    ValueError
        If the node holds no voxels.

    Examples
    --------
    In Slicer: ``guess_node_modality(slicer.util.getNode("CTChest"))`` gives
    ``("ct", "minimum -1024 looks like air in HU, maximum 3071")``.
    """
    if volume_node is None or volume_node.GetImageData() is None:
        raise ValueError("select an input volume with voxels before guessing its modality.")
    code = dicom_modality(volume_node)
    if code in DICOM_MODALITY_MAP:
        return DICOM_MODALITY_MAP[code], f"DICOM Modality is {code!r}"
    array = slicer.util.arrayFromVolume(volume_node)
    if array.ndim != 3:  # vector volumes: judge the first component
        array = array[..., 0]
    return guess_modality(Volume(array, metadata={"Modality": code} if code else {}))
