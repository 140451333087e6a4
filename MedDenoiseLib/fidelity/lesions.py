"""Low-contrast lesion detectability: spheres inserted before noise, CNR and NPW d′ after denoising.

Small, faint lesions are what an over-eager denoiser erases first. Spherical lesions of
recorded position, radius and contrast are added to the clean scan, noise is simulated,
and each method runs on the noisy scan with and without the lesions (same noise draw).
For each lesion with template w (its inserted signal):

- signal S = Σ w · (output with lesions - output without), the lesion signal the method
  kept (the noise cancels exactly for linear methods when both noisy images share their
  noise draws; otherwise the clean image replaces the output without lesions);
- template noise σ_t = standard deviation of Σ w · (output - clean) over lesion-free
  placements of the template in the uniform ROIs;
- non-prewhitening matched-filter detectability d′ = S / σ_t;
- CNR = mean lesion contrast kept / standard deviation of (output - clean) around it;
- signal kept = S / Σ w², relative to the clean lesion (1 = intact).

For white noise of standard deviation σ, a lesion of contrast C over N voxels has
d′ = C √N / σ and CNR = C / σ. For white noise the NPW observer is ideal, so no linear
filter can raise d′ (Cauchy-Schwarz); a lesion whose d′ drops below the noisy input's is
flagged as lost (see :mod:`.case`).

References
----------
ICRU Report 54, "Medical imaging - the assessment of image quality", 1996 (NPW observer).
E. Samei et al., AAPM Task Group 233, Med. Phys. 46(11), e735-e756, 2019 (d′ of a
task with the NPW model).
H. H. Barrett and K. J. Myers, "Foundations of Image Science", Wiley, 2004 (model observers).
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass

import numpy as np

from ..metrics.image import ArrayLike
from ..noise.checks import check_number
from ._arrays import as_volume, check_spacing, same_shape
from .rois import UniformROIs

logger = logging.getLogger(__name__)

__all__ = ["Lesion", "draw_lesions", "insert_lesions", "template_noise_std", "lesion_scores"]


@dataclass(frozen=True)
class Lesion:
    """A sphere of ``contrast`` (image units) and ``radius_mm`` centred at voxel (z, y, x)."""

    centre_zyx: tuple[float, float, float]
    radius_mm: float
    contrast: float

    def half_box(self, spacing: tuple[float, float, float]) -> tuple[int, int, int]:
        """Half-size of the bounding box in voxels per axis."""
        return tuple(int(math.ceil(self.radius_mm / s)) for s in spacing)  # type: ignore[return-value]

    def box(self, shape: tuple[int, ...], spacing: tuple[float, float, float]) -> tuple[slice, ...]:
        """Bounding box of the sphere, clipped to ``shape``."""
        return tuple(slice(max(0, int(round(c)) - h), min(n, int(round(c)) + h + 1))
                     for c, h, n in zip(self.centre_zyx, self.half_box(spacing), shape))

    def mask(self, shape: tuple[int, ...], spacing: tuple[float, float, float]) -> tuple[tuple[slice, ...], np.ndarray]:
        """(box, boolean sphere in the box): voxel centres within ``radius_mm`` of the centre."""
        box = self.box(shape, spacing)
        grids = np.ogrid[tuple(box)]
        d2 = sum(((g - c) * s) ** 2 for g, c, s in zip(grids, self.centre_zyx, spacing))
        return box, d2 <= self.radius_mm ** 2

    def to_dict(self) -> dict:
        return asdict(self)


def insert_lesions(clean: ArrayLike, lesions: list[Lesion], *,
                   spacing_zyx: tuple[float, float, float] | None = None) -> np.ndarray:
    """``clean`` plus every lesion's contrast inside its sphere (float64).

    Examples
    --------
    >>> out = insert_lesions(np.zeros((3, 5, 5)), [Lesion((1, 2, 2), 1.0, 10.0)])
    >>> int(out.sum() / 10)  # the centre and its 6 face neighbours
    7
    """
    out = as_volume("clean", clean).copy()
    spacing = check_spacing(spacing_zyx)
    for lesion in lesions:
        box, inside = lesion.mask(out.shape, spacing)
        out[box] += lesion.contrast * inside
    return out


def _overlaps(box: tuple[slice, ...], others: list[tuple[slice, ...]]) -> bool:
    """Whether ``box`` shares a voxel with any box of ``others``."""
    return any(all(a.start < b.stop and b.start < a.stop for a, b in zip(box, other)) for other in others)


def _fits(clean: np.ndarray, box: tuple[slice, ...], inside: np.ndarray, contrast: float) -> float | None:
    """``contrast`` with the sign that keeps the lesion within the clean image's range, or None."""
    local = clean[box][inside]
    if local.max() + contrast <= clean.max():
        return contrast
    if local.min() - contrast >= clean.min():
        return -contrast
    return None


