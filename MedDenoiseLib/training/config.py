"""Validated, versioned training configuration (pydantic v2, extra keys forbidden).

One root object, :class:`TrainConfig`, holds every choice of a run; YAML in and out with
:func:`load_config` / :func:`dump_config`. Cross-field rules are one small validator each and
their messages name the field, the rule, the value and a fix. For the common cases use the
factories in :mod:`MedDenoiseLib.training.factories`.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any, Literal, Optional

import yaml
from pydantic import Field, ValidationError, model_validator

from ..errors import ConfigError, rule_message
from ..io.regions import split_region
from .config_sections import (
    Algorithm,
    AugmentConfig,
    DataConfig,
    LogConfig,
    LossConfig,
    MaskingConfig,
    Modality,
    NoiseConfig,
    OptimConfig,
    ValidationConfig,
    _Strict,
)

__all__ = ["Algorithm", "AugmentConfig", "DataConfig", "LogConfig", "LossConfig", "MaskingConfig", "Modality",
           "NoiseConfig", "OptimConfig", "TrainConfig", "ValidationConfig", "dump_config", "load_config",
           "ssim_window"]


def ssim_window(sigma: float) -> int:
    """Side of the Gaussian SSIM window for ``sigma`` (11 for 1.5, as in metrics.ssim)."""
    return 2 * int(3.5 * sigma + 0.5) + 1


class TrainConfig(_Strict):
    """Root config: version, algorithm, model, data, noise, loss, masking, optimisation, validation, logs."""

    version: Literal[1] = 1
    name: str
    algorithm: Algorithm = "supervised"
    """``supervised`` (noisy/clean pairs), ``n2v`` (Noise2Void blind spots) or ``n2s`` (Noise2Self grid)."""
    model: dict[str, Any]
    init: Optional[str] = None
    """Start from these weights: a shipped model name, a model directory, or a run's checkpoint
    directory (two-stage training: supervised pre-training, then self-supervised fine-tuning)."""
    data: DataConfig
    noise: NoiseConfig
    loss: LossConfig = LossConfig()
    masking: MaskingConfig = MaskingConfig()
    optim: OptimConfig = OptimConfig()
    validation: ValidationConfig = ValidationConfig()
    logs: LogConfig = LogConfig()
    seed: int = Field(default_factory=lambda: secrets.randbelow(2**31))
    """Drawn and saved when not given, so every run is replayable."""
    checkpoint_every: int = Field(default=50, ge=1)
    threads: int = Field(default=0, ge=0)
    """torch CPU threads (0 = leave torch's default)."""
    device: str = "auto"
    """'auto' (CUDA when present), 'cpu' or 'cuda[:N]'; under torchrun each rank uses its LOCAL_RANK GPU."""

    @model_validator(mode="after")
    def _patch_leaves_loss_slices(self) -> "TrainConfig":
        depth = self.data.patch_size[0]
        if depth - 2 * self.data.loss_margin < 1:
            raise ValueError(f"data.patch_size depth must exceed 2 x loss_margin; got depth {depth} and margin "
                             f"{self.data.loss_margin}. Use depth 5 with margin 1.")
        return self

    @model_validator(mode="after")
    def _model_has_name(self) -> "TrainConfig":
        if "name" not in self.model:
            raise ValueError(f"model must name an architecture; got {self.model}. Add name: slab25d.")
        return self

    @model_validator(mode="after")
    def _supervised_needs_noise(self) -> "TrainConfig":
        if self.algorithm == "supervised" and self.noise.level_range is None:
            raise ValueError(rule_message("noise.level_range", "must be set for algorithm 'supervised'", None,
                                          "Give the simulated noise range, e.g. [1.0, 12.0] for MR, or use "
                                          "algorithm: n2v for already-noisy scans."))
        return self

    @model_validator(mode="after")
    def _rescale_fits_the_noise(self) -> "TrainConfig":
        bounds, modality = self.data.rescale_to, self.noise.modality
        if bounds is None:
            return self
        if modality == "ct":
            raise ValueError(rule_message("data.rescale_to", "must not be set for ct noise (the CT noise model reads "
                                          "HU)", bounds, "Remove it; CT volumes in HU need no map."))
        if bounds[0] < 0.0:
            raise ValueError(rule_message("data.rescale_to", f"must start at 0 or above for {modality} noise "
                                          "(it needs non-negative values)", bounds, "Use e.g. [0, 255]."))
        if modality == "us" and bounds[1] > 255.0:
            raise ValueError(rule_message("data.rescale_to", "must end at 255 or below for us noise (speckle acts "
                                          "on B-mode display values in [0, 255])", bounds, "Use [0, 255]."))
        return self

    @model_validator(mode="after")
    def _shift_is_for_magnitudes(self) -> "TrainConfig":
        if self.data.normalization == "xr_percentile" and self.noise.modality != "xr":
            raise ValueError(rule_message("data.normalization", "must be 'default' unless noise.modality is xr",
                                          f"xr_percentile with noise.modality {self.noise.modality}",
                                          "Set data.normalization: default, or noise.modality: xr."))
        if self.data.shift_to_nonnegative and self.noise.modality == "ct":
            raise ValueError(rule_message("data.shift_to_nonnegative", "must be false for ct noise (the CT noise "
                                          "model reads HU: shifted air would read as water)", True,
                                          "Remove it; CT volumes in HU need no shift."))
        return self

    @model_validator(mode="after")
    def _reference_noise_is_supervised(self) -> "TrainConfig":
        if self.noise.reference_level_range is not None and self.algorithm != "supervised":
            raise ValueError(rule_message("noise.reference_level_range", "needs algorithm 'supervised' (it noises "
                                          "the clean references)", self.noise.reference_level_range,
                                          "Remove it, or use algorithm: supervised."))
        noise_terms = {k: getattr(self.loss, k) for k in ("noise_nll", "error_nll") if getattr(self.loss, k)}
        if self.noise.reference_level_range is not None and noise_terms:
            raise ValueError(rule_message("noise.reference_level_range", "cannot be combined with loss.noise_nll "
                                          "or loss.error_nll (they would fit only the training part of the noise)",
                                          noise_terms, "Set those weights to 0, or drop reference_level_range."))
        return self

    @model_validator(mode="after")
    def _patient_level_split(self) -> "TrainConfig":
        shared = sorted({_key(p) for p in self.data.train} & {_key(p) for p in self.data.validation})
        if shared:
            raise ValueError(rule_message("data.validation", "must not share volumes with data.train "
                                          "(patient-level split)", shared, "Move each patient to one list only."))
        return self

    @model_validator(mode="after")
    def _validation_has_levels(self) -> "TrainConfig":
        if self.data.validation and self.validation.levels is None and self.noise.level_range is None:
            raise ValueError(rule_message("validation.levels", "must be set when noise.level_range is None and "
                                          "data.validation is not empty", None,
                                          "List the validation noise levels, e.g. levels: [5.0] for MR."))
        return self

    @model_validator(mode="after")
    def _ssim_window_fits(self) -> "TrainConfig":
        window = ssim_window(self.loss.ssim_sigma)
        in_plane = min(self.data.patch_size[1:])
        if self.loss.ssim > 0 and in_plane < window:
            raise ValueError(rule_message("data.patch_size (H, W)", f"must be >= the {window}-voxel SSIM window "
                                          "when loss.ssim > 0", tuple(self.data.patch_size[1:]),
                                          "Use larger patches or a smaller loss.ssim_sigma."))
        return self

    @model_validator(mode="after")
    def _validation_patch_fits_metrics(self) -> "TrainConfig":
        size = self.validation.patch_size or self.data.patch_size
        if self.data.validation and (min(size[1:]) < 11 or size[0] - 2 * self.data.loss_margin < 1):
            raise ValueError(rule_message("validation.patch_size", "must be >= 11 in H and W (SSIM window) and "
                                          "deeper than 2 x data.loss_margin", tuple(size),
                                          "Use e.g. validation.patch_size [5, 64, 64]."))
        return self

    @model_validator(mode="after")
    def _rot90_needs_square_patch(self) -> "TrainConfig":
        h, w = self.data.patch_size[1:]
        if self.data.augment.rot90 and h != w:
            raise ValueError(rule_message("data.augment.rot90", "needs a square in-plane patch (H == W)", (h, w),
                                          "Use equal H and W, or rot90: false."))
        return self

    @model_validator(mode="after")
    def _elastic_needs_simulated_noise(self) -> "TrainConfig":
        if self.data.augment.elastic_probability > 0 and self.noise.level_range is None:
            raise ValueError(rule_message("data.augment.elastic_probability", "must be 0 when the training "
                                          "volumes are already noisy (interpolation would correlate the noise)",
                                          self.data.augment.elastic_probability, "Set it to 0."))
        return self

    @model_validator(mode="after")
    def _single_slice_needs_clean_targets(self) -> "TrainConfig":
        if self.data.augment.single_slice_probability > 0 and self.algorithm != "supervised":
            raise ValueError(rule_message("data.augment.single_slice_probability", "must be 0 for algorithm n2v/n2s "
                                          "(repeating the centre slice copies each masked voxel into its neighbours, "
                                          "so the blind spot would see it)", self.data.augment.single_slice_probability,
                                          "Set it to 0, or use algorithm: supervised."))
        return self

    @model_validator(mode="after")
    def _dualnet_terms_fit(self) -> "TrainConfig":
        loss = self.loss
        branch_terms = {k: getattr(loss, k) for k in ("noise_nll", "neb_l1", "error_nll", "consistency")
                        if getattr(loss, k) > 0}
        if branch_terms and (self.model.get("name") != "dualnet" or self.model.get("neb") is False):
            raise ValueError(rule_message("loss " + " / ".join(branch_terms), "need a model with a noise-estimation "
                                          "branch (dualnet with neb: true)", self.model,
                                          "Set these weights to 0, or use model: {name: dualnet}."))
        supervised_only = {k: getattr(loss, k) for k in ("neb_l1", "error_nll", "noise_normalized") if getattr(loss, k)}
        if supervised_only and self.algorithm != "supervised":
            raise ValueError(rule_message("loss " + " / ".join(supervised_only), "need clean images (algorithm "
                                          "'supervised')", self.algorithm, "Set them to 0 (noise_normalized: false) for n2v/n2s fine-tuning."))
        return self

    @model_validator(mode="after")
    def _device_known(self) -> "TrainConfig":
        if self.device != "auto" and self.device.split(":")[0] not in ("cpu", "cuda"):
            raise ValueError(rule_message("device", "must be 'auto', 'cpu' or 'cuda[:N]'", self.device,
                                          "Use 'auto'."))
        return self


def _key(path: str) -> str:
    """The file behind a data entry (a region ``file#y=0:100`` is still that file's patient)."""
    return str(Path(split_region(path)[0]).expanduser().resolve(strict=False))


def load_config(path: str | Path) -> TrainConfig:
    """Read and validate a YAML config; a :class:`ConfigError` names the file, field, rule and value."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(rule_message("--config", "must be an existing YAML file", str(path),
                                       "See configs/ for examples per modality."))
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    try:
        return TrainConfig.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "config"
        value = first.get("input")
        value = value if len(repr(value)) <= 200 else repr(value)[:200] + "..."
        raise ConfigError(rule_message(f"{path}: {field}", first["msg"], value,
                                       f"Fix this entry ({exc.error_count()} problem(s) in total).")) from exc


def dump_config(config: TrainConfig, path: str | Path) -> None:
    """Write ``config`` as YAML (every field, including the drawn seed)."""
    Path(path).write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False), encoding="utf-8")
