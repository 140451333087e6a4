"""Probe behind docs/training.md, "The MR model's noise-level input is where it should be" (session 14).

The shipped MR model conditions on the volume's estimated noise std (``model.noise_map``). This scales that
estimate by f = 0.6, 0.8, 1, 1.25 before the network sees it and prints PSNR (peak: the crop's maximum, foreground
above the 30th percentile, TTA 1, one Rician draw per level with seed 7) on a 16 x 128 x 128 foreground crop of the
held-out brain (pyradiomics_brain1) and of a training brain (colin27), at Rician 3 / 6 / 9 / 12 %. If the estimate
were biased on the held-out brain, a factor other than 1 would score higher there. Run from the repository root:

    python docs/probes/mr_noise_input.py
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from MedDenoiseLib.evaluation.cases import foreground_crop
from MedDenoiseLib.io import as_float, read_region
from MedDenoiseLib.models.card import load_model
from MedDenoiseLib.noise import simulate_noise
from MedDenoiseLib.pipeline import InferenceOptions, denoise_volume
from MedDenoiseLib.volume import Volume

logger = logging.getLogger("mr_noise_input")
CASES = {"held-out brain1": "../shared/data/mr/pyradiomics_brain1.nii.gz",
         "training colin27": "../shared/data/mr/mricron_ch2_colin27_t1.nii.gz"}
LEVELS = (3.0, 6.0, 9.0, 12.0)
FACTORS = (0.6, 0.8, 1.0, 1.25)


def crop(path: str) -> np.ndarray:
    volume = as_float(read_region(path))
    return np.ascontiguousarray(volume[foreground_crop(volume, (16, 128, 128))])


def psnr_row(model, clean: np.ndarray) -> list[float]:
    options = InferenceOptions(tta=1, device="cpu")
    foreground = clean > np.percentile(clean, 30)
    row = []
    for level in LEVELS:
        generator = torch.Generator().manual_seed(7)
        noisy = simulate_noise("mr", torch.from_numpy(clean.copy()), level=level, generator=generator).numpy()
        out = denoise_volume(Volume(noisy.astype(np.float32)), model, modality="mr", options=options).denoised.array
        error = float(np.mean((out - clean)[foreground] ** 2))
        row.append(round(float(10 * np.log10(float(clean.max()) ** 2 / error)), 2))
    return row


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logger.setLevel(logging.INFO)
    model = load_model("Resources/Models/mr_slab25d")
    factor = [1.0]
    model.network.register_forward_pre_hook(lambda module, args: (args[0], args[1] * factor[0]))
    crops = {name: crop(path) for name, path in CASES.items()}
    for factor[0] in FACTORS:
        for name, clean in crops.items():
            logger.info("estimate x %.2f, %s, Rician %s %%: PSNR %s dB", factor[0], name, LEVELS,
                        psnr_row(model, clean))


if __name__ == "__main__":
    main()
