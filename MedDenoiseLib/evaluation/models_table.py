"""``docs/models.md`` from evaluation reports: shipped models, quality bars, calibration, candidates, ablations.

Input: the ``report.json`` of one ``meddenoise evaluate`` run per modality (held-out cases,
models and classical baselines side by side). Output: one Markdown page with, per modality,
the seed papers' table layout (methods as rows, noise levels as columns, PSNR / SSIM), the
issue's quality bars checked against the measured numbers (model minus BM4D, minus the
best classical baseline, at every level), timing, and uncertainty calibration when the run
had ``--fidelity``. Every number is read from the reports; nothing is typed in by hand.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Sequence

from ..model_files import models_root, read_card, shipped_models
from ..models.routing import is_routed, route_members
from .ablation_table import ablation_section
from .config import detector_clip_text
from .report_tables import fmt, mean_of, paper_table

__all__ = ["BARS", "load_reports", "models_markdown"]

#: The quality bars (dB over the named reference) per modality, from issue 5; MR also needs SSIM not lower.
BARS = {"mr": {"bm4d": 1.5, "dipy_nlm": 1.5}, "ct": {"bm4d": 1.5}, "us": {"best": 1.0}, "xr": {"best": 1.0}}
SSIM_NOT_LOWER = ("mr",)
CT_BIAS_LIMIT_HU = 2.0
NON_BASELINES = ("noisy",)


def load_reports(paths: Sequence[str | Path]) -> list[dict]:
    """Parsed ``report.json`` files (a report directory is accepted too)."""
    reports = []
    for path in paths:
        path = Path(path)
        path = path / "report.json" if path.is_dir() else path
        report = json.loads(path.read_text(encoding="utf-8"))
        report["_path"] = str(path)
        reports.append(report)
    return reports


def _methods(report: dict) -> tuple[list[str], list[str]]:
    names = [m["name"] for m in report["methods"]]
    models = [n for n in names if n.startswith("model")]
    baselines = [n for n in names if n not in models and n not in NON_BASELINES]
    return models, baselines


def _best_baseline(report: dict, level: float, baselines: list[str]) -> tuple[str, float]:
    scored = [(b, mean_of(report, "psnr", level, b)) for b in baselines]
    scored = [s for s in scored if math.isfinite(s[1])]
    return max(scored, key=lambda s: s[1]) if scored else ("none", math.nan)


def _bar_rows(report: dict, model: str, baselines: list[str]) -> list[str]:
    modality = report["config"]["modality"]
    levels = report["config"]["levels"]
    lines = ["| level | reference | model − reference (dB) | bar (dB) | SSIM model − reference"
             f"{' (must be ≥ 0)' if modality in SSIM_NOT_LOWER else ''} | met |",
             "|---|---|---|---|---|---|"]
    for level in levels:
        for reference, need in BARS.get(modality, {}).items():
            name, value = (_best_baseline(report, level, baselines) if reference == "best"
                           else (reference, mean_of(report, "psnr", level, reference)))
            gap = mean_of(report, "psnr", level, model) - value
            ssim_gap = mean_of(report, "ssim", level, model) - mean_of(report, "ssim", level, name)
            ssim_ok = ssim_gap >= 0 if modality in SSIM_NOT_LOWER else True
            met = "yes" if math.isfinite(gap) and gap >= need and ssim_ok else "**no**"
            label = f"best baseline ({name})" if reference == "best" else name
            lines.append(f"| {level:g} | {label} | {fmt(gap)} | +{need:g} | {fmt(ssim_gap, 3)} | {met} |")
    lowest = _lowest_noise_level(report)
    name, value = _best_baseline(report, lowest, baselines)
    gap = mean_of(report, "psnr", lowest, model) - value
    lines.append(f"| {lowest:g} (lowest noise) | best baseline ({name}) | {fmt(gap)} | ≥ 0 | – | "
                 f"{'yes' if math.isfinite(gap) and gap >= 0 else '**no**'} |")
    if modality == "ct":
        lines += ["", _ct_bias_line(report, model)]
    return lines


def _ct_bias_line(report: dict, model: str) -> str:
    """The CT bar's HU bias in soft tissue, from the fidelity section (uniform ROIs of the clean image)."""
    rows = [r for r in (report.get("fidelity") or {}).get("summary") or [] if r.get("method") == model]
    bias = rows[0].get("bias_value") if rows else None
    if bias is None or not math.isfinite(bias):
        return f"HU bias of `{model}`: not measured (run with `--fidelity`)."
    met = "met" if abs(bias) < CT_BIAS_LIMIT_HU else "**not met**"
    return (f"HU bias of `{model}` in uniform soft-tissue ROIs at level {report['fidelity']['level']:g}: "
            f"{bias:+.2f} HU (bar: |bias| < {CT_BIAS_LIMIT_HU:g} HU, {met}).")


