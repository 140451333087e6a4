"""Leaf sections of the training configuration (pydantic v2, extra keys forbidden, bounded fields).

Every field added after the first shipped config has a default that reproduces the earlier
behaviour (plain L1, flips + intensity scaling, no validation, no EMA), so older YAML files
keep validating and resumed runs keep drawing the same random numbers.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..errors import ConfigError, rule_message
from ..noise import LEVELS, random_modality_noise

Modality = Literal["ct", "mr", "us", "xr"]
Algorithm = Literal["supervised", "n2v", "n2s"]
OptionValue = Annotated[Union[int, float, str, None], Field(union_mode="left_to_right")]
"""A noise-model option: numbers first, so YAML's ``1.0e5`` (read as text by YAML 1.1) is still a number."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def _ordered(name: str, pair: tuple[float, float] | None, fix: str) -> None:
    if pair is not None and pair[0] > pair[1]:
        raise ValueError(rule_message(name, "must be (low, high) with low <= high", tuple(pair), fix))


class AugmentConfig(_Strict):
    """Patch augmentation. All draws come from the run's explicit generator."""

    flip: bool = True
    """Flip the batch along each of D, H, W with probability 1/2 (inverse-free: noise stays white)."""
    rot90: bool = False
    """Rotate patches by k x 90 degrees in the H-W plane, only for volumes whose in-plane spacing is
    isotropic (|sx - sy| <= 0.1 %); anisotropic pixels would otherwise teach a wrong aspect ratio."""
    intensity_scale: tuple[float, float] = (0.8, 1.2)
    """Both images of a pair are multiplied by a factor drawn from [low, high] (see ``intensity_scale_draw``)."""
    intensity_scale_draw: Literal["uniform", "log_uniform"] = "uniform"
    """How that factor is drawn: uniform, or log-uniform (each factor of 2 inside the range equally likely), for
    ranges spanning several times, e.g. [0.8, 4.8] to teach an X-ray model the 4 x jump of its normalisation
    between a 10- and a 12-bit detector."""
    elastic_probability: float = Field(default=0.0, ge=0.0, le=1.0)
    """Chance that a volume is elastically deformed at each noise refresh (before noise is added, so the
    simulated noise stays physically white); 0 disables it."""
    elastic_magnitude: float = Field(default=2.0, gt=0.0, le=20.0)
    """Standard deviation of the control-point displacements, in voxels."""
    elastic_control_points: int = Field(default=5, ge=3, le=16)
    """Control points per axis of the coarse displacement grid (smoothness)."""
    single_slice_probability: float = Field(default=0.0, ge=0.0, le=1.0)
    """Chance that a sample becomes a single image: every slice of its noisy and clean patch replaced by the
    centre slice (noise included), which is what a 2.5D model sees at inference on a 2D image (one frame,
    one radiograph: the volume ends are replicated). For modalities mixing cine clips and single frames."""

    @model_validator(mode="after")
    def _scale_range(self) -> "AugmentConfig":
        _ordered("data.augment.intensity_scale", self.intensity_scale, "Use e.g. [0.8, 1.2].")
        if self.intensity_scale[0] <= 0:
            raise ValueError(rule_message("data.augment.intensity_scale", "must be > 0", tuple(self.intensity_scale),
                                          "Use e.g. [0.8, 1.2]; use [1, 1] to switch scaling off."))
        return self


