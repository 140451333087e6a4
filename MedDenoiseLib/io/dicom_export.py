"""Write a volume (the denoised result) as a new, *derived* DICOM series; never into an existing series.

One file per slice, written by SimpleITK/GDCM: ImagePositionPatient per slice,
ImageOrientationPatient, PixelSpacing and SliceThickness from the volume's geometry;
ImageType ``DERIVED\\SECONDARY``; new SeriesInstanceUID and SOPInstanceUIDs; patient,
study and frame of reference copied from the source (``dicom_tags.COPIED_TAGS``) so the
series files into the source's study beside the original. Voxels are stored as int16
(see :func:`int16_rescale`).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Mapping

import numpy as np
import SimpleITK as sitk

from .. import __version__
from ..errors import ConfigError, InputError, rule_message
from ..volume import Geometry, Volume
from .axes import sitk_from_volume
from .dicom import gdcm_call
from .dicom_tags import COPIED_TAGS, MAX_ST, modality_code, new_uid, normalise_source_tags, series_description

logger = logging.getLogger(__name__)

QUANTIZATIONS = ("auto", "round")
#: SOP classes: CT and MR keep their image IOD; anything else (and MR that needs a rescale,
#: which the MR Image IOD cannot carry) is Secondary Capture.
CT_IMAGE, MR_IMAGE, SECONDARY_CAPTURE = ("1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.4",
                                         "1.2.840.10008.5.1.4.1.1.7")
FILE_PREFIX = "MedDenoise_"
_INT16 = np.iinfo(np.int16)
_ORTHO_TOLERANCE = 1e-4


@dataclass(frozen=True)
class DerivedSeries:
    """What :func:`write_derived_series` wrote: folder, files (slice order), UIDs and the value mapping."""

    directory: Path
    files: tuple[Path, ...]
    series_instance_uid: str
    study_instance_uid: str
    sop_class_uid: str
    rescale_slope: float
    rescale_intercept: float


def _ds(value: float) -> str:
    """``value`` as a DICOM decimal string (at most 16 characters), as precise as fits."""
    for digits in range(15, 5, -1):
        text = f"{value:.{digits}g}"
        if len(text) <= 16:
            return text
    raise ConfigError(rule_message("value", "must fit a DICOM decimal string", value, "Use a finite number."))


def int16_rescale(array: np.ndarray, *, quantization: Literal["auto", "round"] = "auto"
                  ) -> tuple[np.ndarray, float, float]:
    """Stored int16 values and the RescaleSlope/Intercept that map them back: v = slope * s + intercept.

    Parameters
    ----------
    array : np.ndarray
        Finite voxel values of any real type.
    quantization : {"auto", "round"}
        ``"auto"``: integer values that fit int16 are stored exactly (slope 1, intercept 0);
        anything else is rescaled linearly onto about 65000 int16 steps, so each value is off
        by at most ``slope / 2`` (CT from -1024 to 3071 HU: 0.032 HU). ``"round"``: rounded
        half to even to integers with slope 1 (the source's own integer units); values
        outside int16 are an error.

    Returns
    -------
    stored : np.ndarray of int16
    slope, intercept : float
        Exactly as written in the DICOM decimal strings.

    Raises
    ------
    InputError
        NaN/Inf values, or ``"round"`` with values outside int16.
    ConfigError
        Unknown ``quantization``.

    Examples
    --------
    >>> int16_rescale(np.array([-1000.0, 40.0]))
    (array([-1000,    40], dtype=int16), 1.0, 0.0)
    >>> stored, slope, intercept = int16_rescale(np.array([0.0, 0.25, 1.0]))
    >>> bool(np.all(np.abs(stored * slope + intercept - [0.0, 0.25, 1.0]) <= slope / 2))
    True
    """
    if quantization not in QUANTIZATIONS:
        raise ConfigError(rule_message("quantization", f"must be one of {QUANTIZATIONS}", quantization,
                                       "Use 'auto' (exact integers, else a linear rescale) or 'round'."))
    values = np.asarray(array, dtype=np.float64)
    bad = int(np.size(values) - np.count_nonzero(np.isfinite(values)))
    if bad:
        raise InputError(rule_message("volume", "must hold only finite voxels to be stored as DICOM",
                                      f"{bad} NaN/Inf voxels", "Replace them first (e.g. with 0)."))
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    rounded = np.rint(values)
    fits = low >= _INT16.min - 0.5 and high <= _INT16.max + 0.5
    if quantization == "round" or (fits and np.array_equal(rounded, values)):
        if not fits:
            raise InputError(rule_message("volume", "must lie in the int16 range to be stored rounded with slope 1",
                                          f"{low:g}..{high:g}", "Use quantization='auto' (linear rescale)."))
        return rounded.astype(np.int16), 1.0, 0.0
    if high == low:
        return np.zeros(values.shape, np.int16), 1.0, float(_ds(low))
    for steps in (65000, 60000, 50000):
        slope, intercept = float(_ds((high - low) / steps)), float(_ds((high + low) / 2))
        stored = np.rint((values - intercept) / slope)
        if stored.min() >= _INT16.min and stored.max() <= _INT16.max:
            return stored.astype(np.int16), slope, intercept
    raise InputError(rule_message("volume", "must have a value range int16 with a rescale can hold",
                                  f"{low:g}..{high:g}", "Shift or scale the values first."))  # pragma: no cover


def dicom_files(directory: Path) -> list[Path]:
    """Files directly in ``directory`` that are DICOM (``.dcm``, DICOMDIR, the ``DICM`` preamble, or GDCM sees them)."""
    found = []
    for path in sorted(p for p in directory.iterdir() if p.is_file()):
        if path.suffix.lower() == ".dcm" or path.name.upper() == "DICOMDIR":
            found.append(path)
            continue
        try:
            with open(path, "rb") as handle:
                head = handle.read(132)
        except OSError:
            continue
        if head[128:132] == b"DICM":
            found.append(path)
    if not found and sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(directory)):
        found = [Path(f) for uid in sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(directory))
                 for f in sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(directory), uid)]
    return found


def check_dicom_target(out_dir: str | Path) -> Path:
    """Refuse a target folder that holds DICOM files (a derived series never overwrites or joins another one).

    A missing folder (in an existing parent) or a folder without DICOM files is accepted.

    Raises
    ------
    InputError
        ``out_dir`` is a file, its parent is missing, or it already holds DICOM files.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(rule_message("out_dir", "must be a folder", f"{out_dir} (a file)",
                                      "Choose a new or empty folder for the derived series."))
    if not out_dir.exists():
        if not out_dir.parent.is_dir():
            raise InputError(rule_message("out_dir", "must be in an existing folder", str(out_dir),
                                          f"Create {out_dir.parent} first."))
        return out_dir
    found = dicom_files(out_dir)
    if found:
        raise InputError(rule_message(
            "out_dir", "must not already hold DICOM files (the derived series never overwrites or mixes with "
            "another series, the source's included)", f"{out_dir} ({len(found)} DICOM files, e.g. {found[0].name})",
            f"Choose a new or empty folder, e.g. {out_dir.name}_denoised beside it."))
    return out_dir


def _slice_normal(geometry: Geometry) -> np.ndarray:
    """Row x column direction (LPS), the axis readers sort slices along; refuses grids DICOM cannot describe."""
    matrix = np.asarray(geometry.direction, dtype=np.float64).reshape(3, 3)
    row, column, axis = matrix[:, 0], matrix[:, 1], matrix[:, 2]
    normal = np.cross(row, column)
    if (abs(np.linalg.norm(row) - 1) > _ORTHO_TOLERANCE or abs(np.linalg.norm(column) - 1) > _ORTHO_TOLERANCE
            or abs(float(row @ column)) > _ORTHO_TOLERANCE or abs(abs(float(axis @ normal)) - 1) > _ORTHO_TOLERANCE):
        raise InputError(rule_message("volume.geometry.direction", "must be orthonormal (DICOM slices cannot "
                                      "describe a sheared grid)", geometry.direction,
                                      "Resample the volume onto an orthogonal grid first."))
    return normal


def _series_tags(volume: Volume, source: dict[str, str], *, derivation: str, description: str | None,
                 series_number: int | None, modality: str, sop_class: str) -> dict[str, str]:
    now = time.localtime()
    date, clock = time.strftime("%Y%m%d", now), time.strftime("%H%M%S", now)
    tags = {COPIED_TAGS[name]: value for name, value in source.items() if name in COPIED_TAGS}
    if series_number is None:
        number = source.get("SeriesNumber", "")
        series_number = 1000 + int(number) if number.isdigit() else 1000
    tags.update({
        "0008|0008": "DERIVED\\SECONDARY", "0008|0016": sop_class,
        "0008|0060": modality,
        "0008|103e": series_description(description, source), "0008|2111": derivation,
        "0008|0021": date, "0008|0031": clock, "0008|0023": date, "0008|0033": clock,
        "0008|0012": date, "0008|0013": clock, "0018|1020": f"MedDenoise {__version__}",
        "0020|000d": source.get("StudyInstanceUID") or new_uid(), "0020|000e": new_uid(),
        "0020|0052": source.get("FrameOfReferenceUID") or new_uid(), "0020|0011": str(int(series_number)),
        COPIED_TAGS["SliceThickness"]: source.get("SliceThickness") or _ds(volume.geometry.spacing[2]),
    })
    if "SeriesInstanceUID" in source:
        tags["0020|4000"] = f"Derived from series {source['SeriesInstanceUID']} by MedDenoise {__version__}."
    return tags


def write_derived_series(
    volume: Volume,
    out_dir: str | Path,
    *,
    derivation_description: str,
    source_tags: Mapping[str, object] | None = None,
    series_description: str | None = None,
    series_number: int | None = None,
    modality: str | None = None,
    quantization: Literal["auto", "round"] = "auto",
) -> DerivedSeries:
    """Write ``volume`` as a new derived DICOM series (one file per slice) into ``out_dir``, atomically.

    Parameters
    ----------
    volume : Volume
        Voxels (z, y, x) and LPS geometry, e.g. ``DenoiseResult.denoised``; never modified.
    out_dir : str or Path
        A new folder (its parent must exist) or an existing one without DICOM files.
    derivation_description : str
        DerivationDescription (at most 1024 characters), e.g. ``derivation_from_report(result.report)``.
    source_tags : mapping, optional
        Tags of the source series (``read_source_tags(path)``; keywords or ``"gggg|eeee"`` keys of
        ``dicom_tags.SOURCE_TAGS``). Patient, study, frame of reference and Modality are copied;
        the source's SeriesInstanceUID is named in ImageComments. None: a new study without
        patient identifiers.
    series_description : str, optional
        Default ``"<source SeriesDescription> denoised"``, or ``"MedDenoise denoised"``.
    series_number : int, optional
        Default 1000 + the source's SeriesNumber (1000 without one).
    modality : str, optional
        Modality when the source tags have none (``"ct"``/``"mr"``/``"us"``/``"xr"`` or a DICOM
        code); then ``volume.metadata["Modality"]``, then ``"OT"``.
    quantization : {"auto", "round"}
        How values become int16, see :func:`int16_rescale`.

    Returns
    -------
    DerivedSeries

    Raises
    ------
    InputError
        ``out_dir`` holds DICOM files, is a file or has no parent; non-finite voxels; a sheared
        grid; GDCM cannot write (the message says why).
    ConfigError
        Bad ``source_tags``, ``series_description``, ``derivation_description``, ``modality`` or
        ``quantization``.

    Notes
    -----
    Geometry: slice k of the (z, y, x) array is written with ImagePositionPatient = origin +
    k * spacing_z * direction[:, 2], ImageOrientationPatient = the first two direction columns,
    PixelSpacing = (spacing_y, spacing_x). Readers order slices along row x column, so a grid
    whose third axis points the other way (left-handed) comes back with z reversed: the same
    voxels at the same physical points.

    SOP class: CT Image for CT; MR Image for MR stored without a rescale; otherwise Secondary
    Capture (the MR Image IOD has no RescaleSlope/Intercept), written with its image plane
    (ImagePositionPatient, ImageOrientationPatient), which ITK and Slicer read as geometry.

    Atomic: files are written into a hidden temporary folder on the same file system and moved
    in only when every slice was written; on any failure nothing is left behind.
    """
    out_dir = check_dicom_target(out_dir)
    if not derivation_description.strip() or len(derivation_description) > MAX_ST:
        raise ConfigError(rule_message("derivation_description", f"must be 1 to {MAX_ST} characters (DICOM ST)",
                                       len(derivation_description), "Use derivation_from_report(result.report)."))
    source = normalise_source_tags(source_tags)
    normal = _slice_normal(volume.geometry)
    stored, slope, intercept = int16_rescale(volume.array, quantization=quantization)
    rescaled = (slope, intercept) != (1.0, 0.0)
    code = source.get("Modality") or modality_code(modality) or volume.metadata.get("Modality") or "OT"
    sop_class = {"CT": CT_IMAGE, "MR": MR_IMAGE if not rescaled else SECONDARY_CAPTURE}.get(code, SECONDARY_CAPTURE)
    tags = _series_tags(volume, source, derivation=derivation_description, description=series_description,
                        series_number=series_number, modality=code, sop_class=sop_class)
    if rescaled:  # GDCM maps float voxels onto the int16 grid with exactly this slope/intercept
        values, dtype = stored * slope + intercept, "float64"
        tags.update({"0028|1053": _ds(slope), "0028|1052": _ds(intercept), "0028|0100": "16", "0028|0101": "16",
                     "0028|0102": "15", "0028|0103": "1"})
    else:
        values, dtype = stored, "int16"
    image = sitk_from_volume(Volume(values, volume.geometry), dtype=dtype)
    names = _write_atomically(image, tags, normal, out_dir)
    logger.info("Wrote derived DICOM series %s (%d files, %s) to %s.", tags["0020|000e"], len(names),
                "rescaled int16" if rescaled else "int16", out_dir)
    return DerivedSeries(out_dir, tuple(out_dir / n for n in names), tags["0020|000e"], tags["0020|000d"], sop_class,
                         slope, intercept)


def _write_slice(writer: sitk.ImageFileWriter, image: sitk.Image, path: Path) -> None:
    writer.SetFileName(str(path))
    writer.Execute(image)


def _prime_gdcm(folder: Path) -> None:
    """Make GDCM write the image plane (ImagePositionPatient...) of Secondary Capture files in this process.

    GDCM keeps process-wide switches for that (and for applying RescaleSlope to every SOP
    class) that ITK turns on only when it reads a DICOM header, so without this the first
    series written by a fresh process would lose its geometry. One 1-voxel file is written,
    its header read, and the file removed.
    """
    probe = folder / ".gdcm-probe.dcm"
    sitk.WriteImage(sitk.Image(1, 1, sitk.sitkUInt8), str(probe))
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(probe))
    reader.ReadImageInformation()
    probe.unlink()


