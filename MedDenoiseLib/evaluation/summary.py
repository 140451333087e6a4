"""Aggregate per-case records: mean ± SD tables, paired comparisons with Holm, timing.

Records are dicts with ``case``, ``level``, ``method`` and one key per metric. Comparisons
pair the reference method with each other method case by case at each noise level; the
family corrected by Holm-Bonferroni is one metric (all levels x all other methods).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..metrics.stats import compare_paired, holm_bonferroni

__all__ = ["METRICS", "HIGHER_IS_BETTER", "summarize", "compare_methods", "paired_row", "timing_table", "with_holm"]

METRICS = ("psnr", "ssim", "rmse", "mae", "dice")
HIGHER_IS_BETTER = {"psnr": True, "ssim": True, "rmse": False, "mae": False, "dice": True}


def _scores(records: list[dict], method: str, level: float, metric: str) -> dict[str, float]:
    return {r["case"]: r[metric] for r in records
            if r["method"] == method and r["level"] == level and r.get(metric) is not None}


def summarize(records: list[dict], methods: Sequence[str], levels: Sequence[float]) -> list[dict]:
    """Mean, SD (ddof = 1; NaN for one case) and n per (metric, level, method), finite values only."""
    rows = []
    for metric in METRICS:
        for level in levels:
            for method in methods:
                values = np.array([v for v in _scores(records, method, level, metric).values()
                                   if v is not None and math.isfinite(v)], dtype=np.float64)
                rows.append({"metric": metric, "level": level, "method": method, "n": int(values.size),
                             "mean": float(values.mean()) if values.size else math.nan,
                             "sd": float(values.std(ddof=1)) if values.size > 1 else math.nan})
    return rows


def compare_methods(records: list[dict], reference: str, methods: Sequence[str], levels: Sequence[float], *,
                    seed: int, n_resamples: int = 9999) -> list[dict]:
    """Reference minus each other method, per metric and level, with Holm-adjusted p-values."""
    rows = []
    for metric in METRICS:
        family = []
        for level in levels:
            ref = _scores(records, reference, level, metric)
            for other in methods:
                if other == reference:
                    continue
                family.append({"metric": metric, "level": level, "reference": reference, "other": other,
                               "higher_is_better": HIGHER_IS_BETTER[metric],
                               **paired_row(ref, _scores(records, other, level, metric), seed=seed,
                                            n_resamples=n_resamples)})
        rows.extend(with_holm(family))
    return rows


def paired_row(reference: dict[str, float], other: dict[str, float], *, seed: int, n_resamples: int = 9999) -> dict:
    """``reference`` minus ``other`` over the cases both scored finitely (case name -> score): n, Δ, CI, test, p."""
    common = [c for c in reference if c in other and math.isfinite(reference[c]) and math.isfinite(other[c])]
    if not common:
        return {"n": 0, "mean_diff": math.nan, "p_value": math.nan, "test": "none: no paired cases"}
    result = compare_paired([reference[c] for c in common], [other[c] for c in common], seed=seed,
                            n_resamples=n_resamples)
    return {"n": len(common), **result.to_dict()}


def with_holm(family: list[dict]) -> list[dict]:
    """The rows of one family of tests, each given ``p_holm`` (Holm-Bonferroni over the family's ``p_value``)."""
    for row, p in zip(family, holm_bonferroni([r.get("p_value", math.nan) for r in family])):
        row["p_holm"] = p
    return family


def timing_table(records: list[dict], methods: Sequence[str]) -> list[dict]:
    """Seconds per image (mean ± SD over cases and levels) and voxels per second, per method."""
    rows = []
    for method in methods:
        sel = [r for r in records if r["method"] == method]
        seconds = np.array([r["seconds"] for r in sel], dtype=np.float64)
        voxels = np.array([r["voxels"] for r in sel], dtype=np.float64)
        total = float(seconds.sum())
        rows.append({"method": method, "runs": len(sel), "mean_seconds": float(seconds.mean()) if sel else math.nan,
                     "sd_seconds": float(seconds.std(ddof=1)) if len(sel) > 1 else math.nan,
                     "voxels_per_s": float(voxels.sum() / total) if total > 0 else math.nan})
    return rows
