"""Supervised training on simulated physics noise (stage 1), checkpointed and resumable across sessions.

The loop itself is shared with the self-supervised algorithms and lives in :mod:`.trainer`; this
module keeps the original entry points (``train``, ``export``, ``lr_at``) importable from here.
"""

from __future__ import annotations

from torch import nn

from .config import TrainConfig
from .export import export
from .module import build_network
from .optim import lr_at
from .trainer import train

__all__ = ["export", "lr_at", "train"]


def _seeded_model(config: TrainConfig) -> nn.Module:
    """Build the network with weights initialised from ``config.seed`` (kept for older callers)."""
    return build_network(config, load_init=False)
