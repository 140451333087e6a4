"""Default noise model per imaging modality, driven by one scalar "level".

=========  =====================  ===================================================
modality   level                  meaning (default training range)
=========  =====================  ===================================================
``ct``     ``dose_fraction``      fraction of full-dose photons, (0, 1]; lower is
                                  noisier (0.10-0.25); projection-domain model, or
                                  the image-domain approximation with ``fast=True``
``mr``     ``sigma_percent``      Rician sigma in % of the image maximum, [0, 100];
                                  higher is noisier (1-15)
``us``     ``looks``              speckle looks L >= 1; lower is noisier (1-8)
``xr``     ``dose_fraction``      fraction of full-dose exposure, (0, 1]; lower is
                                  noisier (0.10-0.50)
=========  =====================  ===================================================

Extra keyword options go to the underlying model (e.g. ``pixel_size_mm`` for CT,
``n_coils`` for MR, ``photons_at_max`` for X-ray).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import torch

from ..errors import ConfigError, rule_message
from .base import RandomNoise, draw_uniform
from .ct_image import RandomCTImageNoise, add_ct_image_noise
from .ct_projection import RandomCTProjectionNoise, add_ct_projection_noise
from .rician import RandomRicianNoise, add_rician_noise
from .speckle import RandomSpeckleNoise, add_speckle_noise
from .xray import RandomXRayNoise, add_xray_noise

__all__ = ["MODALITIES", "LEVELS", "MODALITY_NOISE", "LogUniformLevelNoise", "noise_level_name",
           "random_modality_noise", "simulate_noise"]

MODALITIES = ("ct", "mr", "us", "xr")


class LevelInfo(NamedTuple):
    """What the scalar noise level means for a modality."""

    name: str
    description: str
    default_range: tuple[float, float]


LEVELS: dict[str, LevelInfo] = {
    "ct": LevelInfo("dose_fraction", "fraction of the full-dose photon count, (0, 1]; lower is noisier", (0.10, 0.25)),
    "mr": LevelInfo("sigma_percent", "Rician sigma in percent of the image maximum, [0, 100]; higher is noisier",
                    (1.0, 15.0)),
    "us": LevelInfo("looks", "number of speckle looks, >= 1; lower is noisier", (1.0, 8.0)),
    "xr": LevelInfo("dose_fraction", "fraction of the full-dose exposure, (0, 1]; lower is noisier", (0.10, 0.50)),
}


def _ct_sampler(level_range: Any, fast: bool, **options: Any) -> RandomNoise:
    kind = RandomCTImageNoise if fast else RandomCTProjectionNoise
    return kind(level_range, **options)


def _mr_sampler(level_range: Any, fast: bool, **options: Any) -> RandomNoise:
    return RandomRicianNoise(level_range, **options)


def _us_sampler(level_range: Any, fast: bool, **options: Any) -> RandomNoise:
    return RandomSpeckleNoise(level_range, **options)


def _xr_sampler(level_range: Any, fast: bool, **options: Any) -> RandomNoise:
    return RandomXRayNoise(level_range, **options)


MODALITY_NOISE: dict[str, Callable[..., RandomNoise]] = {
    "ct": _ct_sampler,
    "mr": _mr_sampler,
    "us": _us_sampler,
    "xr": _xr_sampler,
}
"""modality -> factory ``(level_range, fast, **options) -> Random*`` sampler."""


def _modality(modality: object) -> str:
    key = modality.lower() if isinstance(modality, str) else modality
    if key not in MODALITY_NOISE:
        raise ConfigError(
            rule_message("modality", f"must be one of {list(MODALITIES)} (case-insensitive)", modality,
                         "Map DICOM CR/DX to 'xr' and MR/CT/US to their lower-case names.")
        )
    return str(key)


def noise_level_name(modality: str) -> str:
    """Name of the parameter that "level" sets for ``modality``.

    ``"dose_fraction"`` (ct, xr), ``"sigma_percent"`` (mr) or ``"looks"`` (us); see
    :data:`LEVELS` for the meaning and default range.
    """
    return LEVELS[_modality(modality)].name


class LogUniformLevelNoise:
    """Sampler drawing the level log-uniformly in ``level_range`` (every factor of 2 inside it equally likely), then
    the modality's noise at that level.

    One number is drawn for the level, then the fixed-level sampler draws as usual, so the record it returns holds
    the level applied and replays like any other (:func:`MedDenoiseLib.noise.replay`). Other attributes (e.g.
    ``photons_at_max``) read as the plain sampler's over the same range.
    """

    def __init__(self, modality: str, level_range: tuple[float, float], fast: bool, **options: Any) -> None:
        low, high = (float(v) for v in level_range)
        if not (0.0 < low <= high and math.isfinite(high)):
            raise ConfigError(rule_message("level_range", "must be (low, high) with 0 < low <= high for a log-uniform "
                                           "draw", (low, high), f"Start the range above 0, e.g. "
                                           f"{list(LEVELS[modality].default_range)} for {modality}."))
        self.modality, self.level_range, self.fast, self.options = modality, (low, high), bool(fast), dict(options)
        self.plain = MODALITY_NOISE[modality]((low, high), self.fast, **self.options)  # refuses what it cannot take

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, dict[str, Any]]:
        low, high = self.level_range
        level = min(max(math.exp(draw_uniform(generator, math.log(low), math.log(high))), low), high)
        return MODALITY_NOISE[self.modality]((level, level), self.fast, **self.options)(x, generator=generator)

    def __getattr__(self, name: str) -> Any:
        if name == "plain" or "plain" not in self.__dict__:
            raise AttributeError(name)
        return getattr(self.__dict__["plain"], name)

    def __repr__(self) -> str:
        return f"LogUniformLevelNoise({self.modality!r}, level_range={self.level_range}, {self.plain!r})"


def random_modality_noise(
    modality: str,
    *,
    level_range: float | tuple[float, float] | None = None,
    fast: bool = False,
    draw: str = "uniform",
    **options: Any,
) -> RandomNoise | LogUniformLevelNoise:
    """Sampler drawing a noise level in ``level_range`` for ``modality``: uniformly, or with
    ``draw="log_uniform"`` log-uniformly (:class:`LogUniformLevelNoise`).

    Parameters
    ----------
    modality : {"ct", "mr", "us", "xr"}
        Case-insensitive.
    level_range : float or (float, float), optional
        Range of the level (see :data:`LEVELS`); default the modality's wide range.
    fast : bool
        CT only: use the image-domain approximation instead of projection-domain
        simulation. Other modalities are already cheap and ignore it.
    draw : {"uniform", "log_uniform"}
        How the level is drawn inside ``level_range``; log-uniform needs a range above 0.
    **options
        Fixed parameters of the underlying sampler.

    Raises
    ------
    ConfigError
        Unknown modality, a range outside the level's domain, or a bad option.
    """
    key = _modality(modality)
    chosen = LEVELS[key].default_range if level_range is None else level_range
    if draw == "log_uniform":
        pair = (chosen, chosen) if isinstance(chosen, (int, float)) else tuple(chosen)
        return LogUniformLevelNoise(key, pair, bool(fast), **options)
    if draw != "uniform":
        raise ConfigError(rule_message("draw", "must be 'uniform' or 'log_uniform'", draw, "Use one of those."))
    return MODALITY_NOISE[key](chosen, bool(fast), **options)


def simulate_noise(
    modality: str,
    x: torch.Tensor,
    *,
    level: float,
    generator: torch.Generator,
    fast: bool = False,
    **options: Any,
) -> torch.Tensor:
    """Apply the modality's noise model at a fixed ``level`` (see :data:`LEVELS`).

    ``x`` is in the modality's units: HU (ct), magnitude (mr), B-mode grey levels in
    [0, 255] (us), linear detector values (xr).

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> simulate_noise("mr", torch.ones(1, 4, 4), level=5.0, generator=g).shape
    torch.Size([1, 4, 4])
    """
    key = _modality(modality)
    if key == "ct":
        simulate = add_ct_image_noise if fast else add_ct_projection_noise
        return simulate(x, level, generator=generator, **options)
    if key == "mr":
        return add_rician_noise(x, generator=generator, sigma_percent=level, **options)
    if key == "us":
        return add_speckle_noise(x, level, generator=generator, **options)
    return add_xray_noise(x, level, generator=generator, **options)
