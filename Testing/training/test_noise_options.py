"""``noise.options``: fixed parameters of the modality's noise model (e.g. an X-ray detector with more quanta)
for the training noise, the references' own noise and the validation noise alike; ``noise.level_draw``."""

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from pydantic import ValidationError

from MedDenoiseLib.training.config import TrainConfig
from MedDenoiseLib.training.data import PatchSampler, training_noise
from MedDenoiseLib.training.validation import ValidationSet

FLAT = 100.0  # detector value of every pixel, which is also the image maximum (the photon reference)


@pytest.fixture()
def flat_file(tmp_path):
    sitk.WriteImage(sitk.GetImageFromArray(np.full((1, 64, 64), FLAT, np.float32)), str(tmp_path / "flat.nrrd"))
    return tmp_path / "flat.nrrd"


def _config(path, options=None, **noise):
    return TrainConfig.model_validate({
        "name": "options", "seed": 3, "model": {"name": "slab25d", "context": 0, "features": 8, "depth": 3,
                                                  "norm": "none"},
        "data": {"train": [str(path)], "patch_size": (1, 16, 16), "loss_margin": 0, "batch_size": 2},
        "noise": {"modality": "xr", "level_range": (1.0, 1.0), **noise, **({"options": options} if options else {})},
        "optim": {"steps": 2, "warmup_steps": 1}})


def _variance(config, image):
    noisy, record = training_noise(config, (1.0, 1.0))(image, generator=torch.Generator().manual_seed(0))
    return float(noisy.var()), record


def test_default_is_no_options(flat_file):
    assert _config(flat_file).noise.options == {}


def test_more_quanta_scale_the_quantum_variance_down(flat_file):
    # gain a = v_ref / (N d) = 100 / N at dose 1 and Var = a x = 100 * 100 / N (electronic noise off):
    # 1.0 with the default N = 1e4, 0.1 with N = 1e5
    image = torch.full((128, 128), FLAT)
    default, _ = _variance(_config(flat_file, {"electronic_sigma": 0.0}), image)
    more, record = _variance(_config(flat_file, {"electronic_sigma": 0.0, "photons_at_max": 1.0e5}), image)
    assert default == pytest.approx(1.0, rel=0.1)
    assert more == pytest.approx(0.1, rel=0.1)
    assert record["params"]["photons_at_max"] == 1.0e5  # what was drawn and applied is recorded


def test_the_training_sampler_and_the_reference_noise_use_them(flat_file):
    config = _config(flat_file, {"photons_at_max": 1.0e5}, reference_level_range=(0.5, 0.5))
    sampler = PatchSampler(config, torch.Generator().manual_seed(0))
    assert sampler.noise.photons_at_max == 1.0e5
    assert sampler.reference_noise.photons_at_max == 1.0e5


def test_validation_noise_uses_them(flat_file, tmp_path):
    other = tmp_path / "other.nrrd"
    sitk.WriteImage(sitk.ReadImage(str(flat_file)) + 20.0, str(other))  # 120 everywhere: a different patient
    scores = [ValidationSet(_with_validation(flat_file, other, options)).baseline["psnr"]
              for options in ({"electronic_sigma": 0.0}, {"electronic_sigma": 0.0, "photons_at_max": 1.0e5})]
    assert scores[1] - scores[0] == pytest.approx(10.0, abs=1.0)  # ten times less variance: +10 dB


def _with_validation(path, validation_path, options):
    config = _config(path, options)
    return config.model_copy(update={"data": config.data.model_copy(update={"validation": [str(validation_path)]})})


@pytest.mark.parametrize(("options", "message"), [
    ({"photons": 1.0e5}, r"noise\.options must name parameters of the xr noise model.*photons.*photons_at_max"),
    ({"photons_at_max": -1.0}, r"noise\.options must be valid for the xr noise model.*photons_at_max.*-1"),
])
def test_config_refuses_bad_options_naming_them(flat_file, options, message):
    with pytest.raises(ValidationError, match=message):
        _config(flat_file, options)


def test_level_draw_log_uniform_reaches_the_training_sampler_only(flat_file):
    from MedDenoiseLib.noise.modality import LogUniformLevelNoise

    config = _config(flat_file, {"photons_at_max": 1.0e5}, level_draw="log_uniform", level_range=(0.01, 1.0))
    sampler = PatchSampler(config, torch.Generator().manual_seed(0))
    assert isinstance(sampler.noise, LogUniformLevelNoise) and sampler.noise.photons_at_max == 1.0e5
    assert not isinstance(training_noise(config, (0.5, 0.5)), LogUniformLevelNoise)  # validation's fixed levels


def test_level_draw_log_uniform_is_refused_for_a_range_from_zero(flat_file):
    with pytest.raises(ValidationError, match=r"noise\.level_draw log_uniform needs noise\.level_range above 0"):
        TrainConfig.model_validate({**_config(flat_file).model_dump(), "noise": {
            "modality": "mr", "level_range": (0.0, 15.0), "level_draw": "log_uniform"}})


def test_yaml_numbers_stay_numbers_and_integers_stay_integers(flat_file):
    raw = _config(flat_file).model_dump(mode="json")
    raw["noise"]["options"] = {"photons_at_max": "1.0e5"}  # what YAML 1.1 makes of an unsigned exponent
    config = TrainConfig.model_validate(raw)
    assert config.noise.options["photons_at_max"] == 1.0e5
    raw["noise"] = {"modality": "mr", "level_range": [1.0, 15.0], "options": {"n_coils": 8}}
    assert TrainConfig.model_validate(raw).noise.options == {"n_coils": 8}  # an integer stays one


def test_a_bad_level_range_is_not_blamed_on_the_options(flat_file):
    with pytest.raises(ValidationError, match=r"noise\.level_range must be valid for the xr noise model.*1\.5"):
        _config(flat_file, {"photons_at_max": 1.0e5}, level_range=(0.1, 1.5))
