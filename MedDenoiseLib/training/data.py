"""Noisy/clean patch pairs drawn from whole volumes with on-the-fly physics noise.

Every ``refresh_every`` steps each volume gets a fresh noise realisation at a level drawn
from the configured range; normalisation is then fitted on the *noisy* volume, exactly as
inference will do on a user's scan, and both noisy and clean are mapped with it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from ..io import as_float, read_volume
from ..noise import random_modality_noise
from ..normalization import fit_normalization
from .config import TrainConfig

logger = logging.getLogger(__name__)


@dataclass
class NoisyPair:
    noisy: torch.Tensor  # (D, H, W) normalised
    clean: torch.Tensor
    foreground: torch.Tensor  # flat indices of voxels above the 30th percentile
    record: dict


class PatchSampler:
    """Draws (noisy, clean) batches of shape (B, 1, D, H, W) with an explicit generator."""

    def __init__(self, config: TrainConfig, generator: torch.Generator) -> None:
        self.config, self.generator = config, generator
        self.clean = [torch.from_numpy(as_float(read_volume(p))) for p in config.data.train]
        self.noise = random_modality_noise(config.noise.modality, level_range=tuple(config.noise.level_range),
                                           fast=config.noise.fast)
        self.pairs: list[NoisyPair] = []
        self.records: list[dict] = []

    def refresh(self, index: int) -> None:
        """New noise realisations for refresh number ``index``.

        Their generator is seeded from (config seed, index) rather than drawn from the
        batch generator, so a run resumed from a checkpoint rebuilds exactly the pairs
        the uninterrupted run was using.
        """
        generator = torch.Generator().manual_seed((self.config.seed * 1_000_003 + index) % 2**63)
        self.pairs = [self._noisy_pair(clean, generator) for clean in self.clean]
        self.records = [p.record for p in self.pairs]

    def _noisy_pair(self, clean: torch.Tensor, generator: torch.Generator) -> NoisyPair:
        noisy, record = self.noise(clean, generator=generator)
        norm = fit_normalization(noisy.numpy(), self.config.noise.modality)
        noisy_n = torch.from_numpy(norm.forward(noisy.numpy()))
        clean_n = torch.from_numpy(norm.forward(clean.numpy()))
        threshold = torch.quantile(clean_n.flatten()[:: max(1, clean_n.numel() // 100_000)], 0.3)
        return NoisyPair(noisy_n, clean_n, torch.nonzero(clean_n.flatten() > threshold).flatten(), record)

    def batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        d, h, w = self.config.data.patch_size
        noisy, clean = [], []
        for _ in range(self.config.data.batch_size):
            pair = self.pairs[int(torch.randint(len(self.pairs), (1,), generator=self.generator))]
            stride = self.config.data.slice_strides[
                int(torch.randint(len(self.config.data.slice_strides), (1,), generator=self.generator))]
            window = self._window(pair, (d, h, w), stride)
            noisy.append(pair.noisy[window])
            clean.append(pair.clean[window])
        noisy_b, clean_b = torch.stack(noisy)[:, None], torch.stack(clean)[:, None]
        return self._augment(noisy_b, clean_b)

    def _window(self, pair: NoisyPair, size: tuple[int, int, int], stride: int) -> tuple:
        shape = pair.noisy.shape
        use_fg = torch.rand((), generator=self.generator) < self.config.data.foreground_fraction
        if use_fg and pair.foreground.numel():
            flat = pair.foreground[int(torch.randint(pair.foreground.numel(), (1,), generator=self.generator))]
            centre = np.unravel_index(int(flat), shape)
        else:
            centre = [int(torch.randint(s, (1,), generator=self.generator)) for s in shape]
        slices = []
        for axis, (c, s, n) in enumerate(zip(centre, size, shape)):
            step = stride if axis == 0 else 1
            extent = (s - 1) * step + 1
            if extent > n:  # axis too short (single slice, thin volume): repeat indices by clamping
                idx = torch.clamp(torch.arange(s) * step + c - extent // 2, 0, n - 1)
            else:
                start = int(np.clip(c - extent // 2, 0, n - extent))
                idx = torch.arange(start, start + extent, step)
            slices.append(idx)
        return np.ix_(*[i.numpy() for i in slices])

    def _augment(self, noisy: torch.Tensor, clean: torch.Tensor):
        for dim in (2, 3, 4):
            if torch.rand((), generator=self.generator) < 0.5:
                noisy, clean = noisy.flip(dim), clean.flip(dim)
        scale = 0.8 + 0.4 * torch.rand((noisy.shape[0], 1, 1, 1, 1), generator=self.generator)
        return noisy * scale, clean * scale
