"""Out-of-memory back-off: smaller batch, then smaller patch, then the CPU."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import torch

from ..errors import DeviceError, rule_message
from .device import is_out_of_memory, release_cached_memory

logger = logging.getLogger(__name__)

MIN_INPLANE_ROI = 32
MIN_DEPTH_ROI = 8


@dataclass(frozen=True)
class RunSettings:
    """The knobs back-off may turn."""

    sw_batch_size: int
    roi_size: tuple[int, int, int]
    device: torch.device


def next_settings(settings: RunSettings, original: RunSettings | None = None) -> tuple[RunSettings, str] | None:
    """The next, cheaper settings and a sentence saying what changed; None when nothing is left.

    Order: halve the patch batch, then the in-plane patch (to 32), then the patch depth
    (to 8), then leave the GPU. On the CPU the ``original`` batch and patch come back (host
    memory is larger; tiny patches would only make the CPU run slower), and shrinking
    starts again from there if the CPU runs out of memory too. ``roi_size`` must hold
    effective (positive) sizes.
    """
    if settings.sw_batch_size > 1:
        smaller = max(1, settings.sw_batch_size // 2)
        return replace(settings, sw_batch_size=smaller), f"patch batch {settings.sw_batch_size} -> {smaller}"
    depth, height, width = settings.roi_size
    if max(height, width) > MIN_INPLANE_ROI:
        roi = (depth, min(height, max(MIN_INPLANE_ROI, height // 2)), min(width, max(MIN_INPLANE_ROI, width // 2)))
        return replace(settings, roi_size=roi), f"patch {settings.roi_size} -> {roi}"
    if depth > MIN_DEPTH_ROI:
        roi = (max(MIN_DEPTH_ROI, depth // 2), height, width)
        return replace(settings, roi_size=roi), f"patch {settings.roi_size} -> {roi}"
    if settings.device.type == "cuda":
        start = original if original is not None else settings
        return replace(start, device=torch.device("cpu")), (
            f"device cuda -> cpu (patch {start.roi_size}, batch {start.sw_batch_size})")
    return None


def run_with_backoff(run, settings: RunSettings, events: list[str]):
    """Call ``run(settings)``; on out-of-memory retry with cheaper settings, logging each step.

    ``events`` receives one human-readable line per back-off step (shown to users).
    """
    original = settings
    while True:
        try:
            return run(settings), settings
        except Exception as exc:  # noqa: BLE001 - only out-of-memory is handled, the rest re-raised
            if not is_out_of_memory(exc):
                raise
            failure = exc
        release_cached_memory(settings.device)  # outside the except: the traceback no longer pins tensors
        step = next_settings(settings, original)
        if step is None:
            raise DeviceError(rule_message("memory", "must hold one patch of the smallest size on the CPU",
                                           settings.roi_size, "Close other programs or use a machine with more RAM.")) from failure
        settings, message = step
        line = f"out of memory: retrying with {message}"
        logger.warning(line)
        events.append(line)
