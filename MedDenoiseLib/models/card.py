"""Weights (safetensors, no pickle) plus a JSON model card checked by sha256.

A model on disk is a directory ``<dir>/`` holding ``model.safetensors`` and ``card.json``.
The card records the architecture config (enough to rebuild the network), modality,
normalisation, noise model, training data provenance, metrics and the sha256 of the
weights file; ``load_model`` refuses weights whose hash differs from the card.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .. import __version__
from ..errors import WeightsError, rule_message
from ..model_files import CARD_NAME, WEIGHTS_NAME, read_card, sha256_of, verified_weights
from .registry import build_model
from .routing import is_routed, load_routed

logger = logging.getLogger(__name__)

CARD_VERSION = 1

__all__ = ["CARD_NAME", "WEIGHTS_NAME", "LoadedModel", "load_model", "read_card", "save_model", "sha256_of",
           "write_card"]


@dataclass
class LoadedModel:
    """A network ready for inference together with its card."""

    network: nn.Module
    card: dict[str, Any]
    path: Path

    @property
    def name(self) -> str:
        return str(self.card.get("name", self.path.name))


def save_model(model: nn.Module, directory: str | Path, card: dict[str, Any]) -> Path:
    """Write ``model.safetensors`` and ``card.json`` into ``directory`` (created if needed).

    ``card`` holds the descriptive fields (name, modality, normalisation, noise, data, metrics...);
    the architecture config, parameter count, whether the model has its own uncertainty output
    (``own_uncertainty``), sha256 and card version are filled in here.
    Both files are written atomically (temp file then rename).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    weights_path = directory / WEIGHTS_NAME
    _atomic(weights_path, lambda tmp: save_file(state, str(tmp)))
    full_card = dict(card)
    full_card.update(
        card_version=CARD_VERSION,
        library_version=__version__,
        architecture=getattr(model, "architecture_config", None),
        parameters=sum(p.numel() for p in model.parameters()),
        own_uncertainty=bool(getattr(model, "has_own_uncertainty", False)),
        weights_file=WEIGHTS_NAME,
        sha256=sha256_of(weights_path),
    )
    if full_card["architecture"] is None:
        raise WeightsError(rule_message("model.architecture_config", "must be set (build the model with build_model)",
                                        None, "Create the network with MedDenoiseLib.models.build_model(name, ...)."))
    write_card(directory, full_card)
    return directory


def write_card(directory: str | Path, card: dict[str, Any]) -> Path:
    """Write ``card`` as ``directory/card.json`` (sorted keys) by an atomic replace; returns the path."""
    path = Path(directory) / CARD_NAME
    _atomic(path, lambda tmp: tmp.write_text(json.dumps(card, indent=2, sort_keys=True), encoding="utf-8"))
    return path


def load_model(path: str | Path, *, device: str | torch.device = "cpu") -> LoadedModel:
    """Rebuild the network from its card and load weights after checking their sha256.

    A routed card (:mod:`MedDenoiseLib.models.routing`) loads each member this way, each checked against
    its own card, into one :class:`~MedDenoiseLib.models.routing.RoutedNetwork`."""
    card, directory = read_card(path)
    if is_routed(card):
        return LoadedModel(network=load_routed(card, directory, lambda member: load_model(member, device=device)),
                           card=card, path=directory)
    weights_path = verified_weights(card, directory)
    arch = card.get("architecture")
    if not isinstance(arch, dict) or "name" not in arch:
        raise WeightsError(rule_message("card architecture", "must be an object with the architecture's name", arch,
                                        "Re-export the model with save_model (it writes the architecture config)."))
    arch = dict(arch)
    network = build_model(arch.pop("name"), **arch)
    state = load_file(str(weights_path), device="cpu")
    try:
        missing, unexpected = network.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatch
        raise WeightsError(rule_message("weights", "must match the card's architecture", str(exc).splitlines()[0],
                                        "Export the weights again with save_model.")) from exc
    if missing or unexpected:
        raise WeightsError(rule_message("weights", "must match the card's architecture", {"missing": missing[:5], "unexpected": unexpected[:5]},
                                        "Export the weights again with save_model."))
    network.eval().to(device)
    logger.info("loaded model %s (%s, sha256 ok)", card.get("name"), weights_path)
    return LoadedModel(network=network, card=card, path=directory)


def _atomic(target: Path, write) -> None:
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
