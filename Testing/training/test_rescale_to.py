"""``data.rescale_to``: foreign anatomy (MR, CT in HU, radiographs) mapped onto a display range, so that
ultrasound speckle (which acts on log-compressed B-mode values in [0, 255]) can noise it; calibration maps the
card's training images the same way."""

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from pydantic import ValidationError

from MedDenoiseLib.errors import ConfigError
from MedDenoiseLib.training.calibrate import crop_cases, trained_intensity_map
from MedDenoiseLib.training.config import TrainConfig
from MedDenoiseLib.training.data import PatchSampler, map_intensities, rescale_to_range


def _ramp(count=201, low=-1000.0, high=1000.0):
    """Values low, low + 10, ..., high: percentiles by hand (99.5th of 201 evenly spaced values = 990)."""
    return torch.linspace(low, high, count)


@pytest.fixture()
def hu_file(tmp_path):
    """Air at -1000 HU around a soft-tissue block at +40 HU and a bone rim at +1000 HU."""
    image = np.full((4, 32, 32), -1000.0, np.float32)
    image[:, 8:24, 8:24] = 40.0
    image[:, 8, 8:24] = 1000.0
    sitk.WriteImage(sitk.GetImageFromArray(image), str(tmp_path / "ct.nrrd"))
    return tmp_path / "ct.nrrd"


def _config(path, **data):
    return TrainConfig.model_validate({
        "name": "rescale", "seed": 5, "model": {"name": "slab25d", "features": 8, "depth": 3, "norm": "none"},
        "data": {"train": [str(path)], "patch_size": (3, 16, 16), "batch_size": 2, **data},
        "noise": {"modality": "us", "level_range": (4.0, 4.0)}, "optim": {"steps": 2, "warmup_steps": 1}})


def test_minimum_and_99_5th_percentile_go_to_the_ends_and_brighter_values_clip():
    ramp = _ramp()
    mapped = rescale_to_range("ramp", ramp, (0.0, 255.0))
    # minimum -1000 -> 0; 99.5th percentile 990 -> 255; linear between; 1000 clipped to 255
    assert float(mapped[0]) == 0.0
    assert float(mapped[-2]) == pytest.approx(255.0, abs=1e-4) and float(mapped[-1]) == 255.0
    assert float(mapped[100]) == pytest.approx(1000.0 * 255.0 / 1990.0, rel=1e-5)
    assert torch.equal(ramp, _ramp())  # the input is not modified


def test_arrays_are_mapped_like_tensors():
    ramp = _ramp()
    np.testing.assert_allclose(rescale_to_range("ramp", ramp.numpy(), (0.0, 255.0)),
                               rescale_to_range("ramp", ramp, (0.0, 255.0)).numpy(), rtol=1e-6, atol=1e-4)


def test_images_inside_the_range_are_used_as_read():
    image = torch.tensor([0.0, 17.0, 255.0])
    assert rescale_to_range("us", image, (0.0, 255.0)) is image
    assert map_intensities("us", image) is image


def test_integer_arrays_come_back_as_float32_and_are_not_modified():
    image = np.array([[-10, 0], [90, 990]], np.int16)
    mapped = rescale_to_range("ints", image, (0.0, 100.0))
    assert mapped.dtype == np.float32 and image[0, 0] == -10
    # minimum -10 -> 0; 99.5th percentile of (-10, 0, 90, 990) = 90 + 0.985 * 900 = 976.5 -> 100
    np.testing.assert_allclose(mapped, [[0.0, 1000.0 / 986.5], [10000.0 / 986.5, 100.0]], rtol=1e-5)


def test_a_flat_image_is_refused_naming_the_entry():
    with pytest.raises(ConfigError, match=r"'flat'.*99.5th percentile above its minimum.*rescale_to.*minimum -5.*"
                                          r"Drop it"):
        rescale_to_range("flat", torch.full((3, 3), -5.0), (0.0, 255.0))


def test_non_finite_values_are_refused_rather_than_spread():
    with pytest.raises(ConfigError, match=r"'nan'.*must be finite.*1 NaN/Inf voxels.*Replace them"):
        rescale_to_range("nan", torch.tensor([0.0, float("nan"), 100.0]), (0.0, 255.0))


