"""Training augmentation with explicit generators: flips, in-plane rot90, intensity scaling, elastic.

Flips, rotations and scaling act on (noisy, clean) patch pairs identically. Elastic deformation
acts on the clean volume *before* physics noise is simulated (see ``data.PatchSampler.refresh``):
deforming a noisy image would interpolate, hence correlate, its noise.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..errors import ShapeError, rule_message
from ..volume import isotropic_in_plane
from .config_sections import AugmentConfig

__all__ = ["augment_batch", "centre_slice_everywhere", "elastic_deform", "isotropic_in_plane"]


def _intensity_factors(config: AugmentConfig, count: int, generator: torch.Generator) -> torch.Tensor:
    """One factor per sample from ``intensity_scale`` (uniform, or log-uniform), shape (count, 1, 1, 1, 1); one
    number drawn per sample either way, so the rest of the stream does not depend on the choice."""
    low, high = config.intensity_scale
    u = torch.rand((count, 1, 1, 1, 1), generator=generator)
    if config.intensity_scale_draw == "log_uniform":
        return torch.exp(math.log(low) + (math.log(high) - math.log(low)) * u)
    return low + (high - low) * u


def augment_batch(noisy: torch.Tensor, clean: torch.Tensor | None, *, config: AugmentConfig,
                  isotropic: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Augment a (B, 1, D, H, W) batch pair; ``clean`` may be None (self-supervised batches).

    Draw order (kept stable so resumed runs replay exactly): one flip draw per axis D, H, W
    (whole batch), then, with ``rot90``, one k in {0, 1, 2, 3} per sample (used only where
    ``isotropic[b]`` and H == W), then one intensity factor per sample from U(low, high), then, with
    ``single_slice_probability`` > 0, one uniform per sample deciding which become single images.
    """
    if config.flip:
        for dim in (2, 3, 4):
            if torch.rand((), generator=generator) < 0.5:
                noisy = noisy.flip(dim)
                clean = clean.flip(dim) if clean is not None else None
    if config.rot90:
        ks = torch.randint(4, (noisy.shape[0],), generator=generator)
        if noisy.shape[3] == noisy.shape[4]:
            ks = torch.where(isotropic.to(ks.device), ks, torch.zeros_like(ks))
            noisy = _rotate(noisy, ks)
            clean = _rotate(clean, ks) if clean is not None else None
    scale = _intensity_factors(config, noisy.shape[0], generator)
    noisy, clean = noisy * scale, (clean * scale if clean is not None else None)
    if config.single_slice_probability > 0:
        single = torch.rand(noisy.shape[0], generator=generator) < config.single_slice_probability
        noisy = centre_slice_everywhere(noisy, single)
        clean = centre_slice_everywhere(clean, single) if clean is not None else None
    return noisy, clean


def centre_slice_everywhere(x: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
    """(B, C, D, H, W) with every slice of the ``chosen`` samples (bool, (B,)) replaced by their centre slice.

    >>> x = torch.arange(3.0).reshape(1, 1, 3, 1, 1)
    >>> centre_slice_everywhere(x, torch.tensor([True])).flatten().tolist()
    [1.0, 1.0, 1.0]
    """
    centre = x[:, :, x.shape[2] // 2:x.shape[2] // 2 + 1].expand_as(x)
    return torch.where(chosen.to(x.device).view(-1, 1, 1, 1, 1), centre, x)


def _rotate(x: torch.Tensor, ks: torch.Tensor) -> torch.Tensor:
    return torch.stack([torch.rot90(sample, int(k), dims=(2, 3)) for sample, k in zip(x, ks)])


def elastic_deform(volume: torch.Tensor, *, magnitude: float, control_points: int,
                   generator: torch.Generator) -> torch.Tensor:
    """Smooth random deformation of a (D, H, W) volume (trilinear resampling, border values kept).

    Displacements with standard deviation ``magnitude`` voxels are drawn on a coarse grid of
    ``control_points`` per axis and interpolated to every voxel. Axes shorter than 8 voxels (thin
    slabs, single slices) are not displaced.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> elastic_deform(torch.rand(1, 16, 16), magnitude=1.0, control_points=4, generator=g).shape
    torch.Size([1, 16, 16])
    """
    if volume.ndim != 3:
        raise ShapeError(rule_message("volume", "must be (D, H, W)", tuple(volume.shape), "Pass one volume."))
    shape = volume.shape
    coarse = torch.randn((3, control_points, control_points, control_points), generator=generator) * magnitude
    for axis, n in enumerate(shape):
        if n < 8:
            coarse[axis] = 0.0
    displacement = F.interpolate(coarse[None], size=tuple(shape), mode="trilinear", align_corners=True)[0]
    axes = [torch.linspace(-1.0, 1.0, n) if n > 1 else torch.zeros(1) for n in shape]
    base = torch.meshgrid(*axes, indexing="ij")
    normalised = [base[a] + displacement[a] * (2.0 / max(shape[a] - 1, 1)) for a in range(3)]
    grid = torch.stack(normalised[::-1], dim=-1)[None]  # grid_sample wants (x, y, z) = (W, H, D) last
    out = F.grid_sample(volume[None, None].float(), grid, mode="bilinear", padding_mode="border",
                        align_corners=True)
    return out[0, 0].to(volume.dtype)
