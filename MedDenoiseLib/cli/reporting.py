"""Progress output for the CLI: a tqdm bar with ETA, or JSON lines for the Slicer worker."""

from __future__ import annotations

import json
import signal
import sys
import threading

from tqdm import tqdm

from ..inference.progress import ProgressEvent


class BarProgress:
    """tqdm bar over all (patch, TTA view) steps."""

    def __init__(self) -> None:
        self.bar: tqdm | None = None

    def __call__(self, event: ProgressEvent) -> None:
        total = event.patches * event.tta_total
        if self.bar is None or self.bar.total != total:
            self.close()
            self.bar = tqdm(total=total, desc=event.stage, unit="view", file=sys.stderr, dynamic_ncols=True)
        self.bar.n = (event.patch - 1) * event.tta_total + event.tta
        self.bar.set_postfix_str(f"patch {event.patch}/{event.patches} tta {event.tta}/{event.tta_total}", refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class JsonProgress:
    """One flushed JSON object per line on stdout (parsed by the Slicer module)."""

    def __call__(self, event: ProgressEvent) -> None:
        emit_json(event.to_dict())

    def close(self) -> None:
        pass


def emit_json(payload: dict) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


def make_progress(kind: str):
    return JsonProgress() if kind == "json" else BarProgress() if kind == "bar" else None


class StopFlag:
    """Set by SIGINT/SIGTERM while active; polled by the engine between patch batches.

    Use as a context manager: the previous signal handlers come back on exit (only
    installed from the main thread; elsewhere the flag is simply never set by signals).
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.event = threading.Event()
        self._previous: dict = {}

    def __enter__(self) -> "StopFlag":
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, lambda *_: self.event.set())
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def __call__(self) -> bool:
        return self.event.is_set()
