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
import math
import os
from pathlib import Path

from .errors import WeightsError, rule_message

MODELS_ENV = "MEDDENOISE_MODELS"
CARD_NAME = "card.json"
WEIGHTS_NAME = "model.safetensors"
INDEX_NAME = "index.json"
ROUTES_KEY = "routes"
ROUTE_ESTIMATE = "conditioning_noise_sigma"


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


def is_routed(card: dict) -> bool:
    """Whether a card describes a model routed by noise level (members in subfolders, no weights of its own)."""
    return ROUTES_KEY in card


def route_members(card: dict) -> list[dict]:
    """A routed card's members, checked: known estimate, a path each, finite ``up_to`` increasing on all but the
    last member, which has none."""
    routes = card.get(ROUTES_KEY)
    members = routes.get("members") if isinstance(routes, dict) else None
    fix = ('Write "routes": {"estimate": "conditioning_noise_sigma", "members": [{"path": "light", "up_to": 0.04}, '
           '{"path": "heavy"}]}.')
    if not isinstance(members, list) or len(members) < 2 or routes.get("estimate") != ROUTE_ESTIMATE:
        raise WeightsError(rule_message("card routes", f"must name the estimate {ROUTE_ESTIMATE!r} and >= 2 members",
                                        routes, fix))
    bounds = [m.get("up_to") if isinstance(m, dict) else None for m in members]
    numeric = all(isinstance(b, (int, float)) and not isinstance(b, bool) and math.isfinite(b) for b in bounds[:-1])
    if any(not isinstance(m, dict) or not m.get("path") for m in members) or bounds[-1] is not None \
            or not numeric or any(a >= b for a, b in zip(bounds[:-2], bounds[1:-1])):
        raise WeightsError(rule_message("card routes members", "need a path each and finite, increasing up_to on all "
                                        "but the last member", members, fix))
    return members


def member_directories(card: dict, directory: Path) -> list[Path]:
    """The member folders of a routed card, each required to lie inside ``directory``."""
    folders = []
    for member in route_members(card):
        path = (Path(directory) / str(member["path"])).resolve()
        if Path(directory).resolve() not in path.parents:
            raise WeightsError(rule_message("card routes member path", "must be a folder inside the model directory",
                                            member["path"], "Put each member in a subfolder, e.g. light/."))
        folders.append(path)
    return folders


def verified_model(card: dict, directory: Path) -> list[Path]:
    """The weights files a model needs, each checked against its card's sha256: one for an ordinary model, one per
    member for a routed one (whose members must themselves be ordinary models)."""
    if not is_routed(card):
        return [verified_weights(card, directory)]
    weights = []
    for folder in member_directories(card, directory):
        member, _ = read_card(folder)
        if is_routed(member):
            raise WeightsError(rule_message("routed model member", "must be an ordinary model, not routed itself",
                                            str(folder), "Route between ordinary model directories only."))
        weights.append(verified_weights(member, folder))
    return weights
