"""Patch-wise inference: sliding window + Gaussian blending, flip TTA, MC dropout, OOM back-off."""

from .progress import ProgressEvent
from .sliding_window import sliding_window_moments
from .tta import flip_set

__all__ = ["ProgressEvent", "flip_set", "sliding_window_moments"]