def draw_lesions(clean: ArrayLike, rois: UniformROIs, *, n: int, generator: np.random.Generator,
                 radius_mm: tuple[float, float], contrast: tuple[float, float],
                 spacing_zyx: tuple[float, float, float] | None = None,
                 exclude: np.ndarray | None = None) -> list[Lesion]:
    """Up to ``n`` lesions at random positions inside distinct uniform ROIs.

    Parameters
    ----------
    clean : array (z, y, x)
        Clean image (the lesion sign is chosen to stay within its intensity range, since MR
        and X-ray noise levels are set relative to the image maximum).
    rois : UniformROIs
        Candidate regions; each lesion lies in its own ROI, in-plane box inside the tile, and
        no two lesion boxes overlap (spheres reach into neighbouring slices).
    n : int
        Number of lesions wanted (fewer when fewer ROIs fit).
    generator : numpy.random.Generator
        Source of every draw (ROI, position, radius, contrast).
    radius_mm, contrast : (low, high)
        Uniform ranges of the radius (mm) and the contrast magnitude (image units).
    exclude : bool array, optional
        Voxels no lesion box may touch (the TTF disc's footprint).

    Returns
    -------
    list of Lesion
    """
    volume = as_volume("clean", clean)
    spacing = check_spacing(spacing_zyx)
    count = int(check_number("n", n, low=0, integer=True, fix="Use 4 lesions per case."))
    lesions: list[Lesion] = []
    boxes: list[tuple[slice, ...]] = []
    for k in generator.permutation(len(rois)):
        if len(lesions) == count:
            break
        z, y0, x0 = (int(v) for v in rois.corners[k])
        radius = float(generator.uniform(*radius_mm))
        radius = min(radius, (rois.size / 2 - 1) * min(spacing[1:]))
        hy, hx = (int(math.ceil(radius / s)) for s in spacing[1:])
        if radius <= 0 or 2 * max(hy, hx) + 1 > rois.size:
            continue
        centre = (float(z), float(generator.uniform(y0 + hy, y0 + rois.size - 1 - hy)),
                  float(generator.uniform(x0 + hx, x0 + rois.size - 1 - hx)))
        magnitude = float(generator.uniform(*contrast))
        probe = Lesion(centre, radius, magnitude)
        box, inside = probe.mask(volume.shape, spacing)
        signed = _fits(volume, box, inside, magnitude)
        blocked = exclude is not None and bool(exclude[box].any())
        if signed is not None and inside.any() and not blocked and not _overlaps(box, boxes):
            lesions.append(Lesion(centre, radius, signed))
            boxes.append(box)
    if len(lesions) < count:
        logger.warning("only %d of %d lesions fit in the uniform regions", len(lesions), count)
    return lesions


def _placements(rois: UniformROIs, shape: tuple[int, ...], origin: tuple[int, ...],
                depth: int) -> list[tuple[int, int, int]]:
    """Box corners on a grid (stride = box size) with the box's ``origin`` voxel inside an ROI."""
    out = []
    for z, y0, x0 in rois.corners:
        z0 = int(z) - origin[0]
        if z0 < 0 or z0 + shape[0] > depth:
            continue
        for y in range(int(y0), int(y0) + rois.size - shape[1] + 1, shape[1]):
            for x in range(int(x0), int(x0) + rois.size - shape[2] + 1, shape[2]):
                out.append((z0, y, x))
    return out


def template_noise_std(residual: np.ndarray, template: np.ndarray, origin: tuple[int, ...],
                       rois: UniformROIs) -> tuple[float, int]:
    """Standard deviation (ddof 1) of Σ template · residual over placements in the ROIs, and their number.

    ``origin`` is the template voxel (z, y, x) that sits on an ROI's slice; in-plane, the
    template is tiled over each ROI with no overlap, so the placements are independent for
    noise correlated over less than a template width.
    """
    values = [float((residual[z:z + template.shape[0], y:y + template.shape[1], x:x + template.shape[2]]
                     * template).sum()) for z, y, x in _placements(rois, template.shape, origin, residual.shape[0])]
    if len(values) < 2:
        return math.nan, len(values)
    return float(np.std(values, ddof=1)), len(values)


def lesion_scores(lesion: Lesion, *, clean: ArrayLike, output: ArrayLike, output_inserted: ArrayLike,
                  rois: UniformROIs, spacing_zyx: tuple[float, float, float] | None = None,
                  baseline: ArrayLike | None = None) -> dict:
    """CNR, NPW d′ and signal kept of one lesion for one method.

    Parameters
    ----------
    lesion : Lesion
    clean : array (z, y, x)
        Clean image without lesions.
    output, output_inserted : array, same shape
        The method's output on the noisy image without and with the lesions (same noise).
    rois : UniformROIs
        Where the template noise is sampled (lesion-free: measured on ``output - clean``).
    baseline : array, optional
        What ``output_inserted`` is compared with to get the lesion signal: ``output``
        (default, exact when both noisy images share their noise draws) or ``clean`` (when
        they do not: the signal then carries one noise realisation instead of two).

    Returns
    -------
    dict
        ``signal`` S, ``signal_kept`` S / Σ w², ``dprime`` S / σ_t, ``cnr``,
        ``noise_placements`` (how many placements gave σ_t).
    """
    ref = as_volume("clean", clean)
    out = same_shape(ref, "output", output)
    out_ins = same_shape(ref, "output_inserted", output_inserted)
    base = out if baseline is None else same_shape(ref, "baseline", baseline)
    spacing = check_spacing(spacing_zyx)
    box, inside = lesion.mask(ref.shape, spacing)
    w = lesion.contrast * inside
    response = out_ins[box] - base[box]
    signal = float((w * response).sum())
    origin = (int(round(lesion.centre_zyx[0])) - box[0].start, 0, 0)
    sigma_t, placements = template_noise_std(out - ref, w, origin, rois)
    hz, hy, hx = lesion.half_box(spacing)
    around = tuple(slice(max(0, s.start - h), s.stop + h) for s, h in zip(box, (0, hy, hx)))
    local_noise = float(np.std((out - ref)[around]))
    kept = float(response[inside].mean()) * math.copysign(1.0, lesion.contrast)
    return {"signal": signal, "signal_kept": signal / float((w * w).sum()),
            "dprime": signal / sigma_t if sigma_t > 0 else math.inf if sigma_t == 0 else math.nan,
            "cnr": kept / local_noise if local_noise > 0 else math.inf,
            "noise_placements": placements}
