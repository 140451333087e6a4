"""Wall time, throughput and peak memory of classical baselines on one volume (for ``meddenoise benchmark``).

``meddenoise benchmark`` times the model on synthetic phantoms; :func:`time_baselines` times the
baselines on the *same* array so the two sit side by side in its JSON. Peak memory is the
process's peak resident set size after the call (``ru_maxrss``: monotone, so it shows the
largest footprint so far, as the model rows do); baselines run on the CPU.
"""

from __future__ import annotations

import logging
import resource
import time

import numpy as np

from ..baselines import estimate_noise_sigma, get_baseline

logger = logging.getLogger(__name__)

__all__ = ["time_baselines"]


def time_baselines(array: np.ndarray, methods: list[str], *, sigma: float | None = None,
                   params: dict[str, dict] | None = None) -> list[dict]:
    """Time each baseline once on ``array`` ((D, H, W) float); returns one JSON-ready dict per method.

    ``sigma`` None: estimated once (not timed) and shared by every method, as in ``evaluate``.

    Examples
    --------
    >>> rows = time_baselines(np.zeros((4, 16, 16), np.float32), ["median"], sigma=0.1)
    >>> rows[0]["method"], rows[0]["device"]
    ('median', 'cpu')
    """
    specs = [get_baseline(m) for m in methods]  # unknown names fail before any work
    level = estimate_noise_sigma(array) if sigma is None else float(sigma)
    voxels = int(np.asarray(array).size)
    rows = []
    for spec in specs:
        started = time.perf_counter()
        spec.function(array, sigma=level if spec.uses_sigma else None, **(params or {}).get(spec.name, {}))
        seconds = time.perf_counter() - started
        rows.append({"method": spec.name, "library": spec.library, "size_xyz": list(reversed(np.shape(array))),
                     "device": "cpu", "seconds": round(seconds, 3),
                     "voxels_per_s": round(voxels / seconds) if seconds > 0 else None,
                     "process_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)})
        logger.info("baseline %s: %.3f s", spec.name, seconds)
    return rows
