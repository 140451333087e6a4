"""CT units: Hounsfield units, linear attenuation and water-equivalent diameter.

HU is defined from the linear attenuation coefficient :math:`\\mu` by
:math:`HU = 1000 (\\mu - \\mu_w) / \\mu_w` (air -1000, water 0). We use
:math:`\\mu_w = 0.0192\\,mm^{-1}`, water at about 70 keV, the effective energy of a
120 kVp beam (Hubbell & Seltzer, NIST XCOM tables).
"""

from __future__ import annotations

import math

import torch

__all__ = ["MU_WATER_PER_MM", "hu_to_mu", "mu_to_hu", "water_equivalent_diameter_mm"]

MU_WATER_PER_MM = 0.0192
"""Linear attenuation of water at ~70 keV, in 1/mm."""


def hu_to_mu(hu: torch.Tensor, *, mu_water_per_mm: float = MU_WATER_PER_MM) -> torch.Tensor:
    """Linear attenuation in 1/mm, :math:`\\mu = \\mu_w (1 + HU / 1000)`, floored at 0.

    Values below -1000 HU (e.g. the -2048 or -3024 padding outside the scan field of
    view) have no physical attenuation below vacuum and are mapped to 0.
    """
    return (mu_water_per_mm * (1.0 + hu / 1000.0)).clamp(min=0.0)


def mu_to_hu(mu: torch.Tensor, *, mu_water_per_mm: float = MU_WATER_PER_MM) -> torch.Tensor:
    """Hounsfield units from linear attenuation in 1/mm (no flooring)."""
    return 1000.0 * (mu - mu_water_per_mm) / mu_water_per_mm


def water_equivalent_diameter_mm(
    slice_hu: torch.Tensor, pixel_size_mm: float, *, mu_water_per_mm: float = MU_WATER_PER_MM
) -> torch.Tensor:
    """Water-equivalent diameter of each axial slice (AAPM Report 220, 2014).

    :math:`A_w = \\sum_{pixels} \\max(0, 1 + HU/1000)\\, \\Delta^2` and
    :math:`D_w = 2\\sqrt{A_w / \\pi}`: the diameter of the water cylinder that attenuates
    the beam as much as the slice does on average.

    Parameters
    ----------
    slice_hu : torch.Tensor
        ``(..., H, W)`` in HU.
    pixel_size_mm : float
        In-plane pixel spacing :math:`\\Delta` in mm.

    Returns
    -------
    torch.Tensor
        ``(...)`` diameters in mm.
    """
    relative = hu_to_mu(slice_hu, mu_water_per_mm=mu_water_per_mm) / mu_water_per_mm
    area = relative.sum(dim=(-2, -1)) * pixel_size_mm**2
    return 2.0 * torch.sqrt(area / math.pi)
