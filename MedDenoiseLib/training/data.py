"""Noisy/clean patch pairs drawn from whole volumes with on-the-fly physics noise.

Every ``refresh_every`` steps each volume gets a fresh noise realisation at a level drawn
from the configured range; normalisation is then fitted on the *noisy* volume, exactly as
inference will do on a user's scan, and both noisy and clean are mapped with it.

Self-supervised runs (``n2v``/``n2s``) without ``noise.level_range`` read the training volumes
as the noisy scans themselves: there is no clean image and batches carry ``clean=None``.

Models with ``model.noise_map`` are conditioned on the noise level the way inference conditions
them: ``inference.noise_level.conditioning_noise_sigma`` of the whole normalised noisy volume, scaled
with the sample by the intensity augmentation and spread by ``noise.estimate_jitter``.

With ``noise.reference_level_range`` each clean reference first gets its own acquisition noise, clamped
below at the reference's minimum, from a generator of its own (seeded from the seed and refresh index, so the
training noise draws are those of the same run without it); the record is then ``{"reference_noise": ...,
"training_noise": ...}``, replayed in that order. The loss compares with that noisier reference, so the
model learns to keep the texture a real reference carries.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import NamedTuple, Optional

import numpy as np
import torch

from ..errors import ConfigError, rule_message
from ..inference.noise_level import conditioning_noise_sigma
from ..io import as_float, read_region
from ..noise import random_modality_noise
from ..normalization import fit_normalization
from .augment import augment_batch, elastic_deform, isotropic_in_plane
from .config import TrainConfig

logger = logging.getLogger(__name__)


@dataclass
class NoisyPair:
    noisy: torch.Tensor  # (D, H, W) normalised
    clean: Optional[torch.Tensor]  # None for noisy-only volumes
    foreground: torch.Tensor  # flat indices of voxels above the 30th percentile
    record: dict
    isotropic: bool = False  # in-plane spacing isotropic (rot90 allowed)
    level: float = 0.0  # estimated noise std of the normalised noisy volume (conditioned models only)


class SampledBatch(NamedTuple):
    """One training batch: (B, 1, D, H, W) inputs and targets, and the (B,) noise levels of conditioned models."""

    noisy: torch.Tensor
    clean: Optional[torch.Tensor]  # None for noisy-only volumes
    noise_level: Optional[torch.Tensor] = None  # None unless model.noise_map


def conditions_on_noise_level(config: TrainConfig) -> bool:
    """Whether the configured network takes a noise-level input (``model.noise_map``)."""
    return bool(config.model.get("noise_map", False))


def foreground_indices(image: torch.Tensor) -> torch.Tensor:
    """Flat indices of voxels above the 30th percentile (estimated on <= 100 000 voxels)."""
    threshold = torch.quantile(image.flatten()[:: max(1, image.numel() // 100_000)], 0.3)
    return torch.nonzero(image.flatten() > threshold).flatten()


def patch_window(shape, size: tuple[int, int, int], stride: int, centre) -> tuple:
    """Index arrays (np.ix_) of a patch of ``size`` around ``centre``; short axes repeat edge indices."""
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


def draw_centre(shape, foreground: torch.Tensor, foreground_fraction: float, generator: torch.Generator):
    """A patch centre: a foreground voxel with probability ``foreground_fraction``, else uniform."""
    use_fg = torch.rand((), generator=generator) < foreground_fraction
    if use_fg and foreground.numel():
        flat = foreground[int(torch.randint(foreground.numel(), (1,), generator=generator))]
        return np.unravel_index(int(flat), shape)
    return [int(torch.randint(s, (1,), generator=generator)) for s in shape]


def _check_no_repeats(path: str, shape: tuple[int, int, int], config: TrainConfig) -> None:
    """Blind-spot training needs every patch voxel distinct: a repeated voxel would show the masked value."""
    d, h, w = config.data.patch_size
    depth = (d - 1) * max(config.data.slice_strides) + 1
    if depth > shape[0] or h > shape[1] or w > shape[2]:
        raise ConfigError(rule_message(f"data.patch_size for {path}", "must fit inside the volume (x the largest "
                                       f"slice stride) for algorithm {config.algorithm!r}",
                                       {"patch": (d, h, w), "strides": tuple(config.data.slice_strides),
                                        "volume (D, H, W)": shape},
                                       "Use a smaller patch (depth 1 with loss_margin 0 for single slices)."))


def training_noise(config: TrainConfig, level_range: tuple[float, float], draw: str = "uniform"):
    """The run's noise sampler over ``level_range``: its modality, ``noise.fast`` and ``noise.options``, levels
    drawn by ``draw``."""
    return random_modality_noise(config.noise.modality, level_range=level_range, fast=config.noise.fast, draw=draw,
                                 **config.noise.options)


def _reference_noise(config: TrainConfig):
    """The sampler of the references' own noise (``noise.reference_level_range``), or None."""
    reference_range = config.noise.reference_level_range
    if reference_range is None:
        return None
    try:
        return training_noise(config, tuple(reference_range))
    except ConfigError as error:
        raise ConfigError(rule_message("noise.reference_level_range", f"must be a valid {config.noise.modality} "
                                       f"noise range ({error})", tuple(reference_range),
                                       "Use the unit of noise.level_range, e.g. [0.25, 1.0] for a ct or xr "
                                       "dose fraction, [1.0, 4.0] for mr sigma_percent.")) from error


