"""Find a model by shipped name, by path, or by modality default. Nothing is downloaded."""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import WeightsError, rule_message
from ..model_files import MODELS_ENV, default_model_name, models_root, shipped_models
from .card import LoadedModel, load_model

__all__ = ["MODELS_ENV", "default_model_name", "models_root", "resolve_model", "shipped_models"]


def resolve_model(model: str | Path | None, modality: str, *, device: str | torch.device = "cpu") -> LoadedModel:
    """Load ``model`` (shipped name, or a directory/card path), or the modality default when None."""
    name = default_model_name(modality) if model is None else str(model)
    shipped = shipped_models()
    if name in shipped:
        return load_model(shipped[name], device=device)
    path = Path(name).expanduser()
    if path.exists():
        return load_model(path, device=device)
    raise WeightsError(rule_message("model", "must be a shipped model name or an existing model directory", name,
                                    f"Shipped models: {sorted(shipped)}; or pass the directory written by training."))
