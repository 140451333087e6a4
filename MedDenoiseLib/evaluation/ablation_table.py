"""The DUAL-NET ablation section of ``docs/models.md``, read from one evaluation report.

Every DUAL-NET method of the report is a variant; its switches come from what the report recorded
about it: ``architecture.neb`` (noise-estimation branch), ``architecture.nonlocal_attention`` (window
self-attention at the bottleneck), and whether it was fine-tuned self-supervised (``training``:
algorithm ``n2v``/``n2s`` starting from other weights). The variant with all three on is the full
model; each other variant is named by what it lacks ("no NEB", "no self-supervised", ...) and gets
its PSNR / SSIM difference to the full model at every level.
"""

from __future__ import annotations

from .report_tables import fmt, mean_of, paper_table

__all__ = ["ablation_section", "ablation_variants"]

#: (switch key, label of the ablation that turns it off), in the paper's order.
SWITCHES = (("neb", "no NEB"), ("nonlocal", "no non-local attention"), ("self_supervised", "no self-supervised"))


def _self_supervised(method: dict) -> bool | None:
    """True for a self-supervised stage 2 (n2v/n2s starting from other weights), False for a supervised run,
    None when the report did not record the training or the run was self-supervised from scratch."""
    training = method.get("training") or {}
    algorithm = training.get("algorithm")
    if algorithm == "supervised":
        return False
    if algorithm in ("n2v", "n2s"):
        return True if training.get("init") else None
    return None


def ablation_variants(report: dict) -> list[dict]:
    """One entry per DUAL-NET method: its name, model name, steps and the three switches.

    >>> report = {"methods": [{"name": "noisy", "kind": "noisy"}, {"name": "model:a", "kind": "model",
    ...     "model": "a", "architecture": {"name": "dualnet", "neb": False},
    ...     "training": {"algorithm": "supervised", "init": None, "steps": 5}}]}
    >>> ablation_variants(report)
    [{'method': 'model:a', 'model': 'a', 'steps': 5, 'neb': False, 'nonlocal': True, 'self_supervised': False}]
    """
    variants = []
    for method in report["methods"]:
        architecture = method.get("architecture") or {}
        if method.get("kind") != "model" or architecture.get("name") != "dualnet":
            continue
        variants.append({"method": method["name"], "model": method.get("model"),
                         "steps": (method.get("training") or {}).get("steps"),
                         "neb": bool(architecture.get("neb", True)),
                         "nonlocal": bool(architecture.get("nonlocal_attention", True)),
                         "self_supervised": _self_supervised(method)})
    return variants


def _is_full(variant: dict) -> bool:
    return all(variant[key] is True for key, _ in SWITCHES)


def _ablation_name(variant: dict) -> str:
    missing = [label for key, label in SWITCHES if variant[key] is False]
    if any(variant[key] is None for key, _ in SWITCHES):
        missing.append("stage unknown")
    return ", ".join(missing) if missing else "full"


def _mark(value: bool | None) -> str:
    return "?" if value is None else ("yes" if value else "no")


def _switch_table(report: dict, variants: list[dict], full: dict | None) -> list[str]:
    levels = report["config"]["levels"]
    lines = ["| variant | model | NEB | non-local | stage-2 self-supervised | steps | "
             + " | ".join(f"{lv:g}: Δ PSNR / Δ SSIM vs full" for lv in levels) + " |",
             "|" + "---|" * (6 + len(levels))]
    for variant in variants:
        cells = []
        for level in levels:
            if full is None or variant is full:
                cells.append("–")
                continue
            deltas = [mean_of(report, metric, level, variant["method"]) - mean_of(report, metric, level, full["method"])
                      for metric in ("psnr", "ssim")]
            cells.append(f"{fmt(deltas[0], 2, signed=True)} / {fmt(deltas[1], 3, signed=True)}")
        lines.append(f"| {_ablation_name(variant)} | `{variant['model']}` | {_mark(variant['neb'])} | "
                     f"{_mark(variant['nonlocal'])} | {_mark(variant['self_supervised'])} | {_steps(variant)} | "
                     + " | ".join(cells) + " |")
    return lines


def _steps(variant: dict) -> str:
    """Steps of the run that made the weights (a stage 2 counts its own steps only)."""
    steps = "?" if variant["steps"] is None else str(variant["steps"])
    return steps + (" (stage 2)" if variant["self_supervised"] else "")


def ablation_section(reports: list[dict]) -> list[str]:
    """Markdown lines: per report, its full table (seed papers' layout) and the switch / difference table."""
    lines = ["## DUAL-NET ablations", "",
             "Variants of DUAL-NET differing in the switches shown (their training configs name the data, noise, "
             "seed and steps; `steps` is the run that made each model's weights); each scored in one "
             "`meddenoise evaluate` run next to the classical baselines (differences are the variant's mean minus "
             "the full model's).", ""]
    for report in reports:
        variants = ablation_variants(report)
        fulls = [v for v in variants if _is_full(v)]
        full = fulls[0] if len(fulls) == 1 else None
        lines += [f"### {report['config']['modality'].upper()}", "",
                  f"Report `{report['_path']}` ({report['command']}).", "", *paper_table(report), "",
                  *_switch_table(report, variants, full), ""]
        if len(fulls) > 1:
            lines += ["(several variants have all three switches on: "
                      + ", ".join(f"`{v['model']}`" for v in fulls) + "; no differences computed)", ""]
        elif full is None:
            lines += ["(no full variant with all three switches on in this report: no differences computed)", ""]
    return lines