def _lowest_noise_level(report: dict) -> float:
    """The level with the highest noisy-input PSNR (level units differ: dose vs sigma vs looks)."""
    levels = report["config"]["levels"]
    return max(levels, key=lambda lv: mean_of(report, "psnr", lv, "noisy"))


def _timing(report: dict) -> list[str]:
    lines = ["| method | s per image (mean) | voxels / s |", "|---|---|---|"]
    for row in report.get("timing", []):
        if row["method"] in NON_BASELINES:
            continue
        lines.append(f"| {row['method']} | {fmt(row['mean_seconds'], 1)} | "
                     f"{fmt(row['voxels_per_s'] or math.nan, 0)} |")
    return lines


def _calibration(report: dict) -> list[str]:
    """Coverage and Spearman of each model's shown std, and its fidelity verdict (runs with ``--fidelity``)."""
    fidelity = report.get("fidelity") or {}
    rows = []
    for row in fidelity.get("summary") or []:
        coverage = row.get("calibration_coverage")
        if coverage is None or not math.isfinite(coverage):
            continue
        rows.append(f"| {row['method']} | {row.get('calibration_source') or '?'} | {fmt(100 * coverage, 1)} % | "
                    f"{fmt(row.get('calibration_spearman', math.nan), 3)} | "
                    f"{fmt(row.get('calibration_spearman_empirical', math.nan), 3)} | "
                    f"{'yes' if coverage >= 0.8 else '**no**'} |")
    if not rows:
        return ["(no calibration: run `meddenoise evaluate ... --fidelity`)"]
    verdicts = [f"- `{v['method']}`: {v.get('text') or '; '.join(v.get('lines', []))}"
                for v in fidelity.get("verdicts") or [] if str(v.get("method", "")).startswith("model")]
    return [f"At noise level {fidelity.get('level'):g}:", "",
            "| model | std source | |error| ≤ 2 std | Spearman(std, |error|) | the same for the empirical error std "
            "(what a std could reach) | ≥ 80 % |",
            "|---|---|---|---|---|---|", *rows, "", "Clinical fidelity verdict (see docs/fidelity.md):", "", *verdicts]


def _shipped_table(root: Path) -> list[str]:
    lines = ["| model | modality | architecture | parameters | weights (MB) | training | std calibration |",
             "|---|---|---|---|---|---|---|"]
    for directory in sorted(p for p in root.iterdir() if (p / "card.json").is_file()):
        card, _ = read_card(directory)
        if is_routed(card):
            lines.extend(_routed_rows(card, directory))
            continue
        lines.append(_model_row(card, directory, f"`{card.get('name')}`"))
    return lines


def _model_row(card: dict, directory: Path, label: str) -> str:
    training = card.get("training") or {}
    size = (directory / "model.safetensors").stat().st_size / 1e6
    steps, seconds = training.get("steps"), training.get("wall_seconds")
    trained = f"{steps} steps, {fmt((seconds or math.nan) / 60, 0)} min on {training.get('device', '?')}"
    trained += f", starting from `{training['init']}`" if training.get("init") else ""
    return (f"| {label} | {card.get('modality')} | {_architecture_text(card.get('architecture'))} | "
            f"{card.get('parameters')} | "
            f"{size:.2f} | {trained} | {_calibration_text(card)} |")


def _architecture_text(architecture) -> str:
    """``slab25d (context 1, depth 8, ...)`` from the card's architecture mapping (other values as they are)."""
    if not isinstance(architecture, dict) or "name" not in architecture:
        return str(architecture)
    options = ", ".join(f"{key} {value}" for key, value in sorted(architecture.items()) if key != "name")
    return f"{architecture['name']} ({options})" if options else str(architecture["name"])


def _routed_rows(card: dict, directory: Path) -> list[str]:
    """A routed model's line (its rule) and one line per member."""
    members = route_members(card)
    rule = "; ".join(f"`{m['path']}` up to noise estimate {m['up_to']:.4g}" for m in members[:-1])
    lines = [f"| `{card.get('name')}` | {card.get('modality')} | routed by noise level: {rule}, "
             f"`{members[-1]['path']}` above | {card.get('parameters')} | – | members below | members' |"]
    for member in members:
        member_card, member_dir = read_card(directory / str(member["path"]))
        lines.append(_model_row(member_card, member_dir, f"↳ `{member_card.get('name')}` (`{member['path']}`)"))
    return lines


