"""DUAL-NET: a blind-spot noise-estimation branch guiding a residual, attention-gated 3D UNet.

Seed: "Deep Learning-Based Noise Removal from Low-Resolution Medical Images" (DUAL-NET). Two branches:

* NEB (:mod:`.dualnet_neb`) estimates, without seeing each voxel's own value, its noise std
  ``sigma(x)``, a confidence ``alpha(x)`` and a blind-spot denoise ``mu(x)``;
* SRB (:mod:`.dualnet_srb`) predicts the noise ``n(x)`` of the whole patch; ``x_hat = x - n(x)``
  (residual learning, zero-initialised last layer: an untrained DUAL-NET is the identity). The NEB's
  ``(log sigma, alpha)`` enter the SRB through cross-attention gates.

The model's own uncertainty is ``sigma(x) * (1 - alpha(x))`` (``own_uncertainty="error"``): the
noise std the SRB is expected to leave in a voxel, ``alpha`` being the share of the noise it removes
with confidence (train it with ``loss.error_nll``); ``own_uncertainty="noise"`` reports ``sigma``
itself. Both are in normalised units; the pipeline maps them back to the volume's units.

References
----------
Zhang K et al. Beyond a Gaussian denoiser: residual learning of deep CNN for image denoising. IEEE TIP
2017 (residual learning). Ronneberger O et al. U-Net. MICCAI 2015. See the branch modules for the rest.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn

from ..errors import ConfigError, rule_message
from .dualnet_neb import NoiseEstimationBranch
from .dualnet_srb import StructureRestorationBranch
from .padding import check_choice, check_dropout, check_positive_int, check_volume_batch, pad_to_multiple, \
    parameter_dtype
from .registry import register_model

__all__ = ["DUALNET_CITATION", "DualNet", "VARIANTS"]

DUALNET_CITATION = (
    "DUAL-NET after 'Deep Learning-Based Noise Removal from Low-Resolution Medical Images' (seed paper); "
    "Zhang Y et al., Residual dense network, CVPR 2018; Hu J et al., Squeeze-and-excitation networks, CVPR 2018; "
    "Oktay O et al., Attention U-Net, MIDL 2018; Liu Z et al., Swin Transformer, ICCV 2021; "
    "Wu X et al., Unpaired learning of deep image denoising (D-BSN), ECCV 2020; "
    "Laine S et al., High-quality self-supervised deep image denoising, NeurIPS 2019")

#: Sizes of the two variants; any of them can be overridden in the model config.
VARIANTS = {
    False: {"channels": (32, 64, 128), "neb_channels": 24, "neb_depth": 4, "blocks": 2, "growth": 16,
            "downscale": 1, "heads": 4},
    True: {"channels": (16, 32, 64), "neb_channels": 8, "neb_depth": 2, "blocks": 1, "growth": 8,
           "downscale": 2, "heads": 2},
}
UNCERTAINTY_KINDS = ("error", "noise")


@register_model(
    "dualnet",
    description="DUAL-NET: blind-spot noise-estimation branch (sigma, confidence) guiding a residual 3D UNet "
                "with residual dense blocks, squeeze-and-excitation and window self-attention; own uncertainty. "
                "edge=True: depthwise-separable, narrower, CPU-fast.",
    citation=DUALNET_CITATION,
)
class DualNet(nn.Module):
    """DUAL-NET on ``(B, 1, D, H, W)`` volumes of any size (padded internally, cropped back).

    Parameters
    ----------
    edge : bool, default False
        The CPU variant: depthwise-separable convolutions, the narrower sizes of :data:`VARIANTS`, and a
        2x2 in-plane space-to-depth before the UNet. Explicit size arguments override the variant's.
    neb : bool, default True
        Keep the noise-estimation branch (False: the "no NEB" ablation, no gates, no own uncertainty).
    nonlocal_attention : bool, default True
        Window self-attention at the bottleneck (False: the "no non-local attention" ablation).
    channels : sequence of ints, optional
        UNet widths, top level to bottleneck (at least two).
    neb_channels, neb_depth : int, optional
        Width and number of dilated layers of the noise-estimation branch.
    blocks, growth, dense_layers : int
        Residual dense blocks per level, channels each dense layer adds, dense layers per block.
    downscale : {1, 2}, optional
        In-plane space-to-depth factor before the UNet.
    pool_depth : bool, default False
        Downsample depth as well (2x2x2). The default (1x2x2) suits thin slabs and thick slices.
    heads : int, optional
        Attention heads (must divide ``channels[-1]``).
    window : three ints, default (2, 8, 8)
        Attention window (D, H, W) at the bottleneck (cut to the feature map when it is smaller).
    se_reduction : int, default 4
        Squeeze-and-excitation reduction.
    own_uncertainty : {"error", "noise"}, default "error"
        What :meth:`forward_with_uncertainty` reports: ``sigma * (1 - alpha)`` or ``sigma``.
    dropout : float, default 0.0
        Channel dropout before the SRB's last convolution (Monte-Carlo dropout).

    Examples
    --------
    >>> model = DualNet(edge=True, channels=(4, 8), neb_channels=4, heads=1)
    >>> x = torch.rand(1, 1, 3, 13, 11)
    >>> torch.equal(model(x), x)  # the identity before training
    True
    >>> sorted(model.forward_all(x))
    ['alpha', 'denoised', 'error_std', 'neb_denoised', 'sigma']
    """

    conditions_on_noise_level = False

    def __init__(self, *, edge: bool = False, neb: bool = True, nonlocal_attention: bool = True,
                 channels: Optional[Sequence[int]] = None, neb_channels: Optional[int] = None,
                 neb_depth: Optional[int] = None, blocks: Optional[int] = None, growth: Optional[int] = None,
                 dense_layers: int = 3, downscale: Optional[int] = None, pool_depth: bool = False,
                 heads: Optional[int] = None, window: Sequence[int] = (2, 8, 8), se_reduction: int = 4,
                 own_uncertainty: str = "error", dropout: float = 0.0) -> None:
        super().__init__()
        for name, value in (("edge", edge), ("neb", neb), ("nonlocal_attention", nonlocal_attention),
                            ("pool_depth", pool_depth)):
            check_choice(value, name, (True, False))
        variant = VARIANTS[edge]
        resolved = {k: v if v is not None else variant[k] for k, v in (
            ("channels", channels), ("neb_channels", neb_channels), ("neb_depth", neb_depth), ("blocks", blocks),
            ("growth", growth), ("downscale", downscale), ("heads", heads))}
        widths = _check_widths(resolved["channels"])
        for name in ("neb_channels", "blocks", "growth", "heads"):
            check_positive_int(resolved[name], name)
        check_positive_int(resolved["neb_depth"], "neb_depth", minimum=0)
        check_positive_int(dense_layers, "dense_layers")
        check_positive_int(se_reduction, "se_reduction")
        check_choice(resolved["downscale"], "downscale", (1, 2))
        check_choice(own_uncertainty, "own_uncertainty", UNCERTAINTY_KINDS)
        window = _check_window(window)
        if nonlocal_attention and widths[-1] % resolved["heads"]:
            raise ConfigError(rule_message("heads", f"must divide the bottleneck width {widths[-1]}",
                                           resolved["heads"], "Use heads=2 or heads=4 with channels ending in 64."))
        p = check_dropout(dropout)
        self.has_dropout = p > 0
        self.has_own_uncertainty = bool(neb)
        self.own_uncertainty = own_uncertainty
        self.neb = (NoiseEstimationBranch(resolved["neb_channels"], depth=resolved["neb_depth"])
                    if neb else None)
        self.srb = StructureRestorationBranch(
            widths, blocks=resolved["blocks"], growth=resolved["growth"], dense_layers=dense_layers, depthwise=edge,
            se_reduction=se_reduction, downscale=resolved["downscale"], pool_depth=pool_depth, guided=neb,
            nonlocal_attention=nonlocal_attention, heads=resolved["heads"], window=window, dropout=p)
        self.size_multiple = self.srb.size_multiple
        #: The full configuration with the variant's sizes filled in (written into model cards).
        self.resolved_config = {"edge": edge, "neb": neb, "nonlocal_attention": nonlocal_attention,
                                **resolved, "channels": list(widths), "dense_layers": dense_layers,
                                "pool_depth": pool_depth, "window": list(window), "se_reduction": se_reduction,
                                "own_uncertainty": own_uncertainty, "dropout": p}

    def forward(self, x: torch.Tensor, *, return_all: bool = False):
        """The denoised ``x`` (same shape, dtype, device); with ``return_all`` the dict of :meth:`forward_all`.

        ``return_all`` goes through ``forward`` so that a ``DistributedDataParallel`` wrapper sees the call.
        """
        check_volume_batch(x, type(self).__name__)
        source_dtype = x.dtype
        x = x.to(parameter_dtype(self))
        outputs: dict[str, Optional[torch.Tensor]] = {"sigma": None, "alpha": None, "neb_denoised": None,
                                                      "error_std": None}
        guide = None
        if self.neb is not None:
            mu, sigma, alpha = self.neb(x)
            outputs.update(sigma=sigma, alpha=alpha, neb_denoised=mu, error_std=sigma * (1.0 - alpha))
            guide = torch.cat([torch.log(sigma), alpha], dim=1)
        padded, crop = pad_to_multiple(x, self.size_multiple)
        if guide is not None:
            guide = pad_to_multiple(guide, self.size_multiple)[0]
        noise = self.srb(padded, guide)[crop]
        denoised = (x - noise.to(x.dtype)).to(source_dtype)
        if not return_all:
            return denoised
        outputs = {k: (v.to(source_dtype) if v is not None else None) for k, v in outputs.items()}
        return {"denoised": denoised, **outputs}

    def forward_all(self, x: torch.Tensor) -> dict[str, Optional[torch.Tensor]]:
        """``denoised`` (SRB), ``sigma`` (noise std), ``alpha`` (confidence), ``neb_denoised`` (blind-spot
        estimate) and ``error_std`` (``sigma * (1 - alpha)``), each ``(B, 1, D, H, W)``; the NEB's entries are
        None without the branch."""
        return self.forward(x, return_all=True)

    def forward_with_uncertainty(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(denoised, std)`` with std the model's own uncertainty (normalised units, see ``own_uncertainty``).

        Raises
        ------
        ConfigError
            When the model was built with ``neb=False`` (no noise-estimation branch).
        """
        if self.neb is None:
            raise ConfigError(rule_message("uncertainty source 'model'", "needs DUAL-NET's noise-estimation branch",
                                           "neb=False", "Use the TTA spread (uncertainty source 'tta')."))
        outputs = self.forward_all(x)
        key = "error_std" if self.own_uncertainty == "error" else "sigma"
        return outputs["denoised"], outputs[key]


def _check_widths(channels) -> tuple[int, ...]:
    if isinstance(channels, (str, bytes)) or not hasattr(channels, "__len__") or len(channels) < 2:
        raise ConfigError(rule_message("channels", "must be at least two positive ints", channels,
                                       "Use e.g. channels=(16, 32, 64)."))
    return tuple(check_positive_int(c, "channels entry") for c in channels)


def _check_window(window) -> tuple[int, int, int]:
    if isinstance(window, (str, bytes)) or not hasattr(window, "__len__") or len(window) != 3 \
            or not all(isinstance(w, int) and not isinstance(w, bool) and w >= 1 for w in window):
        raise ConfigError(rule_message("window", "must be three positive ints (D, H, W)", window,
                                       "Use window=(2, 8, 8)."))
    return tuple(window)  # type: ignore[return-value]
