"""Per-method fidelity summary over cases and a plain-language verdict with pass/fail lines.

Fail lines (the issue's thresholds, :class:`FidelityThresholds`): |HU bias| > 2 HU (CT) or
|intensity bias| > 1 % of the signal (other modalities: MedDenoise's choice, the issue sets
only the CT one); |NPS mean-frequency shift| > 10 %; TTF50 < 90 % of the noisy input's;
any lesion whose d′ fell below the noisy input's; fewer than 80 % of voxels within 2 std
of the error. Clean in -> clean out, segmentation Dice and the edge residual are reported
as information, without a threshold.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

__all__ = ["FidelityThresholds", "Verdict", "SUMMARY_KEYS", "summarize_fidelity", "verdict"]

SUMMARY_KEYS = ("clean_in_psnr", "bias_value", "bias_roi_max_abs", "noise_std", "nps_peak", "nps_mean", "nps_shift",
                "ttf50", "ttf50_ratio", "cnr_mean", "dprime_mean", "signal_kept_mean", "edge_rms",
                "hallucination_ratio", "dice", "dice_noisy", "dice_gain", "calibration_coverage",
                "calibration_spearman", "calibration_spearman_empirical")


@dataclass(frozen=True)
class FidelityThresholds:
    """Where a verdict line turns into a failure."""

    max_bias_hu: float = 2.0
    max_bias_percent: float = 1.0
    max_nps_shift: float = 0.10
    min_ttf50_ratio: float = 0.90
    min_calibration: float = 0.80
    lesion_dprime_tolerance: float = 0.0
    """A lesion is lost when its d′ < (1 - tolerance) · the noisy input's (issue: 0)."""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Verdict:
    """Plain-language lines for one method; ``failures`` repeats the lines that fail a threshold."""

    method: str
    lines: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def add(self, text: str, *, failed: bool = False) -> None:
        self.lines.append(text)
        if failed:
            self.failures.append(text)

    def to_dict(self) -> dict:
        return asdict(self)


def _mean(values: list) -> float:
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return float(np.mean(finite)) if finite else math.nan


def summarize_fidelity(records: list[dict]) -> list[dict]:
    """One row per method (first-seen order): mean of each scalar over cases, lesion counts summed.

    Examples
    --------
    >>> rows = summarize_fidelity([{"method": "a", "bias_value": 1.0, "lesions_lost": 1, "lesions_total": 2},
    ...                            {"method": "a", "bias_value": 3.0, "lesions_lost": 0, "lesions_total": 2}])
    >>> rows[0]["bias_value"], rows[0]["lesions_lost"], rows[0]["lesions_total"], rows[0]["n_cases"]
    (2.0, 1, 4, 2)
    """
    methods = list(dict.fromkeys(r["method"] for r in records))
    rows = []
    for method in methods:
        mine = [r for r in records if r["method"] == method]
        row = {"method": method, "n_cases": len(mine), **{k: _mean([r.get(k) for r in mine]) for k in SUMMARY_KEYS}}
        row["lesions_lost"] = int(sum(r.get("lesions_lost", 0) for r in mine))
        row["lesions_total"] = int(sum(r.get("lesions_total", 0) for r in mine))
        row["bias_unit"] = mine[0].get("bias_unit", "")
        row["calibration_source"] = next((r.get("calibration_source") for r in mine if r.get("calibration_source")),
                                         None)
        rows.append(row)
    return rows


def _texture(v: Verdict, shift: float, t: FidelityThresholds) -> None:
    if math.isnan(shift):
        v.add("texture n/a (no NPS)")
    elif abs(shift) <= t.max_nps_shift:
        v.add(f"texture kept (NPS mean frequency {shift * 100:+.0f} %)")
    else:
        word = "smoothed" if shift < 0 else "sharpened"
        v.add(f"texture {word} (NPS mean frequency {shift * 100:+.0f} %)", failed=True)


def _bias(v: Verdict, value: float, unit: str, t: FidelityThresholds) -> None:
    name, limit, digits = ("HU", t.max_bias_hu, 1) if unit == "HU" else ("intensity", t.max_bias_percent, 2)
    text = f"{value:+.{digits}f} {unit}"
    if math.isnan(value):
        v.add(f"{name} bias n/a")
    elif abs(value) <= limit:
        v.add(f"{name} unbiased ({text})")
    else:
        v.add(f"{name} biased by {text}", failed=True)


def _edges(v: Verdict, ratio: float, t: FidelityThresholds) -> None:
    if math.isnan(ratio):
        v.add("edges n/a (no TTF)")
    elif ratio >= t.min_ttf50_ratio:
        v.add(f"edges kept (TTF50 {ratio * 100:.0f} % of input)")
    else:
        v.add(f"edges blurred (TTF50 {ratio * 100:.0f} % of input)", failed=True)


def _lesions(v: Verdict, lost: int, total: int) -> None:
    if total == 0:
        v.add("lesions n/a (none placed)")
    elif lost == 0:
        v.add(f"lesions kept ({total} of {total})")
    else:
        v.add(f"lesions lost {lost} of {total} (d′ below the noisy input's)", failed=True)


def _calibration(v: Verdict, coverage: float, source: str | None, t: FidelityThresholds) -> None:
    if math.isnan(coverage):
        v.add("calibration n/a (no uncertainty map)")
        return
    text = f"calibration {coverage * 100:.0f} % within 2 std ({source or 'uncertainty map'})"
    if coverage >= t.min_calibration:
        v.add(text)
    else:
        v.add(f"{text}, below {t.min_calibration * 100:.0f} %", failed=True)


def verdict(row: dict, *, thresholds: FidelityThresholds | None = None) -> Verdict:
    """Verdict lines for one :func:`summarize_fidelity` row.

    Examples
    --------
    >>> row = {"method": "m", "nps_shift": -0.3, "bias_value": 0.5, "bias_unit": "HU", "ttf50_ratio": 0.95,
    ...        "lesions_lost": 0, "lesions_total": 4, "calibration_coverage": math.nan}
    >>> verdict(row).failures
    ['texture smoothed (NPS mean frequency -30 %)']
    """
    t = thresholds or FidelityThresholds()
    v = Verdict(row["method"])
    _texture(v, row.get("nps_shift", math.nan), t)
    _bias(v, row.get("bias_value", math.nan), row.get("bias_unit", "HU"), t)
    _edges(v, row.get("ttf50_ratio", math.nan), t)
    _lesions(v, row.get("lesions_lost", 0), row.get("lesions_total", 0))
    _calibration(v, row.get("calibration_coverage", math.nan), row.get("calibration_source"), t)
    if math.isfinite(row.get("clean_in_psnr", math.nan)):
        v.add(f"clean in → clean out {row['clean_in_psnr']:.1f} dB")
    if math.isfinite(row.get("dice", math.nan)):
        v.add(f"tissue Dice {row['dice']:.3f} (noisy {row['dice_noisy']:.3f})")
    if math.isfinite(row.get("hallucination_ratio", math.nan)):
        v.add(f"edge residual {row['hallucination_ratio']:.2f}× the input's")
    return v
