"""Supervised training: a resumed run reproduces the uninterrupted one; export loads for inference."""

import json

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from pydantic import ValidationError
from safetensors.torch import load_file

from MedDenoiseLib.models.card import load_model
from MedDenoiseLib.training.config import TrainConfig
from MedDenoiseLib.training.supervised import export, train


def config_for(path, steps, **overrides):
    raw = {"name": "tiny", "seed": 7, "checkpoint_every": 1,
           "model": {"name": "slab25d", "features": 8, "depth": 3, "norm": "none"},
           "data": {"train": [str(path)], "patch_size": (3, 16, 16), "batch_size": 2, "refresh_every": 3,
                    "slice_strides": (1, 2)},
           "noise": {"modality": "mr", "level_range": (2.0, 8.0)},
           "optim": {"steps": steps, "warmup_steps": 1, "lr": 1e-3}}
    raw.update(overrides)
    return TrainConfig.model_validate(raw)


@pytest.fixture()
def mr_file(tmp_path):
    z, y, x = np.meshgrid(*[np.linspace(-1, 1, s) for s in (6, 24, 24)], indexing="ij")
    image = sitk.GetImageFromArray((100 + 80 * (x**2 + y**2 < 0.5) + 20 * z).astype(np.float32))
    sitk.WriteImage(image, str(tmp_path / "mr.nrrd"))
    return tmp_path / "mr.nrrd"


class TestSupervised:
    def test_resume_matches_uninterrupted_run(self, tmp_path, mr_file):
        torch.set_num_threads(1)
        straight = train(config_for(mr_file, 5), tmp_path / "a")
        steps_done = []
        train(config_for(mr_file, 5), tmp_path / "b", progress=lambda step, total, loss: steps_done.append(step),
              should_stop=lambda: len(steps_done) >= 2)  # interrupted after step 2 (same schedule)
        assert steps_done == [1, 2]
        resumed = train(config_for(mr_file, 5), tmp_path / "b")
        a = json.loads((straight / "state.json").read_text())["history"]
        b = json.loads((resumed / "state.json").read_text())["history"]
        assert [h["step"] for h in a] == [1, 2, 3, 4, 5] == [h["step"] for h in b]
        assert [h["loss"] for h in a] == [h["loss"] for h in b]
        wa, wb = load_file(str(straight / "model.safetensors")), load_file(str(resumed / "model.safetensors"))
        assert all(torch.equal(wa[k], wb[k]) for k in wa)

    def test_export_is_loadable(self, tmp_path, mr_file):
        config = config_for(mr_file, 2)
        train(config, tmp_path / "run")
        directory = export(config, tmp_path / "run", tmp_path / "model")
        loaded = load_model(directory)
        assert loaded.card["modality"] == "mr" and loaded.card["training"]["steps"] == 2
        x = torch.rand(1, 1, 3, 16, 16)
        assert loaded.network(x).shape == x.shape

    def test_config_rejects_unknown_keys_and_thin_patches(self, mr_file):
        with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
            config_for(mr_file, 2, learning_rate=1.0)
        with pytest.raises(ValidationError, match="patch_size depth must exceed 2 x loss_margin"):
            TrainConfig.model_validate({**config_for(mr_file, 2).model_dump(), "data": {
                "train": [str(mr_file)], "patch_size": (2, 16, 16), "loss_margin": 1}})
