"""Segmentation fidelity: does a fixed, simple tissue segmentation agree better after denoising?

Reuses :mod:`MedDenoiseLib.metrics.segmentation` (multi-Otsu or k-means intensity classes,
Dice per class): the same segmentation runs on the clean image, the noisy input and the
output, and the output's Dice against the clean segmentation is compared with the noisy
input's. A useful denoiser raises it; one that shifts intensities or blurs boundaries can
lower it below the noisy input's.

References
----------
N. Otsu, IEEE SMC 9(1), 1979; L. R. Dice, Ecology 26(3), 1945 (see
:mod:`MedDenoiseLib.metrics.segmentation`).
"""

from __future__ import annotations

from ..metrics import segmentation_dice
from ..metrics.image import ArrayLike

__all__ = ["segmentation_fidelity"]


def segmentation_fidelity(clean: ArrayLike, noisy: ArrayLike, output: ArrayLike, *, n_classes: int = 3,
                          method: str = "otsu") -> dict:
    """Dice(output vs clean), Dice(noisy vs clean) and their difference (``gain``, > 0 is better).

    Examples
    --------
    >>> import numpy as np
    >>> img = np.repeat(np.array([0.0, 0.5, 1.0]), 10)
    >>> segmentation_fidelity(img, img[::-1].copy(), img)["gain"] > 0
    True
    """
    dice_out = segmentation_dice(clean, output, n_classes=n_classes, method=method)
    dice_noisy = segmentation_dice(clean, noisy, n_classes=n_classes, method=method)
    return {"dice": dice_out, "dice_noisy": dice_noisy, "gain": dice_out - dice_noisy}
