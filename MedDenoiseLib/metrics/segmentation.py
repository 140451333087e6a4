"""Downstream fidelity: Dice of a fixed, simple tissue segmentation on denoised vs clean images.

The segmentation is deliberately naive and fixed (intensity classes by multi-Otsu thresholds
or 1-D k-means): it stands for any intensity-driven downstream step (tissue classification,
thresholded masks). A denoiser that blurs boundaries or shifts intensities moves voxels
across class borders, and the Dice against the same segmentation of the clean image drops.

References
----------
N. Otsu, "A threshold selection method from gray-level histograms", IEEE SMC 9(1), 1979;
P.-S. Liao, T.-S. Chen and P.-C. Chung, "A fast algorithm for multilevel thresholding",
J. Inf. Sci. Eng. 17(5), 2001 (multi-Otsu, ``skimage.filters.threshold_multiotsu``).
S. Lloyd, "Least squares quantization in PCM", IEEE TIT 28(2), 1982 (k-means,
``scipy.cluster.vq.kmeans2``).
L. R. Dice, "Measures of the amount of ecologic association between species", Ecology 26(3), 1945.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ConfigError, rule_message
from .image import ArrayLike, _pair, _to_float64

__all__ = ["SEGMENTATION_METHODS", "class_thresholds", "dice_per_class", "segmentation_dice", "tissue_classes"]

SEGMENTATION_METHODS = ("otsu", "kmeans")


def _check_classes(n_classes: object) -> int:
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or not 2 <= n_classes <= 8:
        raise ConfigError(rule_message("n_classes", "must be an integer in [2, 8]", n_classes,
                                       "Use 3 (background/dark, intermediate, bright tissue)."))
    return int(n_classes)


def class_thresholds(image: ArrayLike, *, n_classes: int = 3, method: str = "otsu", seed: int = 0) -> np.ndarray:
    """The ``n_classes - 1`` ascending intensity thresholds that split ``image`` into classes.

    ``"otsu"``: multi-Otsu on a 256-bin histogram (scikit-image). ``"kmeans"``: 1-D k-means
    (scipy, k-means++ seeded by ``seed``) on at most 200 000 evenly strided voxels; the
    thresholds are the midpoints between sorted centroids.
    """
    n_classes = _check_classes(n_classes)
    if method not in SEGMENTATION_METHODS:
        raise ConfigError(rule_message("method", f"must be one of {SEGMENTATION_METHODS}", method, "Use 'otsu'."))
    values = _to_float64("image", image).ravel()
    if np.ptp(values) == 0:
        raise ConfigError(rule_message("image intensity range", "must be > 0 to define tissue classes", 0.0,
                                       "Score a non-constant image."))
    if method == "otsu":
        from skimage.filters import threshold_multiotsu

        return np.asarray(threshold_multiotsu(values, classes=n_classes, nbins=256), dtype=np.float64)
    from scipy.cluster.vq import kmeans2

    sample = values[:: max(1, values.size // 200_000)]
    centroids, _ = kmeans2(sample[:, None], n_classes, minit="++", seed=np.random.default_rng(seed))
    c = np.sort(centroids.ravel())
    return (c[:-1] + c[1:]) / 2.0


def tissue_classes(image: ArrayLike, *, n_classes: int = 3, method: str = "otsu",
                   thresholds: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
    """Label map in 0..n_classes-1 (uint8), darkest class 0, from thresholds of the image itself.

    Pass ``thresholds`` to apply a fixed set (e.g. the clean image's) instead.

    Examples
    --------
    >>> tissue_classes(np.array([0.0, 0.1, 0.5, 0.55, 0.9, 1.0]), thresholds=np.array([0.3, 0.7])).tolist()
    [0, 0, 1, 1, 2, 2]
    """
    arr = _to_float64("image", image)
    t = class_thresholds(arr, n_classes=n_classes, method=method, seed=seed) if thresholds is None \
        else np.sort(np.asarray(thresholds, dtype=np.float64).ravel())
    return np.digitize(arr, t).astype(np.uint8)  # x >= threshold -> upper class, as scikit-image


def dice_per_class(labels_a: np.ndarray, labels_b: np.ndarray, classes: list[int]) -> dict[int, float]:
    """Dice 2|A ∩ B| / (|A| + |B|) per class; NaN when the class is absent from both.

    Examples
    --------
    >>> a = np.array([0, 1, 1, 2]); b = np.array([0, 1, 2, 2])
    >>> dice_per_class(a, b, [1, 2])  # class 1: 2*1/(2+1); class 2: 2*1/(1+2)
    {1: 0.6666666666666666, 2: 0.6666666666666666}
    """
    if np.shape(labels_a) != np.shape(labels_b):
        raise ConfigError(rule_message("labels_b shape", f"must equal labels_a shape {np.shape(labels_a)}",
                                       np.shape(labels_b), "Segment images on the same grid."))
    out = {}
    for c in classes:
        a, b = labels_a == c, labels_b == c
        total = int(a.sum() + b.sum())
        out[int(c)] = math.nan if total == 0 else 2.0 * float(np.logical_and(a, b).sum()) / total
    return out


def segmentation_dice(reference: ArrayLike, test: ArrayLike, *, n_classes: int = 3, method: str = "otsu",
                      thresholds_from: str = "each", seed: int = 0) -> float:
    """Mean Dice over the non-background classes (1..n_classes-1) of test vs reference.

    Parameters
    ----------
    reference, test : array or tensor
        Clean and denoised (or noisy) image on the same grid.
    n_classes : int, default 3
    method : {"otsu", "kmeans"}, default "otsu"
    thresholds_from : {"each", "reference"}, default "each"
        ``"each"``: the fixed algorithm runs on each image (what a user's pipeline would do);
        ``"reference"``: the clean image's thresholds are applied to both (isolates voxel
        changes from threshold shifts).
    seed : int, default 0
        k-means++ initialisation seed (ignored by Otsu).

    Returns
    -------
    float
        Mean Dice over classes present in either image; 1.0 for identical images.

    Examples
    --------
    >>> img = np.repeat(np.array([0.0, 0.5, 1.0]), 10)
    >>> segmentation_dice(img, img)
    1.0
    """
    if thresholds_from not in ("each", "reference"):
        raise ConfigError(rule_message("thresholds_from", "must be 'each' or 'reference'", thresholds_from,
                                       "Use 'each'."))
    ref, tst = _pair(reference, test)
    t_ref = class_thresholds(ref, n_classes=n_classes, method=method, seed=seed)
    t_tst = t_ref if thresholds_from == "reference" else class_thresholds(tst, n_classes=n_classes, method=method,
                                                                           seed=seed)
    scores = dice_per_class(tissue_classes(ref, thresholds=t_ref), tissue_classes(tst, thresholds=t_tst),
                            list(range(1, n_classes)))
    valid = [v for v in scores.values() if not math.isnan(v)]
    return float(np.mean(valid)) if valid else math.nan
