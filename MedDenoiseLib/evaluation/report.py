"""Write an evaluation as ``report.json`` (every per-case number) and ``report.md`` (+ figures)."""

from __future__ import annotations

import json
import logging
import math
from datetime import datetime, timezone
from pathlib import Path

from ..noise import LEVELS
from .config import detector_clip_text
from .runner import EvaluationResult
from .summary import METRICS

logger = logging.getLogger(__name__)

__all__ = ["write_report", "json_ready", "fmt_p"]

LPIPS_NOTE = ("LPIPS is not reported: it needs pretrained network weights (AlexNet/VGG) that cannot be "
              "fetched in this offline setting, and a substitute network would not be LPIPS.")


def json_ready(value):
    """Recursively replace NaN by None and ±inf by the strings "inf"/"-inf" (strict JSON)."""
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # numpy scalar
        return json_ready(value.item())
    return value


def _num(value, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float) and math.isinf(value):
        return "∞"
    return f"{value:.{digits}f}"


def fmt_p(p) -> str:
    """p-value for a table: 3 significant digits, '<0.001' below, 'n/a' when not tested."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


DIGITS = {"psnr": 2, "ssim": 4, "rmse": 4, "mae": 4, "dice": 4}


def _summary_tables(result: EvaluationResult, level_name: str) -> list[str]:
    levels = result.config["levels"]
    methods = [m["name"] for m in result.methods]
    lines = []
    for metric in METRICS:
        unit = " (dB)" if metric == "psnr" else ""
        lines += [f"### {metric.upper()}{unit}", "",
                  "| method | " + " | ".join(f"{level_name} = {lv:g}" for lv in levels) + " |",
                  "|---|" + "---|" * len(levels)]
        for method in methods:
            cells = []
            for lv in levels:
                row = next(r for r in result.summary if r["metric"] == metric and r["level"] == lv
                           and r["method"] == method)
                d = DIGITS[metric]
                cells.append(f"{_num(row['mean'], d)} ± {_num(row['sd'], d)}" if row["n"] > 1
                             else _num(row["mean"], d))
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def _comparison_tables(result: EvaluationResult, level_name: str) -> list[str]:
    if not result.comparisons:
        return ["No comparison: a single method was evaluated.", ""]
    ref = result.reference
    lines = [f"Δ = {ref} − other (paired by case). Positive Δ favours {ref} for PSNR, SSIM and Dice; "
             "negative Δ favours it for RMSE and MAE. Test: paired t if Shapiro-Wilk on the differences has "
             "p ≥ 0.05, else Wilcoxon signed-rank; p (Holm) is corrected over all levels and methods of one "
             "metric; d = Cohen's d_z; CI = bootstrap BCa 95 % of the mean Δ (seeded).", ""]
    for metric in METRICS:
        rows = [r for r in result.comparisons if r["metric"] == metric]
        d = DIGITS[metric]
        lines += [f"### Δ {metric.upper()}", "",
                  f"| {level_name} | vs | n | Δ mean [95 % CI] | test | p | p (Holm) | d |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in rows:
            ci = f"[{_num(r.get('ci_low'), d)}, {_num(r.get('ci_high'), d)}]"
            lines.append(f"| {r['level']:g} | {r['other']} | {r['n']} | {_num(r.get('mean_diff'), d)} {ci} | "
                         f"{r.get('test', 'n/a')} | {fmt_p(r.get('p_value'))} | {fmt_p(r.get('p_holm'))} | "
                         f"{_num(r.get('cohens_d'), 2)} |")
        lines.append("")
    return lines


def _timing_table(result: EvaluationResult) -> list[str]:
    lines = ["| method | runs | seconds per image (mean ± SD) | voxels / s |", "|---|---|---|---|"]
    for r in result.timing:
        if r["method"] == "noisy":
            continue
        lines.append(f"| {r['method']} | {r['runs']} | {_num(r['mean_seconds'], 3)} ± {_num(r['sd_seconds'], 3)} | "
                     f"{_num(r['voxels_per_s'], 0)} |")
    return lines + [""]


def _figures(result: EvaluationResult, out_dir: Path, level_name: str) -> list[str]:
    from .figures import plot_metric_curves, plot_panels, plot_timing

    fig_dir = out_dir / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    methods = [m["name"] for m in result.methods]
    lines = ["## Figures", ""]
    for i, (level, panel) in enumerate(sorted(result.panels.items())):
        path = plot_panels(panel, level, level_name, fig_dir / f"panels_level{i}.png")
        lines.append(f"![{panel['case']} at {level_name} {level:g}](figures/{path.name})")
    if len(result.config["levels"]) > 1:
        path = plot_metric_curves(result.summary, methods, result.config["levels"], level_name,
                                  fig_dir / "metrics_vs_noise.png")
        lines.append(f"![metrics vs noise level](figures/{path.name})")
    path = plot_timing(result.timing, fig_dir / "time_per_method.png")
    lines += [f"![time per method](figures/{path.name})", ""]
    return lines


def _detector_note(config: dict) -> str:
    bits = config.get("detector_bits")
    return "" if bits is None else f"; {detector_clip_text(bits)}"


def write_report(result: EvaluationResult, out_dir: str | Path, *, command: str | None = None,
                 title: str = "MedDenoise evaluation") -> dict[str, Path]:
    """Write ``report.json``, ``report.md`` and ``figures/*.png`` into ``out_dir``; return their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = result.config
    level_name = LEVELS[config["modality"]].name
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    payload = {"title": title, "generated": stamp, "command": command, **result.to_json()}
    json_path = out_dir / "report.json"
    json_path.write_text(json.dumps(json_ready(payload), indent=1), encoding="utf-8")
    n_cases = len(result.cases)
    lines = [f"# {title}", "", f"Generated {stamp} by MedDenoise {result.environment['versions']['meddenoise']}.",
             ""]
    if command:
        lines += ["Command:", "", "```", command, "```", ""]
    lines += [f"- Modality **{config['modality']}**, noise level `{level_name}` ({LEVELS[config['modality']].description}): "
              f"{', '.join(f'{v:g}' for v in config['levels'])}; seed {config['seed']}; baselines get sigma by "
              f"**{config['sigma']}**; scored on "
              f"{'the Otsu foreground' if config['mask'] == 'foreground' else 'all voxels'}{_detector_note(config)}.",
              f"- {n_cases} case(s) — one per file, the unit of every paired test"
              + (" (fewer than 3: no p-values)" if n_cases < 3 else "") + ":", ""]
    lines += [f"  - `{c['name']}` {c['shape_zyx']} (z, y, x){' crop ' + str(c['crop_zyx']) if c['crop_zyx'] else ''}"
              for c in result.cases]
    lines += ["", "Methods:", ""] + [f"- `{m['name']}` ({m['kind']}" + (f", {m['library']}" if "library" in m else "")
                                     + (f", model {m['model']}, TTA {m['tta']}" if m["kind"] == "model" else "") + ")"
                                     for m in result.methods]
    lines += ["", "## Image quality (mean ± SD over cases)", ""] + _summary_tables(result, level_name)
    lines += ["## Paired comparisons", ""] + _comparison_tables(result, level_name)
    lines += ["## Time per method", "", f"Device {config['device']}; "
              f"{result.environment['torch_threads']} torch threads; {result.environment['platform']}.", ""]
    lines += _timing_table(result)
    if config.get("figures", True):
        lines += _figures(result, out_dir, level_name)
    failures = []
    if result.fidelity:
        from .fidelity_report import fidelity_failures, fidelity_section

        lines += fidelity_section(result.fidelity, config, out_dir, figures=config.get("figures", True))
        failures = fidelity_failures(result.fidelity)
    lines += ["## Notes", "", f"- {LPIPS_NOTE}",
              "- Every per-case number (and the noise seed of each cell) is in `report.json`.",
              "- References are real scans with their own acquisition noise; removing it also counts as error.",
              "- Dice: mean over non-background classes of a fixed "
              f"{config['segmentation_method']} segmentation into {config['segmentation_classes']} intensity classes, "
              "run on the clean image and on each output."]
    if result.fidelity:
        lines += ["- Clinical fidelity failures: " + (" | ".join(failures) if failures else "none") + "."]
    lines.append("")
    md_path = out_dir / "report.md"
    md_path.write_text("\n".join(lines), encoding="utf-8")
    logger.info("wrote %s and %s", json_path, md_path)
    return {"json": json_path, "markdown": md_path}
