"""Read DICOM: a series directory through GDCM series IDs, or a single ``.dcm`` file.

Only reading lives here (writing a derived series: ``dicom_export.py``); voxels come back
as a SimpleITK image (geometry from ImagePositionPatient/ImageOrientationPatient as GDCM
sorts the slices) plus a few header entries for ``Volume.metadata``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, TypeVar

import SimpleITK as sitk

from ..errors import InputError, rule_message

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: DICOM tags copied into ``Volume.metadata`` (name -> SimpleITK "group|element" key).
DICOM_TAGS = {
    "Modality": "0008|0060",
    "StudyInstanceUID": "0020|000d",
    "SeriesInstanceUID": "0020|000e",
    "SeriesDescription": "0008|103e",
}


def _tags(has_key, get_value) -> dict[str, str]:
    return {name: get_value(key).strip() for name, key in DICOM_TAGS.items() if has_key(key)}


def gdcm_call(action: Callable[[], T], *, value: object, rule: str, fix: str, name: str = "path") -> T:
    """Run ``action`` (a SimpleITK/GDCM call); its RuntimeError becomes an InputError ending in GDCM's words."""
    try:
        return action()
    except RuntimeError as exc:
        said = str(exc).strip()[-200:]
        raise InputError(rule_message(name, rule, str(value), f"{fix} (GDCM said: {said}).")) from exc


def read_dicom_series(directory: str | Path, *, series_uid: str | None = None) -> tuple[sitk.Image, dict[str, str]]:
    """Read one DICOM series from a directory.

    Parameters
    ----------
    directory : str or Path
        Folder holding the slice files (sub-folders are not searched).
    series_uid : str, optional
        SeriesInstanceUID to read. ``None`` picks the series with the most files
        (ties: the smallest UID), and logs the choice when there are several.

    Returns
    -------
    image : sitk.Image
        The series as one 3D image, pixel type as stored (e.g. int16 after rescale).
    metadata : dict of str
        Entries of :data:`DICOM_TAGS` found in the first slice, e.g. ``{"Modality": "CT"}``.

    Raises
    ------
    InputError
        If the folder holds no DICOM series, ``series_uid`` is not among them, or GDCM
        cannot read the files.
    """
    series_uid, files = series_file_names(directory, series_uid=series_uid)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    reader.MetaDataDictionaryArrayUpdateOn()
    image = gdcm_call(reader.Execute, value=directory, rule="must hold a readable DICOM series",
                      fix=f"Check the files of series {series_uid}")
    return image, _tags(lambda key: reader.HasMetaDataKey(0, key), lambda key: reader.GetMetaData(0, key))


def series_file_names(directory: str | Path, *, series_uid: str | None = None) -> tuple[str, list[str]]:
    """The SeriesInstanceUID and slice files (in GDCM's order) of one series in ``directory``.

    ``series_uid=None`` picks the series with the most files (ties: the smallest UID), as
    :func:`read_dicom_series` does.

    Raises
    ------
    InputError
        If the folder holds no DICOM series, or ``series_uid`` is not among them.
    """
    directory = Path(directory)
    if not any(p.is_file() for p in directory.iterdir()):
        raise InputError(
            rule_message("path", "must be a file or a folder holding a DICOM series",
                         f"{directory} (empty folder)",
                         "Point to the folder that contains the .dcm slices of one series.")
        )
    series = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(directory))
    if not series:
        raise InputError(
            rule_message("path", "must be a file or a folder holding a DICOM series", str(directory),
                         "Point to the folder that contains the .dcm slices, or to an image file "
                         "(.nii, .nii.gz, .nrrd, .nhdr, .mha, .mhd).")
        )
    files = {uid: sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(directory), uid) for uid in series}
    if series_uid is None:
        series_uid = max(sorted(files), key=lambda uid: len(files[uid]))
        if len(files) > 1:
            logger.info("%s holds %d DICOM series; reading the largest, %s (%d files).",
                        directory, len(files), series_uid, len(files[series_uid]))
    elif series_uid not in files:
        raise InputError(
            rule_message("series_uid", f"must name a series in {directory}", series_uid,
                         f"Choose one of: {', '.join(sorted(files))}.")
        )
    return series_uid, list(files[series_uid])


def read_dicom_file(path: str | Path) -> tuple[sitk.Image, dict[str, str]]:
    """Read a single DICOM file (one slice, or a multi-frame object).

    Returns
    -------
    image : sitk.Image
        As SimpleITK reads it (usually 3D with one slice).
    metadata : dict of str
        Entries of :data:`DICOM_TAGS` found in the file.

    Raises
    ------
    InputError
        If GDCM cannot read the file.
    """
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.SetImageIO("GDCMImageIO")
    image = gdcm_call(reader.Execute, value=path, rule="must be a readable DICOM file",
                      fix="Check that the file is DICOM")
    return image, _tags(image.HasMetaDataKey, image.GetMetaData)
