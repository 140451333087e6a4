"""Models routed by noise level: one network per noise regime, chosen once per volume.

A routed model directory holds a ``card.json`` with a ``routes`` entry and one ordinary model
directory per member (its own weights, card and sha256)::

    "routes": {"estimate": "conditioning_noise_sigma",
               "members": [{"path": "light", "up_to": 0.042}, {"path": "heavy"}]}

The pipeline estimates the volume's noise std once, on the normalised input
(:func:`~MedDenoiseLib.inference.noise_level.conditioning_noise_sigma`, the estimate noise-conditioned
models use), and denoises the whole volume with the first member whose ``up_to`` is at least that
estimate (the last member has none). Per volume rather than per patch, so no seams; the member's own
card supplies its uncertainty calibration, and the report says which member ran and why.
The threshold is fitted on training images (by default the first member's; ``meddenoise route``), never on
held-out data.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

from torch import nn

from ..errors import ConfigError, WeightsError, rule_message
from ..model_files import ROUTES_KEY, is_routed, member_directories, route_members
from ..normalization import normalization_choice

logger = logging.getLogger(__name__)

__all__ = ["ROUTES_KEY", "RoutedNetwork", "is_routed", "load_routed", "route_members", "single_network"]


class RoutedNetwork(nn.Module):
    """The members' networks with their cards and thresholds; ``choose`` picks one for a noise estimate.

    It is not itself a denoiser: calling it raises, because which network runs depends on the whole
    volume (the pipeline calls ``choose`` first)."""

    def __init__(self, networks: list[nn.Module], cards: list[dict[str, Any]], up_to: list[float]) -> None:
        super().__init__()
        self.members = nn.ModuleList(networks)
        self.cards, self.up_to = cards, [float(v) for v in up_to]

    def choose(self, noise_estimate: float) -> int:
        """Index of the first member whose ``up_to`` is >= ``noise_estimate`` (the last one otherwise)."""
        for index, bound in enumerate(self.up_to):
            if noise_estimate <= bound:
                return index
        return len(self.members) - 1

    def forward(self, *args, **kwargs):
        raise ConfigError(rule_message("routed model", "must be resolved to one member per volume before it runs",
                                       "called directly", "Run it through denoise_volume, or load a member "
                                       "directory (e.g. <model>/light) to use one network."))


def load_routed(card: dict[str, Any], directory: Path, load_member: Callable[[Path], Any]) -> RoutedNetwork:
    """Load every member with ``load_member`` (which checks its sha256) into a :class:`RoutedNetwork`."""
    loaded = [load_member(folder) for folder in member_directories(card, directory)]
    for model in loaded:
        single_network(model.network, model.name, "routed model member")
    modalities = {m.card.get("modality") for m in loaded} | {card.get("modality")}
    if len(modalities) != 1:
        raise WeightsError(rule_message("routed members' modality", "must all be the router's", sorted(map(str,
                                        modalities)), "Route between models of one modality."))
    choices = {normalization_choice(m.card) for m in loaded} | {normalization_choice(card)}
    if len(choices) != 1:  # the pipeline normalises with the router's choice before it picks a member
        raise WeightsError(rule_message("routed members' normalization", "must all be the router's card normalization",
                                        sorted(choices), "Rebuild the routed model with meddenoise route."))
    logger.info("loaded routed model %s: %s", card.get("name"), ", ".join(m.name for m in loaded))
    return RoutedNetwork([m.network for m in loaded], [m.card for m in loaded],
                         [float(m["up_to"]) for m in route_members(card)[:-1]])


def single_network(network: nn.Module, name: str, parameter: str) -> nn.Module:
    """``network`` itself, or a clear error naming ``parameter`` when it is routed (training, adapting or
    calibrating acts on one network: the members are ordinary model directories)."""
    if isinstance(network, RoutedNetwork):
        members = [card.get("name") for card in network.cards]
        raise ConfigError(rule_message(parameter, "must be a single network, not a model routed by noise level",
                                       f"{name} (members {members})",
                                       "Name one member's directory instead (a subfolder of the routed model)."))
    return network
