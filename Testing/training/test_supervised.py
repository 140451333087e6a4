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
        a = json.loads((straight / "state.json").read_text(encoding="utf-8"))["history"]
        b = json.loads((resumed / "state.json").read_text(encoding="utf-8"))["history"]
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


def dncnn_config(train_files, validation_files, steps, **overrides):
    raw = {"name": "tiny_dncnn", "seed": 3, "checkpoint_every": 10,
           "model": {"name": "dncnn", "depth": 4, "features": 16, "kernel_depth": 1},
           "data": {"train": train_files, "validation": validation_files, "patch_size": (3, 24, 24),
                    "batch_size": 4, "refresh_every": 10},
           "noise": {"modality": "mr", "level_range": (6.0, 10.0)},
           "loss": {"l1": 1.0, "ssim": 0.2, "edge": 0.1},
           "optim": {"steps": steps, "warmup_steps": 2, "lr": 3e-3},
           "validation": {"every": 20, "patches": 4, "patch_size": (3, 32, 32)}, "logs": {"tensorboard": False}}
    raw.update(overrides)
    return TrainConfig.model_validate(raw)


class TestSupervisedValidation:
    def test_beats_noisy_input_and_exports_metrics_and_provenance(self, tmp_path, patients):
        train_files, validation_files = patients
        manifest = {"files": [{"path": "train0.nii.gz", "source_package": "phantom-pkg", "source_version": "1.0",
                               "registry": "PyPI", "licence": "MIT", "modality": "MR", "sha256": "0" * 64}]}
        (tmp_path / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
        config = dncnn_config(train_files, validation_files, 60)
        train(config, tmp_path / "run")
        state = json.loads((tmp_path / "run" / "checkpoint" / "state.json").read_text(encoding="utf-8"))
        last = state["validation"][-1]
        assert [v["step"] for v in state["validation"]] == [20, 40, 60]
        assert last["psnr"] > last["noisy_psnr"] + 1.0 and last["ssim"] > last["noisy_ssim"]
        assert state["best"]["ssim"] == max(v["ssim"] for v in state["validation"])
        rows = (tmp_path / "run" / "train_log.csv").read_text(encoding="utf-8").splitlines()
        assert rows[0].startswith("step,loss,lr,seconds") and "val_psnr" in rows[0] and len(rows) == 7
        assert (tmp_path / "run" / "curves.png").stat().st_size > 1000

        card = load_model(export(config, tmp_path / "run", tmp_path / "model")).card
        assert card["metrics"]["validation"]["step"] == state["best"]["step"]
        assert card["metrics"]["validation"]["noisy_psnr"] == last["noisy_psnr"]
        assert card["training"]["device"] == "cpu" and card["training"]["wall_seconds"] > 0
        first, second = card["data"]["train"]
        assert first["in_manifest"] and first["licence"] == "MIT" and first["source_package"] == "phantom-pkg"
        assert first["sha256_matches_manifest"] is False and not second["in_manifest"]
        assert card["data"]["validation"][0]["sha256"] and card["citations"]

    def test_early_stopping_and_resume_after_it(self, tmp_path, patients):
        train_files, validation_files = patients
        config = dncnn_config(train_files, validation_files, 40, checkpoint_every=5,
                              validation={"every": 5, "patches": 1, "patch_size": (3, 16, 16), "patience": 1,
                                          "min_delta": 1.0})
        ckpt = train(config, tmp_path / "run")
        state = json.loads((ckpt / "state.json").read_text(encoding="utf-8"))
        assert state["stopped_early"] and state["step"] == 10 and state["best"]["step"] == 5
        assert train(config, tmp_path / "run") == ckpt  # a stopped run stays stopped
        assert json.loads((ckpt / "state.json").read_text(encoding="utf-8"))["step"] == 10

    def test_resume_is_exact_with_ema_validation_and_dual_loss(self, tmp_path, patients):
        train_files, validation_files = patients
        config = dncnn_config(train_files, validation_files, 4, checkpoint_every=1,
                              optim={"steps": 4, "warmup_steps": 1, "lr": 1e-3, "ema_decay": 0.9},
                              validation={"every": 2, "patches": 1, "patch_size": (3, 16, 16)},
                              data={"train": train_files, "validation": validation_files, "patch_size": (3, 16, 16),
                                    "batch_size": 2, "refresh_every": 2, "augment": {"rot90": True}})
        straight = train(config, tmp_path / "a")
        done = []
        train(config, tmp_path / "b", progress=lambda s, t, l: done.append(s), should_stop=lambda: len(done) >= 3)
        resumed = train(config, tmp_path / "b")
        a, b = (json.loads((d / "state.json").read_text(encoding="utf-8")) for d in (straight, resumed))
        assert [h["loss"] for h in a["history"]] == [h["loss"] for h in b["history"]]
        assert a["validation"] == b["validation"]
        for name in ("model.safetensors", "ema.safetensors"):
            wa, wb = load_file(str(straight / name)), load_file(str(resumed / name))
            assert all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_amp_and_ema(tmp_path, patients):
    train_files, validation_files = patients
    config = dncnn_config(train_files, validation_files, 4, device="cuda", checkpoint_every=2,
                          optim={"steps": 4, "warmup_steps": 1, "lr": 1e-3, "amp": True, "ema_decay": 0.9},
                          validation={"every": 2, "patches": 1, "patch_size": (3, 16, 16)})
    ckpt = train(config, tmp_path / "run")
    state = json.loads((ckpt / "state.json").read_text(encoding="utf-8"))
    assert state["device"].startswith("cuda") and all(np.isfinite(h["loss"]) for h in state["history"])
    assert load_model(export(config, tmp_path / "run", tmp_path / "model")).card["training"]["device"].startswith("cuda")
