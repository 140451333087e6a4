"""Every fidelity metric of one case, for the noisy input and for each method, and the comparisons with the input.

A method contributes up to three runs (:class:`MethodRuns`): its output on the noisy
image, on the clean image (clean in -> clean out) and on the noisy image with the phantom's
inserts (TTF disc, lesions; same noise draw). The noisy input is scored as a method whose
runs are the images themselves. When the two noisy images do not share their noise draws
(:func:`noise_is_paired`), insert responses are taken against the clean image instead of
the output without inserts. Relative metrics compare each method with it: NPS mean
frequency shift, TTF50 ratio, and per lesion whether d′ fell below the input's ("lost").
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from .bias import intensity_bias
from .calibration import uncertainty_calibration
from .hallucination import structured_residual
from .identity import clean_in_clean_out
from .lesions import lesion_scores
from .nps import noise_power_spectrum
from .phantom import FidelityPhantom
from .segmentation import segmentation_fidelity
from .ttf import task_transfer_function

logger = logging.getLogger(__name__)

__all__ = ["MethodRuns", "CaseFidelity", "noise_is_paired", "score_method", "compare_to_noisy", "score_case"]


@dataclass
class MethodRuns:
    """One method's outputs on one case; ``std`` is its uncertainty map (models only)."""

    output: np.ndarray
    on_clean: np.ndarray | None = None
    on_inserted: np.ndarray | None = None
    std: np.ndarray | None = None
    std_source: str | None = None
    empirical_std: np.ndarray | None = None
    """Per-voxel RMS error over other noise draws (:func:`~.calibration.empirical_error_std`), when measured."""


@dataclass
class CaseFidelity:
    """Per-method scalar records and curves of one case, the clean disc's TTF, the phantom and the pairing."""

    records: list[dict]
    curves: dict[str, dict]
    clean_ttf: dict | None
    phantom: dict = field(default_factory=dict)
    paired_noise: bool = True


def noise_is_paired(clean: np.ndarray, noisy: np.ndarray, inserted: np.ndarray, noisy_inserted: np.ndarray, *,
                    tolerance: float = 0.01) -> bool:
    """Whether the two noisy images carry the same noise away from the inserts.

    True when the RMS of (noisy_inserted - inserted) - (noisy - clean) outside the inserts is
    at most ``tolerance`` times the noise standard deviation: additive, Rician, speckle and
    image-domain CT noise drawn from the same seed pass; Poisson draws (projection-domain
    CT, X-ray) change with the mean and do not.

    Examples
    --------
    >>> clean = np.zeros((1, 8, 8)); inserted = clean.copy(); inserted[0, 2, 2] = 5.0
    >>> noise = np.random.default_rng(0).normal(size=clean.shape)
    >>> noise_is_paired(clean, clean + noise, inserted, inserted + noise), noise_is_paired(
    ...     clean, clean + noise, inserted, inserted + noise[:, ::-1])
    (True, False)
    """
    scale = max(1.0, float(np.abs(clean).max()))
    outside = np.abs(inserted.astype(np.float64) - clean) <= 1e-6 * scale
    noise = (noisy.astype(np.float64) - clean)[outside]
    if noise.size == 0 or noise.std() == 0:
        return bool(noise.size)
    residual = (noisy_inserted.astype(np.float64) - inserted)[outside] - noise
    return bool(np.sqrt(np.mean(residual ** 2)) <= tolerance * noise.std())


def _noise_metrics(clean, runs: MethodRuns, phantom: FidelityPhantom, modality: str) -> tuple[dict, dict]:
    bias = intensity_bias(clean, runs.output, phantom.rois, modality=modality)
    nps = noise_power_spectrum(runs.output - clean, phantom.rois, spacing_zyx=phantom.spacing_zyx)
    record = {"bias": bias["bias"], "bias_percent": bias["bias_percent"], "bias_value": bias["value"],
              "bias_unit": bias["unit"], "bias_roi_max_abs": bias["roi_max_abs"], "nps_peak": nps.peak_frequency,
              "nps_mean": nps.mean_frequency, "noise_std": math.sqrt(nps.variance)}
    return record, {"nps": {"frequency": nps.frequency.tolist(), "nps": nps.nps.tolist()}}


