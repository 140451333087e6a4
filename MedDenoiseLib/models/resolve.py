"""Find a model by shipped name, by path, or by modality default. Nothing is downloaded."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from ..errors import WeightsError, rule_message
from .card import LoadedModel, load_model

MODELS_ENV = "MEDDENOISE_MODELS"


def models_root() -> Path:
    """``$MEDDENOISE_MODELS`` if set, else ``Resources/Models`` beside the package (repo or Slicer module)."""
    override = os.environ.get(MODELS_ENV)
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2] / "Resources" / "Models"


def shipped_models() -> dict[str, Path]:
    """Shipped model name -> directory, for every directory holding a card.json."""
    root = models_root()
    if not root.is_dir():
        return {}
    return {p.name: p for p in sorted(root.iterdir()) if (p / "card.json").is_file()}


def default_model_name(modality: str) -> str:
    """The default shipped model of a modality, from ``Resources/Models/index.json``."""
    index_path = models_root() / "index.json"
    defaults = json.loads(index_path.read_text()).get("defaults", {}) if index_path.is_file() else {}
    if modality not in defaults:
        raise WeightsError(rule_message("modality", f"needs a shipped default model (shipped defaults: {defaults})",
                                        modality, "Pass --model with a model directory or a shipped name "
                                        f"({sorted(shipped_models())})."))
    return defaults[modality]


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
