"""Out-of-memory back-off: smaller batch, then smaller patch, then the CPU."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import torch

from ..errors import DeviceError, rule_message
from .device import is_out_of_memory, release_cached_memory

logger = logging.getLogger(__name__)

MIN_INPLANE_ROI = 32


@dataclass(frozen=True)
class RunSettings:
    """The knobs back-off may turn."""

    sw_batch_size: int
    roi_size: tuple[int, int, int]
    device: torch.device


def next_settings(settings: RunSettings) -> tuple[RunSettings, str] | None:
    """The next, cheaper settings and a sentence saying what changed; None when nothing is left."""
    if settings.sw_batch_size > 1:
        smaller = max(1, settings.sw_batch_size // 2)
        return replace(settings, sw_batch_size=smaller), f"patch batch {settings.sw_batch_size} -> {smaller}"
    depth, height, width = settings.roi_size
    if max(height, width) > MIN_INPLANE_ROI:
        roi = (depth, max(MIN_INPLANE_ROI, height // 2), max(MIN_INPLANE_ROI, width // 2))
        return replace(settings, roi_size=roi), f"patch {settings.roi_size} -> {roi}"
    if settings.device.type == "cuda":
        return replace(settings, device=torch.device("cpu")), "device cuda -> cpu"
    return None


def run_with_backoff(run, settings: RunSettings, events: list[str]):
    """Call ``run(settings)``; on out-of-memory retry with cheaper settings, logging each step.

    ``events`` receives one human-readable line per back-off step (shown to users).
    """
    while True:
        try:
            return run(settings), settings
        except Exception as exc:  # noqa: BLE001 - only out-of-memory is handled, the rest re-raised
            if not is_out_of_memory(exc):
                raise
            release_cached_memory(settings.device)
            step = next_settings(settings)
            if step is None:
                raise DeviceError(rule_message("memory", "must hold one patch of the smallest size on the CPU",
                                               settings.roi_size, "Close other programs or use a machine with more RAM.")) from exc
            settings, message = step
            line = f"out of memory: retrying with {message}"
            logger.warning(line)
            events.append(line)
