"""Evaluation cases: clean reference images read from disk, optionally cropped, checked for leakage.

A case is one file = one subject (the unit of every paired statistic), or a region of a file
(``file#y=1200:``, see :mod:`MedDenoiseLib.io.regions`) when a subject's image is split into
training and held-out parts. Directories are expanded to the readable images directly inside
them (not recursively), sorted by name.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import ConfigError, InputError, rule_message
from ..io import READ_EXTENSIONS, as_float, read_region
from ..io.regions import regions_overlap, split_region
from ..io.sitk_io import file_extension
from ..volume import Geometry

logger = logging.getLogger(__name__)

__all__ = ["Case", "case_name", "expand_data", "load_cases", "foreground_crop", "training_files", "check_leakage"]


@dataclass
class Case:
    """A clean image (float32, (z, y, x)) and where it came from."""

    name: str
    path: str
    clean: np.ndarray
    geometry: Geometry
    crop: list[list[int]] | None = None  # [[z0, z1], [y0, y1], [x0, x1]] in the file's voxels
    context: np.ndarray | None = None
    """With a crop: the crop's slices at full in-plane size, for noise that depends on the whole
    cross-section (projection-domain CT: attenuation along every ray through the body)."""

    def describe(self) -> dict:
        """JSON-ready description for the report."""
        return {"name": self.name, "path": self.path, "shape_zyx": list(self.clean.shape), "crop_zyx": self.crop,
                "spacing_xyz": list(self.geometry.spacing),
                "intensity_range": [float(self.clean.min()), float(self.clean.max())]}


def expand_data(items: list[str]) -> list[str]:
    """Entries as given (files, or regions ``file#y=0:100``), directories replaced by their images (sorted)."""
    entries: list[str] = []
    for item in items:
        file_part, region = split_region(item)
        path = Path(file_part).expanduser()
        if path.is_dir() and region is None:
            found = sorted(p for p in path.iterdir() if p.is_file() and file_extension(p) in READ_EXTENSIONS)
            if not found:
                raise InputError(rule_message("data directory", f"must contain images ({', '.join(READ_EXTENSIONS)})",
                                              str(path), "Point --data at the folder holding the files."))
            entries.extend(str(p) for p in found)
        elif path.is_file():
            entries.append(str(path) + (f"#{region.text()}" if region is not None else ""))
        else:
            raise InputError(rule_message("data", "must name existing files or directories", str(path),
                                          "Check the path (relative paths start from the current directory)."))
    names = [case_name(e) for e in entries]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(rule_message("data file names", "must be unique (they name the cases)", duplicates,
                                       "Rename or drop the duplicates."))
    return entries


def case_name(entry: str) -> str:
    """File name without extension, plus the region (``tibia_y1200-1760``) when the entry has one."""
    file_part, region = split_region(entry)
    name = Path(file_part).name.removesuffix(".gz").rsplit(".", 1)[0]
    if region is None:
        return name
    return name + "_" + region.text().replace("=", "").replace(":", "-").replace(",", "_")


def foreground_crop(image: np.ndarray, size_zyx: tuple[int, int, int]) -> tuple[slice, ...]:
    """Slices of ``size_zyx`` (clipped to the image) centred on the bounding box of voxels above the mean."""
    mask = image > image.mean()
    if not mask.any():
        mask = np.ones_like(image, dtype=bool)
    slices = []
    for axis, want in enumerate(size_zyx):
        n = image.shape[axis]
        other = tuple(a for a in range(image.ndim) if a != axis)
        idx = np.flatnonzero(mask.any(axis=other))
        centre = (int(idx[0]) + int(idx[-1]) + 1) // 2
        size = min(int(want), n)
        start = int(np.clip(centre - size // 2, 0, n - size))
        slices.append(slice(start, start + size))
    return tuple(slices)


def load_cases(data: list[str], *, crop: tuple[int, int, int] | None = None) -> list[Case]:
    """Read every image of ``data`` as a clean reference case (float32), cropped if asked."""
    cases = []
    for entry in expand_data(data):
        volume = read_region(entry)
        clean = as_float(volume)
        window, context = None, None
        if crop is not None:
            slices = foreground_crop(clean, crop)
            context = np.ascontiguousarray(clean[slices[0]], dtype=np.float32)
            clean = np.ascontiguousarray(clean[slices])
            window = [[s.start, s.stop] for s in slices]
        name = case_name(entry)
        if float(clean.max()) == float(clean.min()):
            raise InputError(rule_message(f"case {name}", "must not be constant (after cropping)",
                                          float(clean.min()), "Use a larger crop or another file."))
        cases.append(Case(name, entry, clean.astype(np.float32, copy=False), volume.geometry, window, context))
        logger.info("case %s: %s voxels (z, y, x)%s", name, clean.shape, f", crop {window}" if window else "")
    return cases


def training_files(card: dict) -> list[str]:
    """Data entries a model card lists as training data (``training.config.data.train``), as written."""
    config = (card.get("training") or {}).get("config") or {}
    return [str(p) for p in (config.get("data") or {}).get("train", [])]


def seen_files(card: dict) -> list[str]:
    """Every data entry a model has seen with its clean reference: training, std-calibration and routing-fit data,
    and for a routed model (``member_cards``) every member's."""
    calibration = (card.get("uncertainty_calibration") or {}).get("data") or []
    routing = (card.get("route_fit") or {}).get("data") or []
    members = [entry for member in card.get("member_cards", []) for entry in seen_files(member)]
    return training_files(card) + [str(p) for p in (*calibration, *routing)] + members


def _trained_on(case: Case, entry: str) -> bool:
    """Same file (by name, which is how the shared data set names its subjects) and overlapping regions."""
    case_file, case_region = split_region(case.path)
    trained_file, trained_region = split_region(entry)
    if Path(case_file).name != Path(trained_file).name:
        return False
    if case_region is None or trained_region is None:
        return True
    return regions_overlap(case_region, trained_region, _image_shape(case_file))


def _image_shape(path: str) -> tuple[int, int, int]:
    """(z, y, x) size from the file header (voxels are not read)."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.ReadImageInformation()
    size = list(reader.GetSize()) + [1, 1]
    return int(size[2]), int(size[1]), int(size[0])


def check_leakage(cases: list[Case], model_cards: dict[str, dict], *, exclude: bool) -> list[Case]:
    """Refuse (or, with ``exclude``, drop) cases that any evaluated model was trained on.

    A case leaks when a model trained (or had its std calibrated) on the same file, unless both
    name disjoint regions of it.
    """
    leaked = {c.name: method for c in cases for method, card in model_cards.items()
              if any(_trained_on(c, entry) for entry in seen_files(card))}
    if leaked and not exclude:
        raise ConfigError(rule_message(
            "evaluation cases", "must not include a model's training data", leaked,
            "Evaluate on held-out files only (list them in --data), or pass --exclude-training to drop these."))
    kept = [c for c in cases if c.name not in leaked]
    for name, method in leaked.items():
        logger.warning("dropped case %s: training data of %s", name, method)
    if not kept:
        raise ConfigError(rule_message("number of held-out cases", "must be >= 1", 0,
                                       "Every case was training data: pass held-out files in --data."))
    return kept
