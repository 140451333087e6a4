"""Patch-wise inference with Gaussian blending, reflect padding, TTA views and MC sampling.

Names follow MONAI's ``sliding_window_inference`` (``roi_size``, ``overlap``,
``sigma_scale``, ``sw_batch_size``, ``sw_device``); the result is stitched on the CPU, so
device memory depends on the patch size only, never on the volume size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from ..errors import CancelledError, ShapeError, rule_message
from .blending import context_margin, effective_roi, gaussian_importance_map, patch_grid
from .progress import ProgressCallback, ProgressClock, StopCallback
from .tta import View, apply_view, undo_view

Predictor = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class WindowPlan:
    """What one sliding-window pass will do (known before any patch runs)."""

    roi_size: tuple[int, int, int]
    margin: tuple[int, int, int]
    patches: int
    samples_per_patch: int


def pad_for_context(image: torch.Tensor, margin: tuple[int, int, int]) -> torch.Tensor:
    """Reflect-pad (B, C, D, H, W) by ``margin`` per spatial axis (margin < axis length by construction)."""
    if not any(margin):
        return image
    pads: list[int] = []
    for m in reversed(margin):
        pads += [m, m]
    return F.pad(image, pads, mode="reflect")


def plan_windows(image_shape: tuple[int, int, int], roi_size: tuple[int, int, int], overlap: float,
                 samples_per_patch: int) -> WindowPlan:
    margin = context_margin(image_shape, roi_size)
    padded = tuple(s + 2 * m for s, m in zip(image_shape, margin))
    roi = effective_roi(padded, roi_size)
    return WindowPlan(roi, margin, len(patch_grid(padded, roi, overlap)), samples_per_patch)  # type: ignore[arg-type]


def sliding_window_moments(
    image: torch.Tensor,
    predictor: Predictor,
    *,
    roi_size: tuple[int, int, int],
    overlap: float,
    sigma_scale: float,
    sw_batch_size: int,
    sw_device: torch.device,
    views: list[View | tuple[int, ...]],
    mc_samples: int = 1,
    channels: int = 1,
    progress: ProgressCallback | None = None,
    should_stop: StopCallback | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Blended mean and variance of the predictor over TTA views x MC samples.

    Parameters
    ----------
    image : (1, 1, D, H, W) float tensor on the CPU.
    predictor : maps a (b, 1, d, h, w) batch on ``sw_device`` to (b, C, d, h, w), C >= ``channels``:
        channel 0 is the denoised image, further channels per-voxel maps (e.g. a model's own std).
    views : one per TTA pass (``tta.view_set``; a plain tuple of dims is a flip); each is undone before
        averaging.
    mc_samples : forward passes per view (> 1 only makes sense with dropout enabled).
    channels : predictor channels kept (1: the image only).

    Returns
    -------
    (mean, variance): mean (1, channels, D, H, W), the blended mean of every kept channel over
    the len(views) * mc_samples outputs; variance (1, 1, D, H, W), the population variance of
    channel 0 over those outputs, blended like the mean. Both float32 on the CPU.
    """
    if image.ndim != 5 or image.shape[:2] != (1, 1):
        raise ShapeError(rule_message("image", "must be (1, 1, D, H, W)", tuple(image.shape), "Add batch/channel axes."))
    spatial = tuple(image.shape[2:])
    views = [v if isinstance(v, View) else View(tuple(v)) for v in views]
    plan = plan_windows(spatial, roi_size, overlap, len(views) * mc_samples)
    padded = pad_for_context(image.float(), plan.margin)
    weights = gaussian_importance_map(plan.roi_size, sigma_scale)
    mean_sum = torch.zeros((channels, *padded.shape[2:]), dtype=torch.float32)
    var_sum = torch.zeros(padded.shape[2:], dtype=torch.float32)
    weight_sum = torch.zeros_like(var_sum)
    windows = patch_grid(tuple(padded.shape[2:]), plan.roi_size, overlap)
    clock = ProgressClock("denoise", len(windows), plan.samples_per_patch, progress)
    views = [view for view in views for _ in range(mc_samples)]
    group = max(1, sw_batch_size // len(views))  # whole patches per forward pass when the batch allows
    for first in range(0, len(windows), group):
        chunk = windows[first:first + group]
        patches = [padded[(slice(None), slice(None), *window)].to(sw_device) for window in chunk]
        outputs = _predict_views(patches, views, predictor, sw_batch_size, channels,
                                 lambda patch, done: _tick(clock, first + patch, done, should_stop))
        for window, stack in zip(chunk, outputs):
            mean = stack.mean(dim=0).float().cpu()
            var = (stack[:, 0].var(dim=0, unbiased=False).float().cpu() if stack.shape[0] > 1
                   else torch.zeros_like(mean[0]))
            mean_sum[(slice(None), *window)] += weights * mean
            var_sum[window] += weights * var
            weight_sum[window] += weights
    crop = tuple(slice(m, m + s) for m, s in zip(plan.margin, spatial))
    mean_out = (mean_sum / weight_sum)[(slice(None), *crop)]
    var_out = (var_sum / weight_sum)[crop]
    return mean_out[None], var_out[None, None]


def _tick(clock: ProgressClock, patch: int, done: int, should_stop: StopCallback | None) -> None:
    if should_stop is not None and should_stop():
        raise CancelledError(f"cancelled at patch {patch}/{clock.patches}; no output was written")
    clock.report(patch, done)


def _predict_views(patches, views, predictor, batch_size, channels, on_done) -> list[torch.Tensor]:
    """Every (patch, view) pair through the predictor in batches of ``batch_size``.

    A batch may span several patches (small TTA) or a part of one patch's views (large
    TTA). Returns, per patch, the (S, channels, d, h, w) outputs back on the patch's grid; ``on_done(patch, k)``
    is called with 1-based patch numbers within ``patches`` as views finish.
    """
    pairs = [(p, view) for p in range(len(patches)) for view in views]
    outputs: list[list[torch.Tensor]] = [[] for _ in patches]
    on_done(1, 0)
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start:start + batch_size]
        for (p, view), predicted in zip(chunk, _predict_batch([apply_view(patches[p], v) for p, v in chunk],
                                                               predictor)):
            outputs[p].append(undo_view(predicted, view))
        last = chunk[-1][0]
        on_done(last + 1, len(outputs[last]))
    stacks = [torch.cat(stack, dim=0) for stack in outputs]
    if stacks and stacks[0].shape[1] < channels:
        raise ShapeError(rule_message("predictor output", f"must have >= {channels} channels (image + maps)",
                                      tuple(stacks[0].shape), "Return the model's std map as channel 1."))
    return [stack[:, :channels] for stack in stacks]


def _predict_batch(inputs: list[torch.Tensor], predictor) -> list[torch.Tensor]:
    """The predictor's (1, C, ...) output per input, in order; inputs of one shape share a forward pass (a
    transposed view of a patch that is not square in-plane has another shape)."""
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for index, tensor in enumerate(inputs):
        by_shape.setdefault(tuple(tensor.shape), []).append(index)
    results: list[torch.Tensor | None] = [None] * len(inputs)
    for indices in by_shape.values():
        with torch.no_grad():
            predicted = predictor(torch.cat([inputs[i] for i in indices], dim=0))
        for k, i in enumerate(indices):
            results[i] = predicted[k:k + 1]
    return results
