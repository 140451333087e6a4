"""Additive white Gaussian noise in absolute (physical) units."""

from __future__ import annotations

from typing import Any

import torch

from .base import NoiseTransform, RandomNoise, draw_uniform, register_noise
from .checks import check_generator, check_input, check_number, compute_dtype, parse_range

__all__ = ["add_gaussian_noise", "GaussianNoise", "RandomGaussianNoise"]


def add_gaussian_noise(
    x: torch.Tensor, sigma: float, *, generator: torch.Generator, mean: float = 0.0
) -> torch.Tensor:
    r"""Add white Gaussian noise: :math:`y = x + \mu + \sigma n`, :math:`n \sim N(0, 1)` i.i.d.

    Parameters
    ----------
    x : torch.Tensor
        Clean image, shape ``(..., H, W)``, in its physical units (HU, a.u., ...).
    sigma : float
        Standard deviation in the units of ``x``; ``>= 0``. ``0`` (with ``mean=0``)
        returns an exact copy.
    generator : torch.Generator
        Source of randomness, on ``x.device``.
    mean : float
        Constant offset :math:`\mu` (0 for unbiased noise).

    Returns
    -------
    torch.Tensor
        Same shape, dtype and device as ``x``.

    Raises
    ------
    ConfigError
        ``sigma < 0``, non-finite arguments, or a bad generator.

    Notes
    -----
    Thermal (Johnson–Nyquist) noise in the complex MR signal and electronic read-out
    noise in detectors are Gaussian; on magnitude images use Rician noise instead.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> add_gaussian_noise(torch.zeros(2, 2), 0.0, generator=g)
    tensor([[0., 0.],
            [0., 0.]])
    """
    check_input(x)
    check_generator(generator, x)
    sigma = check_number("sigma", sigma, low=0.0, fix="sigma is a standard deviation; use 0 for no noise.")
    mean = check_number("mean", mean)
    if sigma == 0.0 and mean == 0.0:
        return x.clone()
    dtype = compute_dtype(x)
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=dtype)
    return (x.to(dtype) + mean + sigma * noise).to(x.dtype)


@register_noise("gaussian")
class GaussianNoise(NoiseTransform):
    """Module form of :func:`add_gaussian_noise` with fixed ``sigma`` and ``mean``."""

    def __init__(self, sigma: float, mean: float = 0.0) -> None:
        super().__init__()
        self.sigma = check_number("sigma", sigma, low=0.0, fix="sigma is a standard deviation; use 0 for no noise.")
        self.mean = check_number("mean", mean)

    def forward(self, x: torch.Tensor, *, generator: torch.Generator) -> torch.Tensor:
        return add_gaussian_noise(x, self.sigma, generator=generator, mean=self.mean)

    def params(self) -> dict[str, Any]:
        return {"sigma": self.sigma, "mean": self.mean}


class RandomGaussianNoise(RandomNoise):
    """Draw :math:`\\sigma \\sim U(a, b)` and a seed, then apply :class:`GaussianNoise`.

    Parameters
    ----------
    sigma_range : float or (float, float)
        Range of the standard deviation in the units of the image, ``>= 0``.
        A single number fixes sigma.
    mean : float
        Fixed offset.
    """

    transform_type = GaussianNoise

    def __init__(self, sigma_range: float | tuple[float, float], mean: float = 0.0) -> None:
        self.sigma_range = parse_range("sigma_range", sigma_range, low=0.0, fix="Use e.g. (5.0, 25.0) in image units.")
        self.mean = check_number("mean", mean)

    def draw_params(self, generator: torch.Generator) -> dict[str, Any]:
        return {"sigma": draw_uniform(generator, *self.sigma_range), "mean": self.mean}
