"""DnCNN residual-learning denoiser of Zhang et al. (2017), in 3D."""

from __future__ import annotations

import logging

import torch
from torch import nn

from .padding import check_choice, check_dropout, check_positive_int, check_volume_batch, parameter_dtype
from .registry import register_model

logger = logging.getLogger(__name__)

ZHANG_2017 = ("Zhang K, Zuo W, Chen Y, Meng D, Zhang L. Beyond a Gaussian denoiser: residual learning of "
              "deep CNN for image denoising. IEEE Transactions on Image Processing 26(7):3142-3155, 2017. "
              "doi:10.1109/TIP.2017.2662206")

NORMS = ("none", "group", "batch")


def _norm(kind: str, features: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm3d(features)
    # Up to 8 groups, as many as divide the width; one group is LayerNorm over (C, D, H, W).
    groups = max(g for g in range(1, min(8, features) + 1) if features % g == 0)
    return nn.GroupNorm(groups, features)


@register_model(
    "dncnn",
    description="DnCNN (Zhang et al. 2017) in 3D: predicts the noise, output = x - noise. "
                "CPU-sized defaults (depth 10, 32 features; the paper uses 17 and 64).",
    citation=ZHANG_2017,
    depth=10,
    features=32,
    kernel_depth=3,
    norm="none",
    dropout=0.0,
)
class DnCNN3d(nn.Module):
    """Residual-learning CNN: ``depth`` 3x3(x3) convolutions predict the noise ``v``; output ``x - v``.

    Layers: ``Conv(F) ReLU``, then ``depth - 2`` times ``Conv(F) [Norm] ReLU [Dropout3d]``,
    then ``Conv(1)``. Every convolution has zero "same" padding, so no padding to a multiple is
    needed and any ``D, H, W >= 1`` works as is.

    Parameters
    ----------
    depth : int, default 10
        Number of convolutions, >= 2 (17 in the paper for known-sigma Gaussian denoising).
    features : int, default 32
        Width ``F`` of the hidden layers (64 in the paper).
    kernel_depth : {3, 1}, default 3
        Depth extent of every kernel: 3 gives 3x3x3 kernels; 1 gives 1x3x3 kernels, i.e. the
        2D DnCNN applied to each slice independently (single slices, thick slices).
    norm : {"none", "group", "batch"}, default "none"
        Normalisation after the middle convolutions (their bias is then dropped):

        - ``"none"``: no normalisation; residual learning with Adam trains without it, and
          batch-size-1 patches behave the same in training and inference.
        - ``"group"``: GroupNorm (up to 8 groups), independent of the batch.
        - ``"batch"``: BatchNorm as in the paper. Its running statistics are used in eval mode,
          so small or unrepresentative training batches make eval outputs differ from training.
    dropout : float, default 0.0
        ``nn.Dropout3d`` probability after every middle ReLU; > 0 enables Monte-Carlo dropout.

    Notes
    -----
    Residual learning (Zhang et al. 2017, Sec. III-A): with ``y = x + v`` the network
    ``R(y) ~ v`` is trained with ``|| R(y) - (y - x) ||^2`` and the estimate is
    ``x_hat = y - R(y)``; a loss on ``x_hat`` against the clean image is the same objective.
    With ``norm="none"`` the parameter count is, with ``K = kernel_depth * 9`` and ``L = depth``,
    ``(K F + F) + (L - 2)(K F^2 + F) + (K F + 1)``: 223 201 for the defaults.
    Hidden convolutions use He initialisation as in the paper; the last convolution starts at
    zero, so an untrained model returns its input unchanged.

    References
    ----------
    Zhang K, Zuo W, Chen Y, Meng D, Zhang L. Beyond a Gaussian denoiser: residual learning of
    deep CNN for image denoising. IEEE Trans. Image Process. 26(7):3142-3155, 2017.

    Examples
    --------
    >>> import torch
    >>> model = DnCNN3d(depth=3, features=4, kernel_depth=1)
    >>> model(torch.rand(1, 1, 1, 5, 7)).shape
    torch.Size([1, 1, 1, 5, 7])
    """

    conditions_on_noise_level = False
    has_dropout = False

    def __init__(
        self,
        *,
        depth: int = 10,
        features: int = 32,
        kernel_depth: int = 3,
        norm: str = "none",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        check_positive_int(depth, "depth", minimum=2)
        check_positive_int(features, "features")
        check_choice(kernel_depth, "kernel_depth", (3, 1))
        check_choice(norm, "norm", NORMS)
        p = check_dropout(dropout)
        self.has_dropout = p > 0.0
        self.size_multiple = (1, 1, 1)
        kernel = (kernel_depth, 3, 3)
        pad = (kernel_depth // 2, 1, 1)

        layers: list[nn.Module] = [nn.Conv3d(1, features, kernel, padding=pad), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers.append(nn.Conv3d(features, features, kernel, padding=pad, bias=norm == "none"))
            if norm != "none":
                layers.append(_norm(norm, features))
            layers.append(nn.ReLU(inplace=True))
            if p > 0.0:
                layers.append(nn.Dropout3d(p))
        layers.append(nn.Conv3d(features, 1, kernel, padding=pad))
        self.net = nn.Sequential(*layers)
        self._init_weights()

    def _init_weights(self) -> None:
        # He et al. (2015) initialisation for the ReLU layers, as in Zhang et al. (2017);
        # the last layer starts at zero so an untrained model is the identity.
        convs = [m for m in self.net if isinstance(m, nn.Conv3d)]
        for conv in convs[:-1]:
            nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
            if conv.bias is not None:
                nn.init.zeros_(conv.bias)
        nn.init.zeros_(convs[-1].weight)
        nn.init.zeros_(convs[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Denoise ``x`` of shape ``(B, 1, D, H, W)``: ``x - R(x)``; same shape, dtype and device."""
        check_volume_batch(x, type(self).__name__)
        noise = self.net(x.to(parameter_dtype(self)))
        return x - noise.to(x.dtype)
