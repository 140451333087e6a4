"""Validated, versioned configuration of one evaluation run (pydantic v2, extra keys forbidden).

The configuration is written into the report, so every number in it can be regenerated:
data files (the held-out set, listed explicitly), noise levels, methods and their
parameters, the seed that drives every noise draw and bootstrap.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..errors import rule_message

__all__ = ["EvaluationConfig", "detector_clip_text", "detector_range", "load_evaluation_config",
           "parse_size_xyz"]

Modality = Literal["ct", "mr", "us", "xr"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def parse_size_xyz(text: str) -> tuple[int, int, int]:
    """``"128x128x16"`` (x, y, z, as ``meddenoise benchmark --sizes``) -> (z, y, x) = (16, 128, 128)."""
    parts = text.lower().split("x")
    if len(parts) != 3 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise ValueError(f"crop must be XxYxZ with positive integers; got {text!r}. Use e.g. 128x128x16.")
    x, y, z = (int(p) for p in parts)
    return (z, y, x)


class EvaluationConfig(_Strict):
    """One ``meddenoise evaluate`` run.

    Attributes are documented below each field; ``methods`` tokens are ``noisy`` (no
    denoising), a baseline name (:func:`MedDenoiseLib.baselines.list_baselines`), ``model``
    (the modality's shipped default) or ``model:NAME`` (shipped name or model directory), either
    optionally followed by ``@tta``, ``@model`` or ``@mc_dropout=N`` to choose the uncertainty source
    (:func:`~MedDenoiseLib.evaluation.methods.parse_model_token`).
    """

    version: Literal[1] = 1
    data: list[str] = Field(min_length=1)
    """Image files or directories (every readable image directly inside). Clean references:
    noise is simulated on them. List the held-out files explicitly for model comparisons."""
    modality: Modality
    levels: list[float] = Field(min_length=1)
    """Noise levels in the modality's unit (see ``MedDenoiseLib.noise.LEVELS``)."""
    methods: list[str] = Field(min_length=1)
    reference: str | None = None
    """Method compared against every other one; default: the first model, else the first
    method that is not ``noisy``."""
    seed: int = Field(default_factory=lambda: secrets.randbelow(2**31))
    """Drives every noise draw and bootstrap; drawn and saved when not given."""
    crop: tuple[int, int, int] | None = None
    """(z, y, x) size of a crop centred on the foreground, or None for whole images."""
    sigma: Literal["estimate", "oracle"] = "estimate"
    """Noise std given to baselines: blind wavelet estimate, or std(noisy - clean) (upper bound)."""
    fast_noise: bool = False
    """CT only: image-domain noise approximation instead of projection-domain simulation."""
    detector_bits: int | None = Field(default=None, ge=8, le=16)
    """X-ray only: clip each noisy image to the range of a ``detector_bits``-bit detector, [0, 2**bits - 1], as a
    real detector saturates. Without it a simulated image can exceed its reference's bit depth, which a real
    scan cannot, and the X-ray normalisation (``xr_bits``) then picks a larger scale than for the real scan
    (12 bits instead of 10 for a 10-bit radiograph: 4 times)."""
    mask: Literal["none", "foreground"] = "none"
    """Score every voxel, or only the clean image's Otsu foreground."""
    tta: int = 8
    device: str = "cpu"
    segmentation_classes: int = Field(default=3, ge=2, le=8)
    segmentation_method: Literal["otsu", "kmeans"] = "otsu"
    baseline_params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Per-baseline keyword overrides, e.g. ``{"nlm": {"h_factor": 0.6}}``."""
    exclude_training: bool = False
    """Drop cases a model card lists as training data (default: refuse to run)."""
    figures: bool = True
    fidelity: bool = False
    """Add the clinical fidelity section (docs/fidelity.md), measured at the middle noise level: each
    method also runs on the clean case and on a copy with inserted lesions and a TTF disc."""
    fidelity_lesions: int = Field(default=4, ge=1, le=20)
    """Lesions inserted per case for the detectability metrics."""
    fidelity_error_draws: int = Field(default=8, ge=0, le=64)
    """Fresh noise draws per case, at the fidelity level, that each model with an uncertainty map also denoises:
    their per-voxel RMS error is an empirical error std whose Spearman ρ with |error| is reported next to the
    shown std's, as what a std map could reach (0: not measured)."""
    bootstrap_resamples: int = Field(default=9999, ge=100)

    @field_validator("methods")
    @classmethod
    def _unique_methods(cls, value: list[str]) -> list[str]:
        tokens = [v.strip() for v in value if v.strip()]
        if len(set(tokens)) != len(tokens):
            raise ValueError(f"methods must be unique; got {value}. Remove the duplicates.")
        from ..baselines import list_baselines

        known = {"noisy", "model", *list_baselines()}
        bad = [t for t in tokens if t not in known and not t.startswith(("model:", "model@"))]
        if bad:
            raise ValueError(f"methods {bad} are unknown; got {value}. Use noisy, model, model:NAME or one of "
                             f"{sorted(list_baselines())}.")
        return tokens

    @field_validator("levels")
    @classmethod
    def _unique_levels(cls, value: list[float]) -> list[float]:
        if len(set(value)) != len(value):
            raise ValueError(f"levels must be unique; got {value}.")
        return [float(v) for v in value]

    @model_validator(mode="after")
    def _reference_is_a_method(self) -> "EvaluationConfig":
        if self.reference is not None and self.reference not in self.methods:
            raise ValueError(f"reference must be one of methods {self.methods}; got {self.reference!r}.")
        if len(self.methods) < 2 and self.reference is not None:
            raise ValueError("a reference needs at least one other method to compare with.")
        return self

    @model_validator(mode="after")
    def _detector_bits_are_for_xr(self) -> "EvaluationConfig":
        if self.detector_bits is not None and self.modality != "xr":
            raise ValueError(rule_message("detector_bits", "applies to modality 'xr' only (a detector's range)",
                                          f"{self.detector_bits} with modality {self.modality!r}",
                                          "Remove detector_bits."))
        return self

    @model_validator(mode="after")
    def _baseline_params_name_methods(self) -> "EvaluationConfig":
        unknown = sorted(set(self.baseline_params) - set(self.methods))
        if unknown:
            raise ValueError(f"baseline_params names methods not in methods: {unknown}. Add them to methods "
                             "or remove the parameters.")
        return self

    def reference_method(self) -> str | None:
        """The method every other one is compared with (see ``reference``)."""
        if self.reference is not None:
            return self.reference
        models = [m for m in self.methods if m == "model" or m.startswith(("model:", "model@"))]
        others = [m for m in self.methods if m != "noisy"]
        chosen = models[0] if models else (others[0] if others else None)
        return chosen if chosen is not None and len(self.methods) > 1 else None


def detector_range(bits: int) -> tuple[float, float]:
    """``(0, 2**bits - 1)``: the values a ``bits``-bit detector records (``detector_bits``)."""
    return 0.0, float(2**bits - 1)


def detector_clip_text(bits: int) -> str:
    """How reports say ``detector_bits`` applied, e.g. "noisy images clipped to a 10-bit detector's range [0, 1023]"."""
    low, high = detector_range(bits)
    return f"noisy images clipped to a {bits}-bit detector's range [{low:g}, {high:g}]"


def load_evaluation_config(path: str | Path) -> EvaluationConfig:
    """Read a YAML evaluation config (relative data paths are taken relative to the current directory)."""
    return EvaluationConfig.model_validate(yaml.safe_load(Path(path).read_text(encoding="utf-8")))