class DataConfig(_Strict):
    """Training (and validation) volumes and patch sampling."""

    train: list[str] = Field(min_length=1)
    """Volume paths (only files listed in ../shared/data/manifest.json for shipped models). For
    supervised training they are clean references; for ``n2v``/``n2s`` without ``noise.level_range``
    they are the noisy scans themselves."""
    validation: list[str] = []
    """Held-out volumes (other patients): clean references noised at fixed levels with fixed seeds."""
    manifest: Optional[str] = None
    """Data manifest for provenance in the model card; default: the first ``manifest.json`` found in a
    parent folder of the training files."""
    patch_size: tuple[int, int, int] = (5, 96, 96)
    """(D, H, W) training patch; the loss ignores ``loss_margin`` slices at each depth end."""
    loss_margin: int = Field(default=1, ge=0)
    batch_size: int = Field(default=16, ge=1)
    slice_strides: tuple[int, ...] = (1,)
    """Take every s-th slice (s drawn from this list) to mimic thicker slices."""
    foreground_fraction: float = Field(default=0.8, ge=0.0, le=1.0)
    """Share of patches centred on voxels above the volume's 30th percentile."""
    refresh_every: int = Field(default=25, ge=1)
    """Steps between fresh noise realisations (with a new level) of every volume."""
    shift_to_nonnegative: bool = False
    """Shift each training volume whose minimum is below 0 up by that minimum, so it reads as a magnitude
    (e.g. CT in HU as extra anatomy for an MR model: Rician noise needs non-negative magnitudes). Off,
    MR, ultrasound and X-ray training refuse such volumes; CT training refuses the option. Ultrasound needs
    values in [0, 255]: use ``rescale_to`` there. Validation volumes are shifted alike; ``meddenoise calibrate``
    applies the same shift to the training images a card lists."""
    rescale_to: Optional[tuple[float, float]] = None
    """Map each training volume whose values leave this range linearly onto it: its minimum to the low end, its
    99.5th percentile to the high end, brighter voxels clipped. For ultrasound speckle, which acts on a
    log-compressed B-mode display range (``[0, 255]``), this lets MR, CT or radiographs serve as extra anatomy.
    Volumes already inside the range are used as read (one voxel outside, and the whole volume is stretched);
    validation volumes are mapped alike. Not for CT noise (it reads HU); a non-negative low end for MR, ultrasound
    and X-ray noise, at most 255 at the top for ultrasound. Exclusive with ``shift_to_nonnegative``; ``meddenoise
    calibrate`` and ``meddenoise route`` apply the same map to the training images they read."""
    normalization: Literal["default", "xr_percentile"] = "default"
    """How the network's inputs are normalised, recorded in the card as ``normalization`` so inference does the
    same: ``default`` is the modality's rule (``MedDenoiseLib.normalization.fit_normalization``);
    ``xr_percentile`` (X-ray noise only) divides each image by its 99.5th percentile instead of its bit depth."""
    augment: AugmentConfig = AugmentConfig()

    @model_validator(mode="after")
    def _one_intensity_map(self) -> "DataConfig":
        if self.rescale_to is not None and not all(math.isfinite(v) for v in self.rescale_to):
            raise ValueError(rule_message("data.rescale_to", "must be two finite numbers", self.rescale_to,
                                          "Use e.g. [0, 255] for ultrasound B-mode values."))
        _ordered("data.rescale_to", self.rescale_to, "Swap the two values.")
        if self.rescale_to is not None and self.rescale_to[0] == self.rescale_to[1]:
            raise ValueError(rule_message("data.rescale_to", "must span a range (low < high)", self.rescale_to,
                                          "Use e.g. [0, 255] for ultrasound B-mode values."))
        if self.rescale_to is not None and self.shift_to_nonnegative:
            raise ValueError(rule_message("data.rescale_to", "cannot be combined with data.shift_to_nonnegative "
                                          "(both map the training intensities)", self.rescale_to,
                                          "Keep one: rescale_to already maps negative values into its range."))
        return self

    @model_validator(mode="after")
    def _positive_patch(self) -> "DataConfig":
        if min(self.patch_size) < 1 or min(self.slice_strides, default=0) < 1:
            raise ValueError(rule_message("data.patch_size / data.slice_strides", "must be positive integers",
                                          (tuple(self.patch_size), tuple(self.slice_strides)),
                                          "Use e.g. patch_size [5, 96, 96] and slice_strides [1]."))
        return self


