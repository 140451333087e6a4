"""Scoring denoisers on real noise, without a clean image, from two repeated acquisitions.

For two acquisitions y1 = x + n1 and y2 = x + n2 of the same anatomy with independent,
zero-mean noise of std σ, ``mean((f(y1) - y2)²) - σ²`` is an unbiased estimate of the error
``mean((f(y1) - x)²)`` to the unknown clean image x (:mod:`MedDenoiseLib.metrics.realnoise`).
Each method denoises both acquisitions; a pair's score is the mean of the two directions
(f(y1) against y2, f(y2) against y1), so both images count once. With ``mask="foreground"``
each direction is scored on the foreground of the image it denoised: a mask drawn from the
mean image would depend on the noise of the image scored against and bias the estimate.
σ is estimated from the pair itself, ``std(y1 - y2) / √2``. With three or more pairs,
methods are compared pair by pair on the MSE estimate (paired test, Holm over all
comparisons, Cohen's d, bootstrap CI); no pair is dropped for an estimate ≤ 0.

The estimate assumes the two noise realisations are independent and the anatomy did not move
between them; ultrasound speckle and cine frames violate this, so they are not valid pairs.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np

from ..baselines import estimate_noise_sigma
from ..errors import CancelledError, InputError, rule_message
from ..io import as_float, read_region
from ..metrics.realnoise import noise_sigma_from_pairs, paired_acquisition_mse
from ..metrics.segmentation import tissue_classes
from ..volume import Geometry
from .cases import case_name
from .methods import build_methods
from .report import fmt_p, json_ready
from .summary import paired_row, with_holm

logger = logging.getLogger(__name__)

__all__ = ["AcquisitionPair", "load_pairs", "evaluate_real_noise", "write_real_noise_report"]

GEOMETRY_TOLERANCE = 1e-4  # mm / direction cosine: repeats reconstructed on one grid agree far better


@dataclass
class AcquisitionPair:
    """Two repeated acquisitions (float32, (z, y, x)) on one voxel grid."""

    name: str
    paths: tuple[str, str]
    first: np.ndarray
    second: np.ndarray
    geometry: Geometry

    def describe(self) -> dict:
        return {"name": self.name, "paths": list(self.paths), "shape_zyx": list(self.first.shape),
                "spacing_xyz": list(self.geometry.spacing)}


def _same_grid(a: Geometry, b: Geometry) -> bool:
    return all(np.allclose(getattr(a, k), getattr(b, k), atol=GEOMETRY_TOLERANCE, rtol=0)
               for k in ("spacing", "origin", "direction"))


def load_pairs(pairs: list[tuple[str, str]]) -> list[AcquisitionPair]:
    """Read each (first, second) entry; both must lie on the same voxel grid and differ somewhere."""
    loaded = []
    for first_entry, second_entry in pairs:
        first, second = read_region(first_entry), read_region(second_entry)
        name = f"{case_name(first_entry)}+{case_name(second_entry)}"
        if first.array.shape != second.array.shape or not _same_grid(first.geometry, second.geometry):
            raise InputError(rule_message(
                f"--pairs {name}", "must be two acquisitions on the same voxel grid (shape, spacing, origin, "
                "direction)", {"shapes": [first.array.shape, second.array.shape]},
                "Resample the second onto the first (e.g. in Slicer: Resample Scalar/Vector/DWI Volume) first."))
        a, b = as_float(first), as_float(second)
        if float(np.std(a - b)) == 0.0:
            raise InputError(rule_message(f"--pairs {name}", "must differ by noise (these two differ at most by "
                                          "a constant)", "std(first - second) = 0",
                                          "Pass two separate acquisitions of the same anatomy."))
        loaded.append(AcquisitionPair(name, (first_entry, second_entry), a, b, first.geometry))
    names = [p.name for p in loaded]
    if len(set(names)) != len(names):
        raise InputError(rule_message("--pairs", "must not repeat a pair", names, "Drop the duplicate."))
    return loaded


@dataclass
class _PairSetup:
    """What scoring one pair needs: a mask per direction (each from the image denoised in that direction,
    so it never depends on the noise of the image it is scored against), the pair's noise std, the range."""

    masks: tuple[np.ndarray | None, np.ndarray | None]
    sigma: float
    data_range: float


def _foreground(image: np.ndarray) -> np.ndarray:
    return tissue_classes(image, n_classes=2) > 0


