"""Helpers shared by the architectures: input checks, config checks, pad-to-multiple and crop-back.

Every registered model maps a ``(B, 1, D, H, W)`` tensor to a tensor of the same shape for
any ``D, H, W >= 1`` (see ``registry``). Models that pool or stride ``n`` times need each
pooled axis to be a multiple of ``2**n``; :func:`pad_to_multiple` pads the input up to that
multiple and returns the slices that crop the output back to the input's size.
"""

from __future__ import annotations

import logging
from typing import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, ShapeError, rule_message

logger = logging.getLogger(__name__)

__all__ = [
    "check_choice",
    "check_dropout",
    "check_positive_int",
    "check_volume_batch",
    "pad_to_multiple",
    "parameter_dtype",
]


def _as_triple(value: int | Sequence[int], name: str) -> tuple[int, int, int]:
    triple = (value,) * 3 if isinstance(value, int) else tuple(value)
    if len(triple) != 3 or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in triple):
        raise ConfigError(rule_message(name, "must be a positive int or three positive ints (D, H, W)", value,
                                       "Use e.g. (1, 4, 4) to pad only in-plane to a multiple of 4."))
    return triple  # type: ignore[return-value]


def pad_to_multiple(
    x: torch.Tensor,
    multiples: int | Sequence[int],
    *,
    min_sizes: int | Sequence[int] = 1,
) -> tuple[torch.Tensor, tuple[slice, ...]]:
    """Pad the three spatial axes of ``x`` up to a multiple, and say how to crop back.

    Parameters
    ----------
    x : torch.Tensor
        Tensor of shape ``(B, C, D, H, W)``.
    multiples : int or sequence of three ints
        Each padded spatial size is a multiple of this (per axis ``D, H, W``).
    min_sizes : int or sequence of three ints, default 1
        Each padded spatial size is at least this (rounded up to the multiple), e.g. to keep
        more than one voxel per channel at the bottom of a UNet whose instance norm needs it.

    Returns
    -------
    padded : torch.Tensor
        ``(B, C, D', H', W')`` with ``D' = max(ceil(D / m_D), ceil(min_D / m_D)) * m_D`` etc.
    crop_slices : tuple of slice
        Five slices such that ``padded[crop_slices]`` is ``x`` again (and ``model_out[crop_slices]``
        is the output aligned with ``x``).

    Notes
    -----
    Padding is split between both ends of an axis (the extra voxel, if odd, at the end), so
    the image stays centred. Each axis uses reflect padding (mirror without repeating the
    border voxel) when both pads are smaller than the axis size, and replicate padding
    otherwise, e.g. a single slice (``D = 1``) padded to 4 slices becomes 4 copies of that
    slice. Reflect avoids the artificial flat border that zero padding would show the network.

    Examples
    --------
    >>> x = torch.arange(3.0).reshape(1, 1, 1, 1, 3)
    >>> padded, crop = pad_to_multiple(x, (2, 1, 4))
    >>> padded.shape
    torch.Size([1, 1, 2, 1, 4])
    >>> padded[0, 0, 0, 0].tolist()
    [0.0, 1.0, 2.0, 1.0]
    >>> torch.equal(padded[crop], x)
    True
    """
    if x.dim() != 5:
        raise ShapeError(rule_message("x", "must have 5 dimensions (B, C, D, H, W)", tuple(x.shape),
                                      "Add batch and channel axes, e.g. x[None, None]."))
    mult = _as_triple(multiples, "multiples")
    mins = _as_triple(min_sizes, "min_sizes")
    crops: list[slice] = [slice(None), slice(None)]
    for axis, (m, low) in enumerate(zip(mult, mins)):
        size = x.shape[2 + axis]
        target = max(-(-size // m), -(-low // m)) * m
        total = target - size
        before, after = total // 2, total - total // 2
        crops.append(slice(before, before + size))
        if total == 0:
            continue
        # F.pad lists pads from the last axis backwards: (W0, W1, H0, H1, D0, D1).
        pads = [0] * 6
        pads[2 * (2 - axis)] = before
        pads[2 * (2 - axis) + 1] = after
        mode = "reflect" if after < size else "replicate"
        if mode == "replicate":
            logger.debug("Axis %d of size %d padded by %d with replicate (too small to reflect).", axis, size, total)
        x = F.pad(x, pads, mode=mode)
    return x, tuple(crops)


def check_volume_batch(x: torch.Tensor, model_name: str) -> None:
    """Raise ShapeError unless ``x`` is a ``(B, 1, D, H, W)`` floating tensor with ``D, H, W >= 1``."""
    if x.dim() != 5 or x.shape[1] != 1 or min(x.shape[2:]) < 1:
        raise ShapeError(rule_message(f"input of {model_name}", "must have shape (B, 1, D, H, W) with D, H, W >= 1",
                                      tuple(x.shape), "Add axes with x[None, None] for one (D, H, W) volume."))
    if not x.is_floating_point():
        raise ShapeError(rule_message(f"input of {model_name}", "must be a floating-point tensor", x.dtype,
                                      "Convert with x.float()."))


def parameter_dtype(module: nn.Module) -> torch.dtype:
    """The dtype of the module's first parameter (the dtype its forward computes in outside autocast)."""
    return next(module.parameters()).dtype


def check_positive_int(value: object, name: str, *, minimum: int = 1) -> int:
    """Return ``value`` if it is an int >= ``minimum``; ConfigError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(rule_message(name, f"must be an int >= {minimum}", value,
                                       f"Use e.g. {name}={max(minimum, 1) * 2}."))
    return value


def check_dropout(value: object) -> float:
    """Return ``value`` as a float if it lies in [0, 1); ConfigError otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) < 1.0:
        raise ConfigError(rule_message("dropout", "must be a probability in [0, 1)", value,
                                       "Use 0.0 for no dropout or e.g. 0.1 for Monte-Carlo dropout."))
    return float(value)


def check_choice(value: object, name: str, choices: Iterable[object]) -> None:
    """Raise ConfigError unless ``value`` is one of ``choices``."""
    allowed = list(choices)
    # Compare types too, so that 3.0 or True do not pass for 3 or 1.
    if type(value) not in {type(c) for c in allowed} or value not in allowed:
        raise ConfigError(rule_message(name, f"must be one of {allowed}", value, f"Use {name}={allowed[0]!r}."))
