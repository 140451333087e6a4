"""Convolutional building blocks of DUAL-NET: convolutions (full or depthwise-separable), residual dense
blocks with squeeze-and-excitation, and in-plane space-to-depth.

References
----------
Zhang Y, Tian Y, Kong Y, Zhong B, Fu Y. Residual dense network for image super-resolution. CVPR 2018
(residual dense block, local feature fusion). Hu J, Shen L, Sun G. Squeeze-and-excitation networks.
CVPR 2018. Howard AG et al. MobileNets: efficient convolutional neural networks for mobile vision
applications. arXiv:1704.04861, 2017 (depthwise-separable convolutions, the "edge" variant).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ResidualDenseBlock", "SqueezeExcitation", "activation", "conv3d", "depth_to_space", "space_to_depth"]

NEGATIVE_SLOPE = 0.2


def activation() -> nn.Module:
    """The activation used throughout DUAL-NET (LeakyReLU, slope 0.2, as in RDN/ESRGAN)."""
    return nn.LeakyReLU(NEGATIVE_SLOPE)


def conv3d(in_channels: int, out_channels: int, *, kernel: int = 3, dilation: int = 1, depthwise: bool = False,
           bias: bool = True) -> nn.Module:
    """A "same"-padded (zero) 3D convolution; depthwise-separable (k^3 per channel, then 1x1x1) when asked.

    A depthwise-separable convolution costs ``C k^3 + C C'`` multiply-accumulates per voxel instead of
    ``C C' k^3``; with one input channel a depthwise step would add nothing, so a full convolution is used.

    Examples
    --------
    >>> conv3d(8, 16, depthwise=True)(torch.zeros(1, 8, 2, 5, 5)).shape
    torch.Size([1, 16, 2, 5, 5])
    """
    padding = dilation * (kernel // 2)
    if not depthwise or in_channels == 1:
        return nn.Conv3d(in_channels, out_channels, kernel, padding=padding, dilation=dilation, bias=bias)
    return nn.Sequential(
        nn.Conv3d(in_channels, in_channels, kernel, padding=padding, dilation=dilation, groups=in_channels,
                  bias=False),
        nn.Conv3d(in_channels, out_channels, 1, bias=bias),
    )


class SqueezeExcitation(nn.Module):
    """Channel re-weighting from the patch's global average (Hu et al. 2018): ``x * sigmoid(W2 relu(W1 mean(x)))``."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.squeeze = nn.Conv3d(channels, hidden, 1)
        self.excite = nn.Conv3d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = x.mean(dim=(2, 3, 4), keepdim=True)
        return x * torch.sigmoid(self.excite(torch.relu(self.squeeze(weights))))


class ResidualDenseBlock(nn.Module):
    """Densely connected convolutions, 1x1x1 local feature fusion, squeeze-and-excitation, residual add.

    ``y = x + SE(fuse([x, h1, ..., hL]))`` with ``h_i = act(conv([x, h1, ..., h_{i-1}]))``, each ``h_i``
    having ``growth`` channels (Zhang et al., RDN, CVPR 2018).
    """

    def __init__(self, channels: int, *, growth: int, layers: int, depthwise: bool, se_reduction: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(conv3d(channels + i * growth, growth, depthwise=depthwise) for i in range(layers))
        self.act = activation()
        self.fuse = nn.Conv3d(channels + layers * growth, channels, 1)
        self.se = SqueezeExcitation(channels, se_reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for conv in self.layers:
            features.append(self.act(conv(torch.cat(features, dim=1))))
        return x + self.se(self.fuse(torch.cat(features, dim=1)))


def space_to_depth(x: torch.Tensor, factor: int) -> torch.Tensor:
    """In-plane pixel-unshuffle of ``(B, C, D, H, W)`` to ``(B, C f^2, D, H/f, W/f)`` (H, W multiples of f).

    Examples
    --------
    >>> x = torch.arange(16.0).reshape(1, 1, 1, 4, 4)
    >>> torch.equal(depth_to_space(space_to_depth(x, 2), 2), x)
    True
    """
    if factor == 1:
        return x
    b, c, d, h, w = x.shape
    x = x.reshape(b, c, d, h // factor, factor, w // factor, factor)
    return x.permute(0, 1, 4, 6, 2, 3, 5).reshape(b, c * factor * factor, d, h // factor, w // factor)


def depth_to_space(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Inverse of :func:`space_to_depth`."""
    if factor == 1:
        return x
    b, c, d, h, w = x.shape
    out = c // (factor * factor)
    x = x.reshape(b, out, factor, factor, d, h, w)
    return x.permute(0, 1, 4, 5, 2, 6, 3).reshape(b, out, d, h * factor, w * factor)