def _ttf(difference: np.ndarray, phantom: FidelityPhantom) -> dict | None:
    if phantom.disc is None:
        return None
    try:
        return task_transfer_function(difference, phantom.disc, spacing_zyx=phantom.spacing_zyx).to_dict()
    except InputError as exc:
        logger.warning("TTF not measured: %s", exc)
        return None


def _insert_metrics(clean, runs: MethodRuns, phantom: FidelityPhantom, paired: bool) -> tuple[dict, dict]:
    if runs.on_inserted is None:
        return {"ttf50": math.nan, "ttf50_capped": None, "lesions": []}, {}
    base = runs.output if paired else clean
    ttf = _ttf(runs.on_inserted - base, phantom)
    lesions = [{"index": k, **lesion_scores(lesion, clean=clean, output=runs.output, output_inserted=runs.on_inserted,
                                            rois=phantom.rois, spacing_zyx=phantom.spacing_zyx, baseline=base)}
               for k, lesion in enumerate(phantom.lesions)]
    record = {"ttf50": ttf["ttf50"] if ttf else math.nan, "ttf50_capped": ttf["capped"] if ttf else None,
              "lesions": lesions}
    curves = {"ttf": {"frequency": ttf["frequency"], "ttf": ttf["ttf"]}} if ttf else {}
    return record, curves


def _calibration(clean, runs: MethodRuns) -> tuple[dict, dict]:
    if runs.std is None:
        return {"calibration_coverage": math.nan, "calibration_spearman": math.nan,
                "calibration_spearman_empirical": math.nan, "calibration_source": None}, {}
    cal = uncertainty_calibration(clean, runs.output, runs.std, empirical_std=runs.empirical_std)
    return ({"calibration_coverage": cal["coverage"], "calibration_spearman": cal["spearman"],
             "calibration_spearman_empirical": cal.get("spearman_empirical", math.nan),
             "calibration_source": runs.std_source}, {"reliability": cal["bins"]})


def score_method(clean: np.ndarray, noisy: np.ndarray, runs: MethodRuns, phantom: FidelityPhantom, *,
                 modality: str, n_classes: int = 3, seg_method: str = "otsu",
                 paired: bool = True) -> tuple[dict, dict]:
    """Absolute fidelity metrics of one method on one case: (scalar record, curves).

    ``paired`` (:func:`noise_is_paired`): the insert response is output with inserts minus
    output without; when False, minus the clean image.

    Record keys: ``clean_in_psnr``, ``bias`` / ``bias_percent`` / ``bias_value`` / ``bias_unit``,
    ``nps_peak`` / ``nps_mean`` (cycles/mm), ``noise_std``, ``ttf50`` (cycles/mm),
    ``lesions`` (per lesion ``cnr``, ``dprime``, ``signal_kept``), ``edge_rms`` /
    ``hallucination_ratio``, ``dice`` / ``dice_noisy`` / ``dice_gain``, ``calibration_*`` (with
    ``runs.empirical_std``, ``calibration_spearman_empirical``: the Spearman ρ that std reaches).
    Curves: ``nps``, ``ttf`` and ``reliability`` where measured.
    """
    record, curves = _noise_metrics(clean, runs, phantom, modality)
    record["clean_in_psnr"] = clean_in_clean_out(clean, runs.on_clean) if runs.on_clean is not None else math.nan
    for part in (_insert_metrics(clean, runs, phantom, paired), _calibration(clean, runs)):
        record.update(part[0])
        curves.update(part[1])
    edges = structured_residual(clean, noisy, runs.output)
    record.update(edge_rms=edges["edge_rms"], hallucination_ratio=edges["ratio"])
    seg = segmentation_fidelity(clean, noisy, runs.output, n_classes=n_classes, method=seg_method)
    record.update(dice=seg["dice"], dice_noisy=seg["dice_noisy"], dice_gain=seg["gain"])
    return record, curves


