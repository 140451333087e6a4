"""Image-quality metrics for denoising evaluation.

``image``: PSNR, SSIM, RMSE, MAE. ``realnoise``: error estimate from two repeated
acquisitions (no clean image). ``segmentation``: Dice of a fixed tissue segmentation.
``stats``: paired tests, Holm-Bonferroni, Cohen's d, bootstrap confidence intervals.
"""

from .image import mae, psnr, rmse, ssim, ssim_map, ssim_margin
from .realnoise import noise_sigma_from_pairs, paired_acquisition_mse, paired_acquisition_psnr
from .segmentation import dice_per_class, segmentation_dice, tissue_classes
from .stats import bootstrap_ci, cohens_d_paired, compare_paired, holm_bonferroni, paired_test

__all__ = [
    "bootstrap_ci",
    "cohens_d_paired",
    "compare_paired",
    "dice_per_class",
    "holm_bonferroni",
    "mae",
    "noise_sigma_from_pairs",
    "paired_acquisition_mse",
    "paired_acquisition_psnr",
    "paired_test",
    "psnr",
    "rmse",
    "segmentation_dice",
    "ssim",
    "ssim_map",
    "ssim_margin",
    "tissue_classes",
]
