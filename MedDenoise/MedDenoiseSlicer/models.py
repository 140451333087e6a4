"""Shipped and imported models, read from their JSON cards without importing torch.

A model is a directory with ``card.json`` and the weights file the card names; the card
holds the weights' sha256. ``Resources/Models/index.json`` names each modality's default.
The lookup rules match ``MedDenoiseLib.models.resolve`` (``$MEDDENOISE_MODELS`` first, then
``Resources/Models`` beside the ``MedDenoiseLib`` package), so the panel lists exactly
what the worker will load.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path

MODELS_ENV = "MEDDENOISE_MODELS"
CARD_NAME, WEIGHTS_NAME, INDEX_NAME = "card.json", "model.safetensors", "index.json"


class ModelError(ValueError):
    """A model directory that cannot be used (no card, missing weights, sha256 mismatch)."""


@dataclass(frozen=True)
class ModelInfo:
    """What the panel shows about one model.

    ``name`` is the directory name, which is what ``meddenoise denoise --model`` accepts for a
    shipped model; ``title`` is the card's own name.
    """

    name: str
    modality: str
    path: Path
    title: str = ""
    description: str = ""


def models_root() -> Path:
    """``$MEDDENOISE_MODELS`` if set, else ``Resources/Models`` beside the ``MedDenoiseLib`` package."""
    override = os.environ.get(MODELS_ENV)
    if override:
        return Path(override)
    spec = importlib.util.find_spec("MedDenoiseLib")
    if spec is None or not spec.origin:
        return Path(__file__).resolve().parents[1] / "Resources" / "Models"
    return Path(spec.origin).resolve().parents[1] / "Resources" / "Models"


def read_card(path: str | Path) -> tuple[dict, Path]:
    """``(card, directory)`` for a model directory or its ``card.json``."""
    path = Path(path).expanduser()
    directory = path if path.is_dir() else path.parent
    card_path = directory / CARD_NAME
    if not card_path.is_file():
        raise ModelError(f"model path must be a directory holding {CARD_NAME} and the weights; got {str(path)!r}. "
                         "Choose a directory written by `meddenoise train` or its card.json.")
    try:
        card = json.loads(card_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"model card {card_path} must be valid JSON ({exc}); re-export the model.") from exc
    if not isinstance(card, dict):
        raise ModelError(f"model card {card_path} must hold a JSON object; re-export the model.")
    return card, directory


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_model(path: str | Path) -> ModelInfo:
    """Check a model directory (card present, weights present, sha256 equal to the card's).

    Raises
    ------
    ModelError
        With the rule, the value found and the fix.
    """
    card, directory = read_card(path)
    weights = directory / str(card.get("weights_file", WEIGHTS_NAME))
    if not weights.is_file():
        raise ModelError(f"weights file {weights} must exist beside the card; copy the whole model directory.")
    expected = str(card.get("sha256", ""))
    actual = sha256_of(weights)
    if actual != expected:
        raise ModelError(f"sha256 of {weights.name} must equal the card's {expected or '(missing)'}; got {actual}. "
                         "The weights were altered or belong to another card: re-download or re-export the model.")
    return _info(card, directory)


def _info(card: dict, directory: Path) -> ModelInfo:
    return ModelInfo(name=directory.name, modality=str(card.get("modality", "")), path=directory,
                     title=str(card.get("name", directory.name)), description=str(card.get("description", "")))


def shipped_models(modality: str | None = None) -> list[ModelInfo]:
    """Models under :func:`models_root` (only those of ``modality`` when given), sorted by name."""
    root = models_root()
    if not root.is_dir():
        return []
    found = []
    for directory in sorted(p for p in root.iterdir() if (p / CARD_NAME).is_file()):
        try:
            card, _ = read_card(directory)
        except ModelError:
            continue
        info = _info(card, directory)
        if modality is None or info.modality == modality:
            found.append(info)
    return found


def default_model_name(modality: str) -> str | None:
    """The modality's default shipped model from ``index.json``, or None when there is none."""
    index = models_root() / INDEX_NAME
    try:
        defaults = json.loads(index.read_text()).get("defaults", {}) if index.is_file() else {}
    except (OSError, json.JSONDecodeError, AttributeError):
        return None
    name = defaults.get(modality)
    return str(name) if name else None
