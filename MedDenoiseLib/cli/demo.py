"""``meddenoise demo``: noise the bundled real sample, denoise it, write volumes, a figure and a score line."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch

from ..io import as_float, read_volume, write_volume
from ..metrics import psnr, ssim
from ..models.resolve import resolve_model
from ..pipeline import InferenceOptions, denoise_volume
from ..uncertainty_labels import write_color_table
from .figure import save_comparison_figure, std_title
from .reporting import StopFlag, make_progress

logger = logging.getLogger("meddenoise")

SAMPLE = "mr_brain_sample.nii.gz"
SAMPLE_MODALITY = "mr"
SAMPLE_NOISE_LEVEL = 5.0  # Rician sigma, % of the sample's maximum
SAMPLE_NOISE_SEED = 2024


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="denoise the bundled MR sample and write outputs + a before/after PNG")
    p.add_argument("--out", type=Path, default=Path("out/demo"))
    p.add_argument("--tta", type=int, choices=(1, 2, 4, 8), default=8)
    p.add_argument("--device", default="auto")
    p.add_argument("--noise-level", type=float, default=SAMPLE_NOISE_LEVEL, help="Rician sigma in %% of max")
    p.add_argument("--progress", choices=("bar", "json", "none"), default="bar")
    p.set_defaults(run=run)


def sample_path() -> Path:
    """The bundled sample, beside the package (independent of ``$MEDDENOISE_MODELS``)."""
    return Path(__file__).resolve().parents[2] / "Resources" / "Samples" / SAMPLE


def run(args) -> int:
    from ..noise import simulate_noise

    clean = read_volume(sample_path())
    clean_array = as_float(clean)
    generator = torch.Generator().manual_seed(SAMPLE_NOISE_SEED)
    noisy_tensor = simulate_noise(SAMPLE_MODALITY, torch.from_numpy(clean_array), level=args.noise_level,
                                  generator=generator)
    noisy = clean.with_array(noisy_tensor.numpy().astype(np.float32))
    progress = make_progress(args.progress)
    try:
        with StopFlag() as stop:
            result = denoise_volume(noisy, resolve_model(None, SAMPLE_MODALITY), modality=SAMPLE_MODALITY,
                                    options=InferenceOptions(tta=args.tta, device=args.device), progress=progress,
                                    should_stop=stop)
    finally:
        if progress is not None:
            progress.close()
    scores = _scores(clean_array, noisy.array, result.denoised.array)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    for name, vol in (("clean", clean.with_array(clean_array)), ("noisy", noisy), ("denoised", result.denoised),
                      ("uncertainty", result.uncertainty)):
        write_volume(vol, out / f"{name}.nii.gz", dtype="float32")
    write_volume(result.labels, out / "uncertainty_labels.nii.gz", dtype="uint8")
    write_color_table(out / "uncertainty_labels.ctbl")
    save_comparison_figure(out / "before_after.png", clean_array, noisy.array, result.denoised.array,
                           result.uncertainty.array, result.labels.array, scores, std_title(result.report))
    (out / "report.json").write_text(json.dumps({"scores": scores, "noise": {
        "modality": SAMPLE_MODALITY, "rician_sigma_percent_of_max": args.noise_level, "seed": SAMPLE_NOISE_SEED},
        "denoise": result.report}, indent=1), encoding="utf-8")
    logger.info("PSNR noisy %.2f dB -> denoised %.2f dB (%+.2f) | SSIM %.3f -> %.3f | %s, TTA %d, %.1f s | outputs in %s",
                scores["psnr_noisy"], scores["psnr_denoised"], scores["psnr_denoised"] - scores["psnr_noisy"],
                scores["ssim_noisy"], scores["ssim_denoised"], result.report["device"], args.tta,
                result.report["seconds"], out)
    return 0


def _scores(clean: np.ndarray, noisy: np.ndarray, denoised: np.ndarray) -> dict[str, float]:
    data_range = float(clean.max() - clean.min())
    dims = 3 if clean.shape[0] >= 11 else 2
    return {"data_range": data_range,
            "psnr_noisy": psnr(clean, noisy, data_range=data_range),
            "psnr_denoised": psnr(clean, denoised, data_range=data_range),
            "ssim_noisy": ssim(clean, noisy, data_range=data_range, spatial_dims=dims),
            "ssim_denoised": ssim(clean, denoised, data_range=data_range, spatial_dims=dims)}
