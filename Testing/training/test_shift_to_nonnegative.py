"""``data.shift_to_nonnegative``: foreign anatomy with negative values (CT in HU) becomes a magnitude image for
Rician training; off, the noise model refuses it with the fix."""

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from pydantic import ValidationError

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


def _config(path, modality="mr", level=5.0, **data):
    return TrainConfig.model_validate({
        "name": "shift", "seed": 5, "model": {"name": "slab25d", "features": 8, "depth": 3, "norm": "none"},
        "data": {"train": [str(path)], "patch_size": (3, 16, 16), "batch_size": 2, **data},
        "noise": {"modality": modality, "level_range": (level, level)}, "optim": {"steps": 2, "warmup_steps": 1}})


def test_shift_moves_the_minimum_to_zero_and_keeps_differences():
    image = torch.tensor([[-1000.0, 40.0], [0.0, 500.0]])
    shifted = shift_to_nonnegative("ct", image)
    assert torch.equal(shifted, torch.tensor([[0.0, 1040.0], [1000.0, 1500.0]]))
    assert torch.equal(image[0], torch.tensor([-1000.0, 40.0]))  # the input is not modified


def test_nonnegative_images_are_left_as_they_are():
    image = torch.tensor([0.0, 3.0, 7.0])
    assert shift_to_nonnegative("mr", image) is image


@pytest.mark.parametrize("modality, level", [("mr", 5.0), ("xr", 0.5)])
def test_off_by_default_magnitude_noise_refuses_hu_with_the_fix(hu_file, modality, level):
    config = _config(hu_file, modality=modality, level=level)
    assert config.data.shift_to_nonnegative is False
    with pytest.raises(ConfigError, match=rf"ct\.nrrd.*must be non-negative for {modality} noise.*-1000.*"
                                          r"shift_to_nonnegative"):
        PatchSampler(config, torch.Generator().manual_seed(0))


def test_speckle_refuses_hu_pointing_at_rescale_to_not_the_shift(hu_file):
    """A shift would leave values up to 1040, outside the [0, 255] speckle takes: the fix is data.rescale_to."""
    with pytest.raises(ConfigError, match=r"ct\.nrrd.*must lie in \[0, 255\].*us noise.*-1000.*40.*"
                                          r"rescale_to: \[0, 255\]"):
        PatchSampler(_config(hu_file, modality="us", level=4.0), torch.Generator().manual_seed(0))


def test_ct_training_refuses_the_shift_with_the_fix(hu_file):
    with pytest.raises(ValidationError, match="data.shift_to_nonnegative must be false for ct noise.*Remove it"):
        _config(hu_file, modality="ct", level=0.25, shift_to_nonnegative=True)


def test_on_the_shifted_volume_is_noised_and_sampled(hu_file, caplog):
    caplog.set_level("INFO")
    sampler = PatchSampler(_config(hu_file, shift_to_nonnegative=True), torch.Generator().manual_seed(0))
    assert float(sampler.clean[0].min()) == 0.0 and float(sampler.clean[0].max()) == 1040.0
    assert "shifted up by 1000" in caplog.text
    sampler.refresh(0)
    batch = sampler.batch(0)
    assert torch.isfinite(batch.noisy).all() and batch.noisy.shape[0] == 2
