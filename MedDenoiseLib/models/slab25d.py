"""2.5D residual denoiser built for convergence per CPU-second.

Each output slice is predicted from itself and ``context`` neighbours on either side
(stacked as channels), processed at half resolution after a 2x2 space-to-depth
(pixel-unshuffle) so every 3x3 convolution sees a 6x6 neighbourhood for a quarter of the
cost, then returned to full resolution with pixel-shuffle. Like DnCNN it predicts the
noise (residual learning) and subtracts it from the centre slice.

References
----------
Zhang, Zuo, Chen, Meng, Zhang, "Beyond a Gaussian denoiser: residual learning of deep CNN
for image denoising", IEEE TIP 26(7), 2017 (residual learning, DnCNN).
Zhang, Zuo, Zhang, "FFDNet: toward a fast and flexible solution for CNN-based image
denoising", IEEE TIP 27(9), 2018 (space-to-depth input, noise-level map).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, rule_message
from .padding import check_choice, check_dropout, check_positive_int, check_volume_batch, parameter_dtype
from .registry import register_model


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(min(8, channels), channels)
    if kind == "none":
        return nn.Identity()
    raise ConfigError(rule_message("norm", "must be one of ['batch', 'group', 'none']", kind, "Use 'batch'."))


def slice_stacks(x: torch.Tensor, context: int) -> torch.Tensor:
    """(B, 1, D, H, W) -> (B*D, 2*context+1, H, W): each slice with its neighbours as channels.

    Volume ends are replicated, so the first and last slices see copies of themselves.
    """
    batch, _, depth, height, width = x.shape
    padded = F.pad(x, (0, 0, 0, 0, context, context), mode="replicate") if context else x
    slabs = [padded[:, 0, offset:offset + depth] for offset in range(2 * context + 1)]
    return torch.stack(slabs, dim=2).reshape(batch * depth, 2 * context + 1, height, width)


@register_model(
    "slab25d",
    description="2.5D residual CNN: neighbouring slices as channels, 2x2 space-to-depth, predicts the noise (CPU-fast).",
    citation="Zhang et al., IEEE TIP 2017 (DnCNN); Zhang et al., IEEE TIP 2018 (FFDNet)",
)
class Slab25D(nn.Module):
    """2.5D noise-predicting CNN on (B, 1, D, H, W) volumes.

    Parameters
    ----------
    context : int
        Neighbouring slices used on each side (1 gives 3-slice input). Volume ends are
        replicated, so single slices work.
    features : int
        Channels of the hidden convolutions.
    depth : int
        Number of convolutions (>= 3).
    downscale : int
        Space-to-depth factor (1 disables it).
    norm : {"batch", "group", "none"}
    dropout : float
        Channel dropout before the last convolution (enables Monte-Carlo dropout).
    noise_map : bool
        Condition on a noise-level map; then ``forward(x, noise_level)`` needs a (B,) tensor.
    """

    in_plane_kernels = True  # slices are channels: test-time views transpose in-plane (inference.tta)

    def __init__(self, context: int = 1, features: int = 48, depth: int = 8, downscale: int = 2,
                 norm: str = "batch", dropout: float = 0.0, noise_map: bool = False) -> None:
        super().__init__()
        check_positive_int(context, "context", minimum=0)
        check_positive_int(features, "features")
        check_positive_int(depth, "depth", minimum=3)
        check_positive_int(downscale, "downscale")
        check_choice(norm, "norm", ("batch", "group", "none"))
        dropout = check_dropout(dropout)
        self.context, self.downscale = int(context), int(downscale)
        self.conditions_on_noise_level = bool(noise_map)
        self.has_dropout = dropout > 0
        in_channels = (2 * self.context + 1) * self.downscale**2 + int(noise_map)
        layers: list[nn.Module] = [nn.Conv2d(in_channels, features, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(features, features, 3, padding=1, bias=norm == "none"), _norm(norm, features),
                       nn.ReLU(inplace=True)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        last = nn.Conv2d(features, self.downscale**2, 3, padding=1)
        nn.init.zeros_(last.weight)  # start as the identity (predicted noise 0): far faster early training
        nn.init.zeros_(last.bias)
        layers.append(last)
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, noise_level: torch.Tensor | None = None) -> torch.Tensor:
        check_volume_batch(x, "slab25d")
        batch, _, depth, height, width = x.shape
        source_dtype = x.dtype
        x = x.to(parameter_dtype(self))  # compute in the parameters' dtype, answer in the input's
        stacked = slice_stacks(x, self.context)  # (B*D, 2c+1, H, W)
        pad_h, pad_w = (-height) % self.downscale, (-width) % self.downscale
        if pad_h or pad_w:
            stacked = F.pad(stacked, (0, pad_w, 0, pad_h), mode="replicate")
        features = F.pixel_unshuffle(stacked, self.downscale) if self.downscale > 1 else stacked
        if self.conditions_on_noise_level:
            features = torch.cat([features, self._level_map(noise_level, batch, depth, features)], dim=1)
        noise = self.body(features)
        noise = F.pixel_shuffle(noise, self.downscale) if self.downscale > 1 else noise
        noise = noise[..., :height, :width].reshape(batch, depth, height, width).unsqueeze(1)
        return (x - noise.to(x.dtype)).to(source_dtype)

    def _level_map(self, noise_level, batch, depth, like):
        if noise_level is None:
            raise ConfigError(rule_message("noise_level", "is required when noise_map=True", None,
                                           "Pass a (B,) tensor of noise std in normalised units."))
        level = torch.as_tensor(noise_level, dtype=like.dtype, device=like.device).reshape(-1)
        if level.numel() == 1:
            level = level.expand(batch)
        level = level.repeat_interleave(depth)
        return level.view(-1, 1, 1, 1).expand(-1, 1, like.shape[-2], like.shape[-1])