class NoiseConfig(_Strict):
    """Physics noise applied on the fly (see ``MedDenoiseLib.noise.modality``)."""

    modality: Modality
    level_range: Optional[tuple[float, float]] = None
    """Range of the modality's noise level (``LEVELS``); None means the training volumes are already
    noisy (self-supervised training only)."""
    fast: bool = False
    reference_level_range: Optional[tuple[float, float]] = None
    """Supervised: before the training noise, give each training reference its own acquisition noise at a
    level drawn from this range (same modality and unit as ``level_range``; e.g. CT dose 0.25-1.0). A real
    full-dose reference carries quantum noise; a model trained on smoother references than the scans it
    meets removes that texture as if it were noise. None: the references are used as read."""
    estimate_jitter: float = Field(default=0.1, ge=0.0, le=1.0)
    """Models with ``model.noise_map``: each sample's estimated noise level is multiplied by exp(jitter * N(0, 1)),
    so the model tolerates the estimator's error on a user's scan (0 conditions on the estimate as is)."""
    level_draw: Literal["uniform", "log_uniform"] = "uniform"
    """How each training level is drawn inside ``level_range``: uniformly, or log-uniformly (every factor of 2
    inside the range equally likely), for ranges spanning many times. Validation levels are fixed either way."""
    options: dict[str, OptionValue] = Field(default_factory=dict)
    """Fixed parameters of the modality's noise model for training and validation noise (the reference noise too),
    e.g. ``{photons_at_max: 1.0e5}`` for X-ray: ten times the quanta of the default detector, so a dose fraction
    means ten times less quantum variance. Calibration and evaluation levels keep the default detector."""

    @model_validator(mode="after")
    def _range_ordered(self) -> "NoiseConfig":
        _ordered("noise.level_range", self.level_range, "Swap the two values.")
        _ordered("noise.reference_level_range", self.reference_level_range, "Swap the two values.")
        return self

    @model_validator(mode="after")
    def _log_draw_needs_a_positive_range(self) -> "NoiseConfig":
        if self.level_draw == "log_uniform" and (self.level_range is None or self.level_range[0] <= 0):
            fix = ("Set noise.level_range, or use level_draw: uniform." if self.level_range is None else
                   f"Start the range above 0, e.g. {list(LEVELS[self.modality].default_range)} for {self.modality}.")
            raise ValueError(rule_message("noise.level_draw", "log_uniform needs noise.level_range above 0",
                                          self.level_range, fix))
        return self

    @model_validator(mode="after")
    def _options_fit_the_noise_model(self) -> "NoiseConfig":
        if not self.options:
            return self
        try:  # the range alone first, so its error is not blamed on the options
            random_modality_noise(self.modality, level_range=self.level_range, fast=self.fast)
        except ConfigError as error:
            message = rule_message("noise.level_range", f"must be valid for the {self.modality} noise model ({error})",
                                   self.level_range, "Fix the value the message names.")
            raise ValueError(message) from error
        try:
            random_modality_noise(self.modality, level_range=self.level_range, fast=self.fast, **self.options)
        except TypeError as error:
            raise ValueError(rule_message("noise.options", f"must name parameters of the {self.modality} noise "
                                          f"model ({error})", dict(self.options),
                                          "Use its keyword arguments, e.g. photons_at_max for xr, n_coils for mr "
                                          "(MedDenoiseLib.noise.modality).")) from error
        except ConfigError as error:
            message = rule_message("noise.options", f"must be valid for the {self.modality} noise model ({error})",
                                   dict(self.options), "Fix the value the message names.")
            raise ValueError(message) from error
        return self


class LossConfig(_Strict):
    """Supervised loss: ``l1 * L1 + mse * MSE + ssim * (1 - SSIM) + edge * ||grad x_hat - grad x||_1``
    (DUAL-NET's recipe, with MSE added),
    plus DUAL-NET's auxiliary terms (``MedDenoiseLib.training.dualnet_losses``), all off by default."""

    l1: float = Field(default=1.0, ge=0.0)
    mse: float = Field(default=0.0, ge=0.0)
    """Mean squared error: the network then predicts the posterior mean (what PSNR rewards) rather than L1's
    median, which is biased where the noise is skewed (log-compressed speckle, Rician at low SNR)."""
    ssim: float = Field(default=0.0, ge=0.0)
    edge: float = Field(default=0.0, ge=0.0)
    ssim_sigma: float = Field(default=1.5, gt=0.0, le=5.0)
    """Gaussian window of the SSIM term, in voxels (window 2 * int(3.5 sigma + 0.5) + 1)."""
    noise_normalized: bool = False
    """Supervised: weigh each patch by (batch mean noise std) / (its noise std), std(noisy - clean), so
    low-noise patches count as much as high-noise ones; needs ``ssim: 0`` (SSIM is not scale-free)."""
    noise_nll: float = Field(default=0.0, ge=0.0)
    """DUAL-NET: Gaussian NLL of the noise under the NEB's sigma (calibration; self-supervised on masked voxels)."""
    neb_l1: float = Field(default=0.0, ge=0.0)
    """DUAL-NET: L1 of the NEB's blind-spot denoise against the clean image (supervised only)."""
    error_nll: float = Field(default=0.0, ge=0.0)
    """DUAL-NET: Gaussian NLL of the remaining error under the model's own uncertainty (supervised only)."""
    consistency: float = Field(default=0.0, ge=0.0)
    """DUAL-NET: confidence-weighted L1 between the output and the NEB's denoise (stage 2)."""
    tv: float = Field(default=0.0, ge=0.0)
    """Weak total variation of the output (any model)."""

    @model_validator(mode="after")
    def _some_weight(self) -> "LossConfig":
        if self.l1 + self.ssim + self.edge + self.mse <= 0:
            raise ValueError(rule_message("loss weights (l1 + ssim + edge + mse)", "must sum to > 0",
                                          (self.l1, self.ssim, self.edge, self.mse), "Use l1: 1.0."))
        if self.noise_normalized and self.ssim > 0:
            raise ValueError(rule_message("loss.noise_normalized", "needs loss.ssim = 0 (SSIM is not scale-free)",
                                          self.ssim, "Set ssim: 0, or noise_normalized: false."))
        return self


