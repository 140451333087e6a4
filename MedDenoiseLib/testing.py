"""Tiny, untrained but non-trivial models for tests and self-tests (seconds on a CPU).

Registered networks start as the identity (their last layer is zero), which would hide
bugs in blending, TTA and uncertainty; these helpers give that layer small random
weights drawn from an explicit generator.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from .models import build_model
from .models.card import save_model


def tiny_model(*, seed: int = 0, dropout: float = 0.0, **config) -> nn.Module:
    """A 3-layer, 8-feature ``slab25d`` in eval mode with deterministic, non-identity weights."""
    generator = torch.Generator().manual_seed(seed)
    options = {"features": 8, "depth": 3, "norm": "none", "dropout": dropout, **config}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model("slab25d", **options)
    last = model.body[-1]
    with torch.no_grad():
        last.weight.copy_(0.05 * torch.randn(last.weight.shape, generator=generator))
    return model.eval()


#: A DUAL-NET small enough for unit tests (thousands of parameters, every component present).
TINY_DUALNET = {"edge": True, "channels": (4, 8), "neb_channels": 4, "neb_depth": 2, "growth": 4, "heads": 1,
                "window": (2, 4, 4)}


def tiny_dualnet(*, seed: int = 0, scale: float = 0.05, **config) -> nn.Module:
    """A tiny ``dualnet`` (:data:`TINY_DUALNET`, overridable) in eval mode, every weight moved by a small
    deterministic perturbation so that it is not the identity and its gates and heads are active."""
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model("dualnet", **{**TINY_DUALNET, **config})
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(scale * torch.randn(parameter.shape, generator=generator))
    return model.eval()


def write_tiny_models_root(root: str | Path, modalities: tuple[str, ...] = ("mr",), *, seed: int = 0) -> Path:
    """A models root with one tiny model per modality (``<m>_tiny``) and an ``index.json`` of defaults."""
    root = Path(root)
    for modality in modalities:
        save_model(tiny_model(seed=seed), root / f"{modality}_tiny", {"name": f"{modality}_tiny", "modality": modality})
    (root / "index.json").write_text(json.dumps({"defaults": {m: f"{m}_tiny" for m in modalities}}), encoding="utf-8")
    return root
