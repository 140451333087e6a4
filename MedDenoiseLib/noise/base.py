"""Noise-model protocol, draw records and replay.

Two kinds of objects, as in TorchIO:

* a deterministic :class:`NoiseTransform` (an ``nn.Module``) holds fixed physical
  parameters; ``transform(x, generator=g)`` is a pure function of ``x``, the parameters
  and the state of ``g``;
* a ``Random*`` sampler (:class:`RandomNoise`) holds parameter *ranges*, validated in
  ``__init__``; ``draw(generator)`` draws the parameters and an integer seed and returns
  the transform plus a JSON-ready record.

Record format (``RECORD_VERSION`` 1)::

    {"name": "rician", "params": {"sigma": null, "sigma_percent": 5.2, ...},
     "seed": 1234567, "version": 1}

``name`` is a stable registry key (not a class name, so renaming a class does not break
saved histories). Replaying a record applies ``from_record(record)`` with
``torch.Generator(device=x.device).manual_seed(record["seed"])`` and reproduces the
output bit for bit on the same device and dtype.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar

import torch
from torch import nn

from ..errors import ConfigError, rule_message
from .checks import check_generator

logger = logging.getLogger(__name__)

__all__ = [
    "RECORD_VERSION",
    "NoiseTransform",
    "RandomNoise",
    "register_noise",
    "registered_noise_names",
    "from_record",
    "replay",
    "seeded_generator",
    "draw_seed",
    "draw_uniform",
]

RECORD_VERSION = 1
_SEED_HIGH = 2**62
_REGISTRY: dict[str, type[NoiseTransform]] = {}

T = TypeVar("T", bound="type[NoiseTransform]")


def register_noise(name: str) -> Callable[[T], T]:
    """Class decorator: register a :class:`NoiseTransform` under a stable record name."""

    def decorate(cls: T) -> T:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ConfigError(
                rule_message("noise name", "must be unique", name, "Pick another registry name for the new model.")
            )
        cls.noise_name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def registered_noise_names() -> list[str]:
    """Names that :func:`from_record` accepts, sorted."""
    return sorted(_REGISTRY)


class NoiseTransform(nn.Module):
    """Deterministic noise model with fixed parameters.

    Subclasses implement ``forward(x, *, generator)`` by calling their functional twin
    and ``params()`` returning the constructor arguments (JSON-ready), so that
    ``type(t)(**t.params())`` rebuilds an identical transform.
    """

    noise_name: ClassVar[str] = ""

    def forward(self, x: torch.Tensor, *, generator: torch.Generator) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def params(self) -> dict[str, Any]:  # pragma: no cover - abstract
        """Constructor arguments, JSON-ready."""
        raise NotImplementedError

    def to_record(self, seed: int) -> dict[str, Any]:
        """JSON-ready record of this transform applied with ``seeded_generator(seed)``."""
        return {"name": self.noise_name, "params": dict(self.params()), "seed": int(seed), "version": RECORD_VERSION}

    def extra_repr(self) -> str:
        return ", ".join(f"{key}={value!r}" for key, value in self.params().items())


def from_record(record: Mapping[str, Any]) -> NoiseTransform:
    """Rebuild the deterministic transform a record describes.

    Raises
    ------
    ConfigError
        The record is not a mapping with ``name``, ``params`` and ``seed``, has another
        version, names an unknown model, or holds parameters the model refuses.
    """
    if not isinstance(record, Mapping) or not {"name", "params", "seed"} <= set(record):
        raise ConfigError(
            rule_message("record", "must be a mapping with keys name, params, seed", record,
                         "Pass a record from draw().")
        )
    if record.get("version", RECORD_VERSION) != RECORD_VERSION:
        raise ConfigError(
            rule_message("record['version']", f"must be {RECORD_VERSION}", record.get("version"), "Re-draw the record.")
        )
    name = record["name"]
    if name not in _REGISTRY:
        raise ConfigError(
            rule_message("record['name']", f"must be one of {registered_noise_names()}", name,
                         "Check the record source.")
        )
    params = record["params"]
    if not isinstance(params, Mapping):
        raise ConfigError(rule_message("record['params']", "must be a mapping", params, "Pass a record from draw()."))
    try:
        return _REGISTRY[name](**params)
    except TypeError as error:
        raise ConfigError(
            rule_message("record['params']", f"must match the arguments of {name!r}", dict(params), str(error))
        ) from error


def seeded_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A fresh generator on ``device`` seeded with ``seed`` (the replay convention)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64:
        raise ConfigError(rule_message("seed", "must be an integer in [0, 2**64)", seed, "Use the seed of a record."))
    return torch.Generator(device=device).manual_seed(seed)


def replay(record: Mapping[str, Any], x: torch.Tensor) -> torch.Tensor:
    """Apply a record to ``x`` exactly as :meth:`RandomNoise.__call__` did.

    Bit-for-bit equality holds for the same input, device and dtype.
    """
    transform = from_record(record)
    return transform(x, generator=seeded_generator(int(record["seed"]), x.device))


def draw_seed(generator: torch.Generator) -> int:
    """Draw an integer seed in [0, 2**62) from ``generator``."""
    return int(torch.randint(0, _SEED_HIGH, (1,), generator=generator, device=generator.device).item())


def draw_uniform(generator: torch.Generator, low: float, high: float) -> float:
    """Draw one float from U(low, high) (returns ``low`` exactly when ``low == high``).

    One number is consumed from ``generator`` in every case, so the stream does not
    depend on whether a range is degenerate.
    """
    u = float(torch.rand((), generator=generator, device=generator.device, dtype=torch.float64).item())
    return low + (high - low) * u


class RandomNoise(ABC):
    """Sampler of a noise model: parameter ranges in, (transform, record) out.

    Subclasses validate their ranges in ``__init__``, set ``transform_type`` and
    implement :meth:`draw_params`. The seed is drawn after the parameters.
    """

    transform_type: ClassVar[type[NoiseTransform]]

    @abstractmethod
    def draw_params(self, generator: torch.Generator) -> dict[str, Any]:
        """Draw the transform's constructor arguments (JSON-ready) from ``generator``."""

    def draw(self, generator: torch.Generator) -> tuple[NoiseTransform, dict[str, Any]]:
        """Draw parameters and a seed.

        Returns
        -------
        transform : NoiseTransform
            Deterministic transform with the drawn parameters.
        record : dict
            ``{"name", "params", "seed", "version"}``, JSON-ready; see :func:`replay`.
        """
        check_generator(generator)
        params = self.draw_params(generator)
        seed = draw_seed(generator)
        transform = self.transform_type(**params)
        record = transform.to_record(seed)
        logger.debug("drew %s", record)
        return transform, record

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, dict[str, Any]]:
        """Draw, then apply with a generator seeded from the record (on ``x.device``)."""
        transform, record = self.draw(generator)
        return transform(x, generator=seeded_generator(record["seed"], x.device)), record

    def __repr__(self) -> str:
        fields = ", ".join(f"{key}={value!r}" for key, value in vars(self).items() if not key.startswith("_"))
        return f"{type(self).__name__}({fields})"
