"""The "Clinical fidelity" section of ``report.md``: one table per modality, verdicts, figures, failures."""

from __future__ import annotations

import math
from pathlib import Path

from ..noise import LEVELS
from .report import _num

__all__ = ["fidelity_section", "fidelity_failures"]

COLUMNS = (  # (summary key, header, digits)
    ("clean_in_psnr", "clean in → out PSNR (dB)", 1),
    ("bias_value", "bias ({unit})", 2),
    ("noise_std", "noise std", 3),
    ("nps_peak", "NPS peak (c/mm)", 3),
    ("nps_mean", "NPS mean f (c/mm)", 3),
    ("nps_shift", "NPS shift", None),
    ("ttf50", "TTF50 (c/mm)", 3),
    ("ttf50_ratio", "TTF50 / input", None),
    ("lesions", "lesions lost", None),
    ("cnr_mean", "lesion CNR", 2),
    ("dprime_mean", "lesion d′", 2),
    ("signal_kept_mean", "lesion signal kept", 2),
    ("hallucination_ratio", "edge residual (× input)", 2),
    ("dice", "Dice", 3),
    ("calibration_coverage", "|err| ≤ 2 std", None),
    ("calibration_spearman", "Spearman ρ (std, |err|)", 2),
    ("calibration_spearman_empirical", "ρ of the empirical error std", 2),
)


def _percent(value, signed: bool = False) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value * 100:+.0f} %" if signed else f"{value * 100:.0f} %"


def _cell(row: dict, key: str, digits: int | None) -> str:
    if key == "lesions":
        return f"{row['lesions_lost']} of {row['lesions_total']}" if row["lesions_total"] else "n/a"
    if key == "nps_shift":
        return _percent(row[key], signed=True)
    if key in ("ttf50_ratio", "calibration_coverage"):
        return _percent(row[key])
    return _num(row[key], digits)


def _table(fidelity: dict, modality: str) -> list[str]:
    rows = fidelity["summary"]
    unit = rows[0]["bias_unit"] if rows else ("HU" if modality == "ct" else "%")
    columns = [c for c in COLUMNS if c[0] != "calibration_spearman_empirical" or fidelity.get("error_draws")]
    headers = [h.format(unit=unit) for _, h, _ in columns]
    lines = ["| method | " + " | ".join(headers) + " |", "|---|" + "---|" * len(columns)]
    for row in rows:
        lines.append(f"| {row['method']} | " + " | ".join(_cell(row, k, d) for k, _, d in columns) + " |")
    clean = [c["clean_ttf"]["ttf50"] for c in fidelity["cases"] if c.get("clean_ttf")]
    if clean:
        lines += ["", f"TTF50 of the inserted disc itself (clean): {_num(sum(clean) / len(clean), 3)} cycles/mm."]
    return lines + [""]


def _verdicts(fidelity: dict) -> list[str]:
    lines = []
    for v in fidelity["verdicts"]:
        status = "**fails: " + "; ".join(v["failures"]) + "**" if v["failures"] else "passes every line"
        lines.append(f"- **{v['method']}** — {status}. " + "; ".join(v["lines"]) + ".")
    return lines + [""]


def _figures(fidelity: dict, out_dir: Path) -> list[str]:
    from .fidelity_figures import plot_lesion_cnr, plot_nps_curves, plot_reliability, plot_ttf_curves

    if not fidelity["cases"]:
        return []
    fig_dir = out_dir / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    first = fidelity["cases"][0]
    paths = [plot_nps_curves(first["curves"], first["case"], fig_dir / "fidelity_nps.png"),
             plot_ttf_curves(first["curves"], first["clean_ttf"], first["case"], fig_dir / "fidelity_ttf.png")]
    if any("reliability" in c for c in first["curves"].values()):
        paths.append(plot_reliability(first["curves"], first["case"], fig_dir / "fidelity_reliability.png"))
    paths.append(plot_lesion_cnr(fidelity["records"], fig_dir / "fidelity_lesion_cnr.png"))
    return [f"![{p.stem.replace('_', ' ')}](figures/{p.name})" for p in paths] + [""]


def fidelity_failures(fidelity: dict) -> list[str]:
    """One closing-note line per method that fails a fidelity threshold."""
    return [f"{v['method']}: {'; '.join(v['failures'])}" for v in fidelity["verdicts"] if v["failures"]]


def fidelity_section(fidelity: dict, config: dict, out_dir: Path, *, figures: bool = True) -> list[str]:
    """Markdown lines of the section (figures written under ``out_dir/figures`` when asked)."""
    modality = config["modality"]
    level = LEVELS[modality].name
    t = fidelity["thresholds"]
    n_cases = len({r["case"] for r in fidelity["records"]})
    lines = ["## Clinical fidelity", "",
             f"Measured at {level} = {fidelity['level']:g} (the middle noise level) on {n_cases} case(s). Besides "
             "its run on the noisy image, each method ran on the clean case (clean in → clean out) and on a copy "
             f"with a TTF disc and {fidelity['n_lesions']} low-contrast lesions per case inserted before the same "
             "noise draw. Metrics, sources and how to read them: docs/fidelity.md. Frequencies in cycles/mm; "
             "NPS shift and TTF50 ratio are relative to the noisy input; a lesion is lost when its NPW d′ falls "
             "below the noisy input's.", "",
             f"Fail lines: |bias| > {t['max_bias_hu']:g} HU (CT) or > {t['max_bias_percent']:g} % (other "
             f"modalities), |NPS shift| > {t['max_nps_shift'] * 100:.0f} %, TTF50 < "
             f"{t['min_ttf50_ratio'] * 100:.0f} % of the input's, any lesion lost, calibration < "
             f"{t['min_calibration'] * 100:.0f} %.", ""]
    if fidelity.get("error_draws"):
        lines += [f"Each model also denoised {fidelity['error_draws']} fresh noise draws of every case; its per-voxel "
                  "RMS error over them is an empirical error std, and its Spearman ρ with |error| (\"ρ of the "
                  "empirical error std\") is what a std map could reach here, a little less than an exact std "
                  "would because the draws are few. Compare the shown std's ρ with it, not with 1.", ""]
    lines += [f"### {modality.upper()}", ""]
    lines += _table(fidelity, modality)
    lines += ["### Verdict per method", ""] + _verdicts(fidelity)
    notes = sorted({n for c in fidelity["cases"] for n in c["phantom"].get("notes", [])})
    unpaired = [c["case"] for c in fidelity["cases"] if not c.get("paired_noise", True)]
    if unpaired:
        notes.append(f"the phantom copies of {', '.join(unpaired)} do not share the plain noisy image's noise draws "
                     "(Poisson sampling): TTF and lesion signals there are taken against the clean image and carry "
                     "one noise realisation")
    lines += [f"- Note: {n}." for n in notes] + ([""] if notes else [])
    if figures:
        lines += ["### Fidelity figures", "", "NPS, TTF and reliability curves of the first case; lesion CNR of "
                  "every lesion of every case.", ""] + _figures(fidelity, out_dir)
    return lines
