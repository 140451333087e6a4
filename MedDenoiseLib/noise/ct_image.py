"""Fast image-domain approximation of low-dose CT noise.

Stationary, correlated Gaussian noise whose level and texture match
:mod:`.ct_projection` at the centre of the slice's water-equivalent cylinder: about a
millisecond per 512 x 512 slice instead of about a second. It loses the spatial
variation of CT noise (streaks behind dense structures, quieter periphery) and the
non-Gaussian tail at very low counts; use the projection-domain model when those matter.
"""

from __future__ import annotations

import functools
import math

import torch

from .base import register_noise
from .checks import check_generator, check_input, compute_dtype
from .ct_projection import CTProjectionNoise, RandomCTProjectionNoise, check_ct_options, check_dose_fraction
from .ct_units import MU_WATER_PER_MM, water_equivalent_diameter_mm

__all__ = ["add_ct_image_noise", "CTImageNoise", "RandomCTImageNoise", "ct_noise_sigma_hu"]

_WINDOWS = {
    "ram-lak": lambda rho: torch.ones_like(rho),
    "shepp-logan": torch.sinc,
    "cosine": lambda rho: torch.cos(math.pi * rho),
    "hann": lambda rho: 0.5 * (1.0 + torch.cos(2.0 * math.pi * rho)),
}


def _nps_shape(fy: torch.Tensor, fx: torch.Tensor, filter_name: str) -> torch.Tensor:
    r"""Un-normalised FBP noise power spectrum on frequencies in cycles/pixel.

    :math:`S(f) = \rho W(\rho)^2 \, \frac{2 + \cos 2\pi \max(|f_x|, |f_y|)}{3} \,
    \frac{2 + \cos \pi\rho}{3}` for :math:`\rho = |f| \le 1/2`, 0 beyond. The ramp times
    window squared is the classical FBP NPS (Kak & Slaney ch. 5); the two last factors
    are the mean power response of the linear interpolations in
    :func:`.ct_projector.back_project` (across rows, and from the half-pixel detector grid).
    """
    rho = torch.sqrt(fx**2 + fy**2)
    dominant = torch.maximum(fx.abs(), fy.abs())
    interp = (2.0 + torch.cos(2.0 * math.pi * dominant)) / 3.0 * (2.0 + torch.cos(math.pi * rho)) / 3.0
    return torch.where(rho <= 0.5, rho * _WINDOWS[filter_name](rho) ** 2 * interp, torch.zeros_like(rho))


@functools.lru_cache(maxsize=None)
def _nps_integral(filter_name: str) -> float:
    """:math:`\\iint S(f)\\, d^2f` over [-1/2, 1/2]^2 (midpoint rule, 1024^2 points)."""
    n = 1024
    f = (torch.arange(n, dtype=torch.float64) + 0.5) / n - 0.5
    fy, fx = torch.meshgrid(f, f, indexing="ij")
    return float(_nps_shape(fy, fx, filter_name).sum()) / n**2


def ct_noise_sigma_hu(
    water_diameter_mm: torch.Tensor | float,
    dose_fraction: float,
    *,
    n0_photons: float = 2.5e5,
    electronic_sigma: float = 10.0,
    pixel_size_mm: float = 1.0,
    n_angles: int = 360,
    filter_name: str = "hann",
    mu_water_per_mm: float = MU_WATER_PER_MM,
) -> torch.Tensor:
    r"""Noise standard deviation (HU) at the centre of a water cylinder.

    .. math::

        \lambda = N_0 d\, e^{-\mu_w D_w},\quad
        \sigma_p^2 = \frac{\lambda + \sigma_e^2}{\lambda^2},\quad
        \sigma_{HU} = \frac{1000}{\mu_w \Delta}
        \sqrt{\frac{\pi \sigma_p^2}{M} \iint S(f)\, d^2 f}

    (delta method on :math:`\log I`; :math:`S` from :func:`_nps_shape`). Matches the
    projection-domain model of :func:`.add_ct_projection_noise` to a few per cent.
    """
    dose = check_dose_fraction(dose_fraction)
    opts = check_ct_options(n0_photons=n0_photons, electronic_sigma=electronic_sigma, pixel_size_mm=pixel_size_mm,
                      n_angles=n_angles, filter_name=filter_name, mu_water_per_mm=mu_water_per_mm)
    diameter = torch.as_tensor(water_diameter_mm, dtype=torch.float64)
    counts = opts["n0_photons"] * dose * torch.exp(-opts["mu_water_per_mm"] * diameter)
    var_p = (counts + opts["electronic_sigma"] ** 2) / counts**2
    var_mu = math.pi * var_p / opts["n_angles"] * _nps_integral(opts["filter_name"])
    return 1000.0 / (opts["mu_water_per_mm"] * opts["pixel_size_mm"]) * torch.sqrt(var_mu)


