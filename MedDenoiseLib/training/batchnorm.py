"""Batch-norm statistics for averaged weights.

An exponential moving average (EMA) of the weights is a different network from the last step's, but
:class:`~MedDenoiseLib.training.optim.EMA` copies the batch-norm running statistics of the last step,
which belong to the last weights. On the MR model (``configs/mr_slab25d_ctdd_msenn_ema.yaml``) the
averaged weights with those statistics scored 0.2-0.4 dB below the last step's weights; with statistics
re-estimated on 40 training batches they scored above them (``docs/training.md``, section 6).
:func:`recompute_batchnorm_stats` re-estimates them ("precise BN"): the running statistics are
reset and replaced by the plain average over the given batches, in train mode, without gradients.
"""

from __future__ import annotations

from typing import Callable, Iterable, Iterator

import torch
from torch import nn

from .config import TrainConfig
from .data import PatchSampler
from .module import TrainingObjective

__all__ = ["batchnorm_layers", "recompute_batchnorm_stats", "recompute_on_training_data", "training_inputs"]

_STREAM = 0xB4  # seeds the batch generator apart from the training run's own


def batchnorm_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """The batch-norm layers of ``model`` that keep running statistics."""
    return [m for m in model.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]


@torch.no_grad()
def recompute_batchnorm_stats(model: nn.Module, batches: Iterable,
                              forward: Callable[[nn.Module, object], object]) -> int:
    """Replace the running statistics of every batch-norm layer by their average over ``batches``.

    ``forward(model, batch)`` runs one batch. Each layer's running mean and variance become the mean of
    the per-batch means and (unbiased) variances, as torch computes with ``momentum=None``. The layers'
    momenta and the model's train/eval mode are restored. Returns the number of batches run; when it is 0
    (no batch norm, no batches, or a first batch that failed) the statistics are left as they were.
    """
    layers = batchnorm_layers(model)
    if not layers:
        return 0
    momenta, was_training = [m.momentum for m in layers], model.training
    saved = [{k: v.clone() for k, v in m.state_dict().items()} for m in layers]
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None
    model.train()
    count = 0
    try:
        for batch in batches:
            forward(model, batch)
            count += 1
    finally:
        for layer, momentum, state in zip(layers, momenta, saved):
            layer.momentum = momentum
            if count == 0:  # nothing seen (no batches, or the first failed): keep the old statistics
                layer.load_state_dict(state)
        model.train(was_training)
    return count


def training_inputs(config: TrainConfig, count: int, objective: TrainingObjective | None = None
                    ) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """``count`` (inputs, noise level) batches drawn as training draws them, from a generator of their own.

    The patches come from ``config.data`` with noise refreshes numbered after the run's last, every
    ``data.refresh_every`` batches; the generator is seeded from ``config.seed``, so the batches are the same
    for every call with the same config.
    """
    generator = torch.Generator().manual_seed((config.seed * 1_000_033 + _STREAM) % 2**63)
    sampler, objective = PatchSampler(config, generator), objective or TrainingObjective(config)
    first_refresh = config.optim.steps // config.data.refresh_every + 1
    for index in range(count):
        if index % config.data.refresh_every == 0:
            sampler.refresh(first_refresh + index // config.data.refresh_every)
        noisy, clean, noise_level = sampler.batch(index)
        batch = objective.prepare(noisy, clean, generator, noise_level)
        yield batch.inputs, batch.noise_level


def recompute_on_training_data(model: nn.Module, config: TrainConfig, count: int) -> int:
    """:func:`recompute_batchnorm_stats` over :func:`training_inputs`, each batch run as training runs it."""
    objective = TrainingObjective(config)
    return recompute_batchnorm_stats(model, training_inputs(config, count, objective),
                                     lambda network, batch: objective.forward(network, *batch))
