"""Regions of a file: ``path#y=0:1100`` names part of an image for training or evaluation.

Data sets with a single subject (one radiograph) can still be split into training and
held-out parts when the two parts are disjoint boxes of the image. A region entry is the
file path, ``#`` and comma-separated ``axis=start:stop`` ranges, with ``axis`` one of
``z``, ``y``, ``x`` (the (z, y, x) voxel axes of :class:`~MedDenoiseLib.volume.Volume`),
``start`` inclusive and ``stop`` exclusive; omitted axes are kept whole, and an empty
bound means the image edge (``y=1200:``). The cropped volume keeps its physical place:
its origin moves to the physical point of the first kept voxel.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError, rule_message
from ..volume import Geometry, Volume
from .sitk_io import read_volume

__all__ = ["Region", "split_region", "read_region", "crop_volume", "regions_overlap"]

_AXES = ("z", "y", "x")
_REGION_START = re.compile(r"^\s*[zyx]\s*=")
_RANGE = re.compile(r"^\s*([zyx])\s*=\s*(\d*)\s*:\s*(\d*)\s*$")


@dataclass(frozen=True)
class Region:
    """Voxel ranges per (z, y, x) axis; ``None`` bounds mean the image edge."""

    ranges: tuple[tuple[int | None, int | None], ...] = ((None, None),) * 3

    def slices(self, shape: tuple[int, int, int]) -> tuple[slice, slice, slice]:
        """Python slices clipped to ``shape``; refuses empty or out-of-image ranges."""
        out = []
        for axis, (start, stop), size in zip(_AXES, self.ranges, shape):
            lo, hi = (0 if start is None else start), (size if stop is None else stop)
            if not 0 <= lo < hi <= size:
                raise InputError(rule_message(f"region {axis}", f"must satisfy 0 <= start < stop <= {size}",
                                              f"{start}:{stop}", "Give a range inside the image."))
            out.append(slice(lo, hi))
        return tuple(out)  # type: ignore[return-value]

    def text(self) -> str:
        """The ``z=a:b,y=c:d`` form (whole axes left out); empty for the whole image."""
        parts = [f"{axis}={'' if a is None else a}:{'' if b is None else b}"
                 for axis, (a, b) in zip(_AXES, self.ranges) if (a, b) != (None, None)]
        return ",".join(parts)


def split_region(entry: str) -> tuple[str, Region | None]:
    """``"file.nii.gz#y=0:100"`` -> (``"file.nii.gz"``, Region); plain paths give (path, None).

    Only a ``#`` followed by ``z=``, ``y=`` or ``x=`` starts a region, so file names holding
    ``#`` (``scan#2.nii.gz``) stay paths.
    """
    path, sep, spec = str(entry).rpartition("#")
    if not sep or not _REGION_START.match(spec):
        return str(entry), None
    ranges: dict[str, tuple[int | None, int | None]] = {}
    for part in spec.split(","):
        match = _RANGE.match(part)
        if match is None or match.group(1) in ranges:
            raise InputError(rule_message("region", "must be comma-separated axis=start:stop with axis z, y or x "
                                          "(each at most once)", entry, "Write e.g. file.nii.gz#y=0:1100,x=100:900."))
        start, stop = (int(g) if g else None for g in match.group(2, 3))
        ranges[match.group(1)] = (start, stop)
    return path, Region(tuple(ranges.get(axis, (None, None)) for axis in _AXES))


def crop_volume(volume: Volume, slices: tuple[slice, slice, slice]) -> Volume:
    """The voxels in ``slices`` (z, y, x) with the origin moved so every voxel keeps its physical point."""
    offset_xyz = np.array([slices[2].start, slices[1].start, slices[0].start], dtype=np.float64)
    direction = np.asarray(volume.geometry.direction, dtype=np.float64).reshape(3, 3)
    spacing = np.asarray(volume.geometry.spacing, dtype=np.float64)
    origin = np.asarray(volume.geometry.origin, dtype=np.float64) + direction @ (spacing * offset_xyz)
    geometry = Geometry(spacing=volume.geometry.spacing, origin=tuple(float(v) for v in origin),
                        direction=volume.geometry.direction)
    return Volume(np.ascontiguousarray(volume.array[slices]), geometry, volume.source_dtype, dict(volume.metadata))


def read_region(entry: str | Path) -> Volume:
    """Read a file, or the region of it that ``entry`` names (see the module docstring)."""
    path, region = split_region(str(entry))
    volume = read_volume(path)
    return volume if region is None else crop_volume(volume, region.slices(volume.shape))


def regions_overlap(a: Region | None, b: Region | None, shape: tuple[int, int, int]) -> bool:
    """Whether two regions of the same image share a voxel (``None`` is the whole image)."""
    whole = Region()
    boxes = [(r or whole).slices(shape) for r in (a, b)]
    return all(max(p.start, q.start) < min(p.stop, q.stop) for p, q in zip(*boxes))
