"""Ultrasound speckle on log-compressed B-mode images, and a generic multiplicative form."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from ..errors import ConfigError, InputError, rule_message
from .base import NoiseTransform, RandomNoise, draw_uniform, register_noise
from .checks import check_generator, check_input, check_number, compute_dtype, parse_range

__all__ = [
    "add_speckle_noise",
    "SpeckleNoise",
    "RandomSpeckleNoise",
    "add_multiplicative_noise",
    "MultiplicativeNoise",
    "RandomMultiplicativeNoise",
]

_LOOKS_FIX = "looks L >= 1: 1 is fully developed speckle (strongest), larger values average it down."
_DR_FIX = "Use the scanner's display dynamic range, e.g. 60 dB."


def _check_looks(looks: object) -> float:
    return check_number("looks", looks, low=1.0, fix=_LOOKS_FIX)


def _check_bmode(dynamic_range_db: object, max_value: object) -> tuple[float, float]:
    dr = check_number("dynamic_range_db", dynamic_range_db, low=0.0, low_open=True, fix=_DR_FIX)
    top = check_number("max_value", max_value, low=0.0, low_open=True, fix="Use 255 for 8-bit B-mode.")
    return dr, top


def add_speckle_noise(
    x: torch.Tensor,
    looks: float,
    *,
    generator: torch.Generator,
    dynamic_range_db: float = 60.0,
    max_value: float = 255.0,
) -> torch.Tensor:
    r"""Multiplicative speckle on a log-compressed B-mode image in [0, ``max_value``].

    Parameters
    ----------
    x : torch.Tensor
        B-mode image, ``(..., H, W)``, values in [0, ``max_value``].
    looks : float
        Number of looks :math:`L \ge 1` of the intensity speckle; 1 = fully developed
        (Rayleigh amplitude), larger = weaker (compounded). Std of the added
        log-speckle :math:`\approx 18.5 / \sqrt{L}` grey levels for 60 dB on [0, 255].
    generator : torch.Generator
        Source of randomness, on ``x.device``.
    dynamic_range_db : float
        Log-compression dynamic range :math:`DR` mapping ``[0, max_value]``.
    max_value : float
        Display maximum :math:`V` (255 for 8-bit).

    Returns
    -------
    torch.Tensor
        Same shape, dtype and device; clipped to [0, ``max_value``] (display saturation).

    Raises
    ------
    ConfigError
        ``looks < 1`` or a non-positive dynamic range / maximum.
    InputError
        ``x`` outside [0, ``max_value``].

    Notes
    -----
    The display value is :math:`v = V (20\log_{10}(A/A_{max}) + DR)/DR` for envelope
    :math:`A`. Decompressing to the intensity :math:`I = A^2`, multiplying by unit-mean
    speckle :math:`S \sim \mathrm{Gamma}(L, 1/L)` (exponential for L = 1, i.e. Rayleigh
    amplitude; Burckhardt 1978, Goodman 1976) and compressing again gives exactly

    .. math:: y = \mathrm{clip}\left(v + \frac{10 V}{DR}\log_{10} S,\ 0,\ V\right),

    which is what is computed (no under/overflow from the exponentials). Because
    :math:`E[\log S] < 0`, log-compressed speckle darkens on average (-2.51 dB for L = 1).
    Speckle is independent per pixel (one resolution cell per pixel).

    References
    ----------
    Burckhardt C.B., "Speckle in ultrasound B-mode scans", IEEE Trans. Sonics Ultrason.
    25(1), 1978. Goodman J.W., "Some fundamental properties of speckle", JOSA 66(11), 1976.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> y = add_speckle_noise(torch.full((4, 4), 128.0), 4.0, generator=g)
    >>> bool(((y >= 0) & (y <= 255)).all())
    True
    """
    check_input(x)
    check_generator(generator, x)
    looks = _check_looks(looks)
    dr, top = _check_bmode(dynamic_range_db, max_value)
    if x.numel() == 0:
        return x.clone()
    low, high = float(x.min()), float(x.max())
    if low < 0.0 or high > top:
        raise InputError(
            rule_message("x", f"must be a B-mode image in [0, {top:g}]", (low, high),
                         "Rescale to display grey levels, or set max_value.")
        )
    dtype = compute_dtype(x)
    shape = torch.full(x.shape, looks, dtype=dtype, device=x.device)
    speckle = torch._standard_gamma(shape, generator=generator) / looks
    speckle = speckle.clamp(min=torch.finfo(dtype).tiny)  # Gamma draws are > 0; guard log(0) from underflow
    y = x.to(dtype) + (10.0 * top / (dr * math.log(10.0))) * torch.log(speckle)
    return y.clamp(0.0, top).to(x.dtype)


@register_noise("speckle")
class SpeckleNoise(NoiseTransform):
    """Module form of :func:`add_speckle_noise`."""

    def __init__(self, looks: float, dynamic_range_db: float = 60.0, max_value: float = 255.0) -> None:
        super().__init__()
        self.looks = _check_looks(looks)
        self.dynamic_range_db, self.max_value = _check_bmode(dynamic_range_db, max_value)

    def forward(self, x: torch.Tensor, *, generator: torch.Generator) -> torch.Tensor:
        return add_speckle_noise(x, self.looks, generator=generator, dynamic_range_db=self.dynamic_range_db,
                                 max_value=self.max_value)

    def params(self) -> dict[str, Any]:
        return {"looks": self.looks, "dynamic_range_db": self.dynamic_range_db, "max_value": self.max_value}


class RandomSpeckleNoise(RandomNoise):
    """Draw looks :math:`L \\sim U(a, b)` and a seed; apply :class:`SpeckleNoise`.

    Parameters
    ----------
    looks_range : float or (float, float)
        Looks, >= 1; default (1, 8): fully developed to mildly compounded speckle.
    dynamic_range_db, max_value : float
        Fixed B-mode display parameters.
    """

    transform_type = SpeckleNoise

    def __init__(
        self,
        looks_range: float | tuple[float, float] = (1.0, 8.0),
        *,
        dynamic_range_db: float = 60.0,
        max_value: float = 255.0,
    ) -> None:
        self.looks_range = parse_range("looks_range", looks_range, low=1.0, fix=_LOOKS_FIX)
        self.dynamic_range_db, self.max_value = _check_bmode(dynamic_range_db, max_value)

    def draw_params(self, generator: torch.Generator) -> dict[str, Any]:
        return {"looks": draw_uniform(generator, *self.looks_range), "dynamic_range_db": self.dynamic_range_db,
                "max_value": self.max_value}


def _check_clip(clip_range: object) -> list[float] | None:
    if clip_range is None:
        return None
    if not isinstance(clip_range, Sequence) or isinstance(clip_range, str) or len(clip_range) != 2:
        raise ConfigError(
            rule_message("clip_range", "must be None or a (low, high) pair", clip_range, "E.g. (0, 255).")
        )
    low = check_number("clip_range[0]", clip_range[0])
    high = check_number("clip_range[1]", clip_range[1])
    if low >= high:
        raise ConfigError(rule_message("clip_range", "must satisfy low < high", tuple(clip_range), "E.g. (0, 255)."))
    return [low, high]


def add_multiplicative_noise(
    x: torch.Tensor,
    variance: float,
    *,
    generator: torch.Generator,
    clip_range: Sequence[float] | None = None,
) -> torch.Tensor:
    r"""Simple multiplicative noise :math:`y = x + x\,n`, :math:`n \sim N(0, \text{variance})`.

    The linear-domain speckle model of scikit-image's ``random_noise(mode="speckle")``;
    no log compression. Clipped to ``clip_range`` only when one is given.

    Raises
    ------
    ConfigError
        ``variance < 0`` or a bad ``clip_range``.
    """
    check_input(x)
    check_generator(generator, x)
    variance = check_number("variance", variance, low=0.0, fix="variance of n is >= 0, e.g. 0.01 to 0.1.")
    bounds = _check_clip(clip_range)
    if x.numel() == 0 or variance == 0.0:
        return x.clone() if bounds is None else x.clamp(*bounds)
    dtype = compute_dtype(x)
    noise = math.sqrt(variance) * torch.randn(x.shape, generator=generator, device=x.device, dtype=dtype)
    y = x.to(dtype) * (1.0 + noise)
    return (y if bounds is None else y.clamp(*bounds)).to(x.dtype)


@register_noise("multiplicative")
class MultiplicativeNoise(NoiseTransform):
    """Module form of :func:`add_multiplicative_noise`."""

    def __init__(self, variance: float, clip_range: Sequence[float] | None = None) -> None:
        super().__init__()
        self.variance = check_number("variance", variance, low=0.0, fix="variance of n is >= 0, e.g. 0.01 to 0.1.")
        self.clip_range = _check_clip(clip_range)

    def forward(self, x: torch.Tensor, *, generator: torch.Generator) -> torch.Tensor:
        return add_multiplicative_noise(x, self.variance, generator=generator, clip_range=self.clip_range)

    def params(self) -> dict[str, Any]:
        return {"variance": self.variance, "clip_range": None if self.clip_range is None else list(self.clip_range)}


class RandomMultiplicativeNoise(RandomNoise):
    """Draw the variance from U(a, b) and a seed; apply :class:`MultiplicativeNoise`."""

    transform_type = MultiplicativeNoise

    def __init__(
        self, variance_range: float | tuple[float, float], *, clip_range: Sequence[float] | None = None
    ) -> None:
        self.variance_range = parse_range("variance_range", variance_range, low=0.0, fix="E.g. (0.01, 0.1).")
        self.clip_range = _check_clip(clip_range)

    def draw_params(self, generator: torch.Generator) -> dict[str, Any]:
        clip = None if self.clip_range is None else list(self.clip_range)
        return {"variance": draw_uniform(generator, *self.variance_range), "clip_range": clip}