def _setup(pair: AcquisitionPair, mask: str) -> _PairSetup:
    mean_image = 0.5 * (pair.first + pair.second)
    masks = (_foreground(pair.first), _foreground(pair.second)) if mask == "foreground" else (None, None)
    counted = [int(m.sum()) for m in masks if m is not None]
    if counted and min(counted) < 2:
        raise InputError(rule_message(f"--mask foreground of pair {pair.name}", "must hold at least 2 voxels",
                                      counted, "Use --mask none, or check that the images are not empty."))
    data_range = float(mean_image.max() - mean_image.min())
    if not math.isfinite(data_range) or data_range <= 0:
        raise InputError(rule_message(f"data range of pair {pair.name}", "must be finite and > 0", data_range,
                                      "Pass images with finite, non-constant voxels."))
    sigma = noise_sigma_from_pairs(pair.first, pair.second, mask=_foreground(mean_image) if mask == "foreground"
                                   else None)
    return _PairSetup(masks, sigma, data_range)


def _score_method(method, pair: AcquisitionPair, setup: _PairSetup, *, sigma_given: float) -> dict:
    """Both directions: f(y1) against y2 on y1's mask, f(y2) against y1 on y2's mask; their mean."""
    errors, seconds = [], 0.0
    for source, other, sel in ((pair.first, pair.second, setup.masks[0]), (pair.second, pair.first, setup.masks[1])):
        out = method.run(source, sigma=sigma_given, geometry=pair.geometry)
        errors.append(paired_acquisition_mse(out.denoised, other, sigma=setup.sigma, mask=sel))
        seconds += out.seconds
    mse = float(np.mean(errors))
    scored = sum(int(m.sum()) if m is not None else pair.first.size for m in setup.masks)
    return {"case": pair.name, "method": method.name, "mse_estimate": mse, "psnr_estimate": _psnr(mse, setup),
            "mse_directions": errors, "seconds": round(seconds, 4), "voxels": int(2 * pair.first.size),
            "voxels_scored": scored}


def _psnr(mse: float, setup: _PairSetup) -> float:
    return math.inf if mse <= 0 else 10.0 * math.log10(setup.data_range**2 / mse)


def _compare(records: list[dict], names: list[str], reference: str, seed: int, n_resamples: int) -> list[dict]:
    """Paired tests on the MSE estimate (unbiased, may be <= 0: no pair is dropped). Δ = reference − other."""
    def scores(method: str) -> dict[str, float]:
        return {r["case"]: r["mse_estimate"] for r in records if r["method"] == method}

    return with_holm([{"metric": "mse_estimate", "reference": reference, "other": other,
                       **paired_row(scores(reference), scores(other), seed=seed, n_resamples=n_resamples)}
                      for other in names if other != reference])


def _summary(records: list[dict], names: list[str]) -> list[dict]:
    """Per method: mean ± SD of the MSE estimate over pairs and the PSNR of that mean (every pair counts)."""
    rows = []
    for name in names:
        mine = [r for r in records if r["method"] == name]
        values = np.array([r["mse_estimate"] for r in mine], dtype=np.float64)
        mean = float(values.mean()) if values.size else math.nan
        ranges = np.array([r["data_range"] for r in mine], dtype=np.float64)
        psnr = math.inf if mean <= 0 else float(10.0 * math.log10(float(np.mean(ranges**2)) / mean))
        rows.append({"method": name, "n": int(values.size), "mse_mean": mean,
                     "mse_sd": float(values.std(ddof=1)) if values.size > 1 else math.nan, "psnr_of_mean_mse": psnr,
                     "pairs_with_mse_at_most_0": int(np.sum(values <= 0))})
    return rows


def evaluate_real_noise(pairs: list[AcquisitionPair], methods: list[str], modality: str, *, tta: int = 8,
                        device: str = "cpu", mask: str = "foreground", sigma: str = "estimate", seed: int = 0,
                        reference: str | None = None, baseline_params: dict | None = None, n_resamples: int = 9999,
                        progress: Callable[[int, int, str], None] | None = None,
                        should_stop: Callable[[], bool] | None = None) -> dict:
    """Every method on every pair: estimated MSE/PSNR to the unknown clean image, summary, comparisons.

    ``sigma``: the noise std handed to the baselines, ``"estimate"`` (blind, from the image denoised, as a
    user would have it) or ``"oracle"`` (the pair's std(y1 - y2)/√2). Scoring always uses the pair's.
    """
    built = build_methods(methods, modality, tta=tta, device=device, baseline_params=baseline_params)
    names = [m.name for m in built]
    reference = reference or next((m.name for m in built if m.kind == "model"), names[0])
    if reference not in names:
        raise InputError(rule_message("--reference", f"must be one of the methods {names}", reference,
                                      "Name a method listed in --methods."))
    records, total = [], len(pairs) * len(built)
    for pair in pairs:
        setup = _setup(pair, mask)
        given = setup.sigma if sigma == "oracle" else estimate_noise_sigma(pair.first)
        for method in built:
            if should_stop is not None and should_stop():
                raise CancelledError("evaluation stopped by the user; no report written")
            record = _score_method(method, pair, setup, sigma_given=given)
            records.append({**record, "sigma_pairs": setup.sigma, "sigma_given": given,
                            "data_range": setup.data_range})
            logger.info("%s %s: estimated MSE %.4g (PSNR %.2f dB)", pair.name, method.name, record["mse_estimate"],
                        record["psnr_estimate"])
            if progress is not None:
                progress(len(records), total, f"{pair.name} {method.name}")
    return {"protocol": "real-noise", "modality": modality, "mask": mask, "sigma": sigma, "tta": tta, "seed": seed,
            "pairs": [p.describe() for p in pairs], "methods": [m.describe() for m in built], "reference": reference,
            "records": records, "summary": _summary(records, names),
            "comparisons": _compare(records, names, reference, seed, n_resamples)}


