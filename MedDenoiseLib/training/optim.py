"""Optimisation pieces: AdamW, warm-up + cosine schedule, mixed precision on CUDA, EMA of weights."""

from __future__ import annotations

import contextlib
import copy
import math
from typing import Callable, ContextManager

import torch
from torch import nn

from .config import TrainConfig

__all__ = ["EMA", "amp_setup", "build_optimizer", "lr_at"]


def lr_at(step: int, config: TrainConfig) -> float:
    """Linear warm-up then cosine decay to 2 % of the peak rate.

    Examples
    --------
    >>> from MedDenoiseLib.training.factories import create_supervised_config
    >>> c = create_supervised_config("m", "mr", ["a.nii.gz"], steps=100, warmup_steps=10, lr=1e-3, seed=0)
    >>> lr_at(0, c), lr_at(10, c), round(lr_at(100, c), 8)
    (0.0001, 0.001, 2e-05)
    """
    o = config.optim
    if step < o.warmup_steps:
        return o.lr * (step + 1) / o.warmup_steps
    progress = (step - o.warmup_steps) / max(1, o.steps - o.warmup_steps)
    return o.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW (Loshchilov & Hutter 2019) with the config's rate and decoupled weight decay."""
    return torch.optim.AdamW(model.parameters(), lr=config.optim.lr, weight_decay=config.optim.weight_decay)


def amp_setup(device: torch.device, enabled: bool) -> tuple[Callable[[], ContextManager], "torch.amp.GradScaler | None"]:
    """(autocast factory, gradient scaler) for ``device``.

    CUDA with ``enabled``: bf16 autocast where supported (no scaler needed), else fp16 with a
    ``GradScaler``. Anywhere else: a no-op context and no scaler (CPU trains in float32).
    """
    if not enabled or device.type != "cuda":
        return contextlib.nullcontext, None
    if torch.cuda.is_bf16_supported():
        return (lambda: torch.autocast(device_type="cuda", dtype=torch.bfloat16)), None
    return (lambda: torch.autocast(device_type="cuda", dtype=torch.float16)), torch.amp.GradScaler("cuda")


class EMA:
    """Exponential moving average of a model's parameters (buffers are copied).

    After each optimiser step, ``shadow = decay * shadow + (1 - decay) * weights``. The shadow is
    a full copy of the network (``self.model``), used for validation and export.

    Examples
    --------
    >>> net = nn.Linear(2, 1)
    >>> ema = EMA(net, decay=0.5)
    >>> with torch.no_grad():
    ...     _ = net.weight.add_(2.0)
    >>> ema.update(net)
    >>> torch.allclose(ema.model.weight, net.weight - 1.0)
    True
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = float(decay)
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for shadow, current in zip(self.model.parameters(), model.parameters()):
            shadow.lerp_(current.detach(), 1.0 - self.decay)
        for shadow, current in zip(self.model.buffers(), model.buffers()):
            shadow.copy_(current)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.model.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict(state)
