"""MR magnitude noise: Rician (one coil) and non-central chi (root-sum-of-squares of coils)."""

from __future__ import annotations

import logging
import math
from typing import Any

import torch

from ..errors import ConfigError, InputError, rule_message
from .base import NoiseTransform, RandomNoise, draw_uniform, register_noise
from .checks import check_generator, check_input, check_number, compute_dtype, parse_range

logger = logging.getLogger(__name__)

__all__ = ["add_rician_noise", "RicianNoise", "RandomRicianNoise", "rician_background_mean"]


def _check_sigma_args(
    sigma: object, sigma_percent: object, reference: object
) -> tuple[float | None, float | None, float | None]:
    if (sigma is None) == (sigma_percent is None):
        raise ConfigError(
            rule_message("sigma / sigma_percent", "exactly one must be given", (sigma, sigma_percent),
                         "Pass sigma=<absolute std> or sigma_percent=<percent of reference>, not both.")
        )
    if sigma is not None:
        sigma = check_number("sigma", sigma, low=0.0,
                             fix="sigma is a standard deviation in image units; 0 disables noise.")
    if sigma_percent is not None:
        sigma_percent = check_number("sigma_percent", sigma_percent, low=0.0, high=100.0,
                                     fix="It is a percentage of the reference intensity; 1 to 15 is typical.")
    if reference is not None:
        reference = check_number("reference", reference, low=0.0, low_open=True,
                                 fix="Pass a positive intensity, or None to use the image maximum.")
    return sigma, sigma_percent, reference  # type: ignore[return-value]


def _check_coils(n_coils: object) -> int:
    return int(check_number("n_coils", n_coils, low=1, integer=True, fix="Use 1 for Rician, e.g. 8 or 32 for arrays."))


def add_rician_noise(
    x: torch.Tensor,
    sigma: float | None = None,
    *,
    generator: torch.Generator,
    sigma_percent: float | None = None,
    reference: float | None = None,
    n_coils: int = 1,
) -> torch.Tensor:
    r"""Add MR magnitude noise (Rician for one coil, non-central chi for several).

    Parameters
    ----------
    x : torch.Tensor
        Clean magnitude image, ``(..., H, W)``, non-negative, any intensity unit.
    sigma : float, optional
        Noise standard deviation of each real/imaginary channel, in image units.
    generator : torch.Generator
        Source of randomness, on ``x.device``.
    sigma_percent : float, optional
        Alternative to ``sigma``: :math:`\sigma = \text{sigma\_percent}/100 \times`
        ``reference``; in [0, 100], 1-15 % is typical.
    reference : float, optional
        Reference intensity for ``sigma_percent``; default ``x.max()`` over the whole
        tensor (all batch items share it).
    n_coils : int
        Number of receive channels L combined by root-sum-of-squares; 1 gives Rician.

    Returns
    -------
    torch.Tensor
        Noisy magnitude, same shape, dtype and device as ``x``; always >= 0.

    Raises
    ------
    ConfigError
        Both or neither of ``sigma`` / ``sigma_percent``; a value out of range.
    InputError
        ``x`` has negative values (magnitudes are non-negative).

    Notes
    -----
    With :math:`n_{l,1}, n_{l,2} \sim N(0, \sigma^2)` i.i.d. and the signal split evenly
    over the coils (so the noise-free root-sum-of-squares equals ``x``):

    .. math:: y = \sqrt{\sum_{l=1}^{L} (x/\sqrt{L} + n_{l,1})^2 + n_{l,2}^2}

    For L = 1 this is :math:`|x + n_1 + i n_2|`, Rician distributed (Gudbjartsson &
    Patz 1995): background mean :math:`\sigma\sqrt{\pi/2}`, std :math:`\approx\sigma` at
    high SNR. For L > 1 it is non-central chi with 2L degrees of freedom (Constantinides
    et al. 1997). Draw order: for each coil, the real then the imaginary channel.

    References
    ----------
    Gudbjartsson H., Patz S., "The Rician distribution of noisy MRI data", MRM 34(6), 1995.
    Constantinides C.D., Atalar E., McVeigh E.R., "Signal-to-noise measurements in
    magnitude images from NMR phased arrays", MRM 38(5), 1997.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> y = add_rician_noise(torch.ones(4, 4), sigma_percent=0.0, generator=g)
    >>> bool((y == 1).all())
    True
    """
    check_input(x)
    check_generator(generator, x)
    sigma, sigma_percent, reference = _check_sigma_args(sigma, sigma_percent, reference)
    n_coils = _check_coils(n_coils)
    if x.numel() == 0:
        return x.clone()
    if float(x.min()) < 0.0:
        raise InputError(
            rule_message("x", "must be a non-negative magnitude image", float(x.min()),
                         "Undo any z-score normalisation, or shift intensities to start at 0.")
        )
    if sigma is None:
        ref = float(x.max()) if reference is None else reference
        sigma = sigma_percent / 100.0 * ref  # type: ignore[operator]
        if ref == 0.0 and sigma_percent:
            logger.warning("sigma_percent=%s of an all-zero image gives sigma=0: no noise added.", sigma_percent)
    if sigma == 0.0:
        return x.clone()
    dtype = compute_dtype(x)
    signal = x.to(dtype) / math.sqrt(n_coils)
    power = torch.zeros_like(signal)
    for _ in range(n_coils):
        real = signal + sigma * torch.randn(x.shape, generator=generator, device=x.device, dtype=dtype)
        imag = sigma * torch.randn(x.shape, generator=generator, device=x.device, dtype=dtype)
        power += real * real + imag * imag
    return torch.sqrt(power).to(x.dtype)


