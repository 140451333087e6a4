"""Probe behind docs/training.md, "Content-based X-ray normalisation" (session 14).

Scores a radiography model with its inputs divided by k times the image's 99.5th percentile instead of by the
normalisation its card asks for ("card" row), for k in 3, 4, 5, 6, 8:

- on three 384 x 384 crops of the radiograph's training rows (rows 50, 350 and 700 of ``#y=0:1100``, the held-out
  crop's columns), TTA 1, PSNR (peak 1023) of the pooled foreground error at dose 0.5 / 0.25 / 0.1;
- on the held-out case of docs/configs/evaluate_xr_heldout.yaml and its 10-bit twin (TTA 8, the evaluation's own
  noise draws and scoring), unless ``--no-held-out``.

Only the normalisation changes; the weights do not. Run from the repository root:

    python docs/probes/xr_content_scale.py                      # the shipped xr_slab25d
    python docs/probes/xr_content_scale.py --model checkpoints/xr_slab25d_pct/export
"""

from __future__ import annotations

import argparse
import logging

import numpy as np
import torch

import MedDenoiseLib.pipeline as pipeline
from MedDenoiseLib.evaluation.cases import foreground_crop
from MedDenoiseLib.evaluation.config import load_evaluation_config
from MedDenoiseLib.evaluation.runner import evaluate
from MedDenoiseLib.io import as_float, read_region
from MedDenoiseLib.models.card import load_model
from MedDenoiseLib.noise import simulate_noise
from MedDenoiseLib.normalization import Normalization, fit_normalization
from MedDenoiseLib.pipeline import InferenceOptions, denoise_volume
from MedDenoiseLib.volume import Volume

logger = logging.getLogger("xr_content_scale")
RADIOGRAPH = "../shared/data/xr/pydicom_tibia_cr.nii.gz"
DOSES = (0.5, 0.25, 0.1)
FACTORS = (None, 3.0, 4.0, 5.0, 6.0, 8.0)  # None: the card's own normalisation
HELD_OUT_CONFIGS = ("docs/configs/evaluate_xr_heldout.yaml", "docs/configs/evaluate_xr_heldout10.yaml")


def use_factor(factor: float | None) -> None:
    """Make the pipeline divide X-ray inputs by ``factor`` x p99.5 (None: restore the library's rule)."""
    def content_scale(array, modality, choice="default"):
        scale = factor * float(np.percentile(array, 99.5))
        return Normalization("xr", scale=scale, offset=0.0, method="xr_percentile")
    pipeline.fit_normalization = fit_normalization if factor is None else content_scale


def training_crops() -> list[np.ndarray]:
    columns = foreground_crop(as_float(read_region(RADIOGRAPH + "#y=1200:")), (1, 384, 384))[2]
    rows = as_float(read_region(RADIOGRAPH + "#y=0:1100"))
    return [np.ascontiguousarray(rows[:, start:start + 384, columns]) for start in (50, 350, 700)]


def training_psnr(model, crops: list[np.ndarray]) -> list[float]:
    options = InferenceOptions(roi_size=(1, 160, 160), tta=1, device="cpu")
    scores = []
    for dose in DOSES:
        errors = []
        for index, clean in enumerate(crops):
            generator = torch.Generator().manual_seed(100 + index)
            noisy = simulate_noise("xr", torch.from_numpy(clean.copy()), level=dose, generator=generator).numpy()
            out = denoise_volume(Volume(noisy.astype(np.float32)), model, modality="xr", options=options)
            foreground = clean > np.percentile(clean, 30)
            errors.append(float(np.mean((out.denoised.array - clean)[foreground] ** 2)))
        scores.append(round(float(10 * np.log10(1023.0**2 / np.mean(errors))), 2))
    return scores


def held_out_psnr(model_dir: str, path: str) -> list[float]:
    config = load_evaluation_config(path).model_copy(update={"methods": [f"model:{model_dir}"]})
    return [round(r["psnr"], 2) for r in evaluate(config).records if r["method"].startswith("model")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="Resources/Models/xr_slab25d", help="model directory")
    parser.add_argument("--no-held-out", action="store_true", help="score the training crops only")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for name in ("MedDenoiseLib", "xr_content_scale"):
        logging.getLogger(name).setLevel(logging.WARNING if name == "MedDenoiseLib" else logging.INFO)
    model, crops = load_model(args.model), training_crops()
    for factor in FACTORS:
        use_factor(factor)
        label = "card" if factor is None else f"k={factor:g}"
        logger.info("%s training crops, dose %s: PSNR %s dB", label, DOSES, training_psnr(model, crops))
        if not args.no_held_out:
            for path in HELD_OUT_CONFIGS:
                logger.info("%s %s: PSNR %s dB", label, path.rsplit("/", 1)[-1], held_out_psnr(args.model, path))
    use_factor(None)


if __name__ == "__main__":
    main()