def _write_atomically(image: sitk.Image, tags: dict[str, str], normal: np.ndarray, out_dir: Path) -> list[str]:
    exists = out_dir.is_dir()
    temp = Path(tempfile.mkdtemp(prefix=".meddenoise-dicom-", dir=out_dir if exists else out_dir.parent))
    moved: list[Path] = []
    try:
        _prime_gdcm(temp)
        writer = sitk.ImageFileWriter()
        writer.SetImageIO("GDCMImageIO")
        writer.KeepOriginalImageUIDOn()
        names = []
        for k in range(image.GetDepth()):
            slice_ = image[:, :, k:k + 1]  # 3D, one slice: keeps origin and the full direction
            position = np.asarray(image.TransformIndexToPhysicalPoint((0, 0, k)))
            for key, value in {**tags, "0008|0018": new_uid(), "0020|0013": str(k + 1),
                               "0020|1041": _ds(float(position @ normal))}.items():
                slice_.SetMetaData(key, value)
            names.append(f"{FILE_PREFIX}{k + 1:05d}.dcm")
            gdcm_call(lambda: _write_slice(writer, slice_, temp / names[-1]), name="out_dir", value=out_dir,
                      rule="must be writable as a DICOM series", fix="Check permissions and free space")
        if not exists:
            os.rename(temp, out_dir)
            return names
        for name in names:
            if (out_dir / name).exists():
                raise InputError(rule_message("out_dir", "must not hold files named like the new series", name,
                                              "Choose a new or empty folder."))
            os.rename(temp / name, out_dir / name)
            moved.append(out_dir / name)
        return names
    except BaseException:
        for path in moved:
            path.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(temp, ignore_errors=True)
