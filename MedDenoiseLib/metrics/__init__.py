"""Image-quality metrics for denoising evaluation (see ``image``): PSNR, SSIM, RMSE, MAE."""

from .image import mae, psnr, rmse, ssim, ssim_map, ssim_margin

__all__ = ["mae", "psnr", "rmse", "ssim", "ssim_map", "ssim_margin"]