def add_ct_image_noise(
    x: torch.Tensor,
    dose_fraction: float,
    *,
    generator: torch.Generator,
    n0_photons: float = 2.5e5,
    electronic_sigma: float = 10.0,
    pixel_size_mm: float = 1.0,
    n_angles: int = 360,
    filter_name: str = "hann",
    mu_water_per_mm: float = MU_WATER_PER_MM,
) -> torch.Tensor:
    r"""Add stationary CT-textured noise to each axial slice (fast approximation).

    Parameters are those of :func:`.add_ct_projection_noise` and have the same meaning.

    Returns
    -------
    torch.Tensor
        Noisy CT in HU, same shape, dtype and device as ``x`` (``(..., H, W)``).

    Notes
    -----
    For each slice: HU :math:`\to \mu` :math:`\to` water-equivalent diameter
    :math:`D_w` (AAPM Report 220) :math:`\to` :math:`\sigma_{HU}` from
    :func:`ct_noise_sigma_hu` (variance :math:`\propto 1/d` at high counts), then white
    Gaussian noise is shaped in the Fourier domain by :math:`\sqrt{S(f)}`, the FBP noise
    power spectrum, normalised to variance :math:`\sigma_{HU}^2` (periodic boundary).
    Noise is independent between slices.

    References
    ----------
    AAPM Report 220, "Use of water equivalent diameter for calculating patient size and
    size-specific dose estimates (SSDE) in CT", 2014. Kak & Slaney 1988, ch. 5 (noise in
    FBP reconstructions).

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> add_ct_image_noise(torch.zeros(2, 16, 16), 0.25, generator=g).shape
    torch.Size([2, 16, 16])
    """
    check_input(x)
    check_generator(generator, x)
    sigma_kwargs = dict(n0_photons=n0_photons, electronic_sigma=electronic_sigma, pixel_size_mm=pixel_size_mm,
                        n_angles=n_angles, filter_name=filter_name, mu_water_per_mm=mu_water_per_mm)
    check_dose_fraction(dose_fraction)
    check_ct_options(**sigma_kwargs)
    if x.numel() == 0:
        return x.clone()
    height, width = x.shape[-2:]
    dtype = compute_dtype(x)
    slices = x.detach().reshape(-1, height, width).to(dtype)
    diameter = water_equivalent_diameter_mm(slices, pixel_size_mm, mu_water_per_mm=mu_water_per_mm)
    sigma = ct_noise_sigma_hu(diameter.cpu(), dose_fraction, **sigma_kwargs).to(device=x.device, dtype=dtype)
    fy = torch.fft.fftfreq(height, dtype=torch.float64, device=x.device)[:, None]
    fx = torch.fft.rfftfreq(width, dtype=torch.float64, device=x.device)[None, :]
    shape = _nps_shape(fy, fx, filter_name)
    full_mean = (shape.sum() * 2 - shape[:, 0].sum() - (shape[:, -1].sum() if width % 2 == 0 else 0)) / (height * width)
    gain = torch.sqrt(shape / full_mean).to(dtype)
    white = torch.randn(slices.shape, generator=generator, device=x.device, dtype=dtype)
    texture = torch.fft.irfft2(torch.fft.rfft2(white) * gain, s=(height, width))
    return (slices + sigma[:, None, None] * texture).reshape(x.shape).to(x.dtype)


@register_noise("ct_image")
class CTImageNoise(CTProjectionNoise):
    """Module form of :func:`add_ct_image_noise`; same parameters as :class:`CTProjectionNoise`."""

    def forward(self, x: torch.Tensor, *, generator: torch.Generator) -> torch.Tensor:  # type: ignore[override]
        return add_ct_image_noise(x, self.dose_fraction, generator=generator, **self.options)


class RandomCTImageNoise(RandomCTProjectionNoise):
    """Draw :math:`d \\sim U(a, b)` and a seed; apply :class:`CTImageNoise`.

    Parameters are those of :class:`~.ct_projection.RandomCTProjectionNoise`.
    """

    transform_type = CTImageNoise
