"""``data.shift_to_nonnegative``: foreign anatomy with negative values (CT in HU) becomes a magnitude image for
Rician training; off, the noise model refuses it with the fix."""

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from MedDenoiseLib.errors import ConfigError
from MedDenoiseLib.training.config import TrainConfig
from MedDenoiseLib.training.data import PatchSampler, shift_to_nonnegative


@pytest.fixture()
def hu_file(tmp_path):
    """Air at -1000 HU around a soft-tissue block at +40 HU."""
    image = np.full((4, 32, 32), -1000.0, np.float32)
    image[:, 8:24, 8:24] = 40.0
    sitk.WriteImage(sitk.GetImageFromArray(image), str(tmp_path / "ct.nrrd"))
    return tmp_path / "ct.nrrd"


def _config(path, **data):
    return TrainConfig.model_validate({
        "name": "shift", "seed": 5, "model": {"name": "slab25d", "features": 8, "depth": 3, "norm": "none"},
        "data": {"train": [str(path)], "patch_size": (3, 16, 16), "batch_size": 2, **data},
        "noise": {"modality": "mr", "level_range": (5.0, 5.0)}, "optim": {"steps": 2, "warmup_steps": 1}})


def test_shift_moves_the_minimum_to_zero_and_keeps_differences():
    image = torch.tensor([[-1000.0, 40.0], [0.0, 500.0]])
    shifted = shift_to_nonnegative("ct", image)
    assert torch.equal(shifted, torch.tensor([[0.0, 1040.0], [1000.0, 1500.0]]))
    assert torch.equal(image[0], torch.tensor([-1000.0, 40.0]))  # the input is not modified


def test_nonnegative_images_are_left_as_they_are():
    image = torch.tensor([0.0, 3.0, 7.0])
    assert shift_to_nonnegative("mr", image) is image


def test_off_by_default_rician_training_refuses_hu_with_the_fix(hu_file):
    assert _config(hu_file).data.shift_to_nonnegative is False
    with pytest.raises(ConfigError, match=r"ct\.nrrd.*must be non-negative for mr noise.*-1000.*shift_to_nonnegative"):
        PatchSampler(_config(hu_file), torch.Generator().manual_seed(0))


def test_on_the_shifted_volume_is_noised_and_sampled(hu_file, caplog):
    caplog.set_level("INFO")
    sampler = PatchSampler(_config(hu_file, shift_to_nonnegative=True), torch.Generator().manual_seed(0))
    assert float(sampler.clean[0].min()) == 0.0 and float(sampler.clean[0].max()) == 1040.0
    assert "shifted up by 1000" in caplog.text
    sampler.refresh(0)
    batch = sampler.batch(0)
    assert torch.isfinite(batch.noisy).all() and batch.noisy.shape[0] == 2
