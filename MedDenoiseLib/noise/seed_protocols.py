r"""Noise protocols of the seed papers, on images scaled to [0, 1].

These are benchmark conventions, not physics: they let MedDenoise reproduce the
published comparisons.

* Gondara 2016 (CNN-DAE) corrupts images with a noise *proportion* :math:`p`:
  Gaussian :math:`y = \mathrm{clip}(x + p\,N(\mu, \sigma^2), 0, 1)`, and Poisson noise
  "with :math:`\lambda = 5`, :math:`p = 0.2`".
* The NIT Raipur report uses the same additive form with :math:`p = 0.3`,
  :math:`\mu = 0`, :math:`\sigma = 1.5` (read as a standard deviation).

**Poisson reading.** Taken literally, :math:`x + p\,\mathrm{Poisson}(\lambda)` adds a
mean of :math:`p\lambda = 1` at the published setting, so after clipping nearly every
pixel is white: no denoising benchmark could have used it. The reading implemented by
default (``mode="standardized"``) is the Poisson analogue of the Gaussian protocol,

.. math:: y = \mathrm{clip}\left(x + p\,\frac{\mathrm{Poisson}(\lambda) - \lambda}{\sqrt{\lambda}},\ 0,\ 1\right),

i.e. zero-mean, unit-variance Poisson-shaped noise scaled by :math:`p` exactly as
:math:`p\,N(0, 1)` is in the Gaussian protocol (skewness :math:`1/\sqrt{\lambda}`
keeps it distinguishable from Gaussian). ``mode="literal"`` implements
:math:`\mathrm{clip}(x + p\,\mathrm{Poisson}(\lambda), 0, 1)` for completeness.

References
----------
Gondara L., "Medical image denoising using convolutional denoising autoencoders",
IEEE ICDM Workshops, 2016 (arXiv:1608.04667).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ..errors import ConfigError, InputError, rule_message
from .base import NoiseTransform, RandomNoise, draw_uniform, register_noise
from .checks import check_choice, check_generator, check_input, check_number, compute_dtype, parse_range

__all__ = [
    "SEED_PROTOCOLS",
    "seed_protocol",
    "add_gondara_gaussian_noise",
    "GondaraGaussianNoise",
    "RandomGondaraGaussianNoise",
    "add_gondara_poisson_noise",
    "GondaraPoissonNoise",
    "RandomGondaraPoissonNoise",
]

POISSON_MODES = ("standardized", "literal")

SEED_PROTOCOLS: dict[str, dict[str, Any]] = {
    "gondara2016_poisson": {"name": "gondara_poisson", "params": {"p": 0.2, "lam": 5.0, "mode": "standardized"}},
    "nit_raipur": {"name": "gondara_gaussian", "params": {"p": 0.3, "mean": 0.0, "sigma": 1.5}},
}
"""Published settings: protocol key -> noise name and parameters."""

_P_FIX = "p is the noise proportion (scale), >= 0, e.g. 0.1."


def _check_unit_range(x: torch.Tensor) -> None:
    low, high = float(x.min()), float(x.max())
    if low < 0.0 or high > 1.0:
        raise InputError(
            rule_message("x", "must be scaled to [0, 1] for the seed-paper protocols", (low, high),
                         "Min-max scale the image first, e.g. (x - x.min()) / (x.max() - x.min()).")
        )


def add_gondara_gaussian_noise(
    x: torch.Tensor, p: float, *, generator: torch.Generator, mean: float = 0.0, sigma: float = 1.0
) -> torch.Tensor:
    r"""Gondara 2016 Gaussian protocol: :math:`y = \mathrm{clip}(x + p\,N(\mu, \sigma^2), 0, 1)`.

    ``p=0.3, mean=0, sigma=1.5`` is the NIT Raipur setting. ``x`` must lie in [0, 1].

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> y = add_gondara_gaussian_noise(torch.full((3, 3), 0.5), 0.3, generator=g, sigma=1.5)
    >>> bool(((y >= 0) & (y <= 1)).all())
    True
    """
    check_input(x)
    check_generator(generator, x)
    p = check_number("p", p, low=0.0, fix=_P_FIX)
    mean = check_number("mean", mean)
    sigma = check_number("sigma", sigma, low=0.0, fix="sigma is a standard deviation, e.g. 1.")
    if x.numel() == 0:
        return x.clone()
    _check_unit_range(x)
    if p == 0.0:
        return x.clone()
    dtype = compute_dtype(x)
    noise = mean + sigma * torch.randn(x.shape, generator=generator, device=x.device, dtype=dtype)
    return (x.to(dtype) + p * noise).clamp(0.0, 1.0).to(x.dtype)


def add_gondara_poisson_noise(
    x: torch.Tensor, p: float, lam: float, *, generator: torch.Generator, mode: str = "standardized"
) -> torch.Tensor:
    r"""Gondara 2016 Poisson protocol on [0, 1] images (see the module docstring).

    ``mode="standardized"``: :math:`\mathrm{clip}(x + p(\mathrm{Poisson}(\lambda) - \lambda)/\sqrt{\lambda}, 0, 1)`;
    ``mode="literal"``: :math:`\mathrm{clip}(x + p\,\mathrm{Poisson}(\lambda), 0, 1)`.
    Published setting: ``p=0.2, lam=5``.
    """
    check_input(x)
    check_generator(generator, x)
    p = check_number("p", p, low=0.0, fix=_P_FIX)
    lam = check_number("lam", lam, low=0.0, low_open=True, fix="lam is the Poisson rate, > 0, e.g. 5.")
    mode = check_choice("mode", mode, POISSON_MODES, fix="Use 'standardized' (zero-mean, the default reading).")
    if x.numel() == 0:
        return x.clone()
    _check_unit_range(x)
    if p == 0.0:
        return x.clone()
    dtype = compute_dtype(x)
    counts = torch.poisson(torch.full(x.shape, lam, dtype=dtype, device=x.device), generator=generator)
    noise = (counts - lam) / math.sqrt(lam) if mode == "standardized" else counts
    return (x.to(dtype) + p * noise).clamp(0.0, 1.0).to(x.dtype)


@register_noise("gondara_gaussian")
class GondaraGaussianNoise(NoiseTransform):
    """Module form of :func:`add_gondara_gaussian_noise`."""

    def __init__(self, p: float, mean: float = 0.0, sigma: float = 1.0) -> None:
        super().__init__()
        self.p = check_number("p", p, low=0.0, fix=_P_FIX)
        self.mean = check_number("mean", mean)
        self.sigma = check_number("sigma", sigma, low=0.0, fix="sigma is a standard deviation, e.g. 1.")

    def forward(self, x: torch.Tensor, *, generator: torch.Generator) -> torch.Tensor:
        return add_gondara_gaussian_noise(x, self.p, generator=generator, mean=self.mean, sigma=self.sigma)

    def params(self) -> dict[str, Any]:
        return {"p": self.p, "mean": self.mean, "sigma": self.sigma}


@register_noise("gondara_poisson")
class GondaraPoissonNoise(NoiseTransform):
    """Module form of :func:`add_gondara_poisson_noise`."""

    def __init__(self, p: float, lam: float = 5.0, mode: str = "standardized") -> None:
        super().__init__()
        self.p = check_number("p", p, low=0.0, fix=_P_FIX)
        self.lam = check_number("lam", lam, low=0.0, low_open=True, fix="lam is the Poisson rate, > 0, e.g. 5.")
        self.mode = check_choice("mode", mode, POISSON_MODES, fix="Use 'standardized'.")

    def forward(self, x: torch.Tensor, *, generator: torch.Generator) -> torch.Tensor:
        return add_gondara_poisson_noise(x, self.p, self.lam, generator=generator, mode=self.mode)

    def params(self) -> dict[str, Any]:
        return {"p": self.p, "lam": self.lam, "mode": self.mode}


class RandomGondaraGaussianNoise(RandomNoise):
    """Draw ``p`` from U(a, b) and a seed; apply :class:`GondaraGaussianNoise`."""

    transform_type = GondaraGaussianNoise

    def __init__(self, p_range: float | tuple[float, float] = (0.1, 0.5), *, mean: float = 0.0,
                 sigma: float = 1.0) -> None:
        self.p_range = parse_range("p_range", p_range, low=0.0, fix=_P_FIX)
        self.mean = check_number("mean", mean)
        self.sigma = check_number("sigma", sigma, low=0.0, fix="sigma is a standard deviation, e.g. 1.")

    def draw_params(self, generator: torch.Generator) -> dict[str, Any]:
        return {"p": draw_uniform(generator, *self.p_range), "mean": self.mean, "sigma": self.sigma}


class RandomGondaraPoissonNoise(RandomNoise):
    """Draw ``p`` from U(a, b) and a seed; apply :class:`GondaraPoissonNoise`."""

    transform_type = GondaraPoissonNoise

    def __init__(self, p_range: float | tuple[float, float] = 0.2, *, lam: float = 5.0,
                 mode: str = "standardized") -> None:
        self.p_range = parse_range("p_range", p_range, low=0.0, fix=_P_FIX)
        checked = GondaraPoissonNoise(0.0, lam, mode)
        self.lam, self.mode = checked.lam, checked.mode

    def draw_params(self, generator: torch.Generator) -> dict[str, Any]:
        return {"p": draw_uniform(generator, *self.p_range), "lam": self.lam, "mode": self.mode}


def seed_protocol(key: str) -> NoiseTransform:
    """Transform for a published setting in :data:`SEED_PROTOCOLS` (e.g. ``"nit_raipur"``)."""
    if key not in SEED_PROTOCOLS:
        raise ConfigError(rule_message("protocol", f"must be one of {sorted(SEED_PROTOCOLS)}", key,
                                       "Check the spelling."))
    entry = SEED_PROTOCOLS[key]
    kind = GondaraPoissonNoise if entry["name"] == "gondara_poisson" else GondaraGaussianNoise
    return kind(**entry["params"])
