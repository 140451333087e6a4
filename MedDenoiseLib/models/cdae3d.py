"""Convolutional denoising autoencoder (CNN-DAE) of Gondara (2016), in 3D.

Also the generic two-pool autoencoder that ``cae3d`` reuses with other widths.
"""

from __future__ import annotations

import logging
from typing import Sequence

import torch
from torch import nn

from ..errors import ConfigError, rule_message
from .padding import (check_choice, check_dropout, check_positive_int, check_volume_batch, pad_to_multiple,
                      parameter_dtype)
from .registry import register_model

logger = logging.getLogger(__name__)

GONDARA_2016 = ("Gondara L. Medical image denoising using convolutional denoising autoencoders. "
                "IEEE 16th International Conference on Data Mining Workshops (ICDMW), 2016, pp. 241-246. "
                "doi:10.1109/ICDMW.2016.0041")

OUTPUT_ACTIVATIONS = ("sigmoid", "none")


class ConvAutoencoder3d(nn.Module):
    """Conv-pool encoder and conv-upsample decoder with two 2x poolings, in 3D.

    ``x -> Conv(c0) ReLU MaxPool -> Conv(c1) ReLU MaxPool -> Conv(c2) ReLU Upsample
    -> Conv(c3) ReLU Upsample -> Conv(1) [sigmoid]``, every convolution 3x3x3 with zero
    "same" padding, pooling 2x2x2 (or 1x2x2 with ``pool_depth=False``), nearest upsampling.

    Parameters
    ----------
    channels : sequence of four ints, default (64, 32, 32, 64)
        Widths ``(c0, c1, c2, c3)`` of the four hidden convolutions (Gondara 2016's are the default).
    pool_depth : bool, default True
        Pool and upsample along depth too (2x2x2). With False the network pools in-plane only
        (1x2x2), which suits single slices (X-ray, ultrasound) and thick-slice volumes.
    output_activation : {"sigmoid", "none"}, default "sigmoid"
        - ``"sigmoid"``: as in the paper; outputs lie in (0, 1), so the input must be normalised
          to [0, 1] (values outside cannot be reproduced).
        - ``"none"``: linear output, for z-scored inputs.
    dropout : float, default 0.0
        Probability of ``nn.Dropout3d`` (whole feature maps) after every hidden ReLU; > 0 enables
        Monte-Carlo dropout (``has_dropout``).

    Notes
    -----
    The two poolings need each pooled axis to be a multiple of 4; the forward pass pads the
    input up to it (reflect, or replicate for axes too small to reflect, see
    :func:`~MedDenoiseLib.models.padding.pad_to_multiple`) and crops the output back. With
    ``pool_depth=True`` a single slice (``D = 1``) is therefore seen as four identical slices:
    it works, but costs four times the compute of ``pool_depth=False``.

    References
    ----------
    Gondara L. Medical image denoising using convolutional denoising autoencoders. ICDMW 2016.

    Examples
    --------
    >>> model = ConvAutoencoder3d(channels=(4, 4, 4, 4))
    >>> model(torch.rand(1, 1, 1, 5, 7)).shape
    torch.Size([1, 1, 1, 5, 7])
    """

    conditions_on_noise_level = False
    has_dropout = False

    def __init__(
        self,
        *,
        channels: Sequence[int] = (64, 32, 32, 64),
        pool_depth: bool = True,
        output_activation: str = "sigmoid",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if isinstance(channels, (str, bytes)) or not hasattr(channels, "__len__") or len(channels) != 4:
            raise ConfigError(rule_message("channels", "must be four positive ints (c0, c1, c2, c3)", channels,
                                           "Use e.g. channels=(64, 32, 32, 64) as in Gondara 2016."))
        widths = [check_positive_int(c, "channels entry") for c in channels]
        check_choice(pool_depth, "pool_depth", (True, False))
        check_choice(output_activation, "output_activation", OUTPUT_ACTIVATIONS)
        p = check_dropout(dropout)
        self.has_dropout = p > 0.0
        self.size_multiple = (4 if pool_depth else 1, 4, 4)
        pool = (2, 2, 2) if pool_depth else (1, 2, 2)

        def block(cin: int, cout: int) -> list[nn.Module]:
            layers: list[nn.Module] = [nn.Conv3d(cin, cout, 3, padding=1), nn.ReLU(inplace=True)]
            if p > 0.0:
                layers.append(nn.Dropout3d(p))
            return layers

        self.net = nn.Sequential(
            *block(1, widths[0]), nn.MaxPool3d(pool),
            *block(widths[0], widths[1]), nn.MaxPool3d(pool),
            *block(widths[1], widths[2]), nn.Upsample(scale_factor=pool, mode="nearest"),
            *block(widths[2], widths[3]), nn.Upsample(scale_factor=pool, mode="nearest"),
            nn.Conv3d(widths[3], 1, 3, padding=1),
        )
        self.output_activation = nn.Sigmoid() if output_activation == "sigmoid" else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Denoise ``x`` of shape ``(B, 1, D, H, W)``; same shape, dtype and device out."""
        check_volume_batch(x, type(self).__name__)
        padded, crop = pad_to_multiple(x.to(parameter_dtype(self)), self.size_multiple)
        out = self.output_activation(self.net(padded))[crop]
        return out.to(x.dtype)


@register_model(
    "cdae",
    description="Gondara 2016 convolutional denoising autoencoder in 3D (64-32-32-64, two poolings, "
                "sigmoid output: expects inputs in [0, 1]).",
    citation=GONDARA_2016,
    channels=(64, 32, 32, 64),
    pool_depth=True,
    output_activation="sigmoid",
    dropout=0.0,
)
class CDAE3d(ConvAutoencoder3d):
    """Gondara (2016) CNN-DAE in 3D; see :class:`ConvAutoencoder3d` for the parameters.

    References
    ----------
    Gondara L. Medical image denoising using convolutional denoising autoencoders.
    IEEE ICDMW 2016, pp. 241-246. doi:10.1109/ICDMW.2016.0041
    """
