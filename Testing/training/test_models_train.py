"""Every registered architecture trains: its loss decreases over a few steps on a fixed batch."""

import pytest
import torch

from MedDenoiseLib.models import list_models
from MedDenoiseLib.training.config import TrainConfig
from MedDenoiseLib.training.module import TrainingObjective, build_network
from MedDenoiseLib.training.optim import build_optimizer

TINY = {
    "cdae": {"channels": [4, 4, 4, 4]},
    "cae": {"base_channels": 4},
    "dncnn": {"depth": 3, "features": 8},
    "dualnet": {"edge": True, "channels": [4, 8], "neb_channels": 4, "neb_depth": 2, "growth": 4, "heads": 1,
                "window": [2, 4, 4]},
    "resunet": {"channels": [4, 8], "num_res_units": 1},
    "slab25d": {"features": 8, "depth": 3, "norm": "none"},
    "slab_unet": {"features": [4, 8], "blocks": 1},
}


def test_every_registered_model_has_a_tiny_config():
    assert set(list_models()) <= set(TINY), "add a tiny config for the new architecture"


@pytest.mark.parametrize("name", sorted(TINY))
@pytest.mark.parametrize("algorithm", ["supervised", "n2v"])
def test_loss_decreases_on_a_fixed_batch(name, algorithm):
    config = TrainConfig.model_validate({
        "name": name, "seed": 0, "algorithm": algorithm, "model": {"name": name, **TINY[name]},
        "data": {"train": ["unused.nii.gz"], "patch_size": [4, 16, 16], "loss_margin": 1},
        "noise": {"modality": "mr", "level_range": [5.0, 5.0]}, "masking": {"fraction": 0.1},
        "optim": {"lr": 3e-3}})
    g = torch.Generator().manual_seed(1)
    z, y, x = torch.meshgrid(*[torch.linspace(-1, 1, s) for s in (4, 16, 16)], indexing="ij")
    clean = (0.3 + 0.4 * ((x**2 + y**2) < 0.5) + 0.1 * z).expand(2, 1, 4, 16, 16)
    noisy = clean + 0.1 * torch.randn(clean.shape, generator=g)
    model, objective = build_network(config), TrainingObjective(config)
    optimizer = build_optimizer(model, config)
    batch = objective.prepare(noisy, clean, torch.Generator().manual_seed(2))  # fixed batch (and fixed mask)
    losses = []
    for _ in range(12):
        loss, _ = objective.loss(model(batch.inputs), batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < 0.99 * losses[0], losses  # identity-initialised residual nets start near the noise floor
