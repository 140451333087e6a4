"""Shipped and imported models as the panel lists them, read from their JSON cards without torch.

The file rules (card, sha256, ``$MEDDENOISE_MODELS`` / ``Resources/Models``, ``index.json``)
are the engine's own, from the torch-free ``MedDenoiseLib.model_files``, so the panel lists
exactly what the worker will load.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from MedDenoiseLib import model_files
from MedDenoiseLib.errors import WeightsError as ModelError
from MedDenoiseLib.model_files import CARD_NAME, INDEX_NAME, MODELS_ENV, WEIGHTS_NAME, models_root, read_card

__all__ = ["CARD_NAME", "INDEX_NAME", "MODELS_ENV", "WEIGHTS_NAME", "ModelError", "ModelInfo", "default_model_name",
           "models_root", "own_uncertainty_problem", "read_card", "shipped_models", "verify_model"]


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


def verify_model(path: str | Path) -> ModelInfo:
    """Check a model directory (card present, weights present, sha256 equal to the card's; for a model routed by
    noise level, every member's).

    Raises
    ------
    ModelError
        With the rule, the value found and the fix.
    """
    card, directory = read_card(path)
    model_files.verified_model(card, directory)  # a routed model: every member's weights
    return _info(card, directory)


def _info(card: dict, directory: Path) -> ModelInfo:
    return ModelInfo(name=directory.name, modality=str(card.get("modality", "")), path=directory,
                     title=str(card.get("name", directory.name)), description=str(card.get("description", "")))


def _cards_that_run(card: dict, directory: Path) -> list[dict]:
    """The card itself, or a routed model's member cards (any of which may run on a volume)."""
    if not model_files.is_routed(card):
        return [card]
    return [model_files.read_card(folder)[0] for folder in model_files.member_directories(card, directory)]


def shipped_models(modality: str | None = None) -> list[ModelInfo]:
    """Models under :func:`models_root` (only those of ``modality`` when given), sorted by name."""
    found = []
    for directory in model_files.shipped_models().values():
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
    return model_files.default_models().get(modality)


def own_uncertainty_problem(model: str | None, modality: str | None) -> str | None:
    """Why ``model`` (None: the modality's default) cannot give its own uncertainty, or None when it can.

    Read from the model card (``own_uncertainty``, written by the engine's ``save_model``); a model that
    cannot be found here (or no model and no modality: guessed per file) is left to the worker, which
    checks again and reports it with its own message.
    """
    found = model_files.find_model_card(model, modality)
    if found is None or all(model_files.has_own_uncertainty(c) for c in _cards_that_run(*found)):
        return None
    card, directory = found
    architecture = (card.get("architecture") or {}).get("name", "unknown")
    return (f"uncertaintyMethod 'model' needs a model with its own uncertainty output; model "
            f"{card.get('name', directory.name)!r} ({architecture}) has none. Use 'tta' or 'mcdropout', or choose "
            "a DUAL-NET model.")
