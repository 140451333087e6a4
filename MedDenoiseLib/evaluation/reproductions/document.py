"""Write ``docs/reproductions.md`` from the results of the protocol runs (never by hand)."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path

from ... import __version__
from ..report import fmt_p
from .published import DUALNET, GONDARA_2016, NIT_RAIPUR

__all__ = ["render_document"]


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _f(value, digits: int) -> str:
    """A number with ``digits`` decimals; 'n/a' for None (JSON null) or NaN."""
    return "n/a" if _missing(value) else f"{value:.{digits}f}"


def _ms(stats: dict | None, digits: int) -> str:
    if not stats or _missing(stats.get("mean")):
        return "n/a"
    sd = stats.get("sd")
    return _f(stats["mean"], digits) + ("" if _missing(sd) else f" ± {sd:.{digits}f}")


def _reduced(result: dict) -> str | None:
    full = next((v for v in (result.get("paper_epochs"), result.get("full_run_epochs")) if not _missing(v)), None)
    if full and result["epochs"] < full:
        return (f"**Reduced run: {result['epochs']} epoch(s) instead of {full}.** These numbers only show that the "
                "protocol runs end to end; they are not a reproduction. The full run is the same command without "
                "--epochs / --images-per-volume (see \"Full run\" at the end).")
    return None


def _gondara(result: dict) -> list[str]:
    lines = ["## Gondara 2016: convolutional denoising autoencoder (CNN-DAE)", ""]
    if (note := _reduced(result)):
        lines += [note, ""]
    lines += [f"64 × 64 images in [0, 1]; `cdae` (64-32-32-64, in-plane pooling) trained for {result['epochs']} "
              f"epoch(s), batch {result['batch_size']}, {result['training']}; {result['n_train_images']} training "
              f"images from {len(result['split']['train'])} subjects, {result['n_test_images']} test images from "
              f"{len(set(result['test_subjects']))} other subjects (split in `evaluation/reproductions/data2d.py`).",
              f"NL-means: {result['baselines']['nl_means']}; median: {result['baselines']['median']}.", "",
              "Mean SSIM ± SD over the test images (ours) and the paper's Table II value where transcribed:", "",
              "| setting | noisy | NL-means | median | CNN-DAE (cdae) | paper (noisy / NLM / median / CNN-DAE) |",
              "|---|---|---|---|---|---|"]
    for row in result["rows"]:
        m = row["methods"]
        label = row["setting"]["label"]
        paper = GONDARA_2016["ssim"].get(label)
        paper_cell = "not transcribed" if paper is None else " / ".join(
            f"{paper.get(k, 'n/a')}" for k in ("noisy", "nl_means", "median", "cdae"))
        lines.append(f"| {label} | {_ms(m['noisy']['ssim'], 3)} | {_ms(m['nl_means']['ssim'], 3)} | "
                     f"{_ms(m['median']['ssim'], 3)} | {_ms(m['cdae']['ssim'], 3)} | {paper_cell} |")
    lines += ["", f"Paper values: {GONDARA_2016['source']} — {GONDARA_2016['status']}.", "",
              "Paired comparisons of SSIM (cdae − other, per test image = per subject; Holm over the table):", "",
              "| setting | vs | Δ SSIM [95 % CI] | test | p | p (Holm) | d |", "|---|---|---|---|---|---|---|"]
    for c in result["comparisons"]:
        lines.append(f"| {c['setting']} | {c['other']} | {_f(c['mean_diff'], 3)} [{_f(c['ci_low'], 3)}, "
                     f"{_f(c['ci_high'], 3)}] | {c['test']} | {fmt_p(c['p_value'])} | {fmt_p(c['p_holm'])} | "
                     f"{_f(c['cohens_d'], 2)} |")
    lines += ["", "Differences in data: the paper used mini-MIAS mammograms and dental radiographs (a few hundred "
              "images of two X-ray types); ours mixes CT, MR, ultrasound and one radiograph, with far fewer "
              "subjects, so absolute SSIM values are not expected to match — the comparison is the ranking of "
              "methods under each setting.", ""]
    return lines


def _nit(result: dict) -> list[str]:
    lines = ["## NIT Raipur report: per-modality convolutional autoencoder (CAE)", ""]
    if (note := _reduced(result)):
        lines += [note, ""]
    noise = result["noise"]
    lines += [f"128 × 128 images in [0, 1], noise clip(x + {noise['p']}·N({noise['mean']}, {noise['sigma']}²)); "
              f"`cae` (base {result['base_channels']} channels, in-plane pooling) trained per modality for "
              f"{result['epochs']} epoch(s), batch {result['batch_size']}, {result['training']}.", "",
              "| modality | train images | test subjects | noisy PSNR | CAE PSNR (dB) | CAE SSIM | CAE MAE |",
              "|---|---|---|---|---|---|---|"]
    for modality, r in result["modalities"].items():
        cae, noisy = r["methods"]["cae"], r["methods"]["noisy"]
        lines.append(f"| {modality} | {r['n_train_images']} | {len(set(r['test_subjects']))} | "
                     f"{_ms(noisy['psnr'], 2)} | {_ms(cae['psnr'], 2)} | {_ms(cae['ssim'], 4)} | {_ms(cae['mae'], 4)} |")
    lines += [f"| report | | | | {NIT_RAIPUR['psnr']} | {NIT_RAIPUR['ssim']} | {NIT_RAIPUR['mae']} |", "",
              f"Report values: {NIT_RAIPUR['source']}. Not run: " +
              "; ".join(f"{k} ({v})" for k, v in result.get("skipped", {}).items()) + ".", ""]
    return lines


def _dualnet(result: dict) -> list[str]:
    from .dualnet import CROP_ZYX

    lines = ["## DUAL-NET table layout on our data", ""]
    if list(result["crop_zyx"]) != list(CROP_ZYX):
        lines += [f"**Reduced run: crop {result['crop_zyx']} instead of {list(CROP_ZYX)} (z, y, x).**", ""]
    lines += [f"{DUALNET['source']}; {DUALNET['status']}. Held-out files cropped to {result['crop_zyx']} (z, y, x) "
              "around the foreground, modality physics noise at the middle of the training range; files a model was "
              "trained on are dropped; Δ and p: reference minus row (PSNR), per case, Holm-corrected.", ""]
    for modality, t in result["tables"].items():
        lines += [f"### {modality}", ""]
        if "skipped" in t:
            lines += [f"Not evaluated: {t['skipped']}", ""]
            continue
        lines += [f"{t['level_name']} = {t['level']:g}; cases: {', '.join(t['cases'])}; reference: "
                  f"`{t['reference']}`; full report: `{t['report']}`.", "",
                  "| row | method | PSNR (dB) | SSIM | Δ PSNR vs reference | p (Holm) |", "|---|---|---|---|---|---|"]
        for row in t["rows"]:
            token = row["method"]
            if token is None:
                lines.append(f"| {row['label']} | not available (no trained model) | | | | |")
                continue
            cell = {s["metric"]: s for s in t["summary"] if s["method"] == token}
            comp = next((c for c in t["comparisons"] if c["metric"] == "psnr" and c["other"] == token), None)
            delta = "—" if comp is None else _f(comp["mean_diff"], 2)
            lines.append(f"| {row['label']} | `{token}` | {_ms(cell['psnr'], 2)} | {_ms(cell['ssim'], 4)} | {delta} | "
                         f"{fmt_p(comp['p_holm']) if comp else '—'} |")
        lines.append("")
    return lines


def render_document(results: dict[str, dict], path: Path, *, commands: list[str]) -> Path:
    """Write the reproductions document for whichever protocols ``results`` holds."""
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = ["# Seed-paper protocol reproductions", "",
             f"Generated {stamp} by MedDenoise {__version__} from the results of:", "", "```", *commands, "```", "",
             "Every number below comes from these commands (their results JSON sits in the --out folder); nothing "
             "is typed in by hand except the published values, which carry their source. Adding "
             "`--doc docs/reproductions.md` to any of them re-renders this file from every result in that folder.",
             ""]
    if "gondara2016" in results:
        lines += _gondara(results["gondara2016"])
    if "nit_raipur" in results:
        lines += _nit(results["nit_raipur"])
    if "dualnet" in results:
        lines += _dualnet(results["dualnet"])
    lines += ["## Full run", "", "```", "meddenoise evaluate --protocol all --data-root ../shared/data "
              "--out docs/reproductions --doc docs/reproductions.md", "```", "",
              "(100 epochs for both autoencoder protocols; roughly 1-2 h on 2 CPU cores; also run by "
              "`make test-slow`, which checks the result but writes to a temporary folder.)", ""]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
