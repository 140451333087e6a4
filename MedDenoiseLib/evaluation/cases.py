"""Evaluation cases: clean reference images read from disk, optionally cropped, checked for leakage.

A case is one file = one subject (the unit of every paired statistic). Directories are
expanded to the readable images directly inside them (not recursively), sorted by name.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, InputError, rule_message
from ..io import READ_EXTENSIONS, as_float, read_volume
from ..io.sitk_io import file_extension
from ..volume import Geometry

logger = logging.getLogger(__name__)

__all__ = ["Case", "expand_data", "load_cases", "foreground_crop", "training_files", "check_leakage"]


@dataclass
class Case:
    """A clean image (float32, (z, y, x)) and where it came from."""

    name: str
    path: str
    clean: np.ndarray
    geometry: Geometry
    crop: list[list[int]] | None = None  # [[z0, z1], [y0, y1], [x0, x1]] in the file's voxels

    def describe(self) -> dict:
        """JSON-ready description for the report."""
        return {"name": self.name, "path": self.path, "shape_zyx": list(self.clean.shape), "crop_zyx": self.crop,
                "spacing_xyz": list(self.geometry.spacing),
                "intensity_range": [float(self.clean.min()), float(self.clean.max())]}


def expand_data(items: list[str]) -> list[Path]:
    """Files as given, directories replaced by the images they contain (sorted)."""
    paths: list[Path] = []
    for item in items:
        path = Path(item).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and file_extension(p) in READ_EXTENSIONS)
            if not found:
                raise InputError(rule_message("data directory", f"must contain images ({', '.join(READ_EXTENSIONS)})",
                                              str(path), "Point --data at the folder holding the files."))
            paths.extend(found)
        elif path.is_file():
            paths.append(path)
        else:
            raise InputError(rule_message("data", "must name existing files or directories", str(path),
                                          "Check the path (relative paths start from the current directory)."))
    names = [p.name for p in paths]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(rule_message("data file names", "must be unique (they name the cases)", duplicates,
                                       "Rename or drop the duplicates."))
    return paths


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
    for path in expand_data(data):
        volume = read_volume(path)
        clean = as_float(volume)
        window = None
        if crop is not None:
            slices = foreground_crop(clean, crop)
            clean = np.ascontiguousarray(clean[slices])
            window = [[s.start, s.stop] for s in slices]
        if float(clean.max()) == float(clean.min()):
            raise InputError(rule_message(f"case {path.name}", "must not be constant (after cropping)",
                                          float(clean.min()), "Use a larger crop or another file."))
        name = path.name.removesuffix(".gz").rsplit(".", 1)[0]
        cases.append(Case(name, str(path), clean.astype(np.float32, copy=False), volume.geometry, window))
        logger.info("case %s: %s voxels (z, y, x)%s", name, clean.shape, f", crop {window}" if window else "")
    return cases


def training_files(card: dict) -> list[str]:
    """File names a model card lists as training data (``training.config.data.train``)."""
    config = (card.get("training") or {}).get("config") or {}
    return [Path(p).name for p in (config.get("data") or {}).get("train", [])]


def check_leakage(cases: list[Case], model_cards: dict[str, dict], *, exclude: bool) -> list[Case]:
    """Refuse (or, with ``exclude``, drop) cases that any evaluated model was trained on.

    Matching is by file name, which is how the shared data set names its subjects.
    """
    trained = {Path(name).name: method for method, card in model_cards.items() for name in training_files(card)}
    leaked = [c for c in cases if Path(c.path).name in trained]
    if leaked and not exclude:
        raise ConfigError(rule_message(
            "evaluation cases", "must not include a model's training data",
            {Path(c.path).name: trained[Path(c.path).name] for c in leaked},
            "Evaluate on held-out files only (list them in --data), or pass --exclude-training to drop these."))
    kept = [c for c in cases if c not in leaked]
    for c in leaked:
        logger.warning("dropped case %s: training data of %s", c.name, trained[Path(c.path).name])
    if not kept:
        raise ConfigError(rule_message("number of held-out cases", "must be >= 1", 0,
                                       "Every case was training data: pass held-out files in --data."))
    return kept
