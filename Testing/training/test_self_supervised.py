"""Self-supervised training: N2V on noisy-only scans, Noise2Self, two-stage training, ``meddenoise adapt``."""

import json

import numpy as np
import pytest
import torch

from MedDenoiseLib.cli.main import main
from MedDenoiseLib.errors import ConfigError
from MedDenoiseLib.io import read_volume
from MedDenoiseLib.metrics import psnr
from MedDenoiseLib.models.card import load_model
from MedDenoiseLib.noise import add_gaussian_noise, random_modality_noise
from MedDenoiseLib.pipeline import InferenceOptions, denoise_volume
from MedDenoiseLib.training import TrainConfig, export, train, train_two_stage

# 2D kernels (kernel_depth 1): thin training patches then see no zero padding across slices,
# so what the network learns on 3-slice patches transfers to whole volumes.
TINY = {"name": "dncnn", "depth": 4, "features": 16, "kernel_depth": 1}


def ssl_config(train_files, validation_files, steps, algorithm="n2v", **overrides):
    raw = {"name": f"tiny_{algorithm}", "seed": 3, "checkpoint_every": 20, "algorithm": algorithm, "model": TINY,
           "data": {"train": train_files, "validation": validation_files, "patch_size": (3, 24, 24),
                    "batch_size": 4},
           "noise": {"modality": "mr"}, "masking": {"fraction": 0.1},
           "optim": {"steps": steps, "warmup_steps": 2, "lr": 3e-3},
           "validation": {"every": steps, "patches": 4, "patch_size": (3, 32, 32), "levels": [8.0]},
           "logs": {"tensorboard": False, "plot": False}}
    raw.update(overrides)
    return TrainConfig.model_validate(raw)


@pytest.fixture()
def noisy_scan(tmp_path, make_phantom, write_nifti):
    """A noisy-only MR scan (Rician, 8 % of the maximum) of one patient, and a clean other patient."""
    clean = torch.from_numpy(make_phantom(shape=(8, 48, 48), seed=1))
    noisy, _ = random_modality_noise("mr", level_range=(8.0, 8.0))(clean, generator=torch.Generator().manual_seed(5))
    return write_nifti(tmp_path / "noisy.nii.gz", noisy.numpy()), write_nifti(tmp_path / "val.nii.gz",
                                                                              make_phantom(seed=10))


class TestNoise2Void:
    def test_n2v_on_noisy_only_data_beats_the_noisy_input(self, tmp_path, noisy_scan):
        scan, validation = noisy_scan
        ckpt = train(ssl_config([scan], [validation], 60, model={**TINY, "kernel_depth": 3}), tmp_path / "run")
        scores = json.loads((ckpt / "state.json").read_text(encoding="utf-8"))["validation"][-1]
        assert scores["psnr"] > scores["noisy_psnr"] + 1.0 and scores["ssim"] > scores["noisy_ssim"]

    def test_noise2self_trains(self, tmp_path, noisy_scan):
        scan, validation = noisy_scan
        ckpt = train(ssl_config([scan], [validation], 6, algorithm="n2s", checkpoint_every=3), tmp_path / "run")
        history = json.loads((ckpt / "state.json").read_text(encoding="utf-8"))["history"]
        assert [h["step"] for h in history] == [3, 6] and all(np.isfinite(h["loss"]) for h in history)

    def test_patches_must_fit_noisy_scans(self, tmp_path, noisy_scan):
        scan, validation = noisy_scan
        config = ssl_config([scan], [validation], 2, data={"train": [scan], "patch_size": (9, 24, 24)})
        with pytest.raises(ConfigError, match=r"must fit inside the volume .* for algorithm 'n2v'"):
            train(config, tmp_path / "run")


class TestTwoStage:
    def test_supervised_then_self_supervised(self, tmp_path, patients, noisy_scan):
        train_files, validation_files = patients
        scan, _ = noisy_scan
        stage1 = TrainConfig.model_validate({
            "name": "stage1", "seed": 1, "model": TINY, "checkpoint_every": 3,
            "data": {"train": train_files, "patch_size": (3, 16, 16), "batch_size": 2},
            "noise": {"modality": "mr", "level_range": (2.0, 6.0)}, "optim": {"steps": 3, "warmup_steps": 1},
            "logs": {"tensorboard": False, "plot": False}})
        stage2 = ssl_config([scan], [], 3, checkpoint_every=3, model={"name": "dncnn"})  # model comes from stage 1
        ckpt = train_two_stage(stage1, stage2, tmp_path / "run")
        state = json.loads((ckpt / "state.json").read_text(encoding="utf-8"))
        assert state["step"] == 3 and state["config"]["init"] == str(tmp_path / "run" / "stage1" / "model")
        assert state["config"]["model"] == TINY and state["config"]["algorithm"] == "n2v"


class TestAdapt:
    def test_adapt_improves_psnr_when_the_scan_noise_differs(self, tmp_path, patients, make_phantom, write_nifti):
        """Pre-trained on weak Rician noise; the scan has strong Gaussian noise; N2V on the scan fixes that."""
        train_files, _ = patients
        pre = TrainConfig.model_validate({
            "name": "pre", "seed": 3, "model": TINY, "checkpoint_every": 30,
            "data": {"train": train_files, "patch_size": (3, 24, 24), "batch_size": 4, "refresh_every": 10},
            "noise": {"modality": "mr", "level_range": (1.0, 3.0)}, "optim": {"steps": 30, "warmup_steps": 2, "lr": 3e-3},
            "logs": {"tensorboard": False, "plot": False}})
        train(pre, tmp_path / "pre_run")
        pre_model = export(pre, tmp_path / "pre_run", tmp_path / "pre_model")
        clean = make_phantom(shape=(8, 48, 48), seed=20)
        noisy = add_gaussian_noise(torch.from_numpy(clean), 0.1 * float(clean.max()),
                                   generator=torch.Generator().manual_seed(1))
        scan = write_nifti(tmp_path / "scan.nii.gz", noisy.numpy())
        out, denoised = tmp_path / "adapted", tmp_path / "denoised.nii.gz"
        assert main(["adapt", scan, "--model", str(pre_model), "--steps", "40", "--out", str(out), "--fraction", "0.2",
                     "--lr", "3e-3", "--patch", "3", "24", "24", "--seed", "0", "--progress", "none",
                     "--denoised", str(denoised)]) == 0
        data_range = float(clean.max() - clean.min())
        before = denoise_volume(read_volume(scan), load_model(pre_model), modality="mr",
                                options=InferenceOptions(device="cpu")).denoised.array
        after = read_volume(denoised).array
        noisy_psnr = psnr(clean, noisy.numpy(), data_range=data_range)
        assert psnr(clean, before, data_range=data_range) < noisy_psnr + 0.5  # weak-noise model does little here
        assert psnr(clean, after, data_range=data_range) > psnr(clean, before, data_range=data_range) + 1.0
        card = load_model(out).card
        assert card["adapted_from"]["model"] == "pre" and card["training"]["algorithm"] == "n2v"
        assert card["training"]["steps"] == 40 and card["data"]["train"][0]["path"] == scan
