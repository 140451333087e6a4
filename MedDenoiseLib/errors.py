"""Exception hierarchy of MedDenoiseLib.

Every message names the parameter, the rule, the value received and a fix, e.g.
``overlap must be in [0, 1); got 1.0. Use 0.5 for half-patch overlap.``
Tests match both the type and the text.
"""

from __future__ import annotations


class MedDenoiseError(Exception):
    """Base class of every error MedDenoiseLib raises on purpose."""


class ConfigError(MedDenoiseError, ValueError):
    """A parameter or configuration value breaks a rule."""


class ShapeError(MedDenoiseError, ValueError):
    """An array or tensor has a shape the operation cannot take."""


class InputError(MedDenoiseError, ValueError):
    """An input file or volume cannot be used (unreadable, empty, non-finite...)."""


class DeviceError(MedDenoiseError, RuntimeError):
    """A requested device is absent or ran out of memory with no fallback left."""


class WeightsError(MedDenoiseError, ValueError):
    """Model weights are missing, do not match their card, or fail their checksum."""


class CancelledError(MedDenoiseError):
    """A long operation stopped because its ``should_stop`` callback returned True."""


def rule_message(name: str, rule: str, value: object, fix: str) -> str:
    """Format the house error message: ``<name> <rule>; got <value!r>. <fix>``."""
    return f"{name} {rule}; got {value!r}. {fix}"
