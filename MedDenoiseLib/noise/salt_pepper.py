"""Salt-and-pepper (impulse) noise: dead and hot detector elements, transmission errors."""

from __future__ import annotations

from typing import Any

import torch

from ..errors import ConfigError, rule_message
from .base import NoiseTransform, RandomNoise, draw_uniform, register_noise
from .checks import check_generator, check_input, check_number, compute_dtype, parse_range

__all__ = ["add_salt_pepper_noise", "SaltPepperNoise", "RandomSaltPepperNoise"]

_AMOUNT_FIX = "amount is the fraction of corrupted voxels, e.g. 0.05."
_SVP_FIX = "salt_vs_pepper is the fraction of corrupted voxels set high, e.g. 0.5."


def _check_args(
    amount: object, salt_vs_pepper: object, low: object, high: object
) -> tuple[float, float, float | None, float | None]:
    amount = check_number("amount", amount, low=0.0, high=1.0, fix=_AMOUNT_FIX)
    ratio = check_number("salt_vs_pepper", salt_vs_pepper, low=0.0, high=1.0, fix=_SVP_FIX)
    low = None if low is None else check_number("low", low)
    high = None if high is None else check_number("high", high)
    if low is not None and high is not None and low > high:
        raise ConfigError(rule_message("low / high", "must satisfy low <= high", (low, high), "Swap them."))
    return amount, ratio, low, high  # type: ignore[return-value]


def add_salt_pepper_noise(
    x: torch.Tensor,
    amount: float,
    *,
    generator: torch.Generator,
    salt_vs_pepper: float = 0.5,
    low: float | None = None,
    high: float | None = None,
) -> torch.Tensor:
    r"""Replace a random fraction of voxels by ``low`` (pepper) or ``high`` (salt).

    Parameters
    ----------
    x : torch.Tensor
        Image ``(..., H, W)``.
    amount : float
        Probability that a voxel is corrupted, in [0, 1]; 0 returns a copy.
    generator : torch.Generator
        Source of randomness, on ``x.device``.
    salt_vs_pepper : float
        Probability that a corrupted voxel is salt (``high``), in [0, 1].
    low, high : float, optional
        Pepper and salt values; default ``x.min()`` and ``x.max()`` over the whole tensor.

    Returns
    -------
    torch.Tensor
        Same shape, dtype and device as ``x``.

    Notes
    -----
    Two uniform fields are drawn in order, :math:`u, v \sim U(0, 1)`, and with
    :math:`s` = ``salt_vs_pepper``: :math:`y = high` where :math:`u < amount` and
    :math:`v < s`; :math:`y = low` where :math:`u < amount` and :math:`v \ge s`;
    :math:`y = x` elsewhere. The expected corrupted fraction is ``amount`` (as in
    scikit-image's ``random_noise``).

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> add_salt_pepper_noise(torch.arange(4.0).reshape(2, 2), 1.0, generator=g, salt_vs_pepper=1.0)
    tensor([[3., 3.],
            [3., 3.]])
    """
    check_input(x)
    check_generator(generator, x)
    amount, ratio, low, high = _check_args(amount, salt_vs_pepper, low, high)
    if x.numel() == 0 or amount == 0.0:
        return x.clone()
    low_value = float(x.min()) if low is None else low
    high_value = float(x.max()) if high is None else high
    if low_value > high_value:
        raise ConfigError(
            rule_message("low / high", "must satisfy low <= high after defaults", (low_value, high_value),
                         "Give both low and high explicitly.")
        )
    dtype = compute_dtype(x)
    hit = torch.rand(x.shape, generator=generator, device=x.device, dtype=dtype) < amount
    salt = torch.rand(x.shape, generator=generator, device=x.device, dtype=dtype) < ratio
    values = torch.where(salt, torch.tensor(high_value, dtype=x.dtype, device=x.device),
                         torch.tensor(low_value, dtype=x.dtype, device=x.device))
    return torch.where(hit, values, x)


@register_noise("salt_pepper")
class SaltPepperNoise(NoiseTransform):
    """Module form of :func:`add_salt_pepper_noise`."""

    def __init__(self, amount: float, salt_vs_pepper: float = 0.5, low: float | None = None,
                 high: float | None = None) -> None:
        super().__init__()
        self.amount, self.salt_vs_pepper, self.low, self.high = _check_args(amount, salt_vs_pepper, low, high)

    def forward(self, x: torch.Tensor, *, generator: torch.Generator) -> torch.Tensor:
        return add_salt_pepper_noise(x, self.amount, generator=generator, salt_vs_pepper=self.salt_vs_pepper,
                                     low=self.low, high=self.high)

    def params(self) -> dict[str, Any]:
        return {"amount": self.amount, "salt_vs_pepper": self.salt_vs_pepper, "low": self.low, "high": self.high}


class RandomSaltPepperNoise(RandomNoise):
    """Draw ``amount`` from U(a, b) and a seed; apply :class:`SaltPepperNoise`."""

    transform_type = SaltPepperNoise

    def __init__(self, amount_range: float | tuple[float, float] = (0.01, 0.05), *, salt_vs_pepper: float = 0.5,
                 low: float | None = None, high: float | None = None) -> None:
        self.amount_range = parse_range("amount_range", amount_range, low=0.0, high=1.0, fix=_AMOUNT_FIX)
        _, self.salt_vs_pepper, self.low, self.high = _check_args(0.0, salt_vs_pepper, low, high)

    def draw_params(self, generator: torch.Generator) -> dict[str, Any]:
        return {"amount": draw_uniform(generator, *self.amount_range), "salt_vs_pepper": self.salt_vs_pepper,
                "low": self.low, "high": self.high}
