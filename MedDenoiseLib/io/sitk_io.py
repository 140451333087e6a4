"""Read and write volumes, keeping spacing, origin, direction and the stored voxel type.

Formats: NIfTI (``.nii``, ``.nii.gz``), NRRD (``.nrrd``, ``.nhdr``), MetaImage (``.mha``,
``.mhd``) and, for reading only, DICOM (a series folder or one ``.dcm`` file).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Literal

import numpy as np
import SimpleITK as sitk

from ..errors import ConfigError, InputError, rule_message
from ..volume import Volume
from .axes import sitk_from_volume, volume_from_sitk
from .channels import select_channel
from .dicom import read_dicom_file, read_dicom_series
from .dtypes import resolve_dtype
from .nifti_check import find_nonfinite

logger = logging.getLogger(__name__)

#: Extensions ``write_volume`` accepts (``read_volume`` also takes ``.dcm`` and DICOM folders).
WRITE_EXTENSIONS = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")
READ_EXTENSIONS = WRITE_EXTENSIONS + (".dcm",)
NONFINITE_CHOICES = ("error", "zero")
#: Volume.metadata keys are stored in NRRD/MetaImage headers under this prefix.
_META_PREFIX = "MedDenoise_"


def file_extension(path: str | Path) -> str:
    """Lower-case extension, ``.nii.gz`` counted as one."""
    name = Path(path).name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else Path(name).suffix


def _check_extension(path: Path, allowed: tuple[str, ...], what: str) -> str:
    extension = file_extension(path)
    if extension not in allowed:
        folder = " or a DICOM series folder" if what == "reading" else ""
        raise InputError(rule_message("path", f"must end with a supported extension for {what}", str(path),
                                      f"Use one of: {', '.join(allowed)}{folder}."))
    return extension


def _read_image(path: Path, series_uid: str | None) -> tuple[sitk.Image, dict[str, str], str]:
    """SimpleITK image, metadata and extension ('' for a DICOM folder) of ``path``."""
    if not path.exists():
        raise InputError(rule_message("path", "must exist", str(path), "Check the spelling and the working directory."))
    if path.is_dir():
        image, metadata = read_dicom_series(path, series_uid=series_uid)
        return image, metadata, ""
    extension = _check_extension(path, READ_EXTENSIONS, "reading")
    if path.stat().st_size == 0:
        raise InputError(rule_message("path", "must not be an empty file", f"{path} (0 bytes)",
                                      "Re-export or re-copy the file; a 0-byte file is an interrupted write."))
    if extension == ".dcm":
        image, metadata = read_dicom_file(path)
        return image, metadata, extension
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise InputError(rule_message("path", "must be a readable image file", str(path),
                                      f"Check that the file is complete and really {extension} "
                                      f"(SimpleITK said: {str(exc).strip()[-200:]}).")) from exc
    metadata = {key[len(_META_PREFIX):]: image.GetMetaData(key)
                for key in image.GetMetaDataKeys() if key.startswith(_META_PREFIX)}
    return image, metadata, extension


def read_volume(
    path: str | Path,
    *,
    channel: int | None = None,
    rgb_to_gray: bool = False,
    nonfinite: Literal["error", "zero"] = "error",
    series_uid: str | None = None,
) -> Volume:
    """Read a volume from an image file or a DICOM series folder.

    Parameters
    ----------
    path : str or Path
        ``.nii``, ``.nii.gz``, ``.nrrd``, ``.nhdr``, ``.mha``, ``.mhd``, ``.dcm``, or a folder
        holding a DICOM series.
    channel : int, optional
        Component (vector/RGB voxels) or time point (4D image) to read; required when
        there are several.
    rgb_to_gray : bool
        Convert 3-component uint8 voxels to luma Y = 0.299 R + 0.587 G + 0.114 B
        (ITU-R BT.601), rounded, kept uint8.
    nonfinite : {"error", "zero"}
        What NaN/Inf voxels do: ``"error"`` raises; ``"zero"`` sets them to 0 and logs a
        warning with their count.
    series_uid : str, optional
        SeriesInstanceUID to read from a DICOM folder (default: the largest series).

    Returns
    -------
    Volume
        ``array`` (z, y, x) in the stored pixel type (int16 stays int16), recorded in
        ``source_dtype``; 2D images become (1, H, W). ``metadata`` holds DICOM entries
        such as ``"Modality"`` and any entries ``write_volume`` stored in NRRD/MetaImage.

    Raises
    ------
    InputError
        Missing, empty or unreadable file; unsupported extension; a folder without
        DICOM; several channels and no ``channel``; NaN/Inf voxels with ``nonfinite="error"``.
    ConfigError
        Invalid ``nonfinite``, ``channel`` or ``rgb_to_gray`` value.

    Notes
    -----
    SimpleITK 2.5.7 reads NaN/Inf voxels of NIfTI files as 0; for float NIfTI the raw
    data are therefore checked separately (``nifti_check.find_nonfinite``).
    """
    if nonfinite not in NONFINITE_CHOICES:
        raise ConfigError(rule_message("nonfinite", f"must be one of {NONFINITE_CHOICES}", nonfinite,
                                       "Use 'error' to stop on NaN/Inf voxels or 'zero' to replace them with 0."))
    path = Path(path)
    image, metadata, extension = _read_image(path, series_uid)
    image, block = select_channel(image, channel=channel, rgb_to_gray=rgb_to_gray)
    volume = volume_from_sitk(image, metadata=metadata)
    array = volume.array
    if array.dtype.kind != "f":
        return volume
    mask = ~np.isfinite(array)
    if extension in (".nii", ".nii.gz"):
        raw = find_nonfinite(path)
        if raw is not None and raw.count:
            mask |= raw.volume_mask(block).reshape(array.shape)
    count = int(np.count_nonzero(mask))
    if count == 0:
        return volume
    if nonfinite == "error":
        raise InputError(rule_message("path", "must hold only finite voxels", f"{path}: {count} NaN/Inf voxels",
                                      "Fix the export, or read with nonfinite='zero' to replace them with 0."))
    logger.warning("%s: replaced %d NaN/Inf voxels with 0 (nonfinite='zero').", path, count)
    array = array.copy()
    array[mask] = 0
    return volume.with_array(array)


def _replace_into(temp_dir: Path, target: Path) -> None:
    """Move the files SimpleITK wrote in ``temp_dir`` next to ``target``, the header last."""
    header = temp_dir / target.name
    for item in sorted(temp_dir.iterdir()):
        if item != header:
            os.replace(item, target.parent / item.name)
    os.replace(header, target)


def write_volume(
    volume: Volume,
    path: str | Path,
    *,
    dtype: str | None = None,
    compress: bool = True,
    overwrite: bool = True,
) -> Path:
    """Write ``volume`` with its geometry, atomically.

    Parameters
    ----------
    volume : Volume
        Voxels and geometry; string ``metadata`` entries are kept in NRRD/MetaImage
        headers (as ``MedDenoise_<key>``) and come back from ``read_volume``.
    path : str or Path
        Target file; its folder must exist. Extension: ``.nii``, ``.nii.gz``, ``.nrrd``,
        ``.nhdr``, ``.mha``, ``.mhd``.
    dtype : str, optional
        ``None`` writes the array's own type; ``"source"`` writes ``volume.source_dtype``;
        otherwise a numpy dtype name. Integer targets are rounded half to even and
        clipped to the type's range (clipping is logged).
    compress : bool
        Ask the writer to compress (``.nii.gz`` is always gzip-compressed).
    overwrite : bool
        Replace an existing file; ``False`` raises instead.

    Returns
    -------
    Path
        ``path`` as written.

    Raises
    ------
    InputError
        Unsupported extension, missing folder, existing file with ``overwrite=False``,
        or non-finite voxels cast to an integer type.
    ConfigError
        ``dtype`` SimpleITK cannot write.

    Notes
    -----
    The image is first written into a temporary folder beside ``path`` and then moved
    in place with ``os.replace``, so a failed write leaves neither a half-made file nor
    a changed old one (for ``.nhdr``/``.mhd`` the data file is moved before the header).
    """
    path = Path(path)
    _check_extension(path, WRITE_EXTENSIONS, "writing")
    if not path.parent.is_dir():
        raise InputError(rule_message("path", "must be in an existing folder", str(path),
                                      f"Create {path.parent} first."))
    if path.exists() and not overwrite:
        raise InputError(rule_message("path", "must not exist when overwrite=False", str(path),
                                      "Choose another file name or pass overwrite=True."))
    target = resolve_dtype(volume.source_dtype, name="volume.source_dtype") if dtype == "source" else dtype
    image = sitk_from_volume(volume, dtype=target)
    for key, value in volume.metadata.items():
        if isinstance(value, str) and key.isidentifier():
            image.SetMetaData(_META_PREFIX + key, value)
    temp_dir = Path(tempfile.mkdtemp(prefix=".meddenoise-write-", dir=path.parent))
    try:
        writer = sitk.ImageFileWriter()
        writer.SetFileName(str(temp_dir / path.name))
        writer.SetUseCompression(compress)
        try:
            writer.Execute(image)
        except RuntimeError as exc:
            said = str(exc).strip()[-200:]
            raise InputError(rule_message("path", "must be writable", str(path),
                                          f"Check permissions and free space (SimpleITK said: {said}).")) from exc
        _replace_into(temp_dir, path)
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)
    logger.info("Wrote %s (%s, %s).", path, image.GetPixelIDTypeAsString(), "x".join(map(str, image.GetSize())))
    return path