class MaskingConfig(_Strict):
    """Blind-spot masking of the self-supervised algorithms (``n2v``, ``n2s``)."""

    fraction: float = Field(default=0.002, gt=0.0, le=0.5)
    """N2V: share of voxels masked per patch (0.2 % in Krull et al. 2019; 0.2-0.3 for DUAL-NET fine-tuning)."""
    radius: int = Field(default=2, ge=1, le=10)
    """N2V: masked voxels take the value of a random other voxel at most ``radius`` away per axis."""
    struct_axis: Optional[Literal["x", "y", "z"]] = None
    """structN2V: also hide a line of voxels through each masked voxel along this axis (correlated noise)."""
    struct_span: int = Field(default=0, ge=0, le=10)
    """structN2V: half-length of that line (voxels on each side)."""
    grid: int = Field(default=4, ge=2, le=8)
    """N2S: grid period; one of ``grid**k`` cosets (k = 2 or 3 axes) is masked per patch."""
    loss: Literal["mse", "l1"] = "mse"
    """Loss on masked voxels only (MSE is the estimator N2V's blind-spot argument needs)."""

    @model_validator(mode="after")
    def _struct_needs_span(self) -> "MaskingConfig":
        if self.struct_axis is not None and self.struct_span == 0:
            raise ValueError(rule_message("masking.struct_span", "must be >= 1 when struct_axis is set",
                                          self.struct_span, "Use struct_span: 2 (the correlation length)."))
        return self


class OptimConfig(_Strict):
    """AdamW with linear warm-up then cosine decay, gradient clipping, AMP (CUDA only), optional EMA."""

    lr: float = Field(default=2e-4, gt=0)
    weight_decay: float = Field(default=1e-4, ge=0)
    warmup_steps: int = Field(default=50, ge=0)
    steps: int = Field(default=1000, ge=1)
    grad_clip: float = Field(default=1.0, gt=0)
    amp: bool = True
    """Mixed precision (bf16, else fp16 with a gradient scaler) on CUDA; ignored on CPU."""
    ema_decay: Optional[float] = Field(default=None, gt=0.0, lt=1.0)
    """Exponential moving average of the weights (e.g. 0.999); validation and export then use it."""
    ema_bn_batches: int = Field(default=50, ge=0, le=10_000)
    """With ``ema_decay`` on a network with batch norm: training batches over which export re-estimates the
    averaged weights' batch-norm statistics (``MedDenoiseLib.training.batchnorm``); 0 exports the last step's
    statistics, which belong to the last weights. Validation during training uses the last step's."""


class ValidationConfig(_Strict):
    """Deterministic validation on ``data.validation`` (fixed noise seeds, fixed patch positions)."""

    every: int = Field(default=50, ge=1)
    patches: int = Field(default=8, ge=1, le=256)
    """Patches per volume and noise level."""
    patch_size: Optional[tuple[int, int, int]] = None
    """Default: ``data.patch_size``. Metrics skip ``data.loss_margin`` slices at each depth end."""
    levels: Optional[list[float]] = None
    """Noise levels; default: low end, middle and high end of ``noise.level_range``."""
    seed: int = 1234
    """Fixed seed of validation noise and patch positions (independent of the training seed)."""
    patience: int = Field(default=0, ge=0)
    """Stop after this many validations without a better SSIM (0: never stop early)."""
    min_delta: float = Field(default=0.0, ge=0.0)
    """SSIM gain that counts as an improvement."""


class LogConfig(_Strict):
    """Run outputs besides checkpoints: ``train_log.csv`` always; TensorBoard and a PNG of the curves."""

    tensorboard: bool = True
    """Write TensorBoard events under ``run_dir/tensorboard`` when the tensorboard package is installed."""
    plot: bool = True
    """Write ``run_dir/curves.png`` (training loss, validation PSNR/SSIM) after each validation, every 10th
    checkpoint and at the end."""
