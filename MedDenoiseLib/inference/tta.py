"""Test-time augmentation by flips: the 8 flip combinations of (D, H, W) and their inverses."""

from __future__ import annotations

import torch

from ..errors import ConfigError, rule_message

SPATIAL_DIMS = (2, 3, 4)
ALLOWED_TTA = (1, 2, 4, 8)
# Every subset of (D, H, W), ordered so that the first 2 / 4 use the cheapest in-plane flips.
FLIP_ORDER = ((), (4,), (3,), (3, 4), (2,), (2, 4), (2, 3), (2, 3, 4))


def flip_set(tta: int) -> list[tuple[int, ...]]:
    """The flips used for ``tta`` passes: 1 = none; 2 = +W; 4 = +H, +HW; 8 = every subset of (D, H, W)."""
    if tta not in ALLOWED_TTA:
        raise ConfigError(rule_message("tta", f"must be one of {list(ALLOWED_TTA)}", tta,
                                       "Use 8 for best quality or 1 for speed."))
    return list(FLIP_ORDER[:tta])


def apply_flip(x: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """Flip ``x`` (B, C, D, H, W) along ``dims``; a flip is its own inverse."""
    return torch.flip(x, dims) if dims else x


undo_flip = apply_flip
