"""Export a denoised output node as a derived DICOM series, filed into the source's study.

The engine's writer (``MedDenoiseLib.io.dicom_export.write_derived_series``) does the writing,
so the command line, the Python console and the tests share one path that marks the series
derived (ImageType ``DERIVED\\SECONDARY``, new Series/SOP Instance UIDs, DerivationDescription
with the model and its weights' sha256) and never writes into a folder holding DICOM files.
Slicer's DICOM exporter (``DICOMScalarVolumePlugin``) needs the DICOM module, which
``slicer-core`` lacks, and writes no derivation. Here only MRML is read: the node's voxels
and IJK-to-RAS (turned into ITK's LPS), and the source's DICOM tags, from

1. the source's first instance file (node attribute ``DICOM.instanceUIDs`` looked up in
   Slicer's DICOM database, or in ``file_for_instance``),
2. else the source's subject hierarchy (series UID, study and patient items), which Slicer's
   DICOM plugins fill on loading,
3. else nothing: the series gets a new study without patient identifiers.

SimpleITK is imported only when exporting, never when the module loads.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Callable

import numpy as np
import slicer
import vtk
from MedDenoiseLib.volume import Geometry, Volume

from .modality import dicom_modality
from .nodes import REPORT_ATTRIBUTE, ROLE_ATTRIBUTE, SOURCE_REFERENCE_ROLE, ijk_to_ras

logger = logging.getLogger(__name__)

INSTANCE_UIDS_ATTRIBUTE = "DICOM.instanceUIDs"
#: Subject-hierarchy item attributes (Slicer's DICOM plugins) -> DICOM keywords, per item level.
_STUDY_ATTRIBUTES = {"DICOM.StudyInstanceUID": "StudyInstanceUID", "DICOM.StudyDate": "StudyDate",
                     "DICOM.StudyTime": "StudyTime", "DICOM.StudyDescription": "StudyDescription",
                     "DICOM.StudyID": "StudyID"}
_PATIENT_ATTRIBUTES = {"DICOM.PatientName": "PatientName", "DICOM.PatientID": "PatientID",
                       "DICOM.PatientSex": "PatientSex", "DICOM.PatientBirthDate": "PatientBirthDate"}
_SERIES_ATTRIBUTES = {"DICOM.Modality": "Modality", "DICOM.SeriesNumber": "SeriesNumber"}


def node_volume(volume_node) -> Volume:
    """Voxels (z, y, x) and world LPS geometry of a scalar volume node, as the engine's ``Volume``.

    IJK-to-RAS (with a linear parent transform applied) becomes ITK's LPS by negating the
    first two rows: spacing = column norms, direction = normalised columns, origin = the
    translation column. The voxels are copied; the node is not modified.

    Raises
    ------
    ValueError
        No voxels, a vector volume, or a non-linear parent transform.
    """
    if volume_node is None or volume_node.GetImageData() is None:
        raise ValueError("the volume to export has no voxels; select the denoised output volume.")
    array = np.array(slicer.util.arrayFromVolume(volume_node), copy=True)
    if array.ndim != 3:
        raise ValueError(f"only scalar volumes can be exported as a DICOM series; {volume_node.GetName()!r} has "
                         f"{array.shape[-1]} components per voxel.")
    matrix = ijk_to_ras(volume_node)
    transform = volume_node.GetParentTransformNode()
    if transform is not None:
        if not transform.IsTransformToWorldLinear():
            raise ValueError(f"{volume_node.GetName()!r} is under a non-linear transform; harden it first "
                             "(Data module: right-click > Harden transform), then export.")
        to_world = vtk.vtkMatrix4x4()
        transform.GetMatrixTransformToWorld(to_world)
        matrix = slicer.util.arrayFromVTKMatrix(to_world) @ matrix
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ matrix
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    direction = lps[:3, :3] / spacing
    return Volume(array, Geometry(spacing=tuple(float(s) for s in spacing),
                                  origin=tuple(float(o) for o in lps[:3, 3]),
                                  direction=tuple(float(d) for d in direction.ravel())),
                  source_dtype=array.dtype.name)


def _database_lookup() -> Callable[[str], str] | None:
    database = getattr(slicer, "dicomDatabase", None)
    if database is None or not getattr(database, "isOpen", True):
        return None
    return database.fileForInstance


def source_tags(source_node, *, file_for_instance: Callable[[str], str] | None = None) -> dict[str, str]:
    """DICOM tags of the source series (keyword -> value), or ``{}`` when the source is not from DICOM.

    ``file_for_instance`` maps a SOPInstanceUID to a file path (default: Slicer's DICOM
    database when one is open). Malformed UIDs from the subject hierarchy are dropped with a warning.
    """
    from MedDenoiseLib.errors import InputError
    from MedDenoiseLib.io.dicom_tags import is_uid, read_source_tags

    if source_node is None:
        return {}
    lookup = file_for_instance or _database_lookup()
    for uid in (source_node.GetAttribute(INSTANCE_UIDS_ATTRIBUTE) or "").split() if lookup else []:
        path = lookup(uid)
        if path and os.path.isfile(path):
            try:
                return read_source_tags(path)
            except InputError as exc:
                logger.warning("could not read the source's DICOM header %s (%s); using the subject hierarchy", path,
                               exc)
                break
    tags = _hierarchy_tags(source_node)
    for name in [n for n in tags if n.endswith("UID") and not is_uid(tags[n])]:
        logger.warning("ignoring the source's malformed %s %r", name, tags.pop(name))
    return tags


def _hierarchy_tags(node) -> dict[str, str]:
    """Tags Slicer's DICOM plugins left on the node's series item and its study and patient parents."""
    scene = node.GetScene()
    sh = slicer.vtkMRMLSubjectHierarchyNode.ResolveSubjectHierarchy(scene) if scene is not None else None
    item = sh.GetItemByDataNode(node) if sh is not None else 0
    if not item:
        return {}
    constants = slicer.vtkMRMLSubjectHierarchyConstants
    tags = {"SeriesInstanceUID": sh.GetItemUID(item, constants.GetDICOMUIDName())}
    tags.update({name: sh.GetItemAttribute(item, attribute) for attribute, name in _SERIES_ATTRIBUTES.items()})
    parent = sh.GetItemParent(item)
    while parent and parent != sh.GetSceneItemID():
        level = sh.GetItemLevel(parent)
        if level == constants.GetDICOMLevelStudy():
            tags.update({name: sh.GetItemAttribute(parent, a) for a, name in _STUDY_ATTRIBUTES.items()})
            tags["StudyInstanceUID"] = tags["StudyInstanceUID"] or sh.GetItemUID(parent, constants.GetDICOMUIDName())
        elif level == constants.GetDICOMLevelPatient():
            tags.update({name: sh.GetItemAttribute(parent, a) for a, name in _PATIENT_ATTRIBUTES.items()})
        parent = sh.GetItemParent(parent)
    return {name: value.strip() for name, value in tags.items() if value and value.strip()}


def export_derived_series(volume_node, out_dir: str, *, source_node=None, series_description: str | None = None,
                          file_for_instance: Callable[[str], str] | None = None):
    """Write ``volume_node`` (a denoised output) as a derived DICOM series into ``out_dir``.

    Parameters
    ----------
    volume_node : vtkMRMLScalarVolumeNode
        A denoised output of MedDenoise (attribute ``MedDenoise.role`` = ``denoised``); never modified.
    out_dir : str
        A new folder, or an existing one without DICOM files (the source's folder is refused).
    source_node : optional
        The original volume; default the node referenced as ``MedDenoiseSource`` by MedDenoise.
    series_description : str, optional
        Default ``"<source SeriesDescription> denoised"``, else the node's name.
    file_for_instance : callable, optional
        SOPInstanceUID -> file path (default: Slicer's DICOM database).

    Returns
    -------
    MedDenoiseLib.io.dicom_export.DerivedSeries
        Folder, files, new Series UID, Study UID, SOP class, rescale slope/intercept.

    Raises
    ------
    ValueError
        Not a denoised output (e.g. the uncertainty label map), no voxels, or a non-linear transform.
    MedDenoiseLib.errors.MedDenoiseError
        The engine's refusals (a folder with DICOM files, a sheared grid, ...), with a fix.
    """
    from MedDenoiseLib.io.dicom_export import write_derived_series
    from MedDenoiseLib.io.dicom_tags import derivation_from_report

    if volume_node is not None and volume_node.GetAttribute(ROLE_ATTRIBUTE) != "denoised":
        raise ValueError(f"{volume_node.GetName()!r} is not a MedDenoise denoised output (only those carry the model "
                         "provenance a derived series records); export other volumes with the DICOM module.")
    volume = node_volume(volume_node)
    source = source_node or volume_node.GetNodeReference(SOURCE_REFERENCE_ROLE)
    tags = source_tags(source, file_for_instance=file_for_instance)
    if volume_node.GetParentTransformNode() is not None and tags.pop("FrameOfReferenceUID", None):
        logger.info("MedDenoise: %r is transformed: the series gets a new frame of reference, not the source's",
                    volume_node.GetName())
    report = json.loads(volume_node.GetAttribute(REPORT_ATTRIBUTE) or "{}")
    modality = tags.get("Modality") or (dicom_modality(source) if source is not None else "") or \
        report.get("normalization", {}).get("modality")
    if series_description is None and "SeriesDescription" not in tags:
        series_description = (volume_node.GetName() or "MedDenoise denoised").replace("\\", " ")[:64]
    written = write_derived_series(volume, out_dir, source_tags=tags, series_description=series_description,
                                   modality=modality or None, derivation_description=derivation_from_report(report))
    logger.info("MedDenoise: exported %r as DICOM series %s (%d files) to %s", volume_node.GetName(),
                written.series_instance_uid, len(written.files), written.directory)
    return written


def add_to_dicom_database(directory: str) -> bool:
    """Index the exported series in Slicer's DICOM database (False outside Slicer or without the DICOM module)."""
    try:
        from DICOMLib import DICOMUtils
    except ImportError:
        logger.info("no DICOM module here; %s was not added to a DICOM database", directory)
        return False
    return bool(DICOMUtils.importDicom(str(directory)))