def _ratio(value: float, reference: float) -> float:
    return value / reference if math.isfinite(value) and math.isfinite(reference) and reference > 0 else math.nan


def compare_to_noisy(record: dict, noisy: dict, *, dprime_tolerance: float = 0.0) -> dict:
    """``record`` plus ``nps_shift``, ``ttf50_ratio``, per-lesion ``dprime_noisy`` / ``lost`` and the counts.

    A lesion is lost when d′ < (1 - ``dprime_tolerance``) · d′ of the noisy input (the issue's
    rule is tolerance 0: any drop counts).

    Examples
    --------
    >>> out = compare_to_noisy({"nps_mean": 0.18, "ttf50": 0.27, "lesions": [{"dprime": 2.0}]},
    ...                        {"nps_mean": 0.2, "ttf50": 0.3, "lesions": [{"dprime": 3.0}]})
    >>> round(out["nps_shift"], 3), round(out["ttf50_ratio"], 3), out["lesions_lost"], out["lesions_total"]
    (-0.1, 0.9, 1, 1)
    """
    out = dict(record)
    out["nps_shift"] = _ratio(record["nps_mean"], noisy["nps_mean"]) - 1.0
    out["ttf50_ratio"] = _ratio(record["ttf50"], noisy["ttf50"])
    lesions = []
    for mine, theirs in zip(record["lesions"], noisy["lesions"]):
        d, d0 = mine["dprime"], theirs["dprime"]
        lost = None if math.isnan(d) or math.isnan(d0) else bool(d < (1.0 - dprime_tolerance) * d0)
        lesions.append({**mine, "dprime_noisy": d0, "cnr_noisy": theirs.get("cnr"), "lost": lost})
    out["lesions"] = lesions
    judged = [les for les in lesions if les["lost"] is not None]
    out["lesions_total"] = len(judged)
    out["lesions_lost"] = sum(les["lost"] for les in judged)
    for key in ("cnr", "dprime", "signal_kept"):
        values = [les[key] for les in lesions if math.isfinite(les.get(key, math.nan))]
        out[f"{key}_mean"] = float(np.mean(values)) if values else math.nan
    return out


def score_case(clean: np.ndarray, noisy: np.ndarray, noisy_inserted: np.ndarray | None, phantom: FidelityPhantom,
               methods: dict[str, MethodRuns], *, modality: str, n_classes: int = 3, seg_method: str = "otsu",
               dprime_tolerance: float = 0.0) -> CaseFidelity:
    """Score the noisy input and every method of ``methods`` (a method named ``noisy`` is the input itself).

    Returns a :class:`CaseFidelity` whose records carry a ``method`` key, ``noisy`` first;
    ``dprime_tolerance`` goes to :func:`compare_to_noisy`.
    """
    paired = noisy_inserted is None or noise_is_paired(clean, noisy, phantom.inserted, noisy_inserted)
    if not paired:
        logger.warning("noise of the phantom copy is not paired with the noisy image: inserts measured against clean")
    options = {"modality": modality, "n_classes": n_classes, "seg_method": seg_method, "paired": paired}
    base = MethodRuns(noisy, clean, noisy_inserted)
    noisy_record, noisy_curves = score_method(clean, noisy, base, phantom, **options)
    records = [{"method": "noisy", **compare_to_noisy(noisy_record, noisy_record)}]
    curves = {"noisy": noisy_curves}
    for name, runs in methods.items():
        if name == "noisy":
            continue
        record, curves[name] = score_method(clean, noisy, runs, phantom, **options)
        records.append({"method": name, **compare_to_noisy(record, noisy_record, dprime_tolerance=dprime_tolerance)})
    clean_ttf = _ttf(phantom.inserted.astype(np.float64) - clean, phantom) if noisy_inserted is not None else None
    return CaseFidelity(records, curves, clean_ttf, phantom.to_dict(), paired)
