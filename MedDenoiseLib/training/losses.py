"""Training losses on (B, C, D, H, W) tensors: L1, differentiable SSIM (3D or per slice), edge loss.

The supervised objective is the DUAL-NET combination

    L = w_l1 * |x_hat - x|_1 + w_ssim * (1 - SSIM(x_hat, x)) + w_edge * |grad x_hat - grad x|_1,

optionally plus ``w_mse * |x_hat - x|_2^2``: L1 makes the network predict the posterior *median* of the
clean voxel, MSE its *mean*, which is what PSNR rewards. They differ where the noise is skewed (log-compressed
speckle, Rician noise at low SNR), and the median's offset there is a bias in every homogeneous region.

and the self-supervised one a loss on blind-spot voxels only (:func:`masked_loss`).

References
----------
.. [1] Z. Wang et al., "Image quality assessment: from error visibility to structural similarity",
   IEEE TIP 13(4), 2004 (SSIM, Gaussian window sigma = 1.5).
.. [2] H. Zhao et al., "Loss functions for image restoration with neural networks", IEEE TCI 3(1),
   2017 (L1 + SSIM mixtures for restoration).
.. [3] A. Krull, T.-O. Buchholz and F. Jug, "Noise2Void - learning denoising from single noisy
   images", CVPR 2019 (loss on masked voxels only).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, ShapeError, rule_message

__all__ = ["DenoisingLoss", "GradientLoss", "SSIMLoss", "gradient_loss", "masked_loss", "ssim3d"]


def _check_pair(prediction: torch.Tensor, target: torch.Tensor) -> None:
    if prediction.ndim != 5 or prediction.shape != target.shape:
        raise ShapeError(rule_message("prediction/target", "must both be (B, C, D, H, W) with equal shapes",
                                      (tuple(prediction.shape), tuple(target.shape)),
                                      "Add batch and channel axes: x[None, None]."))


def _gaussian(sigma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    margin = int(3.5 * sigma + 0.5)
    x = torch.arange(-margin, margin + 1, dtype=dtype, device=device)
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _blur_valid(x: torch.Tensor, kernel: torch.Tensor, filter_depth: bool) -> torch.Tensor:
    """Separable Gaussian filter without padding ('valid'), on (N, 1, D, H, W)."""
    k = kernel.numel()
    if filter_depth:
        x = F.conv3d(x, kernel.view(1, 1, k, 1, 1))
    x = F.conv3d(x, kernel.view(1, 1, 1, k, 1))
    return F.conv3d(x, kernel.view(1, 1, 1, 1, k))


def ssim3d(prediction: torch.Tensor, target: torch.Tensor, *, data_range: float = 1.0, sigma: float = 1.5,
           k1: float = 0.01, k2: float = 0.03) -> torch.Tensor:
    """Mean SSIM with a Gaussian window, differentiable; 3D when D fits the window, else per slice.

    Parameters
    ----------
    prediction, target : torch.Tensor
        (B, C, D, H, W), same shape. H and W must be >= the window ``2 * int(3.5 sigma + 0.5) + 1``
        (11 for sigma 1.5). When D is smaller than the window, the Gaussian filters H and W only
        (2D SSIM of every slice), so thin patches (D = 1..10) work.
    data_range : float
        Width of the intensity scale (1.0 for normalised images).
    sigma, k1, k2 : float
        Window width and stabilising constants of Wang et al. 2004.

    Returns
    -------
    torch.Tensor
        Scalar mean SSIM over the windows that fit entirely inside the patch ('valid' region), as
        ``MedDenoiseLib.metrics.ssim`` computes it away from the borders.

    Notes
    -----
    SSIM = (2 mu_x mu_y + C1)(2 s_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(s_x^2 + s_y^2 + C2)),
    C1 = (k1 R)^2, C2 = (k2 R)^2, with Gaussian-weighted local moments.

    Examples
    --------
    >>> x = torch.rand(1, 1, 3, 16, 16)
    >>> float(ssim3d(x, x))
    1.0
    """
    _check_pair(prediction, target)
    if data_range <= 0 or sigma <= 0:
        raise ConfigError(rule_message("data_range and sigma", "must be > 0", (data_range, sigma),
                                       "Use data_range=1.0, sigma=1.5."))
    kernel = _gaussian(sigma, prediction.dtype, prediction.device)
    window = kernel.numel()
    d, h, w = prediction.shape[2:]
    if min(h, w) < window:
        raise ShapeError(rule_message("patch (H, W)", f"must be >= the {window}-voxel SSIM window", (h, w),
                                      "Use larger patches or a smaller sigma."))
    filter_depth = d >= window
    n = prediction.shape[0] * prediction.shape[1]
    x = prediction.reshape(n, 1, d, h, w)
    y = target.reshape(n, 1, d, h, w)
    stacked = torch.cat([x, y, x * x, y * y, x * y])
    mu_x, mu_y, xx, yy, xy = _blur_valid(stacked, kernel, filter_depth).split(n)
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    s_xx, s_yy, s_xy = xx - mu_x**2, yy - mu_y**2, xy - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * s_xy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (s_xx + s_yy + c2))
    return ssim_map.mean()


def gradient_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Edge loss: mean over axes of length > 1 of mean |d x_hat - d x| (forward differences).

    Examples
    --------
    >>> x = torch.arange(16.0).reshape(1, 1, 1, 4, 4)
    >>> float(gradient_loss(x, x + 3.0))
    0.0
    """
    _check_pair(prediction, target)
    terms = [(torch.diff(prediction, dim=dim) - torch.diff(target, dim=dim)).abs().mean()
             for dim in (2, 3, 4) if prediction.shape[dim] > 1]
    if not terms:
        return prediction.sum() * 0.0
    return torch.stack(terms).mean()


