"""Scoring denoisers on real noise, without a clean image, from two repeated acquisitions.

For two acquisitions y1 = x + n1 and y2 = x + n2 of the same anatomy with independent,
zero-mean noise of std σ, ``mean((f(y1) - y2)²) - σ²`` is an unbiased estimate of the error
``mean((f(y1) - x)²)`` to the unknown clean image x (:mod:`MedDenoiseLib.metrics.realnoise`).
Each method denoises both acquisitions; a pair's score is the mean of the two directions
(f(y1) against y2, f(y2) against y1), so both images count once. σ is estimated from the pair
itself, ``std(y1 - y2) / √2`` inside the mask, and the PSNR uses the data range of the mean
image. With three or more pairs, methods are compared pair by pair (paired test, Holm over
all comparisons, Cohen's d, bootstrap CI) exactly as the simulated-noise report does.

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

from ..errors import CancelledError, InputError, rule_message
from ..io import as_float, read_region
from ..metrics.realnoise import noise_sigma_from_pairs, paired_acquisition_mse
from ..metrics.segmentation import tissue_classes
from ..metrics.stats import compare_paired, holm_bonferroni
from ..volume import Geometry
from .cases import case_name
from .methods import build_methods
from .report import fmt_p, json_ready

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
    """Read each (first, second) entry; both must be non-constant and on the same voxel grid."""
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
            raise InputError(rule_message(f"--pairs {name}", "must differ (the same image twice has no noise "
                                          "to compare)", "identical images", "Pass two separate acquisitions."))
        loaded.append(AcquisitionPair(name, (first_entry, second_entry), a, b, first.geometry))
    names = [p.name for p in loaded]
    if len(set(names)) != len(names):
        raise InputError(rule_message("--pairs", "must not repeat a pair", names, "Drop the duplicate."))
    return loaded


def _score_method(method, pair: AcquisitionPair, *, sigma: float, mask, data_range: float) -> dict:
    out1 = method.run(pair.first, sigma=sigma, geometry=pair.geometry)
    out2 = method.run(pair.second, sigma=sigma, geometry=pair.geometry)
    mse = 0.5 * (paired_acquisition_mse(out1.denoised, pair.second, sigma=sigma, mask=mask)
                 + paired_acquisition_mse(out2.denoised, pair.first, sigma=sigma, mask=mask))
    psnr = math.inf if mse <= 0 else 10.0 * math.log10(data_range**2 / mse)
    return {"case": pair.name, "method": method.name, "mse_estimate": mse, "psnr_estimate": psnr,
            "seconds": round(out1.seconds + out2.seconds, 4), "voxels": int(2 * pair.first.size)}


def _compare(records: list[dict], names: list[str], reference: str, seed: int) -> list[dict]:
    ref = {r["case"]: r["psnr_estimate"] for r in records if r["method"] == reference}
    rows = []
    for other in names:
        if other == reference:
            continue
        oth = {r["case"]: r["psnr_estimate"] for r in records if r["method"] == other}
        common = [c for c in ref if c in oth and math.isfinite(ref[c]) and math.isfinite(oth[c])]
        row = {"reference": reference, "other": other, "n": len(common)}
        if common:
            row.update(compare_paired([ref[c] for c in common], [oth[c] for c in common], seed=seed).to_dict())
        else:
            row.update({"mean_diff": math.nan, "p_value": math.nan, "test": "none: no paired cases"})
        rows.append(row)
    for row, p in zip(rows, holm_bonferroni([r.get("p_value", math.nan) for r in rows])):
        row["p_holm"] = p
    return rows


def evaluate_real_noise(pairs: list[AcquisitionPair], methods: list[str], modality: str, *, tta: int = 8,
                        device: str = "cpu", mask: str = "foreground", seed: int = 0,
                        reference: str | None = None,
                        progress: Callable[[int, int, str], None] | None = None,
                        should_stop: Callable[[], bool] | None = None) -> dict:
    """Every method on every pair: estimated MSE/PSNR to the unknown clean image, summary, comparisons."""
    built = build_methods(methods, modality, tta=tta, device=device)
    names = [m.name for m in built]
    reference = reference or next((m.name for m in built if m.kind == "model"), names[0])
    if reference not in names:
        raise InputError(rule_message("--reference", f"must be one of the methods {names}", reference,
                                      "Name a method listed in --methods."))
    records, total = [], len(pairs) * len(built)
    for pair in pairs:
        mean_image = 0.5 * (pair.first + pair.second)
        sel = tissue_classes(mean_image, n_classes=2) > 0 if mask == "foreground" else None
        sigma = noise_sigma_from_pairs(pair.first, pair.second, mask=sel)
        data_range = float(mean_image.max() - mean_image.min())
        for method in built:
            if should_stop is not None and should_stop():
                raise CancelledError("evaluation stopped by the user; no report written")
            record = _score_method(method, pair, sigma=sigma, mask=sel, data_range=data_range)
            records.append({**record, "sigma_pairs": sigma, "data_range": data_range})
            logger.info("%s %s: estimated PSNR %.2f dB", pair.name, method.name, record["psnr_estimate"])
            if progress is not None:
                progress(len(records), total, f"{pair.name} {method.name}")
    summary = []
    for name in names:
        values = np.array([r["psnr_estimate"] for r in records if r["method"] == name], dtype=np.float64)
        finite = values[np.isfinite(values)]
        summary.append({"method": name, "n": int(finite.size), "mean": float(finite.mean()) if finite.size else math.nan,
                        "sd": float(finite.std(ddof=1)) if finite.size > 1 else math.nan})
    return {"protocol": "real-noise", "modality": modality, "mask": mask, "tta": tta, "seed": seed,
            "pairs": [p.describe() for p in pairs], "methods": [m.describe() for m in built], "reference": reference,
            "records": records, "summary": summary, "comparisons": _compare(records, names, reference, seed)}


def _db(value: float) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    return "∞" if math.isinf(value) else f"{value:.2f}"


def _markdown(result: dict, stamp: str, command: str | None) -> list[str]:
    lines = ["# MedDenoise evaluation on real noise (repeated acquisitions)", "", f"Generated {stamp}.", ""]
    if command:
        lines += ["Command:", "", "```", command, "```", ""]
    n = len(result["pairs"])
    lines += [f"- Modality **{result['modality']}**; scored on "
              f"{'the Otsu foreground of the mean image' if result['mask'] == 'foreground' else 'all voxels'}; "
              f"{n} pair(s) of acquisitions, the unit of every paired test" + (" (fewer than 3: no p-values)"
                                                                              if n < 3 else "") + ":", ""]
    lines += [f"  - `{p['name']}` {p['shape_zyx']} (z, y, x): `{p['paths'][0]}` and `{p['paths'][1]}`"
              for p in result["pairs"]]
    lines += ["", "Estimated PSNR to the unknown clean image: 10·log10(R² / (mean((f(y1) − y2)²) − σ²)), averaged "
              "over both directions; σ = std(y1 − y2)/√2 of the pair, R the data range of the mean image. "
              "Unbiased in the MSE when the two noise realisations are independent and nothing moved; "
              "∞ means the estimated error is ≤ 0 (smaller than its own sampling error).", "",
              "| method | estimated PSNR (dB), mean ± SD | " + " | ".join(p["name"] for p in result["pairs"]) + " |",
              "|---|---|" + "---|" * n]
    for row in result["summary"]:
        per_pair = [_db(r["psnr_estimate"]) for r in result["records"] if r["method"] == row["method"]]
        lines.append(f"| {row['method']} | {_db(row['mean'])} ± {_db(row['sd'])} | " + " | ".join(per_pair) + " |")
    lines += ["", f"Δ = {result['reference']} − other, paired by acquisition pair (Holm over the table):", "",
              "| vs | n | Δ PSNR [95 % CI] | test | p | p (Holm) | d |", "|---|---|---|---|---|---|---|"]
    for r in result["comparisons"]:
        ci = f"[{_db(r.get('ci_low', math.nan))}, {_db(r.get('ci_high', math.nan))}]"
        lines.append(f"| {r['other']} | {r['n']} | {_db(r['mean_diff'])} {ci} | {r.get('test', 'n/a')} | "
                     f"{fmt_p(r.get('p_value'))} | {fmt_p(r.get('p_holm'))} | {_db(r.get('cohens_d', math.nan))} |")
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
