"""DUAL-NET through the training API: a 3-step supervised run with every auxiliary term, export with its
own uncertainty, a 3-step self-supervised stage 2 from it, and the shipped example config."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from MedDenoiseLib.models.card import load_model
from MedDenoiseLib.training.config import TrainConfig, load_config
from MedDenoiseLib.training.export import export
from MedDenoiseLib.training.trainer import train

ROOT = Path(__file__).resolve().parents[2]
TINY = {"name": "dualnet", "edge": True, "channels": [4, 8], "neb_channels": 4, "neb_depth": 2, "growth": 4,
        "heads": 1, "window": [2, 4, 4]}


def config_for(train_files, steps, **overrides):
    raw = {"name": "dual_tiny", "seed": 3, "checkpoint_every": 1, "model": TINY,
           "data": {"train": train_files, "patch_size": [3, 16, 16], "batch_size": 2, "refresh_every": 2},
           "noise": {"modality": "mr", "level_range": [2.0, 8.0]},
           "loss": {"l1": 1.0, "ssim": 0.5, "edge": 0.1, "noise_nll": 0.1, "neb_l1": 0.1, "error_nll": 0.05,
                    "tv": 0.001},
           "optim": {"steps": steps, "warmup_steps": 1, "lr": 1e-3},
           "logs": {"tensorboard": False, "plot": False}}
    raw.update(overrides)
    return TrainConfig.model_validate(raw)


def test_supervised_then_self_supervised_smoke(tmp_path, patients):
    train_files, _ = patients
    config = config_for(train_files, 3)
    checkpoint = train(config, tmp_path / "stage1")
    history = json.loads((checkpoint / "state.json").read_text(encoding="utf-8"))["history"]
    assert [h["step"] for h in history] == [1, 2, 3]
    for key in ("l1", "ssim", "edge", "noise_nll", "neb_l1", "error_nll", "tv"):
        assert all(np.isfinite(h[key]) for h in history), key
    model_dir = export(config, tmp_path / "stage1", tmp_path / "model")
    loaded = load_model(model_dir)
    assert loaded.card["own_uncertainty"] is True and loaded.network.has_own_uncertainty
    denoised, std = loaded.network.forward_with_uncertainty(torch.rand(1, 1, 3, 16, 16))
    assert denoised.shape == std.shape and (std > 0).all()

    stage2 = config_for(train_files, 3, algorithm="n2v", init=str(model_dir), masking={"fraction": 0.2},
                        noise={"modality": "mr", "level_range": [2.0, 8.0]},
                        loss={"l1": 1.0, "noise_nll": 0.1, "consistency": 0.5, "tv": 0.001})
    checkpoint = train(stage2, tmp_path / "stage2")
    history = json.loads((checkpoint / "state.json").read_text(encoding="utf-8"))["history"]
    assert [h["step"] for h in history] == [1, 2, 3]
    assert all(np.isfinite([h["masked"], h["noise_nll"], h["consistency"], h["tv"]]).all() for h in history)


def test_branch_terms_refuse_a_model_without_the_branch(tmp_path, patients):
    config = config_for(patients[0], 1, loss={"l1": 1.0, "tv": 0.01}, model={**TINY, "neb": False})
    train(config, tmp_path / "run")  # TV alone works without the NEB
    with pytest.raises(ValueError, match="need a model with a noise-estimation branch"):
        config_for(patients[0], 1, model={**TINY, "neb": False})


def test_example_config_validates():
    config = load_config(ROOT / "configs" / "mr_dualnet_edge.yaml")
    assert config.model["name"] == "dualnet" and config.model["edge"] is True
    assert config.data.patch_size == (5, 96, 96) and config.loss.noise_nll > 0
    assert not any("brain1" in path for path in config.data.train + config.data.validation)  # held out