def masked_loss(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, *,
                kind: str = "mse") -> torch.Tensor:
    """Mean squared (``kind='mse'``) or absolute (``'l1'``) error over voxels where ``mask`` is True.

    An empty mask gives a zero loss that still belongs to the graph (the step then changes nothing).
    """
    _check_pair(prediction, target)
    if mask.shape != prediction.shape:
        raise ShapeError(rule_message("mask", "must have the prediction's shape", tuple(mask.shape),
                                      f"Pass a boolean tensor of shape {tuple(prediction.shape)}."))
    if kind not in ("mse", "l1"):
        raise ConfigError(rule_message("kind", "must be 'mse' or 'l1'", kind, "Use 'mse' (Noise2Void)."))
    diff = (prediction - target)[mask]
    if diff.numel() == 0:
        return prediction.sum() * 0.0
    return (diff * diff).mean() if kind == "mse" else diff.abs().mean()


class SSIMLoss(nn.Module):
    """``1 - ssim3d(prediction, target)``; see :func:`ssim3d`."""

    def __init__(self, *, data_range: float = 1.0, sigma: float = 1.5) -> None:
        super().__init__()
        self.data_range, self.sigma = data_range, sigma

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return 1.0 - ssim3d(prediction, target, data_range=self.data_range, sigma=self.sigma)


class GradientLoss(nn.Module):
    """Module form of :func:`gradient_loss`."""

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return gradient_loss(prediction, target)


class DenoisingLoss(nn.Module):
    """Weighted sum ``l1 * L1 + mse * MSE + ssim * (1 - SSIM) + edge * edge loss``; zero weights are skipped.

    ``forward`` returns ``(total, parts)`` with ``parts`` the detached value of every active term.

    Examples
    --------
    >>> loss = DenoisingLoss(l1=1.0, ssim=0.5, edge=0.1)
    >>> x = torch.rand(2, 1, 3, 16, 16)
    >>> float(loss(x, x)[0])
    0.0
    """

    def __init__(self, *, l1: float = 1.0, ssim: float = 0.0, edge: float = 0.0, ssim_sigma: float = 1.5,
                 data_range: float = 1.0, mse: float = 0.0) -> None:
        super().__init__()
        if min(l1, ssim, edge, mse) < 0 or l1 + ssim + edge + mse <= 0:
            raise ConfigError(rule_message("loss weights (l1, ssim, edge, mse)", "must be >= 0 with a positive sum",
                                           (l1, ssim, edge, mse), "Use l1=1.0, ssim=0.0, edge=0.0, mse=0.0."))
        self.weights = {"l1": l1, "mse": mse, "ssim": ssim, "edge": edge}
        self.ssim = SSIMLoss(data_range=data_range, sigma=ssim_sigma)

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        _check_pair(prediction, target)
        terms = {}
        if self.weights["l1"]:
            terms["l1"] = F.l1_loss(prediction, target)
        if self.weights["mse"]:
            terms["mse"] = F.mse_loss(prediction, target)
        if self.weights["ssim"]:
            terms["ssim"] = self.ssim(prediction.float(), target.float())
        if self.weights["edge"]:
            terms["edge"] = gradient_loss(prediction, target)
        total = sum(self.weights[k] * v for k, v in terms.items())
        return total, {k: float(v.detach()) for k, v in terms.items()}
