"""Model registry: architecture name -> builder, with citation and description.

Every registered model maps a (B, 1, D, H, W) tensor to a tensor of the same shape and
works for any D, H, W >= 1 (thin volumes, single slices). A model that conditions on the
noise level sets the class attribute ``conditions_on_noise_level = True`` and takes
``forward(x, noise_level)`` with ``noise_level`` a (B,) tensor (noise std in normalised
units); the inference engine estimates it once per volume and passes it in.
A model with dropout layers sets ``has_dropout = True`` (used by Monte-Carlo dropout).
A model with its own per-voxel uncertainty sets ``has_own_uncertainty = True`` and provides
``forward_with_uncertainty(x) -> (denoised, std)``, ``std`` in the same (normalised) units as
``x`` (used by the pipeline's ``uncertainty_source="model"``).
A model whose builder fills in defaults of its own (e.g. a variant's sizes) exposes them as
``resolved_config``; that, not the arguments given, is recorded as its architecture config.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from torch import nn

from ..errors import ConfigError, rule_message


@dataclass(frozen=True)
class ModelSpec:
    """What the registry knows about one architecture."""

    name: str
    builder: Callable[..., nn.Module]
    description: str
    citation: str
    defaults: dict[str, Any] = field(default_factory=dict)


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(name: str, *, description: str, citation: str, **defaults: Any):
    """Class/function decorator adding an architecture under ``name``."""

    def decorate(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY and _REGISTRY[name].builder is not builder:
            raise ConfigError(rule_message("model name", "must be unique in the registry", name,
                                           "Pick another name for the new architecture."))
        _REGISTRY[name] = ModelSpec(name, builder, description, citation, dict(defaults))
        return builder

    return decorate


def _ensure_builtin_models_loaded() -> None:
    # Importing the architecture modules runs their @register_model decorators.
    from . import architectures  # noqa: F401


def list_models() -> list[str]:
    """Names of every registered architecture, sorted."""
    _ensure_builtin_models_loaded()
    return sorted(_REGISTRY)


def get_spec(name: str) -> ModelSpec:
    """The ModelSpec of ``name``; ConfigError listing the known names otherwise."""
    _ensure_builtin_models_loaded()
    if name not in _REGISTRY:
        raise ConfigError(rule_message("model", f"must be one of {sorted(_REGISTRY)}", name,
                                       "Run `meddenoise models` to list architectures."))
    return _REGISTRY[name]


def build_model(name: str, **config: Any) -> nn.Module:
    """Instantiate architecture ``name`` with its defaults overridden by ``config``.

    The full architecture config is stored on the model as ``model.architecture_config``
    (``{"name": ..., **kwargs}``, or ``{"name": ..., **model.resolved_config}`` when the model has one)
    so it can be written into a model card.
    """
    spec = get_spec(name)
    kwargs = {**spec.defaults, **config}
    try:
        model = spec.builder(**kwargs)
    except TypeError as exc:
        raise ConfigError(rule_message(f"config of model {name!r}", "has an unknown or missing key",
                                       sorted(kwargs), f"Check the builder's arguments ({exc}).")) from exc
    model.architecture_config = {"name": name, **getattr(model, "resolved_config", kwargs)}
    return model


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
