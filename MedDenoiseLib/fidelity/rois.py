"""Uniform regions of interest, found automatically by low local variance in the clean image.

Task-based CT physics measures noise texture and bias in uniform regions (water or soft
tissue), so that anatomy does not count as noise. Here each slice is tiled into square
in-plane tiles; a tile is *uniform* when it lies in the foreground (every voxel above
:func:`foreground_threshold`, so air, MR background and their borders are skipped) and its
clean standard deviation is among the lowest ``fraction`` of those foreground tiles.

References
----------
E. Samei et al., "Performance evaluation of computed tomography systems: summary of AAPM
Task Group 233", Med. Phys. 46(11), e735-e756, 2019 (uniform ROIs for noise and NPS).
N. Otsu, "A threshold selection method from gray-level histograms", IEEE SMC 9(1), 1979.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..errors import InputError, rule_message
from ..metrics.image import ArrayLike
from ..metrics.segmentation import class_thresholds
from ..noise.checks import check_number
from ._arrays import as_volume

logger = logging.getLogger(__name__)

__all__ = ["UniformROIs", "default_roi_size", "find_uniform_rois", "foreground_threshold"]

#: The Otsu class below the threshold is background when its mean lies within this fraction
#: of the 1-99 % intensity range above the 1st percentile.
BACKGROUND_FRACTION = 0.15


@dataclass(frozen=True)
class UniformROIs:
    """Square in-plane tiles: ``corners[k] = (z, y0, x0)``, each ``size`` x ``size`` voxels."""

    size: int
    corners: np.ndarray
    foreground_threshold: float

    def __len__(self) -> int:
        return int(len(self.corners))

    def patches(self, volume: np.ndarray) -> np.ndarray:
        """The ROIs of ``volume`` stacked as (n, size, size)."""
        s = self.size
        return np.stack([volume[z, y:y + s, x:x + s] for z, y, x in self.corners])

    def mask(self, shape: tuple[int, int, int]) -> np.ndarray:
        """Boolean volume of ``shape`` that is True inside every ROI."""
        out = np.zeros(shape, dtype=bool)
        for z, y, x in self.corners:
            out[z, y:y + self.size, x:x + self.size] = True
        return out

    def to_dict(self) -> dict:
        return {"size": self.size, "count": len(self), "foreground_threshold": self.foreground_threshold,
                "corners_zyx": self.corners.tolist()}


def default_roi_size(shape: tuple[int, ...]) -> int:
    """Largest power of two <= min(H, W) / 4, within [8, 64] (32 for a 128 x 128 crop).

    Examples
    --------
    >>> default_roi_size((16, 128, 128)), default_roi_size((4, 40, 44)), default_roi_size((1, 512, 512))
    (32, 8, 64)
    """
    side = max(1, min(shape[-2:]) // 4)
    return int(min(64, max(8, 2 ** int(np.floor(np.log2(side))))))


def foreground_threshold(volume: np.ndarray) -> float:
    """Two-class Otsu threshold when its lower class is a dark background, else -inf (all foreground).

    CT bodies in air and MR heads in background have a dark class near the 1st percentile, and
    Otsu separates it; a crop entirely inside tissue has none, and Otsu would split two tissues.

    Examples
    --------
    >>> body = np.full((1, 8, 8), -1000.0); body[0, 2:6, 2:6] = 40.0
    >>> foreground_threshold(body) > -1000, foreground_threshold(np.linspace(400, 800, 64).reshape(1, 8, 8))
    (True, -inf)
    """
    if np.ptp(volume) == 0:
        return -np.inf
    threshold = float(class_thresholds(volume, n_classes=2)[0])
    p1, p99 = np.percentile(volume, [1, 99])
    below = volume[volume < threshold]
    dark = below.size > 0 and below.mean() - p1 <= BACKGROUND_FRACTION * max(p99 - p1, 1e-12)
    return threshold if dark else -np.inf


def _tile_grid(n: int, size: int) -> np.ndarray:
    """Tile starts along one axis, the grid centred in the axis."""
    count = n // size
    offset = (n - count * size) // 2
    return offset + size * np.arange(count)


def _tile_stats(volume: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Corners (n, 3), minima and standard deviations of every full tile of every slice."""
    ys, xs = _tile_grid(volume.shape[1], size), _tile_grid(volume.shape[2], size)
    if ys.size == 0 or xs.size == 0:
        return np.zeros((0, 3), int), np.zeros(0), np.zeros(0)
    block = volume[:, ys[0]:ys[-1] + size, xs[0]:xs[-1] + size]
    tiles = block.reshape(volume.shape[0], ys.size, size, xs.size, size).transpose(0, 1, 3, 2, 4)
    tiles = tiles.reshape(volume.shape[0], ys.size, xs.size, size * size)
    z, iy, ix = np.meshgrid(np.arange(volume.shape[0]), np.arange(ys.size), np.arange(xs.size), indexing="ij")
    corners = np.stack([z.ravel(), ys[iy.ravel()], xs[ix.ravel()]], axis=1)
    return corners, tiles.min(axis=-1).ravel(), tiles.std(axis=-1).ravel()


def find_uniform_rois(clean: ArrayLike, *, size: int | None = None, fraction: float = 0.25,
                      foreground: bool = True) -> UniformROIs:
    """Tiles of ``clean`` with the lowest local standard deviation.

    Parameters
    ----------
    clean : array (z, y, x) or (H, W)
        Clean reference image.
    size : int, optional
        Tile edge in voxels (>= 4); default :func:`default_roi_size`.
    fraction : float, default 0.25
        Share of the candidate tiles kept, lowest standard deviation first (at least one; tiles
        tied with the last one kept are kept too).
    foreground : bool, default True
        Keep only tiles whose every voxel exceeds :func:`foreground_threshold` of ``clean``.

    Returns
    -------
    UniformROIs

    Raises
    ------
    ConfigError
        ``size`` or ``fraction`` out of range.
    InputError
        No candidate tile (image smaller than a tile, or no foreground tile).

    Examples
    --------
    >>> img = np.zeros((1, 16, 16)); img[:, :, 8:] = 1.0; img[0, 0, 8] = 2.0
    >>> find_uniform_rois(img, size=8, fraction=0.5).corners.tolist()
    [[0, 8, 8]]
    """
    volume = as_volume("clean", clean)
    size = default_roi_size(volume.shape) if size is None else int(check_number(
        "size", size, low=4, integer=True, fix="Use 16 or 32 voxels (the NPS resolution is 1 / size)."))
    fraction = check_number("fraction", fraction, low=0.0, high=1.0, low_open=True,
                            fix="Use 0.25 (the quarter of tiles with the lowest variance).")
    corners, minima, stds = _tile_stats(volume, size)
    threshold = foreground_threshold(volume) if foreground else -np.inf
    keep = minima > threshold
    if not keep.any():
        raise InputError(rule_message("number of foreground tiles", "must be >= 1", 0,
                                      f"Use a smaller ROI size than {size} voxels or a larger crop of the image."))
    corners, stds = corners[keep], stds[keep]
    count = max(1, int(round(fraction * len(stds))))
    limit = float(np.sort(stds)[count - 1])
    chosen = stds <= limit  # ties with the last one kept are kept too
    logger.debug("uniform ROIs: %d of %d foreground tiles of %d px (std <= %.4g)", int(chosen.sum()), len(stds),
                 size, limit)
    return UniformROIs(size, corners[chosen], threshold)
