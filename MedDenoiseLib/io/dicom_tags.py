"""DICOM header entries of a derived series: which source tags are copied, new UIDs, provenance text.

A denoised series is a new *derived* image in the source's study: patient, study and frame
of reference come from the source; series, instances, ImageType and the derivation text
are new (``dicom_export.write_derived_series`` writes it). Tags are named by keyword here
and stored under SimpleITK/GDCM ``"gggg|eeee"`` keys.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Mapping

import SimpleITK as sitk

from .. import __version__
from ..errors import ConfigError, rule_message
from .dicom import gdcm_call, series_file_names

#: Source tags copied unchanged into the derived series (keyword -> "gggg|eeee").
COPIED_TAGS = {
    "SpecificCharacterSet": "0008|0005",
    "StudyDate": "0008|0020",
    "StudyTime": "0008|0030",
    "AccessionNumber": "0008|0050",
    "Modality": "0008|0060",
    "ReferringPhysicianName": "0008|0090",
    "StudyDescription": "0008|1030",
    "PatientName": "0010|0010",
    "PatientID": "0010|0020",
    "PatientBirthDate": "0010|0030",
    "PatientSex": "0010|0040",
    "BodyPartExamined": "0018|0015",
    "SliceThickness": "0018|0050",
    "PatientPosition": "0018|5100",
    "StudyInstanceUID": "0020|000d",
    "StudyID": "0020|0010",
    "FrameOfReferenceUID": "0020|0052",
}
#: Source tags that describe the source series: read, never copied (the derived series gets new ones).
SOURCE_SERIES_TAGS = {
    "SeriesInstanceUID": "0020|000e",
    "SeriesNumber": "0020|0011",
    "SeriesDescription": "0008|103e",
}
SOURCE_TAGS = {**COPIED_TAGS, **SOURCE_SERIES_TAGS}
#: ``write_derived_series(modality=...)`` also takes the library's modality names.
MODALITY_CODES = {"ct": "CT", "mr": "MR", "us": "US", "xr": "DX"}
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_KEY = re.compile(r"^[0-9a-fA-F]{4}\|[0-9a-fA-F]{4}$")
_BY_KEY = {key: name for name, key in SOURCE_TAGS.items()}
#: Longest values DICOM allows: LO (SeriesDescription), ST (DerivationDescription).
MAX_LO, MAX_ST = 64, 1024


def new_uid() -> str:
    """A new, globally unique DICOM UID in the ``2.25.<UUID as integer>`` form (ISO/IEC 9834-8).

    No organisation root is needed and nothing is registered; at most 44 characters.

    Examples
    --------
    >>> uid = new_uid()
    >>> uid.startswith("2.25.") and len(uid) <= 64 and uid != new_uid()
    True
    """
    return f"2.25.{uuid.uuid4().int}"


def is_uid(value: str) -> bool:
    """True for a syntactically valid UID: digits and dots, at most 64 characters."""
    return len(value) <= 64 and bool(_UID.match(value))


def read_source_tags(path: str | Path, *, series_uid: str | None = None) -> dict[str, str]:
    """The :data:`SOURCE_TAGS` of a DICOM series (its first file) or of one DICOM file.

    Parameters
    ----------
    path : str or Path
        A folder holding the series, or one ``.dcm`` file of it.
    series_uid : str, optional
        Series to read in a folder with several (default: the largest, as ``read_volume``).

    Returns
    -------
    dict of str
        Keyword -> value for the tags present and non-empty, e.g.
        ``{"Modality": "CT", "StudyInstanceUID": "1.2.3", "PatientID": "P1", ...}``.

    Raises
    ------
    InputError
        If there is no DICOM series there or GDCM cannot read the header.
    """
    path = Path(path)
    first = series_file_names(path, series_uid=series_uid)[1][0] if path.is_dir() else str(path)
    reader = sitk.ImageFileReader()
    reader.SetFileName(first)
    reader.SetImageIO("GDCMImageIO")
    gdcm_call(reader.ReadImageInformation, value=first, rule="must be a readable DICOM file",
              fix="Check that the file is DICOM")
    values = {name: reader.GetMetaData(key).strip(" \x00") for name, key in SOURCE_TAGS.items()
              if reader.HasMetaDataKey(key)}
    return {name: value for name, value in values.items() if value}


def normalise_source_tags(source_tags: Mapping[str, object] | None) -> dict[str, str]:
    """Source tags keyed by keyword, values stripped, empty ones dropped, UIDs checked.

    Keys may be keywords of :data:`SOURCE_TAGS` or their ``"gggg|eeee"`` keys (as in
    ``Volume.metadata`` of a DICOM input or ``read_source_tags``).

    Raises
    ------
    ConfigError
        For a key outside :data:`SOURCE_TAGS` or a malformed UID.
    """
    tags: dict[str, str] = {}
    for key, value in (source_tags or {}).items():
        name = _BY_KEY.get(str(key).lower(), str(key)) if _KEY.match(str(key)) else str(key)
        if name not in SOURCE_TAGS:
            raise ConfigError(rule_message("source_tags", f"keys must be DICOM keywords (or 'gggg|eeee' keys) of "
                                           f"{', '.join(sorted(SOURCE_TAGS))}", key,
                                           "Drop that key, or take the tags from read_source_tags(path)."))
        text = str(value).strip(" \x00")
        if text:
            tags[name] = text
    for name in ("StudyInstanceUID", "FrameOfReferenceUID", "SeriesInstanceUID"):
        if name in tags and not is_uid(tags[name]):
            raise ConfigError(rule_message(f"source_tags[{name!r}]", "must be a DICOM UID (digits and dots, at most "
                                           "64 characters)", tags[name], "Pass the UID as stored in the source."))
    return tags


def modality_code(modality: str | None) -> str | None:
    """DICOM Modality code for ``"ct"``/``"mr"``/``"us"``/``"xr"`` or a code such as ``"CT"``; None stays None.

    Raises
    ------
    ConfigError
        If ``modality`` is neither a library name nor a DICOM code (upper-case, at most 16 characters).

    Examples
    --------
    >>> modality_code("xr"), modality_code("MG")
    ('DX', 'MG')
    """
    if modality is None:
        return None
    code = MODALITY_CODES.get(modality, modality)
    if not re.fullmatch(r"[A-Z0-9_ ]{1,16}", code):
        raise ConfigError(rule_message("modality", "must be ct, mr, us, xr or a DICOM Modality code", modality,
                                       "Pass e.g. 'ct' or 'CT'."))
    return code


def derivation_from_report(report: Mapping) -> str:
    """DerivationDescription text from ``DenoiseResult.report``: tool, model, weights sha256, TTA, MC dropout.

    Examples
    --------
    >>> text = derivation_from_report({"model": "mr_slab25d", "model_sha256": "ab12", "tta": 8, "mc_dropout": 0})
    >>> text.split(" with ")[1]
    'model mr_slab25d (weights sha256 ab12), TTA 8'
    """
    model = report.get("model") or "an unnamed model"
    sha = report.get("model_sha256")
    text = f"Denoised by MedDenoise {__version__} with model {model} "
    text += f"(weights sha256 {sha})" if sha else "(no weights sha256 recorded)"
    text += f", TTA {report.get('tta', 'unknown')}"
    if report.get("mc_dropout"):
        text += f", MC dropout {report['mc_dropout']}"
    return text


def series_description(explicit: str | None, source: Mapping[str, str]) -> str:
    """``explicit``, else ``"<source SeriesDescription> denoised"`` (shortened to fit), else ``"MedDenoise denoised"``.

    Raises
    ------
    ConfigError
        If ``explicit`` is longer than 64 characters or holds a backslash (DICOM LO).
    """
    if explicit is not None:
        text = explicit.strip()
        if not text or len(text) > MAX_LO or "\\" in text:
            raise ConfigError(rule_message("series_description", f"must be 1 to {MAX_LO} characters without "
                                           "backslash (DICOM LO)", explicit, "Shorten it, e.g. 'T1 denoised'."))
        return text
    base = source.get("SeriesDescription", "MedDenoise").replace("\\", " ")
    return base[: MAX_LO - len(" denoised")].rstrip() + " denoised"
