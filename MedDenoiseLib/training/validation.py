"""Deterministic validation: held-out volumes, fixed noise seeds, fixed patch positions.

Each validation volume (another patient than the training ones) is noised once per level with
a generator seeded from ``(validation.seed, volume index, level index)``, normalised like at
inference (fitted on the noisy volume), and cut into ``validation.patches`` foreground-weighted
patches whose positions come from the same seed. Scores use ``MedDenoiseLib.metrics`` in
normalised units (``data_range = 1``), skipping ``data.loss_margin`` slices at each depth end;
the noisy input is scored the same way once, as the baseline to beat.
"""

from __future__ import annotations

import logging
import math
from contextlib import nullcontext
from typing import Callable, ContextManager

import numpy as np
import torch

from ..inference.noise_level import conditioning_noise_sigma
from ..io import as_float, read_region
from ..metrics import psnr, ssim
from ..normalization import fit_normalization
from .config import TrainConfig
from .data import (conditions_on_noise_level, draw_centre, foreground_indices, map_intensities, patch_window,
                   training_noise)

logger = logging.getLogger(__name__)

__all__ = ["ValidationSet", "validation_levels"]


def validation_levels(config: TrainConfig) -> list[float]:
    """``validation.levels``, else low end, middle and high end of ``noise.level_range`` (the geometric middle for
    ``noise.level_draw: log_uniform``, the median of its draws)."""
    if config.validation.levels is not None:
        return [float(v) for v in config.validation.levels]
    low, high = config.noise.level_range
    middle = math.sqrt(low * high) if config.noise.level_draw == "log_uniform" else (low + high) / 2
    return sorted({float(low), float(middle), float(high)})


class ValidationSet:
    """Fixed (noisy, clean) validation patches and their noisy-input baseline scores."""

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.levels = validation_levels(config)
        size = tuple(config.validation.patch_size or config.data.patch_size)
        conditioned = conditions_on_noise_level(config)
        noisy_patches, clean_patches, estimates = [], [], []
        for v, path in enumerate(config.data.validation):
            clean = map_intensities(path, torch.from_numpy(as_float(read_region(path))),
                                    shift=config.data.shift_to_nonnegative, rescale=config.data.rescale_to)
            for k, level in enumerate(self.levels):
                generator = torch.Generator().manual_seed(config.validation.seed * 1_000_003 + 1009 * v + k)
                noise = training_noise(config, (level, level))
                noisy, _ = noise(clean, generator=generator)
                norm = fit_normalization(noisy.numpy(), config.noise.modality, config.data.normalization)
                noisy_n = torch.from_numpy(norm.forward(noisy.numpy()))
                clean_n = torch.from_numpy(norm.forward(clean.numpy()))
                foreground = foreground_indices(clean_n)
                estimate = conditioning_noise_sigma(noisy_n.numpy()) if conditioned else 0.0
                for _ in range(config.validation.patches):
                    centre = draw_centre(clean_n.shape, foreground, config.data.foreground_fraction, generator)
                    window = patch_window(clean_n.shape, size, 1, centre)
                    noisy_patches.append(noisy_n[window])
                    clean_patches.append(clean_n[window])
                    estimates.append(estimate)
        self.noisy = torch.stack(noisy_patches)[:, None] if noisy_patches else torch.empty(0)
        self.clean = torch.stack(clean_patches)[:, None] if clean_patches else torch.empty(0)
        # models with model.noise_map get the estimate inference would give them (no jitter here)
        self.noise_level = torch.tensor(estimates) if conditioned else None
        self.baseline = self.score(self.noisy) if len(self) else {}
        if len(self):
            logger.info("validation: %d patches, noisy input PSNR %.2f dB SSIM %.4f", len(self),
                        self.baseline["psnr"], self.baseline["ssim"])

    def __len__(self) -> int:
        return int(self.noisy.shape[0]) if self.noisy.ndim == 5 else 0

    def score(self, prediction: torch.Tensor) -> dict[str, float]:
        """Mean PSNR (dB) and SSIM of ``prediction`` against the clean patches (inner slices)."""
        m = self.config.data.loss_margin
        depth = self.clean.shape[2]
        values = {"psnr": [], "ssim": []}
        for pred, ref in zip(prediction[:, 0, m:depth - m].numpy(), self.clean[:, 0, m:depth - m].numpy()):
            values["psnr"].append(min(psnr(ref, pred, data_range=1.0), 100.0))
            values["ssim"].append(ssim(ref, pred, data_range=1.0, spatial_dims=3 if ref.shape[0] >= 11 else 2))
        return {k: float(np.mean(v)) for k, v in values.items()}

    @torch.no_grad()
    def evaluate(self, model: torch.nn.Module, *, device: torch.device,
                 autocast: Callable[[], ContextManager] = nullcontext, batch_size: int = 4) -> dict[str, float]:
        """Scores of ``model`` (put in eval mode, restored afterwards) plus the noisy baseline.

        ``autocast`` makes a fresh mixed-precision context per forward pass (default: none).
        """
        was_training = model.training
        model.eval()
        outputs = []
        try:
            for start in range(0, len(self), batch_size):
                chunk = self.noisy[start:start + batch_size].to(device)
                arguments = (chunk,) if self.noise_level is None else \
                    (chunk, self.noise_level[start:start + batch_size].to(device))
                with autocast():
                    outputs.append(model(*arguments).float().cpu())
        finally:
            model.train(was_training)
        scores = self.score(torch.cat(outputs))
        scores.update({f"noisy_{k}": v for k, v in self.baseline.items()})
        return scores
