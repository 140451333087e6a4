"""Validated, versioned training configuration (pydantic v2, extra keys forbidden)."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

Modality = Literal["ct", "mr", "us", "xr"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(_Strict):
    """Training volumes and patch sampling."""

    train: list[str] = Field(min_length=1)
    """Volume paths (only files listed in ../shared/data/manifest.json for shipped models)."""
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


class NoiseConfig(_Strict):
    modality: Modality
    level_range: tuple[float, float]
    fast: bool = False


class OptimConfig(_Strict):
    lr: float = Field(default=2e-3, gt=0)
    weight_decay: float = Field(default=1e-4, ge=0)
    warmup_steps: int = Field(default=50, ge=0)
    steps: int = Field(default=1000, ge=1)
    grad_clip: float = Field(default=1.0, gt=0)


class TrainConfig(_Strict):
    """Root config: version, model, data, noise, optimisation, bookkeeping."""

    version: Literal[1] = 1
    name: str
    model: dict[str, Any]
    data: DataConfig
    noise: NoiseConfig
    optim: OptimConfig = OptimConfig()
    seed: int = Field(default_factory=lambda: secrets.randbelow(2**31))
    """Drawn and saved when not given, so every run is replayable."""
    checkpoint_every: int = Field(default=50, ge=1)
    threads: int = Field(default=0, ge=0)
    """torch CPU threads (0 = leave torch's default)."""

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


def load_config(path: str | Path) -> TrainConfig:
    return TrainConfig.model_validate(yaml.safe_load(Path(path).read_text()))


def dump_config(config: TrainConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