def rician_background_mean(sigma: float, n_coils: int = 1) -> float:
    r"""Mean magnitude where the signal is zero: :math:`\sigma\sqrt{2}\,\Gamma(L+\frac12)/\Gamma(L)`.

    Equals :math:`\sigma\sqrt{\pi/2}` for one coil (Rayleigh).
    """
    n_coils = _check_coils(n_coils)
    return sigma * math.sqrt(2.0) * math.exp(math.lgamma(n_coils + 0.5) - math.lgamma(n_coils))


@register_noise("rician")
class RicianNoise(NoiseTransform):
    """Module form of :func:`add_rician_noise`; give ``sigma`` or ``sigma_percent``."""

    def __init__(
        self,
        sigma: float | None = None,
        sigma_percent: float | None = None,
        reference: float | None = None,
        n_coils: int = 1,
    ) -> None:
        super().__init__()
        self.sigma, self.sigma_percent, self.reference = _check_sigma_args(sigma, sigma_percent, reference)
        self.n_coils = _check_coils(n_coils)

    def forward(self, x: torch.Tensor, *, generator: torch.Generator) -> torch.Tensor:
        return add_rician_noise(x, self.sigma, generator=generator, sigma_percent=self.sigma_percent,
                                reference=self.reference, n_coils=self.n_coils)

    def params(self) -> dict[str, Any]:
        return {"sigma": self.sigma, "sigma_percent": self.sigma_percent, "reference": self.reference,
                "n_coils": self.n_coils}


class RandomRicianNoise(RandomNoise):
    """Draw :math:`\\sigma` (absolute or in % of the reference) from U(a, b) and a seed.

    Parameters
    ----------
    sigma_percent_range : float or (float, float), optional
        Percent of ``reference`` (default: the image maximum), within [0, 100].
        Default (1, 15) when ``sigma_range`` is not given either.
    sigma_range : float or (float, float), optional
        Absolute standard deviation range (image units), >= 0. Exclusive with
        ``sigma_percent_range``.
    reference : float, optional
        Reference intensity for percentages.
    n_coils : int
        Receive channels (1: Rician).
    """

    transform_type = RicianNoise

    def __init__(
        self,
        sigma_percent_range: float | tuple[float, float] | None = None,
        *,
        sigma_range: float | tuple[float, float] | None = None,
        reference: float | None = None,
        n_coils: int = 1,
    ) -> None:
        if sigma_percent_range is not None and sigma_range is not None:
            raise ConfigError(
                rule_message("sigma_percent_range / sigma_range", "at most one may be given",
                             (sigma_percent_range, sigma_range), "Choose relative (percent) or absolute sigma.")
            )
        self.sigma_range = None
        self.sigma_percent_range = None
        if sigma_range is not None:
            self.sigma_range = parse_range("sigma_range", sigma_range, low=0.0, fix="Use e.g. (5.0, 30.0) image units.")
        else:
            self.sigma_percent_range = parse_range(
                "sigma_percent_range", (1.0, 15.0) if sigma_percent_range is None else sigma_percent_range,
                low=0.0, high=100.0, fix="Percentages are in [0, 100]; 1 to 15 is typical.",
            )
        _, _, self.reference = _check_sigma_args(1.0, None, reference)
        self.n_coils = _check_coils(n_coils)

    def draw_params(self, generator: torch.Generator) -> dict[str, Any]:
        if self.sigma_range is not None:
            sigma, percent = draw_uniform(generator, *self.sigma_range), None
        else:
            sigma, percent = None, draw_uniform(generator, *self.sigma_percent_range)  # type: ignore[misc]
        return {"sigma": sigma, "sigma_percent": percent, "reference": self.reference, "n_coils": self.n_coils}
