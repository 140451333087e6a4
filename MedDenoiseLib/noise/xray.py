"""Projection radiography (X-ray) quantum and electronic noise at a reduced dose."""

from __future__ import annotations

from typing import Any

import torch

from ..errors import InputError, rule_message
from .base import NoiseTransform, RandomNoise, draw_uniform, register_noise
from .checks import check_generator, check_input, check_number, parse_range
from .poisson_gaussian import add_poisson_gaussian_noise

__all__ = ["add_xray_noise", "XRayNoise", "RandomXRayNoise"]

_DOSE_FIX = "It is the fraction of the full-dose exposure, e.g. 0.25 for quarter dose."


def _check_params(
    photons_at_max: object, electronic_sigma: object, reference: object
) -> tuple[float, float, float | None]:
    photons = check_number("photons_at_max", photons_at_max, low=0.0, low_open=True,
                           fix="Detected quanta at the brightest pixel at full dose, e.g. 1e4.")
    electronic = check_number("electronic_sigma", electronic_sigma, low=0.0,
                              fix="Read-out noise in quanta (counts), e.g. 3.")
    if reference is not None:
        reference = check_number("reference", reference, low=0.0, low_open=True,
                                 fix="Detector value that receives photons_at_max, or None for x.max().")
    return photons, electronic, reference  # type: ignore[return-value]


def add_xray_noise(
    x: torch.Tensor,
    dose_fraction: float,
    *,
    generator: torch.Generator,
    photons_at_max: float = 1.0e4,
    electronic_sigma: float = 3.0,
    reference: float | None = None,
) -> torch.Tensor:
    r"""Simulate a radiograph acquired at ``dose_fraction`` of the full dose.

    Parameters
    ----------
    x : torch.Tensor
        Clean (expected) detector image, ``(..., H, W)``, values proportional to the
        detected photon count (raw/linear detector data: bright = many photons).
        Log-processed or inverted radiographs must be converted back first.
    dose_fraction : float
        Exposure relative to full dose, in (0, 1].
    generator : torch.Generator
        Source of randomness, on ``x.device``.
    photons_at_max : float
        :math:`N_{max}`: quanta detected at the ``reference`` value at full dose.
    electronic_sigma : float
        :math:`\sigma_e`: read-out noise standard deviation, in quanta.
    reference : float, optional
        Detector value receiving :math:`N_{max}` quanta; default ``x.max()``.

    Returns
    -------
    torch.Tensor
        Noisy image in the input's detector units (same mean brightness: the dose
        reduction is compensated by the detector gain), same shape, dtype and device.

    Raises
    ------
    ConfigError
        A parameter out of range.
    InputError
        Negative detector values, or an all-zero image without ``reference``.

    Notes
    -----
    With gain :math:`a = v_{ref} / (N_{max} d)` (detector units per quantum) the counts are
    :math:`x/a`, and

    .. math:: y = a\left[\mathrm{Poisson}(x/a) + N(0, \sigma_e^2)\right],\qquad
              \mathrm{Var}(y) = a x + a^2\sigma_e^2,

    so the quantum variance is proportional to signal / dose (Foi et al. 2008 model with
    :math:`b = a\sigma_e`). ``dose_fraction = 1`` is the full-dose acquisition, not a
    noise-free one.

    References
    ----------
    Foi A. et al., IEEE TIP 17(10), 2008. Bushberg J.T. et al., *The Essential Physics of
    Medical Imaging*, 3rd ed., 2012, ch. 4 and 7 (quantum noise in radiography).

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> y = add_xray_noise(torch.full((2, 3), 100.0), 0.5, generator=g, electronic_sigma=0.0)
    >>> y.shape, bool((y >= 0).all())
    (torch.Size([2, 3]), True)
    """
    check_input(x)
    check_generator(generator, x)
    dose = check_number("dose_fraction", dose_fraction, low=0.0, high=1.0, low_open=True, fix=_DOSE_FIX)
    photons, electronic, reference = _check_params(photons_at_max, electronic_sigma, reference)
    if x.numel() == 0:
        return x.clone()
    if reference is None:
        reference = float(x.max())
        if reference <= 0.0:
            raise InputError(
                rule_message("x.max()", "must be > 0 to set the photon scale", reference,
                             "Pass reference=<detector value of photons_at_max>.")
            )
    gain = reference / (photons * dose)
    return add_poisson_gaussian_noise(x, gain, gain * electronic, generator=generator)


@register_noise("xray")
class XRayNoise(NoiseTransform):
    """Module form of :func:`add_xray_noise`."""

    def __init__(
        self,
        dose_fraction: float,
        photons_at_max: float = 1.0e4,
        electronic_sigma: float = 3.0,
        reference: float | None = None,
    ) -> None:
        super().__init__()
        self.dose_fraction = check_number("dose_fraction", dose_fraction, low=0.0, high=1.0, low_open=True,
                                          fix=_DOSE_FIX)
        self.photons_at_max, self.electronic_sigma, self.reference = _check_params(
            photons_at_max, electronic_sigma, reference
        )

    def forward(self, x: torch.Tensor, *, generator: torch.Generator) -> torch.Tensor:
        return add_xray_noise(x, self.dose_fraction, generator=generator, photons_at_max=self.photons_at_max,
                              electronic_sigma=self.electronic_sigma, reference=self.reference)

    def params(self) -> dict[str, Any]:
        return {"dose_fraction": self.dose_fraction, "photons_at_max": self.photons_at_max,
                "electronic_sigma": self.electronic_sigma, "reference": self.reference}


class RandomXRayNoise(RandomNoise):
    """Draw a dose fraction :math:`d \\sim U(a, b)` and a seed; apply :class:`XRayNoise`.

    Parameters
    ----------
    dose_range : float or (float, float)
        Dose fractions in (0, 1]; default (0.1, 0.5).
    photons_at_max, electronic_sigma, reference
        Fixed detector parameters, see :func:`add_xray_noise`.
    """

    transform_type = XRayNoise

    def __init__(
        self,
        dose_range: float | tuple[float, float] = (0.1, 0.5),
        *,
        photons_at_max: float = 1.0e4,
        electronic_sigma: float = 3.0,
        reference: float | None = None,
    ) -> None:
        self.dose_range = parse_range("dose_range", dose_range, low=0.0, high=1.0, low_open=True, fix=_DOSE_FIX)
        self.photons_at_max, self.electronic_sigma, self.reference = _check_params(
            photons_at_max, electronic_sigma, reference
        )

    def draw_params(self, generator: torch.Generator) -> dict[str, Any]:
        return {"dose_fraction": draw_uniform(generator, *self.dose_range), "photons_at_max": self.photons_at_max,
                "electronic_sigma": self.electronic_sigma, "reference": self.reference}
