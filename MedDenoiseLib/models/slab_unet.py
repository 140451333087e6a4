"""2.5D residual UNet: the slab25d input with a multi-scale body for a far larger receptive field.

Each output slice is predicted from itself and ``context`` neighbours on either side
(stacked as channels), then a 2x2 space-to-depth as in ``slab25d``. The body is a UNet
without normalisation layers (as DRUNet): a residual block per scale, strided 2x2
convolutions down, transposed 2x2 convolutions up and additive skips. Three scales see
about 90 pixels of context (±46) for less compute per pixel than ``slab25d``'s eight
full-width convolutions; smooth anatomy at low noise needs that reach. Like DnCNN it
predicts the noise and subtracts it from the centre slice; the last convolution starts at
zero, so the untrained network is the identity.

References
----------
Ronneberger, Fischer, Brox, "U-Net: convolutional networks for biomedical image
segmentation", MICCAI 2015.
Zhang, Li, Zuo, Zhang, Van Gool, Timofte, "Plug-and-play image restoration with deep
denoiser prior", IEEE TPAMI 44(10), 2022 (DRUNet: residual UNet without normalisation).
Zhang, Zuo, Chen, Meng, Zhang, IEEE TIP 26(7), 2017 (DnCNN residual learning).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, rule_message
from .padding import check_dropout, check_positive_int, check_volume_batch, parameter_dtype
from .registry import register_model
from .slab25d import slice_stacks

__all__ = ["SlabUNet"]


class _ResidualBlock(nn.Module):
    """x + conv(relu(conv(x))), 3x3, no normalisation."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(inplace=True),
                                  nn.Conv2d(channels, channels, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _check_features(features: object) -> tuple[int, ...]:
    ok = isinstance(features, (list, tuple)) and len(features) >= 2 and all(
        isinstance(f, int) and not isinstance(f, bool) and f >= 1 for f in features)
    if not ok:
        raise ConfigError(rule_message("features", "must list at least two positive ints (channels per scale)",
                                       features, "Use e.g. features=[32, 64, 128]."))
    return tuple(int(f) for f in features)  # type: ignore[union-attr]


def _stage(channels: int, blocks: int) -> nn.Sequential:
    return nn.Sequential(*[_ResidualBlock(channels) for _ in range(blocks)])


@register_model(
    "slab_unet",
    description="2.5D residual UNet: neighbouring slices as channels, 2x2 space-to-depth, three scales, "
                "predicts the noise (CPU-fast, wide context).",
    citation="Ronneberger et al., MICCAI 2015 (U-Net); Zhang et al., IEEE TPAMI 2022 (DRUNet); "
             "Zhang et al., IEEE TIP 2017 (DnCNN)",
)
class SlabUNet(nn.Module):
    """2.5D noise-predicting UNet on (B, 1, D, H, W) volumes.

    Parameters
    ----------
    context : int
        Neighbouring slices used on each side (1 gives 3-slice input).
    features : sequence of int
        Channels per scale, finest first (at least two scales).
    blocks : int
        Residual blocks per scale on each side of the UNet.
    downscale : int
        Space-to-depth factor before the UNet (1 disables it).
    dropout : float
        Channel dropout before the last convolution (enables Monte-Carlo dropout).
    """

    in_plane_kernels = True  # slices are channels: test-time views transpose in-plane (inference.tta)

    conditions_on_noise_level = False

    def __init__(self, context: int = 1, features: Sequence[int] = (32, 64, 128), blocks: int = 1,
                 downscale: int = 2, dropout: float = 0.0) -> None:
        super().__init__()
        check_positive_int(context, "context", minimum=0)
        self.features = _check_features(features)
        check_positive_int(blocks, "blocks")
        check_positive_int(downscale, "downscale")
        dropout = check_dropout(dropout)
        self.context, self.downscale, self.has_dropout = int(context), int(downscale), dropout > 0
        self.resolved_config = {"context": self.context, "features": list(self.features), "blocks": int(blocks),
                                "downscale": self.downscale, "dropout": dropout}
        width = self.features
        self.head = nn.Conv2d((2 * self.context + 1) * self.downscale**2, width[0], 3, padding=1)
        self.encoders = nn.ModuleList(_stage(w, blocks) for w in width[:-1])
        self.downs = nn.ModuleList(nn.Conv2d(a, b, 2, stride=2) for a, b in zip(width[:-1], width[1:]))
        self.bottom = _stage(width[-1], blocks)
        self.ups = nn.ModuleList(nn.ConvTranspose2d(b, a, 2, stride=2) for a, b in zip(width[:-1], width[1:]))
        self.decoders = nn.ModuleList(_stage(w, blocks) for w in width[:-1])
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.tail = nn.Conv2d(width[0], self.downscale**2, 3, padding=1)
        nn.init.zeros_(self.tail.weight)  # start as the identity (predicted noise 0)
        nn.init.zeros_(self.tail.bias)

    @property
    def multiple(self) -> int:
        """In-plane sizes are padded to a multiple of this inside ``forward``."""
        return self.downscale * 2 ** (len(self.features) - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_volume_batch(x, "slab_unet")
        batch, _, depth, height, width = x.shape
        source_dtype = x.dtype
        x = x.to(parameter_dtype(self))
        stacked = self._pad(slice_stacks(x, self.context))
        features = F.pixel_unshuffle(stacked, self.downscale) if self.downscale > 1 else stacked
        noise = self.tail(self.dropout(self._unet(self.head(features))))
        noise = F.pixel_shuffle(noise, self.downscale) if self.downscale > 1 else noise
        noise = noise[..., :height, :width].reshape(batch, depth, height, width).unsqueeze(1)
        return (x - noise.to(x.dtype)).to(source_dtype)

    def _pad(self, stacked: torch.Tensor) -> torch.Tensor:
        height, width = stacked.shape[-2:]
        pad_h, pad_w = (-height) % self.multiple, (-width) % self.multiple
        if not (pad_h or pad_w):
            return stacked
        # reflect where the image is large enough (no flat border), replicate otherwise
        mode = "reflect" if pad_h < height and pad_w < width else "replicate"
        return F.pad(stacked, (0, pad_w, 0, pad_h), mode=mode)

    def _unet(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for encoder, down in zip(self.encoders, self.downs):
            x = encoder(x)
            skips.append(x)
            x = down(x)
        x = self.bottom(x)
        for up, decoder, skip in zip(reversed(self.ups), reversed(self.decoders), reversed(skips)):
            x = decoder(up(x) + skip)
        return x
