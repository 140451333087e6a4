"""``data.normalization``: the config's rule, the training pairs, validation, the card and inference agree."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from MedDenoiseLib.errors import ConfigError
from MedDenoiseLib.models.card import load_model
from MedDenoiseLib.pipeline import InferenceOptions, denoise_volume
from MedDenoiseLib.training.config import TrainConfig
from MedDenoiseLib.training.data import PatchSampler
from MedDenoiseLib.training.module import build_network
from MedDenoiseLib.training.self_supervised import adapt
from MedDenoiseLib.training.supervised import export, train
from MedDenoiseLib.training.validation import ValidationSet
from MedDenoiseLib.volume import Volume


def radiograph(seed: int) -> np.ndarray:
    """A 10-bit radiograph-like slice: saturated background (1023) around a darker limb."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:48, 0:48]
    image = np.full((1, 48, 48), 1023.0)
    image[0, :, 14:34] = 400 + 100 * np.sin(y / 5.0)[:, 14:34] + rng.uniform(0, 20)
    return image.astype(np.float32)


def config(files, normalization="xr_percentile", modality="xr"):
    return TrainConfig.model_validate({
        "name": "pct", "seed": 5, "checkpoint_every": 1,
        "model": {"name": "slab25d", "context": 0, "features": 8, "depth": 3, "norm": "none"},
        "data": {"train": [files[0]], "validation": [files[1]], "patch_size": (1, 16, 16), "batch_size": 2,
                 "loss_margin": 0, "normalization": normalization},
        "noise": {"modality": modality, "level_range": (0.2, 0.2)},
        "optim": {"steps": 2, "warmup_steps": 1, "lr": 1e-3},
        "validation": {"every": 1, "patches": 1, "patch_size": (1, 48, 48)}})


@pytest.fixture()
def radiographs(tmp_path, write_nifti):
    return [write_nifti(tmp_path / f"xr{i}.nii.gz", radiograph(i), spacing=(0.2, 0.2, 1.0)) for i in range(2)]


def test_config_refuses_the_percentile_rule_for_another_modality(radiographs):
    with pytest.raises(ValueError, match=r"data.normalization must be 'default' unless noise.modality is xr; "
                                         r"got 'xr_percentile with noise.modality mr'"):
        config(radiographs, modality="mr")


def test_training_pairs_are_scaled_by_the_noisy_image_percentile(radiographs):
    sampler = PatchSampler(config(radiographs), torch.Generator().manual_seed(0))
    sampler.refresh(0)
    noisy = sampler.pairs[0].noisy
    # the noisy image divided by its own 99.5th percentile; the bit rule would have divided by 4095
    assert float(torch.quantile(noisy.flatten().double(), 0.995)) == pytest.approx(1.0, abs=1e-5)
    default = PatchSampler(config(radiographs, "default"), torch.Generator().manual_seed(0))
    default.refresh(0)
    assert float(default.pairs[0].noisy.max()) < 0.3


def test_noisy_only_scans_are_scaled_alike(tmp_path, write_nifti):
    scan = radiograph(3)
    scan[0, :2, :2] = 1100.0  # four hot pixels above 10 bits: the bit rule would divide by 4095
    scans = [write_nifti(tmp_path / f"scan{i}.nii.gz", scan, spacing=(0.2, 0.2, 1.0)) for i in range(2)]
    raw = config(scans).model_dump()
    n2v = TrainConfig.model_validate({**raw, "algorithm": "n2v", "data": {**raw["data"], "validation": []},
                                      "noise": {"modality": "xr", "level_range": None}})
    sampler = PatchSampler(n2v, torch.Generator().manual_seed(0))
    sampler.refresh(0)
    assert sampler.pairs[0].clean is None  # the scan itself, as acquired
    assert float(torch.quantile(sampler.pairs[0].noisy.flatten().double(), 0.995)) == pytest.approx(1.0, abs=1e-5)


def test_validation_uses_the_same_rule(radiographs):
    validation = ValidationSet(config(radiographs))  # one whole-image patch at the one level
    assert float(torch.quantile(validation.noisy.flatten().double(), 0.995)) == pytest.approx(1.0, abs=1e-5)
    # the clean 1023 background over the noisy image's percentile (about 1023 + 2.6 noise stds): below 1, near it
    assert 0.85 < float(validation.clean.max()) < 1.0


def test_card_records_the_rule_and_inference_follows_it(tmp_path, radiographs):
    cfg = config(radiographs)
    train(cfg, tmp_path / "run")
    loaded = load_model(export(cfg, tmp_path / "run", tmp_path / "model"))
    assert loaded.card["normalization"] == "xr_percentile"
    source = radiograph(7)
    source[0, :2, :2] = 1100.0  # crosses 10 bits: the default rule would pick 4095
    result = denoise_volume(Volume(source.copy()), loaded, modality="xr", options=InferenceOptions(tta=1))
    assert result.report["normalization"] == {"modality": "xr", "scale": 1023.0, "offset": 0.0,
                                              "method": "xr_percentile"}
    with pytest.raises(ConfigError, match="modality must be xr for a model normalised with 'xr_percentile'"):
        denoise_volume(Volume(source.copy()), loaded, modality="mr", options=InferenceOptions(tta=1))
    del loaded.card["normalization"]  # a card from before the option: the bit rule
    result = denoise_volume(Volume(source.copy()), loaded, modality="xr", options=InferenceOptions(tta=1))
    assert result.report["normalization"]["method"] == "xr_bits" and result.report["normalization"]["scale"] == 4095


def test_adapting_keeps_the_models_rule(tmp_path, radiographs):
    cfg = config(radiographs)
    train(cfg, tmp_path / "run")
    model_dir = export(cfg, tmp_path / "run", tmp_path / "model")
    adapted = adapt(radiographs[1], model_dir, steps=1, out=tmp_path / "adapted", modality="xr", batch_size=1)
    assert load_model(adapted).card["normalization"] == "xr_percentile"


def test_starting_from_weights_trained_with_another_rule_is_logged(tmp_path, radiographs, caplog):
    default = config(radiographs, "default")
    train(default, tmp_path / "run")
    model_dir = export(default, tmp_path / "run", tmp_path / "model")
    with caplog.at_level("WARNING"):
        build_network(config(radiographs).model_copy(update={"init": str(model_dir)}))
    assert "trained with data.normalization 'default'; this run uses 'xr_percentile'" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        build_network(default.model_copy(update={"init": str(model_dir)}))
    assert "data.normalization" not in caplog.text
