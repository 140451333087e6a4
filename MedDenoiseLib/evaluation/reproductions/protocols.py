"""Gondara 2016 (CNN-DAE) and NIT Raipur (per-modality CAE) protocols on the shared data.

Both corrupt [0, 1] images with the papers' additive protocol (``MedDenoiseLib.noise.seed_protocols``),
train the paper's autoencoder on a patient-level training split, and score the test split.
Training choices the papers do not pin down are ours and recorded in the results: Adam
(lr 1e-3), mean-squared error, fresh noise every epoch, seeded initialisation.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch

from ...baselines import denoise_median, denoise_nlm
from ...metrics import compare_paired, holm_bonferroni, mae, psnr, ssim
from ...noise import add_gondara_gaussian_noise, add_gondara_poisson_noise, seed_protocol
from .data2d import SPLITS, load_split
from .train2d import predict, train_autoencoder

logger = logging.getLogger(__name__)

__all__ = ["GONDARA_SETTINGS", "run_gondara", "run_nit_raipur", "PAPER_EPOCHS"]

PAPER_EPOCHS = 100
GONDARA_SETTINGS = (
    {"label": "p=0.1, σ=1", "kind": "gaussian", "p": 0.1, "sigma": 1.0},
    {"label": "p=0.5, σ=1", "kind": "gaussian", "p": 0.5, "sigma": 1.0},
    {"label": "p=0.2, σ=5", "kind": "gaussian", "p": 0.2, "sigma": 5.0},
    {"label": "p=0.2, σ=10", "kind": "gaussian", "p": 0.2, "sigma": 10.0},
    {"label": "Poisson λ=5, p=0.2", "kind": "poisson", "p": 0.2, "lam": 5.0},
)


def _gondara_noise(setting: dict):
    if setting["kind"] == "poisson":
        return lambda x, g: add_gondara_poisson_noise(x, setting["p"], setting["lam"], generator=g)
    return lambda x, g: add_gondara_gaussian_noise(x, setting["p"], generator=g, sigma=setting["sigma"])


def _noisy_test(images: np.ndarray, noise, seed: int) -> np.ndarray:
    generator = torch.Generator().manual_seed(seed)
    return noise(torch.from_numpy(images)[:, None, None], generator)[:, 0, 0].numpy()


def _stats(values: list[float]) -> dict:
    v = np.asarray(values, dtype=np.float64)
    return {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if v.size > 1 else math.nan, "values": v.tolist()}


def _score(clean: np.ndarray, out: np.ndarray) -> dict[str, list[float]]:
    return {"ssim": [ssim(c, o, data_range=1.0) for c, o in zip(clean, out)],
            "psnr": [psnr(c, o, data_range=1.0) for c, o in zip(clean, out)],
            "mae": [mae(c, o) for c, o in zip(clean, out)]}


def run_gondara(root, *, epochs: int = PAPER_EPOCHS, batch_size: int = 10, per_volume: int = 20,
                seed: int = 2016) -> dict:
    """Mean SSIM of noisy, NL-means, median and ``cdae`` for the five Gondara settings (64 x 64)."""
    train, test = load_split("gondara2016", "all", root, 64, per_volume=per_volume)
    rows, comparisons = [], []
    for k, setting in enumerate(GONDARA_SETTINGS):
        noise = _gondara_noise(setting)
        model, history = train_autoencoder({"name": "cdae", "pool_depth": False}, train.images, noise,
                                           epochs=epochs, batch_size=batch_size, seed=seed + k)
        noisy = _noisy_test(test.images, noise, seed=10_000 + seed + k)
        outputs = {"noisy": noisy, "nl_means": np.stack([denoise_nlm(n) for n in noisy]),
                   "median": np.stack([denoise_median(n, radius=1) for n in noisy]), "cdae": predict(model, noisy)}
        scores = {name: _score(test.images, out) for name, out in outputs.items()}
        rows.append({"setting": setting, "final_loss": history[-1] if history else None,
                     "methods": {name: {m: _stats(v) for m, v in s.items()} for name, s in scores.items()}})
        for other in ("noisy", "nl_means", "median"):
            c = compare_paired(scores["cdae"]["ssim"], scores[other]["ssim"], seed=seed)
            comparisons.append({"setting": setting["label"], "other": other, **c.to_dict()})
        logger.info("Gondara %s: SSIM %s", setting["label"],
                    {n: round(float(np.mean(s["ssim"])), 4) for n, s in scores.items()})
    for row, p in zip(comparisons, holm_bonferroni([c["p_value"] for c in comparisons])):
        row["p_holm"] = p
    return {"protocol": "gondara2016", "image_size": 64, "epochs": epochs, "paper_epochs": PAPER_EPOCHS,
            "batch_size": batch_size, "seed": seed, "split": SPLITS["gondara2016"]["all"],
            "n_train_images": int(train.images.shape[0]), "n_test_images": int(test.images.shape[0]),
            "test_subjects": test.subjects, "training": "Adam lr 1e-3, MSE, fresh noise each epoch",
            "baselines": {"nl_means": "denoise_nlm (scikit-image, h = 0.8 x estimated sigma, 5x5 patches, radius 6)",
                          "median": "denoise_median radius 1 (3 x 3, SimpleITK)"},
            "rows": rows, "comparisons": comparisons}


def run_nit_raipur(root, *, epochs: int = PAPER_EPOCHS, batch_size: int = 10, per_volume: int = 20,
                   seed: int = 2024, base_channels: int = 64) -> dict:
    """PSNR / SSIM / MAE of the per-modality ``cae`` at 128 x 128 under clip(x + 0.3 N(0, 1.5²))."""
    protocol = seed_protocol("nit_raipur")
    noise = lambda x, g: protocol(x, generator=g)  # noqa: E731
    per_modality = {}
    for k, modality in enumerate(SPLITS["nit_raipur"]):
        train, test = load_split("nit_raipur", modality, root, 128, per_volume=per_volume)
        model, history = train_autoencoder({"name": "cae", "base_channels": base_channels, "pool_depth": False},
                                           train.images, noise, epochs=epochs, batch_size=batch_size, seed=seed + k)
        noisy = _noisy_test(test.images, noise, seed=20_000 + seed + k)
        scores = {"noisy": _score(test.images, noisy), "cae": _score(test.images, predict(model, noisy))}
        per_modality[modality] = {"n_train_images": int(train.images.shape[0]), "test_subjects": test.subjects,
                                  "final_loss": history[-1] if history else None,
                                  "methods": {n: {m: _stats(v) for m, v in s.items()} for n, s in scores.items()}}
        logger.info("NIT Raipur %s: CAE PSNR %.2f SSIM %.4f", modality,
                    np.mean(scores["cae"]["psnr"]), np.mean(scores["cae"]["ssim"]))
    return {"protocol": "nit_raipur", "image_size": 128, "noise": protocol.params(), "epochs": epochs,
            "paper_epochs": None, "full_run_epochs": PAPER_EPOCHS, "batch_size": batch_size, "base_channels": base_channels, "seed": seed,
            "split": SPLITS["nit_raipur"], "training": "Adam lr 1e-3, MSE, fresh noise each epoch",
            "modalities": per_modality,
            "skipped": {"xr": "one X-ray subject in the shared data: no patient-level split possible"}}
