"""Generic Poisson–Gaussian (signal-dependent) noise, Foi et al. 2008.

The fast image-domain CT approximation is implemented in :mod:`.ct_image` (Gaussian
with a CT texture and a dose-dependent level) and re-exported here; X-ray dose
reduction in :mod:`.xray` is this model with the gain set from the photon count.
"""

from __future__ import annotations

from typing import Any

import torch

from ..errors import InputError, rule_message
from .base import NoiseTransform, RandomNoise, draw_uniform, register_noise
from .checks import check_generator, check_input, check_number, compute_dtype, parse_range
from .ct_image import CTImageNoise, RandomCTImageNoise, add_ct_image_noise

__all__ = [
    "add_poisson_gaussian_noise",
    "PoissonGaussianNoise",
    "RandomPoissonGaussianNoise",
    "add_ct_image_noise",
    "CTImageNoise",
    "RandomCTImageNoise",
]

_GAIN_FIX = "gain is image units per detected quantum (a > 0), or 0 to drop the Poisson part."
_SIGMA_FIX = "sigma is the read-out noise standard deviation in image units (>= 0)."


def add_poisson_gaussian_noise(
    x: torch.Tensor, gain: float, sigma: float, *, generator: torch.Generator
) -> torch.Tensor:
    r"""Poisson–Gaussian noise: :math:`y = a\,\mathrm{Poisson}(x / a) + N(0, b^2)`.

    Parameters
    ----------
    x : torch.Tensor
        Clean non-negative image (expected signal), ``(..., H, W)``.
    gain : float
        :math:`a \ge 0`, image units per quantum; ``x / a`` is the expected count.
        ``0`` drops the Poisson part (its limit as :math:`a \to 0`).
    sigma : float
        :math:`b \ge 0`, standard deviation of the signal-independent Gaussian part.
    generator : torch.Generator
        Source of randomness, on ``x.device``. The Poisson draw comes first.

    Returns
    -------
    torch.Tensor
        Same shape, dtype and device as ``x``; unbiased (:math:`E[y] = x`), variance
        :math:`a x + b^2`. Not clipped (negative values are possible when b > 0).

    Raises
    ------
    ConfigError
        ``gain`` or ``sigma`` negative or non-finite.
    InputError
        ``x`` negative while ``gain > 0`` (a negative expected count).

    References
    ----------
    Foi A., Trimeche M., Katkovnik V., Egiazarian K., "Practical Poissonian-Gaussian
    noise modeling and fitting for single-image raw-data", IEEE TIP 17(10), 2008.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> add_poisson_gaussian_noise(torch.full((2, 2), 3.0), 0.0, 0.0, generator=g)
    tensor([[3., 3.],
            [3., 3.]])
    """
    check_input(x)
    check_generator(generator, x)
    gain = check_number("gain", gain, low=0.0, fix=_GAIN_FIX)
    sigma = check_number("sigma", sigma, low=0.0, fix=_SIGMA_FIX)
    if x.numel() == 0 or (gain == 0.0 and sigma == 0.0):
        return x.clone()
    dtype = compute_dtype(x)
    y = x.to(dtype)
    if gain > 0.0:
        if float(x.min()) < 0.0:
            raise InputError(
                rule_message("x", "must be >= 0 for Poisson noise (it is an expected count times gain)",
                             float(x.min()), "Shift or rescale the image to non-negative detector values.")
            )
        y = gain * torch.poisson(y / gain, generator=generator)
    if sigma > 0.0:
        y = y + sigma * torch.randn(x.shape, generator=generator, device=x.device, dtype=dtype)
    return y.to(x.dtype)


@register_noise("poisson_gaussian")
class PoissonGaussianNoise(NoiseTransform):
    """Module form of :func:`add_poisson_gaussian_noise` with fixed ``gain`` and ``sigma``."""

    def __init__(self, gain: float, sigma: float = 0.0) -> None:
        super().__init__()
        self.gain = check_number("gain", gain, low=0.0, fix=_GAIN_FIX)
        self.sigma = check_number("sigma", sigma, low=0.0, fix=_SIGMA_FIX)

    def forward(self, x: torch.Tensor, *, generator: torch.Generator) -> torch.Tensor:
        return add_poisson_gaussian_noise(x, self.gain, self.sigma, generator=generator)

    def params(self) -> dict[str, Any]:
        return {"gain": self.gain, "sigma": self.sigma}


class RandomPoissonGaussianNoise(RandomNoise):
    """Draw :math:`a \\sim U(\\cdot)`, :math:`b \\sim U(\\cdot)` (in that order) and a seed.

    Parameters
    ----------
    gain_range : float or (float, float)
        Range of :math:`a \\ge 0` (image units per quantum).
    sigma_range : float or (float, float)
        Range of :math:`b \\ge 0` (image units); default 0.
    """

    transform_type = PoissonGaussianNoise

    def __init__(self, gain_range: float | tuple[float, float], sigma_range: float | tuple[float, float] = 0.0) -> None:
        self.gain_range = parse_range("gain_range", gain_range, low=0.0, fix=_GAIN_FIX)
        self.sigma_range = parse_range("sigma_range", sigma_range, low=0.0, fix=_SIGMA_FIX)

    def draw_params(self, generator: torch.Generator) -> dict[str, Any]:
        return {"gain": draw_uniform(generator, *self.gain_range), "sigma": draw_uniform(generator, *self.sigma_range)}