MAGNITUDE_MODALITIES = ("mr", "us", "xr")
"""Noise models that need non-negative images: Rician magnitudes, speckled intensities, Poisson counts."""


US_DISPLAY_RANGE = (0.0, 255.0)
"""B-mode display values ultrasound speckle acts on (``MedDenoiseLib.noise.speckle``)."""


def _check_magnitudes(config: TrainConfig, images: list[torch.Tensor]) -> None:
    """Refuse, before any noise is drawn, training images the modality's noise model cannot take."""
    modality = config.noise.modality
    low, high = US_DISPLAY_RANGE if modality == "us" else (0.0, float("inf"))
    for path, image in zip(config.data.train, images):
        lowest, top = float(image.min()), float(image.max())
        if lowest >= low and top <= high:
            continue
        if modality == "us":
            rule, fix = ("must lie in [0, 255] (B-mode display values) for us noise",
                         "Set data.rescale_to: [0, 255] to use it as anatomy, or remove it.")
        else:
            rule, fix = (f"must be non-negative for {modality} noise",
                         "Set data.shift_to_nonnegative: true (or data.rescale_to) to use it as anatomy (e.g. CT in "
                         "HU), or remove it.")
        raise ConfigError(rule_message(f"data.train entry {path!r}", rule,
                                       f"minimum {lowest:.6g}, maximum {top:.6g}", fix))


def shift_to_nonnegative(path: str, image):
    """``image - min`` when its minimum is below 0 (logged with the shift), else ``image`` itself (a tensor or
    an array)."""
    lowest = float(image.min())
    if lowest >= 0.0:
        return image
    logger.info("data.shift_to_nonnegative: %s shifted up by %.6g (its minimum)", path, -lowest)
    return image - lowest


RESCALE_UPPER_PERCENTILE = 99.5


