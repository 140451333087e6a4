"""Model directories on disk, without torch: card reading, sha256, shipped models, defaults.

A model is a directory holding ``card.json`` and the weights file the card names
(``model.safetensors``); the card records the weights' sha256. Shipped models live in
``$MEDDENOISE_MODELS`` or else ``Resources/Models`` beside the ``MedDenoiseLib`` package
(the repository root, or Slicer's qt-scripted-modules folder), whose ``index.json`` names
each modality's default. This module imports neither torch nor Slicer, so the Slicer
panel and the engine share one definition.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from .errors import WeightsError, rule_message

MODELS_ENV = "MEDDENOISE_MODELS"
CARD_NAME = "card.json"
WEIGHTS_NAME = "model.safetensors"
INDEX_NAME = "index.json"


def models_root() -> Path:
    """``$MEDDENOISE_MODELS`` if set, else ``Resources/Models`` beside the package."""
    override = os.environ.get(MODELS_ENV)
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[1] / "Resources" / "Models"


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_card(path: str | Path) -> tuple[dict, Path]:
    """``(card, directory)`` for a model directory or its ``card.json``."""
    path = Path(path).expanduser()
    directory = path if path.is_dir() else path.parent
    card_path = directory / CARD_NAME
    if not card_path.is_file():
        raise WeightsError(rule_message("model path", f"must be a directory holding {CARD_NAME} and {WEIGHTS_NAME}",
                                        str(path), "Pass a model directory written by save_model or a shipped model name."))
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise WeightsError(rule_message("model card", "must be valid JSON", str(card_path),
                                        f"Fix or re-export it ({exc}).")) from exc
    if not isinstance(card, dict):
        raise WeightsError(rule_message("model card", "must hold a JSON object", str(card_path), "Re-export the model."))
    return card, directory


def verified_weights(card: dict, directory: Path) -> Path:
    """The weights file of a card after checking it exists and its sha256 equals the card's."""
    weights = directory / str(card.get("weights_file", WEIGHTS_NAME))
    if not weights.is_file():
        raise WeightsError(rule_message("weights file", "must exist beside the card", str(weights),
                                        "Copy the whole model directory; weights and card travel together."))
    expected = str(card.get("sha256", ""))
    actual = sha256_of(weights)
    if actual != expected:
        raise WeightsError(rule_message(f"sha256 of {weights}", f"must equal the card's {expected or '(missing)'}",
                                        actual, "The weights were altered or belong to another card; reinstall the model."))
    return weights


def shipped_models(root: Path | None = None) -> dict[str, Path]:
    """Shipped model name (directory name) -> directory, for every directory of ``root`` (default
    :func:`models_root`) holding a card."""
    root = models_root() if root is None else Path(root)
    if not root.is_dir():
        return {}
    return {p.name: p for p in sorted(root.iterdir()) if (p / CARD_NAME).is_file()}


def default_models() -> dict[str, str]:
    """Modality -> default shipped model name, from ``index.json`` (empty when absent or unreadable)."""
    index = models_root() / INDEX_NAME
    try:
        defaults = json.loads(index.read_text(encoding="utf-8")).get("defaults", {}) if index.is_file() else {}
    except (OSError, json.JSONDecodeError, AttributeError):
        return {}
    return {str(k): str(v) for k, v in defaults.items() if v}


def default_model_name(modality: str) -> str:
    """The default shipped model of ``modality``; WeightsError naming the alternatives otherwise."""
    defaults = default_models()
    if modality not in defaults:
        raise WeightsError(rule_message("modality", f"needs a shipped default model (shipped defaults: {defaults})",
                                        modality, "Pass --model with a model directory or a shipped name "
                                        f"({sorted(shipped_models())})."))
    return defaults[modality]


def find_model_card(model: str | None, modality: str | None) -> tuple[dict, Path] | None:
    """``(card, directory)`` of what ``resolve_model(model, modality)`` would load, or None when not found.

    Same lookup order as the engine (shipped name, then path; the modality default when ``model`` is
    None), without torch, for checks made before a worker starts.
    """
    name = model if model else default_models().get(str(modality))
    if not name:
        return None
    shipped = shipped_models()
    path = shipped.get(str(name), Path(str(name)).expanduser())
    try:
        return read_card(path)
    except WeightsError:
        return None


def has_own_uncertainty(card: dict) -> bool:
    """True when the card's model outputs its own per-voxel uncertainty (recorded by ``save_model``)."""
    return bool(card.get("own_uncertainty", False))
