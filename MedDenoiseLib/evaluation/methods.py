"""The methods an evaluation compares: ``noisy`` (no denoising), classical baselines, models.

Each method maps a noisy (z, y, x) float32 array to a denoised one of the same shape, timed
with ``time.perf_counter`` around the call only (noise simulation and scoring excluded).
Models go through :func:`MedDenoiseLib.pipeline.denoise_volume`, the same path as the CLI
and the Slicer module, so the numbers describe what users get (normalisation, sliding
window, TTA and the uncertainty map included).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..baselines import get_baseline
from ..errors import ConfigError, rule_message
from ..volume import Geometry, Volume
from .cases import training_files

logger = logging.getLogger(__name__)

__all__ = ["MethodOutput", "NoisyMethod", "BaselineMethod", "ModelMethod", "build_methods", "training_summary"]


@dataclass
class MethodOutput:
    """One method's result on one noisy image."""

    denoised: np.ndarray
    seconds: float
    uncertainty: np.ndarray | None = None
    info: dict = field(default_factory=dict)


class NoisyMethod:
    """The identity: scores of the noisy input itself (the "no denoising" row)."""

    name = "noisy"
    kind = "noisy"

    def run(self, noisy: np.ndarray, *, sigma: float, geometry: Geometry) -> MethodOutput:
        return MethodOutput(noisy, 0.0)

    def describe(self) -> dict:
        return {"name": self.name, "kind": self.kind}


class BaselineMethod:
    """A registered classical method with its (modality-aware) parameters."""

    kind = "baseline"

    def __init__(self, name: str, modality: str, params: dict[str, Any] | None = None) -> None:
        self.spec = get_baseline(name)
        self.name = name
        self.params = dict(params or {})
        if modality == "mr" and self.spec.rician_param is not None:
            key, value = self.spec.rician_param
            self.params.setdefault(key, value)

    def run(self, noisy: np.ndarray, *, sigma: float, geometry: Geometry) -> MethodOutput:
        started = time.perf_counter()
        out = self.spec.function(noisy, sigma=sigma if self.spec.uses_sigma else None, **self.params)
        return MethodOutput(np.asarray(out, dtype=np.float32), time.perf_counter() - started)

    def describe(self) -> dict:
        return {"name": self.name, "kind": self.kind, "library": self.spec.library, "params": self.params,
                "uses_sigma": self.spec.uses_sigma, "function": f"MedDenoiseLib.baselines.{self.spec.function.__name__}"}


class ModelMethod:
    """A trained network run through the denoising pipeline."""

    kind = "model"

    def __init__(self, token: str, modality: str, *, tta: int, device: str) -> None:
        from ..models.resolve import resolve_model

        self.name = token
        self.modality = modality
        model_token, self.uncertainty_source, self.mc_dropout = parse_model_token(token)
        model_name = model_token.split(":", 1)[1] if ":" in model_token else None
        self.loaded = resolve_model(model_name, modality)
        self.tta, self.device = tta, device

    @property
    def card(self) -> dict:
        """The model's card; a routed model's also carries its members' cards (``member_cards``), so the
        leakage check sees every image any member was trained or calibrated on."""
        from ..models.routing import RoutedNetwork

        network = self.loaded.network
        if isinstance(network, RoutedNetwork):
            return {**self.loaded.card, "member_cards": list(network.cards)}
        return self.loaded.card

    def run(self, noisy: np.ndarray, *, sigma: float, geometry: Geometry) -> MethodOutput:
        from ..pipeline import InferenceOptions, denoise_volume

        options = InferenceOptions(tta=self.tta, device=self.device, uncertainty_source=self.uncertainty_source,
                                   mc_dropout=self.mc_dropout)
        started = time.perf_counter()
        result = denoise_volume(Volume(noisy, geometry=geometry), self.loaded, modality=self.modality, options=options)
        seconds = time.perf_counter() - started
        info = {k: result.report.get(k) for k in ("device", "patches", "tta", "tta_views", "noise_sigma", "std_scale",
                                                  "std_floor", "std_edge", "std_edge_width", "std_meaning", "route")}
        return MethodOutput(result.denoised.array.astype(np.float32), seconds, result.uncertainty.array, info)

    def describe(self) -> dict:
        card = self.loaded.card
        members = [{"model": c.get("name"), "sha256": c.get("sha256"), "trained_on": training_files(c),
                    "training": training_summary(c)} for c in self.card.get("member_cards", [])]
        routed = {"members": members, "routes": card.get("routes")} if members else {}
        return {**routed, "name": self.name, "kind": self.kind, "model": self.loaded.name, "path": str(self.loaded.path),
                "sha256": card.get("sha256"), "architecture": card.get("architecture"), "tta": self.tta,
                "uncertainty_source": self.uncertainty_source, "mc_dropout": self.mc_dropout,
                "device": self.device, "trained_on": _training_config(card).get("data", {}).get("train"),
                "training": training_summary(card)}


def _training_config(card: dict) -> dict:
    return (card.get("training") or {}).get("config") or {}


def training_summary(card: dict) -> dict:
    """How a model was trained, from its card: algorithm, the weights it started from, steps.

    >>> training_summary({"training": {"config": {"algorithm": "n2v", "init": "a", "optim": {"steps": 9}}}})
    {'algorithm': 'n2v', 'init': 'a', 'steps': 9}
    """
    config = _training_config(card)
    steps = (card.get("training") or {}).get("steps")  # the steps run (early stopping), else the configured ones
    return {"algorithm": config.get("algorithm"), "init": config.get("init"),
            "steps": steps if steps is not None else (config.get("optim") or {}).get("steps")}


def parse_model_token(token: str) -> tuple[str, str, int]:
    """``model:NAME@SOURCE`` -> (``model:NAME``, source, MC samples): one model scored per uncertainty source.

    SOURCE is ``tta`` (default), ``model`` (the model's own std map) or ``mc_dropout=N``
    (N Monte-Carlo dropout samples per flip), so ``model:m@tta`` and ``model:m@model`` can sit
    side by side in one evaluation (the fidelity report then calibrates each).

    >>> parse_model_token("model:m@mc_dropout=8"), parse_model_token("model")
    (('model:m', 'mc_dropout', 8), ('model', 'tta', 0))
    """
    model_token, _, source = token.partition("@")
    if not source or source in ("tta", "model"):
        return model_token, source or "tta", 0
    name, _, count = source.partition("=")
    if name == "mc_dropout" and count.isdigit() and int(count) >= 2:
        return model_token, "mc_dropout", int(count)
    raise ConfigError(rule_message("method token", "must end in @tta, @model or @mc_dropout=N (N >= 2)", token,
                                   "Write e.g. model:mr_slab25d@tta or model:NAME@mc_dropout=8."))


def build_methods(methods: list[str], modality: str, *, tta: int, device: str,
                  baseline_params: dict[str, dict[str, Any]] | None = None) -> list:
    """Instantiate every ``--methods`` token (models are loaded here, once)."""
    params = baseline_params or {}
    built = []
    for token in methods:
        if token == "noisy":
            built.append(NoisyMethod())
        elif token == "model" or token.startswith(("model:", "model@")):
            built.append(ModelMethod(token, modality, tta=tta, device=device))
        else:
            built.append(BaselineMethod(token, modality, params.get(token)))
    return built
