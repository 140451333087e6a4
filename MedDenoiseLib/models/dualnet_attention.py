"""Attention modules of DUAL-NET's structure-restoration branch.

* :class:`WindowSelfAttention3d` — multi-head self-attention inside non-overlapping 3D windows at the
  UNet bottleneck (non-local: every voxel of a window is compared with every other, as non-local
  means compares patches), followed by a pointwise MLP; both residual.
* :class:`GuidanceGate` — cross-attention gating: features are re-weighted by a gate computed from
  the features *and* the noise-estimation branch's maps (log sigma, alpha), in the manner of the
  attention gates of Attention U-Net; the gate starts at exactly 1 (identity).

References
----------
Wang X, Girshick R, Gupta A, He K. Non-local neural networks. CVPR 2018. Liu Z et al. Swin
Transformer: hierarchical vision transformer using shifted windows. ICCV 2021 (window attention).
Oktay O et al. Attention U-Net: learning where to look for the pancreas. MIDL 2018 (attention gates).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .dualnet_blocks import activation

__all__ = ["GuidanceGate", "WindowSelfAttention3d"]


class WindowSelfAttention3d(nn.Module):
    """Pre-norm multi-head self-attention in ``window`` (D, H, W) blocks, then a pointwise MLP.

    Windows are cut to the feature map when it is smaller; the map is zero-padded to a multiple of
    the window and padded voxels are masked out as keys, so any size works and the result does not
    depend on the padding.
    """

    def __init__(self, channels: int, *, heads: int, window: tuple[int, int, int], mlp_ratio: int = 2) -> None:
        super().__init__()
        self.heads, self.window = heads, tuple(window)
        self.norm = nn.LayerNorm(channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = nn.Linear(channels, channels)
        self.mlp = nn.Sequential(nn.Conv3d(channels, mlp_ratio * channels, 1), activation(),
                                 nn.Conv3d(mlp_ratio * channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self._attend(x)
        return x + self.mlp(x)

    def _attend(self, x: torch.Tensor) -> torch.Tensor:
        b, c, d, h, w = x.shape
        win = tuple(min(s, k) for s, k in zip((d, h, w), self.window))
        pads = [(-s) % k for s, k in zip((d, h, w), win)]
        tokens = self.norm(x.permute(0, 2, 3, 4, 1))  # (B, D, H, W, C)
        if any(pads):
            tokens = F.pad(tokens, (0, 0, 0, pads[2], 0, pads[1], 0, pads[0]))
        dp, hp, wp = d + pads[0], h + pads[1], w + pads[2]
        nd, nh, nw = dp // win[0], hp // win[1], wp // win[2]
        length = win[0] * win[1] * win[2]
        windows = (tokens.reshape(b, nd, win[0], nh, win[1], nw, win[2], c)
                   .permute(0, 1, 3, 5, 2, 4, 6, 7).reshape(b * nd * nh * nw, length, c))
        q, k, v = (self.qkv(windows).reshape(-1, length, 3, self.heads, c // self.heads)
                   .permute(2, 0, 3, 1, 4).unbind(0))
        mask = self._key_mask((d, h, w), (dp, hp, wp), win, x.device) if any(pads) else None
        if mask is not None:
            mask = mask.repeat(b, 1)[:, None, None, :]  # (windows, 1, 1, L): broadcast over heads and queries
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        out = self.proj(out.transpose(1, 2).reshape(-1, length, c))
        out = (out.reshape(b, nd, nh, nw, win[0], win[1], win[2], c)
               .permute(0, 7, 1, 4, 2, 5, 3, 6).reshape(b, c, dp, hp, wp))
        return out[:, :, :d, :h, :w]

    @staticmethod
    def _key_mask(size, padded, win, device) -> torch.Tensor:
        """(windows of one sample, L) booleans, True for voxels inside the unpadded map."""
        valid = torch.zeros(padded, dtype=torch.bool, device=device)
        valid[:size[0], :size[1], :size[2]] = True
        nd, nh, nw = (p // k for p, k in zip(padded, win))
        return (valid.reshape(nd, win[0], nh, win[1], nw, win[2]).permute(0, 2, 4, 1, 3, 5)
                .reshape(nd * nh * nw, -1))


class GuidanceGate(nn.Module):
    """Cross-attention gate: ``f * 2 sigmoid(psi(act(W_f f + W_g g)))`` with ``g`` the NEB maps.

    ``psi`` starts at zero, so the gate is exactly 1 (the identity) before training. The gate has one
    value per channel and voxel: the noise map can switch features off where the noise is high or
    the NEB is confident, and up where structure must be kept.
    """

    def __init__(self, channels: int, guide_channels: int = 2) -> None:
        super().__init__()
        hidden = max(4, channels // 2)
        self.feature = nn.Conv3d(channels, hidden, 1)
        self.guide = nn.Conv3d(guide_channels, hidden, 1, bias=False)
        self.act = activation()
        self.psi = nn.Conv3d(hidden, channels, 1)
        nn.init.zeros_(self.psi.weight)
        nn.init.zeros_(self.psi.bias)

    def forward(self, features: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
        gate = 2.0 * torch.sigmoid(self.psi(self.act(self.feature(features) + self.guide(guide))))
        return features * gate
