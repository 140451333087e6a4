"""Small supervised training loop on [0, 1] images for the seed-paper autoencoders.

The papers train on whole small images (64 x 64 or 128 x 128) with clean targets, which the
volume-patch trainer of :mod:`MedDenoiseLib.training` does not do; this loop does only that.
Images are fed as one-slice volumes, (B, 1, 1, H, W), to the 3D models built with
``pool_depth=False``. Noise is redrawn every epoch from a seeded generator.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...models import build_model

logger = logging.getLogger(__name__)

__all__ = ["train_autoencoder", "predict"]

NoiseFn = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def train_autoencoder(architecture: dict, images: np.ndarray, noise: NoiseFn, *, epochs: int, batch_size: int,
                      seed: int, lr: float = 1e-3) -> tuple[nn.Module, list[float]]:
    """Train ``build_model(**architecture)`` to map noise(x) -> x with Adam and MSE.

    Returns the network (eval mode) and the mean training loss of every epoch.
    """
    arch = dict(architecture)
    with torch.random.fork_rng(devices=[]):  # seeded initialisation without touching the caller's RNG
        torch.manual_seed(seed)
        model = build_model(arch.pop("name"), **arch)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    clean_all = torch.from_numpy(images)[:, None, None]  # (N, 1, 1, H, W)
    history, started = [], time.perf_counter()
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(clean_all.shape[0], generator=generator)
        losses = []
        for start in range(0, len(order), batch_size):
            clean = clean_all[order[start:start + batch_size]]
            noisy = noise(clean, generator)
            loss = F.mse_loss(model(noisy), clean)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
        history.append(float(np.mean(losses)))
        logger.debug("epoch %d/%d loss %.5f", epoch + 1, epochs, history[-1])
    logger.info("trained %s for %d epochs in %.1f s (final loss %.5f)", architecture["name"], epochs,
                time.perf_counter() - started, history[-1] if history else float("nan"))
    return model.eval(), history


@torch.no_grad()
def predict(model: nn.Module, noisy: np.ndarray, *, batch_size: int = 32) -> np.ndarray:
    """Run ``model`` on (N, H, W) images; returns (N, H, W) float32."""
    outputs = []
    for start in range(0, noisy.shape[0], batch_size):
        batch = torch.from_numpy(noisy[start:start + batch_size])[:, None, None]
        outputs.append(model(batch)[:, 0, 0].numpy())
    return np.concatenate(outputs).astype(np.float32)
