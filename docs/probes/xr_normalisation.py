"""Probe behind docs/training.md, "The X-ray normalisation jumps 4 x with the noise" (session 13).

For the radiograph's training rows and the held-out crop of docs/configs/evaluate_xr_heldout.yaml, at dose 0.5 /
0.25 / 0.1: the normalisation scale, the std of (noisy - clean) over the foreground in normalised units, and the
conditioning noise estimate; with ``--model DIR`` also that model's PSNR on the held-out crop (TTA 1) with the noisy
image as simulated and clipped to 10 bits. Run from the repository root:

    python docs/probes/xr_normalisation.py --model checkpoints/xr_slab25d_anat/export   # v3; v4 is the shipped one
"""

from __future__ import annotations

import argparse
import logging

import numpy as np
import torch

from MedDenoiseLib.inference.noise_level import conditioning_noise_sigma
from MedDenoiseLib.io import as_float, read_region
from MedDenoiseLib.models.card import load_model
from MedDenoiseLib.noise import simulate_noise
from MedDenoiseLib.normalization import fit_normalization
from MedDenoiseLib.pipeline import InferenceOptions, denoise_volume
from MedDenoiseLib.volume import Volume

logger = logging.getLogger("xr_normalisation")
RADIOGRAPH = "../shared/data/xr/pydicom_tibia_cr.nii.gz"
DOSES = (0.5, 0.25, 0.1)


def _noisy(clean: np.ndarray, dose: float) -> np.ndarray:
    generator = torch.Generator().manual_seed(1)
    return simulate_noise("xr", torch.from_numpy(clean.copy()), level=dose, generator=generator).numpy()


def noise_table(name: str, clean: np.ndarray) -> None:
    foreground = clean > np.percentile(clean, 30)
    for dose in DOSES:
        noisy = _noisy(clean, dose)
        norm = fit_normalization(noisy, "xr")
        std = float(((noisy - clean) / norm.scale)[foreground].std())
        logger.info("%s dose %.2f: clean max %.0f, noisy max %.0f, scale %.0f, noise std %.4f, estimate %.4f",
                    name, dose, clean.max(), noisy.max(), norm.scale, std,
                    conditioning_noise_sigma(norm.forward(noisy)))


def model_table(model_dir: str, clean: np.ndarray, geometry) -> None:
    model = load_model(model_dir)
    options = InferenceOptions(roi_size=(1, 160, 160), tta=1, device="cpu")
    foreground = clean > np.percentile(clean, 30)
    for dose in DOSES:
        noisy = _noisy(clean, dose)
        for label, image in (("as simulated", noisy), ("clipped to 10 bits", np.clip(noisy, 0.0, 1023.0))):
            out = denoise_volume(Volume(image.astype(np.float32), geometry), model, modality="xr", options=options)
            error = (out.denoised.array - clean)[foreground]
            logger.info("%s dose %.2f %s: PSNR %.2f dB (peak 1023)", model.name, dose, label,
                        10 * np.log10(1023.0**2 / float(np.mean(error**2))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model directory to score on the held-out crop")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    held_out = read_region(RADIOGRAPH + "#y=1200:")
    crop = as_float(held_out)[:, 88:472, 688:1072]  # the crop docs/evaluation/xr_heldout reports
    noise_table("training rows", as_float(read_region(RADIOGRAPH + "#y=0:1100")))
    noise_table("held-out crop", crop)
    if args.model:
        model_table(args.model, crop, held_out.geometry)


if __name__ == "__main__":
    main()