def rescale_to_range(path: str, image, bounds: tuple[float, float]):
    """``image`` mapped linearly onto ``bounds`` (``data.rescale_to``) as float32: its minimum to the low end, its
    99.5th percentile to the high end, brighter voxels clipped; ``image`` itself when already inside (a tensor or
    an array). Non-finite values are refused."""
    low, high = float(bounds[0]), float(bounds[1])
    values = image.numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if not np.isfinite(values).all():
        raise ConfigError(rule_message(f"training image {path!r}", "must be finite to be rescaled (data.rescale_to)",
                                       f"{int((~np.isfinite(values)).sum())} NaN/Inf voxels",
                                       "Replace them (e.g. by the background value) or drop the image."))
    lowest, top = float(values.min()), float(values.max())
    if lowest >= low and top <= high:
        return image
    upper = float(np.percentile(values, RESCALE_UPPER_PERCENTILE))
    if upper <= lowest:
        raise ConfigError(rule_message(f"training image {path!r}", "must have its 99.5th percentile above its "
                                       "minimum to be rescaled (data.rescale_to)",
                                       f"minimum {lowest:.6g}, 99.5th percentile {upper:.6g}",
                                       "Drop it from the training images (data.train, or --data)."))
    logger.info("data.rescale_to: %s mapped from [%.6g, %.6g] (minimum, 99.5th percentile) onto [%g, %g]",
                path, lowest, upper, low, high)
    scale = (high - low) / (upper - lowest)
    if isinstance(image, torch.Tensor):
        return ((image.float() - lowest) * scale + low).clamp(low, high)
    return np.clip((values.astype(np.float32) - lowest) * scale + low, low, high).astype(np.float32)


def map_intensities(path: str, image, *, shift: bool = False, rescale: Optional[tuple[float, float]] = None):
    """A training reference as training reads it: ``data.shift_to_nonnegative`` or ``data.rescale_to``."""
    if shift:
        return shift_to_nonnegative(path, image)
    if rescale is not None:
        return rescale_to_range(path, image, rescale)
    return image


