"""Argument and input checks shared by the noise models.

Every failure raises a :mod:`MedDenoiseLib.errors` exception whose message names the
parameter, the rule, the value received and a fix (``rule_message``). Nothing is
clamped: a value outside its range is an error, never silently moved inside it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ..errors import ConfigError, InputError, ShapeError, rule_message

__all__ = [
    "check_generator",
    "check_input",
    "check_number",
    "check_choice",
    "parse_range",
    "compute_dtype",
]


def check_input(x: object, *, name: str = "x", min_ndim: int = 2) -> None:
    """Check that ``x`` is a finite floating-point tensor with at least ``min_ndim`` axes.

    Raises
    ------
    InputError
        ``x`` is not a tensor, has an integer/bool/complex dtype, or holds NaN/Inf.
    ShapeError
        ``x`` has fewer than ``min_ndim`` axes.
    """
    if not isinstance(x, torch.Tensor):
        raise InputError(
            rule_message(name, "must be a torch.Tensor", type(x).__name__, "Convert with torch.as_tensor(array).")
        )
    if not x.is_floating_point():
        raise InputError(
            rule_message(
                f"{name}.dtype",
                "must be floating point (noise is simulated in physical units)",
                str(x.dtype),
                f"Convert first, e.g. {name}.float(); integer CT in HU fits float32 exactly.",
            )
        )
    if x.ndim < min_ndim:
        raise ShapeError(
            rule_message(
                f"{name}.shape",
                f"must have at least {min_ndim} axes (..., H, W)",
                tuple(x.shape),
                "Add axes, e.g. x[None] for a single row, or pass the image itself.",
            )
        )
    if x.numel() and not bool(torch.isfinite(x).all()):
        raise InputError(
            rule_message(name, "must be finite", "a tensor with NaN or Inf",
                         "Replace non-finite voxels before simulating noise.")
        )


def check_generator(generator: object, x: torch.Tensor | None = None) -> torch.Generator:
    """Check that ``generator`` is a ``torch.Generator`` on the same device as ``x``.

    Random numbers are drawn on the generator's device, so it must match the data's.

    Raises
    ------
    ConfigError
        ``generator`` is missing, not a ``torch.Generator``, or on another device.
    """
    if not isinstance(generator, torch.Generator):
        raise ConfigError(
            rule_message(
                "generator",
                "is required and must be a torch.Generator (the global RNG is never used)",
                generator if generator is None else type(generator).__name__,
                "Pass generator=torch.Generator(device=x.device).manual_seed(seed).",
            )
        )
    if x is not None and not _same_device(generator.device, x.device):
        raise ConfigError(
            rule_message(
                "generator.device",
                f"must match the input's device ({x.device})",
                str(generator.device),
                f"Create it with torch.Generator(device='{x.device}').",
            )
        )
    return generator


def _same_device(a: torch.device, b: torch.device) -> bool:
    if a.type != b.type:
        return False
    if a.type == "cpu":
        return True
    index_a = a.index if a.index is not None else torch.cuda.current_device()
    index_b = b.index if b.index is not None else torch.cuda.current_device()
    return index_a == index_b


def check_number(
    name: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
    fix: str = "",
) -> float:
    """Return ``value`` as a float after checking type, finiteness and bounds.

    Parameters
    ----------
    name : str
        Parameter name used in the message.
    value : object
        Value to check; ``bool`` is refused.
    low, high : float, optional
        Bounds, inclusive unless ``low_open`` / ``high_open``.
    integer : bool
        Require an integral value (``3`` or ``3.0``).
    fix : str
        Advice appended to the message.

    Raises
    ------
    ConfigError
        Wrong type, NaN/Inf, not integral when required, or out of bounds.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(rule_message(name, "must be a real number", value, fix or "Pass a float."))
    number = float(value)
    if not math.isfinite(number):
        raise ConfigError(rule_message(name, "must be finite", value, fix or "Pass a finite float."))
    if integer and number != int(number):
        raise ConfigError(rule_message(name, "must be an integer", value, fix or f"Use {int(number)}."))
    too_low = low is not None and (number <= low if low_open else number < low)
    too_high = high is not None and (number >= high if high_open else number > high)
    if too_low or too_high:
        raise ConfigError(rule_message(name, f"must be in {_interval(low, high, low_open, high_open)}", value, fix))
    return number


def _interval(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    left = "(" if low_open or low is None else "["
    right = ")" if high_open or high is None else "]"
    lo = "-inf" if low is None else f"{low:g}"
    hi = "inf" if high is None else f"{high:g}"
    return f"{left}{lo}, {hi}{right}"


def check_choice(name: str, value: object, choices: Sequence[str], *, fix: str = "") -> str:
    """Check that ``value`` is one of ``choices`` and return it."""
    if value not in choices:
        raise ConfigError(rule_message(name, f"must be one of {list(choices)}", value, fix or f"Use {choices[0]!r}."))
    return str(value)


def parse_range(
    name: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    fix: str = "",
) -> tuple[float, float]:
    """Turn ``v`` or ``(a, b)`` into a checked range ``(a, b)`` with ``a <= b``.

    A single number ``v`` is the degenerate range ``(v, v)``: the parameter is fixed.
    Both ends must satisfy the bounds (see :func:`check_number`).

    Raises
    ------
    ConfigError
        Not a number or a pair of numbers, an end out of bounds, or ``a > b``.
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = check_number(name, value, low=low, high=high, low_open=low_open, high_open=high_open, fix=fix)
        return number, number
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ConfigError(
            rule_message(name, "must be a number or a (min, max) pair", value, fix or "Pass e.g. (0.1, 0.25).")
        )
    bounds = dict(low=low, high=high, low_open=low_open, high_open=high_open, fix=fix)
    first = check_number(f"{name}[0]", value[0], **bounds)  # type: ignore[arg-type]
    second = check_number(f"{name}[1]", value[1], **bounds)  # type: ignore[arg-type]
    if first > second:
        raise ConfigError(rule_message(name, "must satisfy min <= max", tuple(value), f"Use ({value[1]}, {value[0]})."))
    return first, second


def compute_dtype(x: torch.Tensor) -> torch.dtype:
    """Working precision: float64 for float64 inputs, float32 otherwise (half types upcast)."""
    return torch.float64 if x.dtype == torch.float64 else torch.float32
