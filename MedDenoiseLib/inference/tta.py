"""Test-time augmentation: views of a patch (flips, in-plane transposes) and their inverses.

Two view sets of 8, both starting with the in-plane flips (none, W, H, HW), so TTA 1 / 2 / 4 are the
same in both:

- ``flips``: every subset of (D, H, W) flips. For 3D networks, whose kernels span the slices.
- ``in-plane``: the 8 symmetries of the square pixel grid (the 4 in-plane flips, each with and
  without swapping H and W). For 2.5D networks, which see slices as channels and whose kernels are
  in-plane only: a slice-order flip shows them little that is new, a transposed slice does. Used only
  where the pixels are square (:func:`~MedDenoiseLib.volume.isotropic_in_plane`), so every view is the
  same anatomy at the same resolution, and never for ultrasound, whose image is not the same along and
  across the beam (speckle is elongated across it; a transposed echo is not one a probe could make).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from ..errors import ConfigError, rule_message
from ..volume import isotropic_in_plane

SPATIAL_DIMS = (2, 3, 4)
ALLOWED_TTA = (1, 2, 4, 8)
# Every subset of (D, H, W), ordered so that the first 2 / 4 use the cheapest in-plane flips.
FLIP_ORDER = ((), (4,), (3,), (3, 4), (2,), (2, 4), (2, 3), (2, 3, 4))
IN_PLANE_FLIPS = FLIP_ORDER[:4]
SHARED_VIEWS = len(IN_PLANE_FLIPS)
"""Up to this many passes both view sets are the same views."""
VIEW_SETS = ("flips", "in-plane")
BEAM_MODALITIES = ("us",)
"""Modalities whose in-plane axes differ physically (beam direction): transposed views are never used."""


class View(NamedTuple):
    """One TTA view of a (B, C, D, H, W) tensor: flip ``flips``, then swap H and W when ``transpose``."""

    flips: tuple[int, ...] = ()
    transpose: bool = False


def _check_tta(tta: int) -> None:
    if tta not in ALLOWED_TTA:
        raise ConfigError(rule_message("tta", f"must be one of {list(ALLOWED_TTA)}", tta,
                                       "Use 8 for best quality or 1 for speed."))


def flip_set(tta: int) -> list[tuple[int, ...]]:
    """The flips used for ``tta`` passes: 1 = none; 2 = +W; 4 = +H, +HW; 8 = every subset of (D, H, W)."""
    _check_tta(tta)
    return list(FLIP_ORDER[:tta])


def view_set(tta: int, kind: str = "flips") -> list[View]:
    """The ``tta`` views of the view set ``kind`` (``flips`` or ``in-plane``, see the module docstring).

    >>> [tuple(v) for v in view_set(8, "in-plane")][3:6]
    [((3, 4), False), ((), True), ((4,), True)]
    """
    _check_tta(tta)
    if kind not in VIEW_SETS:
        raise ConfigError(rule_message("tta views", f"must be one of {list(VIEW_SETS)}", kind,
                                       "Use 'flips' for 3D networks, 'in-plane' for 2.5D ones."))
    if kind == "flips":
        return [View(dims) for dims in FLIP_ORDER[:tta]]
    every = [View(dims) for dims in IN_PLANE_FLIPS] + [View(dims, True) for dims in IN_PLANE_FLIPS]
    return every[:tta]


def views_for(network: nn.Module, spacing_xyz: tuple[float, float, float], modality: str) -> str:
    """``in-plane`` for a network whose kernels are in-plane only (``in_plane_kernels = True``) on square pixels of
    a modality without a beam direction (not :data:`BEAM_MODALITIES`), else ``flips``."""
    in_plane = bool(getattr(network, "in_plane_kernels", False)) and modality not in BEAM_MODALITIES
    return "in-plane" if in_plane and isotropic_in_plane(spacing_xyz) else "flips"


def apply_view(x: torch.Tensor, view: View) -> torch.Tensor:
    """``x`` (B, C, D, H, W) as ``view`` shows it."""
    x = torch.flip(x, view.flips) if view.flips else x
    return x.transpose(3, 4) if view.transpose else x


def undo_view(x: torch.Tensor, view: View) -> torch.Tensor:
    """The inverse of :func:`apply_view`: a prediction on the view back on the original grid."""
    x = x.transpose(3, 4) if view.transpose else x
    return torch.flip(x, view.flips) if view.flips else x
