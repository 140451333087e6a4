"""Residual 3D UNet sized for CPU, built on MONAI's ``UNet`` with residual units."""

from __future__ import annotations

import logging
from math import gcd
from typing import Sequence

import torch
from torch import nn

from ..errors import ConfigError, rule_message
from .padding import (check_choice, check_dropout, check_positive_int, check_volume_batch, pad_to_multiple,
                      parameter_dtype)
from .registry import register_model

logger = logging.getLogger(__name__)

RESUNET_CITATION = (
    "Ronneberger O, Fischer P, Brox T. U-Net: convolutional networks for biomedical image segmentation. "
    "MICCAI 2015, LNCS 9351:234-241. doi:10.1007/978-3-319-24574-4_28; residual units: Kerfoot E, Clough J, "
    "Oksuz I, Lee J, King AP, Schnabel JA. Left-ventricle quantification using residual U-Net. STACOM 2018, "
    "LNCS 11395:371-380. doi:10.1007/978-3-030-12029-0_40 (MONAI UNet)")

NORMS = ("instance", "group", "none")


@register_model(
    "resunet",
    description="Residual 3D UNet (MONAI UNet with residual units) sized for CPU, channels (16, 32, 64), "
                "global residual output = x + net(x).",
    citation=RESUNET_CITATION,
    channels=(16, 32, 64),
    num_res_units=2,
    pool_depth=True,
    norm="instance",
    dropout=0.0,
)
class ResUNet3d(nn.Module):
    """MONAI residual UNet predicting a correction that is added to the input: ``x + net(x)``.

    Parameters
    ----------
    channels : sequence of ints, default (16, 32, 64)
        Widths from the top level to the bottleneck, at least two; ``len(channels) - 1``
        strided-convolution downsamplings by 2.
    num_res_units : int, default 2
        Residual units per level (MONAI ``UNet(num_res_units=...)``); 0 gives plain conv blocks.
    pool_depth : bool, default True
        Stride 2 along depth too (2x2x2). With False every stride is 1x2x2 (in-plane only),
        which suits single slices and thick-slice volumes.
    norm : {"instance", "group", "none"}, default "instance"
        Normalisation inside the UNet (all independent of the batch): InstanceNorm (MONAI's
        default), GroupNorm with up to 8 groups dividing every width, or none.
    dropout : float, default 0.0
        ``nn.Dropout`` probability inside every MONAI convolution block; > 0 enables Monte-Carlo
        dropout.

    Notes
    -----
    Each strided axis must be a multiple of ``2**(len(channels) - 1)``; the input is padded to
    it (reflect, or replicate when the axis is too small, see
    :func:`~MedDenoiseLib.models.padding.pad_to_multiple`) and the output cropped back. In-plane
    axes are padded to at least twice that multiple so the bottleneck keeps 2x2 voxels per
    channel (instance norm needs more than one). With ``pool_depth=True`` a single slice becomes
    ``2**(len(channels) - 1)`` identical slices; ``pool_depth=False`` avoids that cost.
    MONAI's UNet ends its top level with a transposed convolution followed by norm and
    activation; to avoid a one-channel normalised bottleneck there, the UNet outputs
    ``channels[0]`` maps and a 1x1x1 convolution maps them to the single output channel.

    References
    ----------
    Ronneberger O et al. U-Net. MICCAI 2015. Kerfoot E et al. Left-ventricle quantification
    using residual U-Net. STACOM 2018.

    Examples
    --------
    >>> import torch
    >>> model = ResUNet3d(channels=(4, 8), num_res_units=1, pool_depth=False)
    >>> model(torch.rand(1, 1, 1, 5, 7)).shape
    torch.Size([1, 1, 1, 5, 7])
    """

    conditions_on_noise_level = False
    has_dropout = False

    def __init__(
        self,
        *,
        channels: Sequence[int] = (16, 32, 64),
        num_res_units: int = 2,
        pool_depth: bool = True,
        norm: str = "instance",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        from monai.networks.nets import UNet

        if isinstance(channels, (str, bytes)) or not hasattr(channels, "__len__") or len(channels) < 2:
            raise ConfigError(rule_message("channels", "must be at least two positive ints", channels,
                                           "Use e.g. channels=(16, 32, 64)."))
        widths = tuple(check_positive_int(c, "channels entry") for c in channels)
        check_positive_int(num_res_units, "num_res_units", minimum=0)
        check_choice(pool_depth, "pool_depth", (True, False))
        check_choice(norm, "norm", NORMS)
        p = check_dropout(dropout)
        self.has_dropout = p > 0.0
        levels = len(widths) - 1
        self.size_multiple = (2**levels if pool_depth else 1, 2**levels, 2**levels)
        self._min_sizes = (1, 2 ** (levels + 1), 2 ** (levels + 1))
        stride = (2, 2, 2) if pool_depth else (1, 2, 2)
        if norm == "group":
            common = 0
            for w in widths:
                common = gcd(common, w)
            norm_arg: tuple | str | None = ("group", {"num_groups": max(g for g in range(1, 9) if common % g == 0)})
        else:
            norm_arg = None if norm == "none" else "instance"
        self.unet = UNet(spatial_dims=3, in_channels=1, out_channels=widths[0], channels=widths,
                         strides=(stride,) * levels, num_res_units=num_res_units, norm=norm_arg, dropout=p)
        self.head = nn.Conv3d(widths[0], 1, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Denoise ``x`` of shape ``(B, 1, D, H, W)``: ``x + net(x)``; same shape, dtype and device."""
        check_volume_batch(x, type(self).__name__)
        padded, crop = pad_to_multiple(x.to(parameter_dtype(self)), self.size_multiple, min_sizes=self._min_sizes)
        correction = self.head(self.unet(padded))[crop]
        return x + correction.to(x.dtype)
