"""Structured progress for long inference runs (CLI bar, JSON lines for Slicer)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from typing import Callable


@dataclass(frozen=True)
class ProgressEvent:
    """One progress report: patch i of N, TTA pass k of K within that patch, timing."""

    stage: str
    patch: int
    patches: int
    tta: int
    tta_total: int
    elapsed_s: float
    eta_s: float | None

    @property
    def fraction(self) -> float:
        if self.patches == 0:
            return 1.0
        return ((self.patch - 1) + self.tta / max(self.tta_total, 1)) / self.patches

    def to_dict(self) -> dict:
        return {"event": "progress", **asdict(self), "fraction": round(self.fraction, 4)}


ProgressCallback = Callable[[ProgressEvent], None]
StopCallback = Callable[[], bool]


class ProgressClock:
    """Turns (patch, tta) counters into ProgressEvents with elapsed time and ETA."""

    def __init__(self, stage: str, patches: int, tta_total: int, callback: ProgressCallback | None) -> None:
        self.stage, self.patches, self.tta_total, self.callback = stage, patches, tta_total, callback
        self.started = time.perf_counter()

    def report(self, patch: int, tta: int) -> None:
        if self.callback is None:
            return
        elapsed = time.perf_counter() - self.started
        event = ProgressEvent(self.stage, patch, self.patches, tta, self.tta_total, round(elapsed, 3), None)
        done = event.fraction
        eta = round(elapsed * (1 - done) / done, 3) if done > 0 else None
        self.callback(replace(event, eta_s=eta))
