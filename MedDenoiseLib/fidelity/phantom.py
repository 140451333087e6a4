"""The fidelity phantom of one case: uniform ROIs, a TTF disc and low-contrast lesions added to the clean scan.

Everything random (the disc's ROI and sub-voxel centre, each lesion's ROI, position,
radius and contrast) is drawn from one explicit ``numpy.random.Generator`` and recorded
in :meth:`FidelityPhantom.to_dict`, so the phantom can be rebuilt exactly. Inserts keep
the clean image's intensity range (a contrast's sign flips when needed): the MR and X-ray
noise models scale with the image maximum, and the noisy image with inserts must share the
noise of the one without.

The disc (a cylinder through every slice) goes first, centred on a foreground tile of the
smoother half whose footprint covers the fewest uniform ROIs (its TTF is read from a paired
difference, which removes the background, so it needs room more than uniformity); each
lesion then takes its own uniform ROI outside that footprint.

Defaults follow the issue and TG-233: lesions 3-10 mm across with 10-40 HU contrast in CT,
2-6 % of the clean 99th percentile elsewhere ("a few %"); a 300 HU disc for CT edges (20 %
of the clean 1-99 % range elsewhere), its edge blurred by 0.6 voxel so that it is no
sharper than anatomy.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from ..metrics.image import ArrayLike
from ._arrays import as_volume, check_spacing
from .lesions import Lesion, draw_lesions, insert_lesions
from .rois import UniformROIs, default_roi_size, find_uniform_rois
from .ttf import DiscInsert

logger = logging.getLogger(__name__)

__all__ = ["FidelityPhantom", "build_phantom", "LESION_RADIUS_MM", "EDGE_SIGMA_VOXELS"]

LESION_RADIUS_MM = (1.5, 5.0)
"""Lesion radius range (3-10 mm diameters)."""
CT_LESION_HU = (10.0, 40.0)
OTHER_LESION_PERCENT = (2.0, 6.0)
CT_DISC_HU = 300.0
OTHER_DISC_FRACTION = 0.2
EDGE_SIGMA_VOXELS = 0.6


@dataclass
class FidelityPhantom:
    """What was added to one clean case, and where noise and bias are measured."""

    rois: UniformROIs
    disc: DiscInsert | None
    lesions: list[Lesion]
    inserted: np.ndarray
    spacing_zyx: tuple[float, float, float]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"rois": self.rois.to_dict(), "disc": self.disc.to_dict() if self.disc else None,
                "lesions": [lesion.to_dict() for lesion in self.lesions], "spacing_zyx": list(self.spacing_zyx),
                "notes": self.notes}


def _signal_scale(clean: np.ndarray, modality: str) -> tuple[tuple[float, float], float]:
    """(lesion contrast range, disc contrast) in image units."""
    if modality == "ct":
        return CT_LESION_HU, CT_DISC_HU
    p1, p99 = np.percentile(clean, [1, 99])
    lesion = tuple(float(v) / 100.0 * float(p99) for v in OTHER_LESION_PERCENT)
    return lesion, OTHER_DISC_FRACTION * float(p99 - p1)  # type: ignore[return-value]


def _disc_centres(rois: UniformROIs, shape_yx: tuple[int, ...], reach: int) -> list[tuple[float, float]]:
    """Distinct in-plane ROI centres whose disc footprint (``reach`` voxels around) fits in the slice."""
    centres = {(int(y) + rois.size / 2 - 0.5, int(x) + rois.size / 2 - 0.5) for _, y, x in rois.corners}
    return sorted(c for c in centres if reach <= c[0] < shape_yx[0] - 1 - reach
                  and reach <= c[1] < shape_yx[1] - 1 - reach)


def _footprint(centre: tuple[float, float], reach_mm: float, shape_yx: tuple[int, ...],
               spacing: tuple[float, float, float]) -> np.ndarray:
    """In-plane voxels within ``reach_mm`` of ``centre``: where the disc and its ESF lie."""
    return DiscInsert(centre, reach_mm, 0.0, 0, 1).radius_map(shape_yx, spacing) <= reach_mm


def _place_disc(clean: np.ndarray, candidates: UniformROIs, rois: UniformROIs,
                spacing: tuple[float, float, float], contrast: float,
                generator: np.random.Generator) -> tuple[DiscInsert | None, np.ndarray]:
    """A disc (through every slice) on a candidate tile centre with room, and its in-plane footprint.

    Among the centres with room, those whose footprint (2 R + 1 voxels) covers the fewest
    uniform ``rois`` are preferred, leaving the most ROIs to the lesions; ties are drawn.
    """
    shape_yx = clean.shape[1:]
    radius_vox = max(3, min(8, min(shape_yx) // 6))
    pixel = min(spacing[1:])
    reach_mm = (2 * radius_vox + 1) * pixel
    centres = _disc_centres(candidates, shape_yx, 2 * radius_vox + 1)
    if not centres:
        return None, np.zeros(shape_yx, dtype=bool)
    prints = [_footprint(c, reach_mm, shape_yx, spacing) for c in centres]
    cost = [sum(bool(f[y:y + rois.size, x:x + rois.size].any()) for _, y, x in rois.corners) for f in prints]
    best = [k for k, c in enumerate(cost) if c == min(cost)]
    k = best[int(generator.integers(len(best)))]
    centre = (centres[k][0] + float(generator.uniform(-0.5, 0.5)), centres[k][1] + float(generator.uniform(-0.5, 0.5)))
    disc = DiscInsert(centre, radius_vox * pixel, contrast, 0, clean.shape[0], EDGE_SIGMA_VOXELS * pixel)
    return _signed_disc(clean, disc, spacing), prints[k]


def _signed_disc(clean: np.ndarray, disc: DiscInsert, spacing: tuple[float, float, float]) -> DiscInsert | None:
    """``disc`` with the contrast sign that keeps it within the clean range, or None."""
    inside = clean[:, disc.radius_map(clean.shape[1:], spacing) <= disc.radius_mm]
    if inside.max() + disc.contrast <= clean.max():
        return disc
    if inside.min() - disc.contrast >= clean.min():
        return DiscInsert(disc.centre_yx, disc.radius_mm, -disc.contrast, disc.z0, disc.z1, disc.edge_sigma_mm)
    return None


def _uniform_rois(volume: np.ndarray, roi_size: int | None) -> tuple[UniformROIs, list[str]]:
    """Uniform ROIs inside the foreground; smaller tiles, then any tiles, where none fit (speckle, small images)."""
    try:
        return find_uniform_rois(volume, size=roi_size), []
    except InputError:
        pass
    size = max(8, (roi_size or default_roi_size(volume.shape)) // 2)
    try:
        rois = find_uniform_rois(volume, size=size)
        note = f"no foreground tile of the default size: uniform ROIs of {size} voxels"
    except InputError:
        rois = find_uniform_rois(volume, size=size, foreground=False)
        note = (f"no tile of {size} voxels lies wholly inside the foreground (e.g. speckle reaches the background "
                "level): ROIs chosen among all tiles")
    logger.warning(note)
    return rois, [note]


def build_phantom(clean: ArrayLike, *, modality: str, generator: np.random.Generator,
                  spacing_zyx: tuple[float, float, float] | None = None, n_lesions: int = 4,
                  roi_size: int | None = None) -> FidelityPhantom:
    """Find uniform ROIs in ``clean`` and add a TTF disc and ``n_lesions`` lesions at random, recorded places.

    Parameters
    ----------
    clean : array (z, y, x)
        Clean reference (HU for CT).
    modality : {"ct", "mr", "us", "xr"}
        Sets the units of the lesion and disc contrasts.
    generator : numpy.random.Generator
        The only source of randomness.
    spacing_zyx : (float, float, float), optional
        Voxel size in mm (lesion radii are in mm).
    n_lesions : int, default 4
    roi_size : int, optional
        Uniform ROI edge in voxels (default :func:`~MedDenoiseLib.fidelity.rois.default_roi_size`).

    Returns
    -------
    FidelityPhantom
        ``inserted`` = clean + disc + lesions (float32). The disc is None (and TTF not
        measured) when no ROI leaves room for it; fewer lesions are placed when fewer fit.
    """
    volume = as_volume("clean", clean)
    spacing = check_spacing(spacing_zyx)
    rois, notes = _uniform_rois(volume, roi_size)
    lesion_contrast, disc_contrast = _signal_scale(volume, modality)
    smoother_half = find_uniform_rois(volume, size=rois.size, fraction=0.5, foreground=rois.foreground_threshold > -np.inf)
    disc, footprint = _place_disc(volume, smoother_half, rois, spacing, disc_contrast, generator)
    exclude = np.broadcast_to(footprint if disc is not None else np.zeros_like(footprint), volume.shape)
    lesions = draw_lesions(volume, rois, n=n_lesions, generator=generator, radius_mm=LESION_RADIUS_MM,
                           contrast=lesion_contrast, spacing_zyx=spacing, exclude=exclude)
    if len(lesions) != n_lesions:
        notes.append(f"{len(lesions)} of {n_lesions} lesions fit in the uniform regions")
    inserted = insert_lesions(volume, lesions, spacing_zyx=spacing)
    if disc is None:
        notes.append("no room for the TTF disc: TTF not measured")
        logger.warning(notes[-1])
    else:
        inserted += disc.profile(volume.shape, spacing)
    return FidelityPhantom(rois, disc, lesions, inserted.astype(np.float32), spacing, notes)