class PatchSampler:
    """Draws (noisy, clean) batches of shape (B, 1, D, H, W) with an explicit generator."""

    def __init__(self, config: TrainConfig, generator: torch.Generator) -> None:
        self.config, self.generator = config, generator
        volumes = [read_region(p) for p in config.data.train]
        self.clean = [torch.from_numpy(as_float(v)) for v in volumes]
        self.clean = [map_intensities(path, image, shift=config.data.shift_to_nonnegative,
                                      rescale=config.data.rescale_to)
                      for path, image in zip(config.data.train, self.clean)]
        if config.noise.level_range is not None and config.noise.modality in MAGNITUDE_MODALITIES:
            _check_magnitudes(config, self.clean)
        self.isotropic = [isotropic_in_plane(v.geometry.spacing) for v in volumes]
        self.simulate = config.noise.level_range is not None
        self.noise = (training_noise(config, tuple(config.noise.level_range), config.noise.level_draw)
                      if self.simulate else None)
        self.reference_noise = _reference_noise(config)
        self.conditioned = conditions_on_noise_level(config)
        self.pairs: list[NoisyPair] = []
        self.records: list[dict] = []
        if config.algorithm != "supervised":
            for path, volume in zip(config.data.train, self.clean):
                _check_no_repeats(path, tuple(volume.shape), config)

    def refresh(self, index: int) -> None:
        """New noise realisations for refresh number ``index``.

        Their generator is seeded from (config seed, index) rather than drawn from the
        batch generator, so a run resumed from a checkpoint rebuilds exactly the pairs
        the uninterrupted run was using. Noisy-only volumes are prepared once.
        """
        if not self.simulate:
            if not self.pairs:
                self.pairs = [self._noisy_only(v, iso) for v, iso in zip(self.clean, self.isotropic)]
                self.records = [p.record for p in self.pairs]
            return
        generator = torch.Generator().manual_seed((self.config.seed * 1_000_003 + index) % 2**63)
        reference_generator = torch.Generator().manual_seed((self.config.seed * 1_000_039 + 104_729 * index) % 2**63)
        self.pairs = [self._noisy_pair(clean, iso, generator, reference_generator)
                      for clean, iso in zip(self.clean, self.isotropic)]
        self.records = [p.record for p in self.pairs]

    def _noisy_pair(self, clean: torch.Tensor, isotropic: bool, generator: torch.Generator,
                    reference_generator: torch.Generator) -> NoisyPair:
        augment = self.config.data.augment
        if augment.elastic_probability > 0 and torch.rand((), generator=generator) < augment.elastic_probability:
            clean = elastic_deform(clean, magnitude=augment.elastic_magnitude,
                                   control_points=augment.elastic_control_points, generator=generator)
        reference_record = None
        if self.reference_noise is not None:
            clean, reference_record = self._noisy_reference(clean, reference_generator)
        noisy, record = self.noise(clean, generator=generator)
        if reference_record is not None:
            record = {"reference_noise": reference_record, "training_noise": record}
        norm = fit_normalization(noisy.numpy(), self.config.noise.modality, self.config.data.normalization)
        noisy_n = torch.from_numpy(norm.forward(noisy.numpy()))
        clean_n = torch.from_numpy(norm.forward(clean.numpy()))
        return NoisyPair(noisy_n, clean_n, foreground_indices(clean_n), record, isotropic, self._level(noisy_n))

    def _noisy_reference(self, clean: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, dict]:
        """``clean`` with its own acquisition noise, clamped below at the image's minimum (a detector or
        magnitude image stays >= 0, as the training noise needs). Levels taken relative to the maximum
        (MR sigma_percent, X-ray counts) then see the noisy reference's maximum, a few % higher."""
        noisy, record = self.reference_noise(clean, generator=generator)
        low = float(clean.min())
        return noisy.clamp_min(low), {**record, "clamped_below": low}

    def _noisy_only(self, noisy: torch.Tensor, isotropic: bool) -> NoisyPair:
        norm = fit_normalization(noisy.numpy(), self.config.noise.modality, self.config.data.normalization)
        noisy_n = torch.from_numpy(norm.forward(noisy.numpy()))
        return NoisyPair(noisy_n, None, foreground_indices(noisy_n), {"noise": "as acquired"}, isotropic,
                         self._level(noisy_n))

    def _level(self, noisy_n: torch.Tensor) -> float:
        """The estimate inference conditions on (whole normalised volume); 0 for models without a noise map."""
        return conditioning_noise_sigma(noisy_n.numpy()) if self.conditioned else 0.0

    def batch(self, step: int = 0) -> SampledBatch:
        """One augmented batch; ``clean`` is None for noisy-only volumes, ``noise_level`` None for blind models.

        A conditioned model's level travels through the augmentation as a constant extra channel of the
        noisy patch, so it is scaled exactly like the intensities; then one log-normal jitter factor per
        sample is drawn from a generator seeded from (seed, ``step``), not from the batch generator: blind
        runs replay unchanged, a resumed run redraws the same factors, and a conditioned run sees the same
        patches as its blind control.
        """
        d, h, w = self.config.data.patch_size
        noisy, clean, iso = [], [], []
        for _ in range(self.config.data.batch_size):
            pair = self.pairs[int(torch.randint(len(self.pairs), (1,), generator=self.generator))]
            stride = self.config.data.slice_strides[
                int(torch.randint(len(self.config.data.slice_strides), (1,), generator=self.generator))]
            centre = draw_centre(pair.noisy.shape, pair.foreground, self.config.data.foreground_fraction,
                                 self.generator)
            window = patch_window(pair.noisy.shape, (d, h, w), stride, centre)
            patch = pair.noisy[window]
            noisy.append(torch.stack([patch, torch.full_like(patch, pair.level)]) if self.conditioned else patch[None])
            if pair.clean is not None:
                clean.append(pair.clean[window])
            iso.append(pair.isotropic)
        noisy_b = torch.stack(noisy)
        clean_b = torch.stack(clean)[:, None] if len(clean) == len(noisy) else None
        noisy_b, clean_b = augment_batch(noisy_b, clean_b, config=self.config.data.augment,
                                         isotropic=torch.tensor(iso), generator=self.generator)
        if not self.conditioned:
            return SampledBatch(noisy_b, clean_b)
        jitter_generator = torch.Generator().manual_seed((self.config.seed * 1_000_033 + 7919 * step) % 2**63)
        jitter = torch.exp(self.config.noise.estimate_jitter
                           * torch.randn(noisy_b.shape[0], generator=jitter_generator))
        return SampledBatch(noisy_b[:, :1], clean_b, noisy_b[:, 1, 0, 0, 0] * jitter)