@pytest.mark.parametrize("bounds, rule, fix", [
    ((255.0, 0.0), "low <= high", "Swap the two values"),
    ((3.0, 3.0), "must span a range", r"Use e\.g\. \[0, 255\]"),
    ((0.0, float("inf")), "must be two finite numbers", r"Use e\.g\. \[0, 255\]"),
    ((-1.0, 1.0), "must start at 0 or above for us noise", r"Use e\.g\. \[0, 255\]"),
    ((0.0, 1000.0), "must end at 255 or below for us noise", r"Use \[0, 255\]")])
def test_config_refuses_a_bad_range_with_the_fix(hu_file, bounds, rule, fix):
    with pytest.raises(ValidationError, match=rf"data.rescale_to.*{rule}.*{fix}"):
        _config(hu_file, rescale_to=bounds)


def test_config_refuses_it_for_ct_noise(hu_file):
    with pytest.raises(ValidationError, match="data.rescale_to must not be set for ct noise.*Remove it"):
        TrainConfig.model_validate({
            "name": "ct", "model": {"name": "slab25d"}, "data": {"train": [str(hu_file)], "rescale_to": (0, 255)},
            "noise": {"modality": "ct", "level_range": (0.25, 0.25)}})


def test_config_refuses_both_intensity_maps(hu_file):
    with pytest.raises(ValidationError, match="data.rescale_to cannot be combined with data.shift_to_nonnegative"
                                              ".*Keep one"):
        _config(hu_file, rescale_to=(0.0, 255.0), shift_to_nonnegative=True)


def test_speckle_training_reads_hu_anatomy_mapped_onto_the_display_range(hu_file, caplog):
    caplog.set_level("INFO")
    sampler = PatchSampler(_config(hu_file, rescale_to=(0.0, 255.0)), torch.Generator().manual_seed(0))
    clean = sampler.clean[0]
    assert float(clean.min()) == 0.0 and float(clean.max()) == 255.0
    assert float(clean[0, 16, 16]) == pytest.approx(1040.0 * 255.0 / 2000.0, rel=1e-5)  # soft tissue
    assert "mapped from [-1000, 1000]" in caplog.text
    sampler.refresh(0)
    batch = sampler.batch(0)
    assert torch.isfinite(batch.noisy).all() and not torch.equal(batch.noisy, batch.clean)


def test_without_it_speckle_training_refuses_values_above_255_with_the_fix(tmp_path):
    image = np.zeros((4, 32, 32), np.float32)
    image[:, 8:24, 8:24] = 800.0  # non-negative, but no B-mode value
    sitk.WriteImage(sitk.GetImageFromArray(image), str(tmp_path / "mr.nrrd"))
    with pytest.raises(ConfigError, match=r"mr\.nrrd.*must lie in \[0, 255\].*maximum 800.*rescale_to"):
        PatchSampler(_config(tmp_path / "mr.nrrd"), torch.Generator().manual_seed(0))


def test_validation_volumes_are_mapped_like_training_ones(hu_file, tmp_path):
    from MedDenoiseLib.training.validation import ValidationSet

    other = tmp_path / "other_patient.nrrd"
    sitk.WriteImage(sitk.ReadImage(str(hu_file)), str(other))
    config = _config(hu_file, rescale_to=(0.0, 255.0), validation=[str(other)])
    validation = ValidationSet(config)  # speckle would refuse HU
    assert len(validation) > 0


def test_calibration_reads_the_cards_map(hu_file):
    card = {"training": {"config": {"data": {"train": [str(hu_file)], "rescale_to": [0.0, 255.0]}}}}
    assert trained_intensity_map(card) == {"shift": False, "rescale": (0.0, 255.0)}
    assert trained_intensity_map({}) == {"shift": False, "rescale": None}
    (_, crop, _), = crop_cases([str(hu_file)], (2, 16, 16), **trained_intensity_map(card))
    # the training map, not a clip: air 0, soft tissue 1040 * 255 / 2000, bone 255
    assert np.isclose(crop[..., None], [0.0, 1040.0 * 255.0 / 2000.0, 255.0]).any(axis=-1).all()
    assert np.isclose(crop, 1040.0 * 255.0 / 2000.0).any()