def _num(value: float, fmt: str = ".2f") -> str:
    if value is None or math.isnan(value):
        return "n/a"
    return "∞" if math.isinf(value) else format(value, fmt)


def _markdown(result: dict, stamp: str, command: str | None) -> list[str]:
    lines = ["# MedDenoise evaluation on real noise (repeated acquisitions)", "", f"Generated {stamp}.", ""]
    if command:
        lines += ["Command:", "", "```", command, "```", ""]
    n = len(result["pairs"])
    where = ("the Otsu foreground of the image denoised in each direction" if result["mask"] == "foreground"
             else "all voxels")
    lines += [f"- Modality **{result['modality']}**; scored on {where}; baselines get σ by **{result['sigma']}**; "
              f"{n} pair(s) of acquisitions, the unit of every paired test"
              + (" (fewer than 3: no p-values)" if n < 3 else "") + ":", ""]
    lines += [f"  - `{p['name']}` {p['shape_zyx']} (z, y, x): `{p['paths'][0]}` and `{p['paths'][1]}`"
              for p in result["pairs"]]
    lines += ["", "Estimated MSE to the unknown clean image: mean((f(y1) − y2)²) − σ², averaged over both directions "
              "(f(y1) against y2, f(y2) against y1); σ = std(y1 − y2)/√2 of the pair. Unbiased when the two noise "
              "realisations are independent and nothing moved; it may fall ≤ 0 when the true error is below its own "
              "sampling error, and such pairs are kept. PSNR = 10·log10(R² / mean MSE), R the data range of the "
              "mean image.", "",
              "| method | estimated MSE, mean ± SD | PSNR of the mean MSE (dB) | pairs with MSE ≤ 0 | "
              + " | ".join(f"MSE {p['name']}" for p in result["pairs"]) + " |",
              "|---|---|---|---|" + "---|" * n]
    for row in result["summary"]:
        per_pair = [_num(r["mse_estimate"], ".4g") for r in result["records"] if r["method"] == row["method"]]
        lines.append(f"| {row['method']} | {_num(row['mse_mean'], '.4g')} ± {_num(row['mse_sd'], '.2g')} | "
                     f"{_num(row['psnr_of_mean_mse'])} | {row['pairs_with_mse_at_most_0']} | " + " | ".join(per_pair)
                     + " |")
    lines += ["", f"Δ MSE = {result['reference']} − other, paired by acquisition pair (negative favours "
              f"{result['reference']}; Holm over the table):", "",
              "| vs | n | Δ MSE [95 % CI] | test | p | p (Holm) | d |", "|---|---|---|---|---|---|---|"]
    for r in result["comparisons"]:
        ci = f"[{_num(r.get('ci_low', math.nan), '.3g')}, {_num(r.get('ci_high', math.nan), '.3g')}]"
        lines.append(f"| {r['other']} | {r['n']} | {_num(r['mean_diff'], '.3g')} {ci} | {r.get('test', 'n/a')} | "
                     f"{fmt_p(r.get('p_value'))} | {fmt_p(r.get('p_holm'))} | {_num(r.get('cohens_d', math.nan))} |")
    return lines + [""]


def write_real_noise_report(result: dict, out_dir: str | Path, *, command: str | None = None) -> dict[str, Path]:
    """``report.json`` (every per-pair number) and ``report.md`` in ``out_dir``; return their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    json_path, md_path = out_dir / "report.json", out_dir / "report.md"
    json_path.write_text(json.dumps(json_ready({"generated": stamp, "command": command, **result}), indent=1),
                         encoding="utf-8")
    md_path.write_text("\n".join(_markdown(result, stamp, command)), encoding="utf-8")
    logger.info("wrote %s and %s", json_path, md_path)
    return {"json": json_path, "markdown": md_path}
