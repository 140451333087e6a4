"""Patch layout and Gaussian blending weights for sliding-window inference."""

from __future__ import annotations

import itertools

import torch


def gaussian_importance_map(roi_size: tuple[int, ...], sigma_scale: float, *, floor: float = 1e-3) -> torch.Tensor:
    """Separable Gaussian weights peaking at 1 in the patch centre.

    ``sigma = sigma_scale * roi`` per axis (MONAI's convention). Each 1D profile is
    floored at ``floor`` *before* the product, so a voxel covered only by patch edges
    still gets a finite normalisation while the ratio between overlapping patches along
    one axis is kept everywhere (flooring the 3D product instead would flatten the
    weights to a uniform average near the volume's other borders and show seams).
    """
    weights = torch.ones((), dtype=torch.float32)
    for size in roi_size:
        centre = (size - 1) / 2.0
        sigma = max(sigma_scale * size, 1e-6)
        axis = torch.exp(-0.5 * ((torch.arange(size, dtype=torch.float32) - centre) / sigma) ** 2)
        weights = weights.unsqueeze(-1) * (axis / axis.max()).clamp_min(floor)
    return weights


def patch_starts(image_size: int, roi: int, overlap: float) -> list[int]:
    """Start indices along one axis so patches of ``roi`` cover ``image_size`` with ``overlap``."""
    if roi >= image_size:
        return [0]
    step = max(1, int(round(roi * (1.0 - overlap))))
    starts = list(range(0, image_size - roi, step))
    starts.append(image_size - roi)
    return starts


def patch_grid(image_size: tuple[int, ...], roi_size: tuple[int, ...], overlap: float) -> list[tuple[slice, ...]]:
    """Every patch as a tuple of slices over (D, H, W)."""
    per_axis = [patch_starts(s, r, overlap) for s, r in zip(image_size, roi_size)]
    return [tuple(slice(start, start + r) for start, r in zip(starts, roi_size))
            for starts in itertools.product(*per_axis)]


def effective_roi(image_size: tuple[int, ...], roi_size: tuple[int, ...]) -> tuple[int, ...]:
    """MONAI semantics: a non-positive entry means the full axis; a patch never exceeds the image."""
    return tuple(s if r <= 0 else min(r, s) for s, r in zip(image_size, roi_size))


def context_margin(image_size: tuple[int, ...], roi_size: tuple[int, ...]) -> tuple[int, ...]:
    """Reflect-padding margin per axis: an eighth of the patch, fewer than the axis length."""
    return tuple(0 if s <= 1 else min(max(r // 8, 0), s - 1) for s, r in zip(image_size, roi_size))