def _calibration_text(card: dict) -> str:
    """``TTA-8 spread × 1.29 with floor 0.31 σ̂ + edge 0.4 vox·|∇| (spread 1.5 vox)``, or ``raw spread``.

    The floor is a fraction of the estimated noise std; the edge term is in voxels, times the denoised image's gradient
    (spread in-plane by a Gaussian of the width shown, when there is one).
    """
    record = card.get("uncertainty_calibration") or {}
    scale = (record.get("scales") or {}).get("tta", {}).get("8")
    if not scale:
        return "raw spread"
    floor = (record.get("floors") or {}).get("tta", {}).get("8")
    edge = (record.get("edges") or {}).get("tta", {}).get("8")
    width = (record.get("edge_widths") or {}).get("tta", {}).get("8")
    return (f"TTA-8 spread × {scale:.3g}" + (f" with floor {floor:.3g} σ̂" if floor else "")
            + (f" + edge {edge:.3g} vox·|∇|" if edge else "")
            + (f" (spread {width:.3g} vox)" if edge and width else ""))


def _candidates(candidates: list[dict], shipped: set[str]) -> list[str]:
    """Models tried and not shipped: the same table and bars (shipped models' bars are above), from their reports."""
    lines = ["## Candidates tried, not shipped", "",
             "Each comes from its own `meddenoise evaluate` run on the same held-out cases and noise seed as the "
             "shipped model's report, so the shipped model's row can be compared number for number. A report that "
             "compared stages keeps every stage's run directory in its rows, including the last stage of a shipped "
             "model (its weights are the shipped ones; each model's README says which run it re-exports).", ""]
    for report in candidates:
        models, baselines = _methods(report)
        tried = [m for m in models if m.split(":", 1)[-1].split("@")[0] not in shipped]
        if not tried:
            continue
        lines += [f"### {report['config']['modality'].upper()}: {', '.join(f'`{m}`' for m in tried)}", "",
                  f"Report `{report['_path']}` ({report['command']}).{_detector_sentence(report)}", "",
                  *paper_table(report), ""]
        for model in tried:
            lines += [f"Quality bar for `{model}`:", "", *_bar_rows(report, model, baselines), ""]
    return lines


def _detector_sentence(report: dict) -> str:
    """Says when a report's noisy images were clipped to a detector's range (``detector_bits``)."""
    bits = report["config"].get("detector_bits")
    if bits is None:
        return ""
    text = detector_clip_text(bits)
    return f" {text[0].upper()}{text[1:]} (`detector_bits`), as a real detector would clip them."


def models_markdown(reports: list[dict], *, command: str, root: Path | None = None,
                    candidates: list[dict] | None = None, ablations: list[dict] | None = None) -> str:
    """The whole page; ``candidates`` (reports of models not shipped) and ``ablations`` (reports scoring
    DUAL-NET variants, see :mod:`.ablation_table`) get sections of their own at the end."""
    sources = ", ".join(f"`{r['_path']}`" for r in reports)
    lines = ["# Shipped models and how they compare", "",
             f"Generated by `{command}` from {sources}. "
             "Every number below is read from those evaluation reports (held-out cases, simulated physics noise, "
             "one run side by side); re-run the `meddenoise evaluate` command each report names to reproduce it.", "",
             "## Shipped models", "", *_shipped_table(root or models_root()), ""]
    for report in reports:
        config = report["config"]
        models, baselines = _methods(report)
        cases = ", ".join(f"`{c['name']}` {c['shape_zyx']}" for c in report["cases"])
        clipped = f", clipped to {config['detector_bits']} bits" if config.get("detector_bits") else ""
        lines += [f"## {config['modality'].upper()}{clipped}", "",
                  f"Held-out cases: {cases}. Noise levels: {config['levels']} ({report['command']})."
                  f"{_detector_sentence(report)}", "",
                  "PSNR (dB) / SSIM inside the foreground mask, mean over cases (seed papers' layout):", "",
                  *paper_table(report), ""]
        for model in models:
            lines += [f"Quality bar for `{model}`:", "", *_bar_rows(report, model, baselines), ""]
        lines += ["Timing on this run's machine:", "", *_timing(report), "",
                  "Uncertainty calibration:", "", *_calibration(report), ""]
    if candidates:
        lines += _candidates(candidates, set(shipped_models(root)))
    if ablations:
        lines += ablation_section(ablations)
    return "\n".join(lines) + "\n"
