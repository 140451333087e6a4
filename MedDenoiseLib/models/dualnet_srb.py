"""DUAL-NET's structure-restoration branch (SRB): a residual 3D UNet predicting the noise.

Per scale: residual dense blocks with squeeze-and-excitation (local); at the bottleneck windowed
multi-head self-attention (non-local); skip connections, stem and bottleneck gated by the
noise-estimation branch's maps through :class:`~.dualnet_attention.GuidanceGate` (cross-attention
gating). The last convolution starts at zero, so an untrained SRB predicts no noise.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .dualnet_attention import GuidanceGate, WindowSelfAttention3d
from .dualnet_blocks import ResidualDenseBlock, depth_to_space, space_to_depth

__all__ = ["StructureRestorationBranch"]


class StructureRestorationBranch(nn.Module):
    """Residual UNet on ``(B, 1, D, H, W)`` (sizes multiples of :attr:`size_multiple`), returning the noise.

    Parameters
    ----------
    channels : widths from the top level to the bottleneck (``len - 1`` downsamplings by 2).
    blocks, growth, dense_layers, depthwise, se_reduction : residual dense blocks per level and their shape.
    downscale : in-plane space-to-depth factor before the top level (2 quarters the cost of every level).
    pool_depth : downsample depth too (2x2x2) instead of in-plane only (1x2x2).
    guided : add guidance gates (takes ``guide`` of 2 channels in ``forward``).
    nonlocal_attention, heads, window : bottleneck window self-attention.
    dropout : channel dropout before the last convolution (Monte-Carlo dropout).
    """

    def __init__(self, channels: Sequence[int], *, blocks: int, growth: int, dense_layers: int, depthwise: bool,
                 se_reduction: int, downscale: int, pool_depth: bool, guided: bool, nonlocal_attention: bool,
                 heads: int, window: tuple[int, int, int], dropout: float) -> None:
        super().__init__()
        widths = tuple(channels)
        levels = len(widths) - 1
        self.downscale = downscale
        self.stride = (2 if pool_depth else 1, 2, 2)
        self.size_multiple = (self.stride[0] ** levels, downscale * 2**levels, downscale * 2**levels)

        def stage(width: int) -> nn.Sequential:
            return nn.Sequential(*(ResidualDenseBlock(width, growth=growth, layers=dense_layers, depthwise=depthwise,
                                                      se_reduction=se_reduction) for _ in range(blocks)))

        self.stem = nn.Conv3d(downscale * downscale, widths[0], 3, padding=1)
        self.encoders = nn.ModuleList(stage(w) for w in widths[:-1])
        self.downs = nn.ModuleList(nn.Conv3d(a, b, self.stride, stride=self.stride) for a, b in zip(widths, widths[1:]))
        self.bottleneck = stage(widths[-1])
        self.attention = (WindowSelfAttention3d(widths[-1], heads=heads, window=window)
                          if nonlocal_attention else None)
        self.ups = nn.ModuleList(nn.ConvTranspose3d(b, a, self.stride, stride=self.stride)
                                 for a, b in zip(widths, widths[1:]))
        self.fuses = nn.ModuleList(nn.Conv3d(2 * w, w, 1) for w in widths[:-1])
        self.decoders = nn.ModuleList(stage(w) for w in widths[:-1])
        self.stem_gate = GuidanceGate(widths[0]) if guided else None
        self.skip_gates = nn.ModuleList(GuidanceGate(w) for w in widths[:-1]) if guided else None
        self.bottleneck_gate = GuidanceGate(widths[-1]) if guided else None
        self.dropout = nn.Dropout3d(dropout) if dropout > 0 else nn.Identity()
        self.head = nn.Conv3d(widths[0], downscale * downscale, 3, padding=1)
        nn.init.zeros_(self.head.weight)  # predicted noise 0 before training: the model starts as the identity
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor, guide: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Predicted noise of ``x``; ``guide`` (B, 2, D, H, W) = (log sigma, alpha) when the branch is guided."""
        guides = self._guide_pyramid(guide, len(self.encoders) + 1)
        features = self.stem(space_to_depth(x, self.downscale))
        if self.stem_gate is not None:
            features = self.stem_gate(features, guides[0])
        skips = []
        for level, (encode, down) in enumerate(zip(self.encoders, self.downs)):
            features = encode(features)
            skips.append(self.skip_gates[level](features, guides[level]) if self.skip_gates is not None else features)
            features = down(features)
        features = self.bottleneck(features)
        if self.bottleneck_gate is not None:
            features = self.bottleneck_gate(features, guides[-1])
        if self.attention is not None:
            features = self.attention(features)
        for level in reversed(range(len(self.decoders))):
            features = self.ups[level](features)
            features = self.fuses[level](torch.cat([features, skips[level]], dim=1))
            features = self.decoders[level](features)
        return depth_to_space(self.head(self.dropout(features)), self.downscale)

    def _guide_pyramid(self, guide: Optional[torch.Tensor], count: int) -> list[Optional[torch.Tensor]]:
        """The guide averaged down to the resolution of every level (top level first)."""
        if guide is None or self.stem_gate is None:
            return [None] * count
        pyramid = []
        for level in range(count):
            kernel = (self.stride[0] ** level, self.downscale * 2**level, self.downscale * 2**level)
            pyramid.append(guide if kernel == (1, 1, 1) else F.avg_pool3d(guide, kernel, stride=kernel))
        return pyramid
