"""DUAL-NET's noise-estimation branch (NEB): a blind-spot encoder predicting, per voxel, a denoised value
``mu(x)``, the noise std ``sigma(x) > 0`` and a confidence ``alpha(x)`` in [0, 1].

Blind spot
----------
No output at voxel ``p`` depends on the input value at ``p`` (Krull et al. 2019; Laine et al. 2019),
so ``mu`` and ``sigma`` can be trained on the noisy image itself. The branch keeps this exactly by
parity (Wu et al. 2020, D-BSN): the first convolution is 3x3x3 with its centre weight masked to zero,
so every path from the input starts with an offset having at least one odd component; every later
layer uses only even offsets (3x3x3 kernels with dilation 2, pointwise 1x1x1 operations, residual
adds, channel mean/max), so the total offset can never be zero. Zero padding adds no path; reflect
padding (mirror without repeating the border) would only add even offsets, replicate padding would
break the property, so the branch runs on the unpadded input.

References
----------
Krull A, Buchholz T-O, Jug F. Noise2Void - learning denoising from single noisy images. CVPR 2019.
Laine S, Karras T, Lehtinen J, Aila T. High-quality self-supervised deep image denoising. NeurIPS 2019.
Wu X, Liu M, Cao Y, Ren D, Zuo W. Unpaired learning of deep image denoising. ECCV 2020 (D-BSN).
Woo S, Park J, Lee J-Y, Kweon IS. CBAM: convolutional block attention module. ECCV 2018.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .dualnet_blocks import activation, conv3d

__all__ = ["SIGMA_FLOOR", "CentreMaskedConv3d", "NoiseEstimationBranch", "NoiseModulatedAttention", "blind_mean"]

#: Smallest noise std the branch reports (normalised units), so a Gaussian NLL stays finite.
SIGMA_FLOOR = 1e-4
#: Initial noise std (normalised units): 5 % of the intensity range, mid-range of the training levels.
SIGMA_INIT = 0.05


def _centre_mask(dtype: torch.dtype = torch.float32) -> torch.Tensor:
    mask = torch.ones(3, 3, 3, dtype=dtype)
    mask[1, 1, 1] = 0.0
    return mask


class CentreMaskedConv3d(nn.Conv3d):
    """3x3x3 convolution whose centre weight is always zero (the voxel's own value is excluded)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels, 3, padding=1)
        self.register_buffer("mask", _centre_mask(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.weight * self.mask.to(self.weight.dtype), self.bias)


def blind_mean(x: torch.Tensor) -> torch.Tensor:
    """Mean of the (up to 26) neighbours of every voxel inside the volume, the voxel itself excluded.

    Examples
    --------
    >>> x = torch.zeros(1, 1, 1, 3, 3); x[..., 1, 1] = 9.0
    >>> float(blind_mean(x)[0, 0, 0, 1, 1]), float(blind_mean(x)[0, 0, 0, 0, 0])
    (0.0, 3.0)
    """
    kernel = _centre_mask(x.dtype).to(x.device)[None, None]
    total = F.conv3d(x, kernel, padding=1)
    count = F.conv3d(torch.ones_like(x[:1, :1]), kernel, padding=1)
    return total / count.clamp_min(1.0)


class NoiseModulatedAttention(nn.Module):
    """Channel then spatial attention (CBAM-like) driven by a preliminary noise map, blind-spot safe.

    Channel weights come from a local context of the features (a dilation-2 convolution down to a few
    channels) and ``log sigma``; spatial weights from the channel mean, max and ``log sigma`` through a
    dilation-2 convolution. Global pooling is avoided on purpose: it would let a voxel's own value reach
    its output. (Depthwise dilated 3D convolutions are avoided too: on CPUs they run ~20x slower than
    dense ones in PyTorch 2.13.)
    """

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = max(2, channels // reduction)
        self.context = nn.Conv3d(channels, hidden, 3, padding=2, dilation=2)
        self.channel = nn.Sequential(nn.ReLU(), nn.Conv3d(hidden + 1, channels, 1))
        self.spatial = nn.Conv3d(3, 1, 3, padding=2, dilation=2)

    def forward(self, features: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        log_sigma = torch.log(sigma)
        channel = torch.sigmoid(self.channel(torch.cat([self.context(features), log_sigma], dim=1)))
        features = features * channel
        summary = torch.cat([features.mean(dim=1, keepdim=True), features.amax(dim=1, keepdim=True), log_sigma], 1)
        return features * torch.sigmoid(self.spatial(summary))


class NoiseEstimationBranch(nn.Module):
    """Blind-spot encoder: ``(mu, sigma, alpha)``, each ``(B, 1, D, H, W)``, from a noisy ``(B, 1, D, H, W)``.

    ``mu = blind_mean(x) + correction`` (the correction starts at zero), ``sigma = softplus(.) + 1e-4``
    (starts near 0.05), ``alpha = sigmoid(.)`` (starts near 0.5). A preliminary ``sigma`` halfway through
    the branch drives :class:`NoiseModulatedAttention`.
    """

    def __init__(self, channels: int, *, depth: int) -> None:
        super().__init__()
        self.entry = CentreMaskedConv3d(1, channels)
        first = depth // 2
        # dense dilated convolutions even in the edge variant (depthwise dilated ones are slow on CPUs)
        self.before = nn.ModuleList(conv3d(channels, channels, dilation=2) for _ in range(first))
        self.after = nn.ModuleList(conv3d(channels, channels, dilation=2) for _ in range(depth - first))
        self.act = activation()
        self.preliminary_sigma = nn.Conv3d(channels, 1, 1)
        self.attention = NoiseModulatedAttention(channels)
        self.head = nn.Conv3d(channels, 3, 1)
        sigma_bias = math.log(math.expm1(SIGMA_INIT))  # softplus^-1
        with torch.no_grad():
            self.head.weight[0].zero_()
            self.head.bias.copy_(torch.tensor([0.0, sigma_bias, 0.0]))
            self.preliminary_sigma.bias.fill_(sigma_bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        features = self.act(self.entry(x))
        for conv in self.before:
            features = features + self.act(conv(features))
        sigma0 = F.softplus(self.preliminary_sigma(features)) + SIGMA_FLOOR
        features = self.attention(features, sigma0)
        for conv in self.after:
            features = features + self.act(conv(features))
        out = self.head(features)
        mu = blind_mean(x) + out[:, 0:1]
        sigma = F.softplus(out[:, 1:2]) + SIGMA_FLOOR
        alpha = torch.sigmoid(out[:, 2:3])
        return mu, sigma, alpha
