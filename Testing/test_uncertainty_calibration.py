"""Sigma scaling of the shown std: hand-computed fits, card lookup, and the fitted scale applied by the pipeline."""

from __future__ import annotations

import json

import numpy as np
import pytest

from MedDenoiseLib.errors import ConfigError
from MedDenoiseLib.io import write_volume
from MedDenoiseLib.models.card import load_model
from MedDenoiseLib.pipeline import InferenceOptions, denoise_volume
from MedDenoiseLib.testing import write_tiny_models_root
from MedDenoiseLib.uncertainty_calibration import CARD_KEY, coverage, fit_std_scale, std_scale_for
from MedDenoiseLib.volume import Volume


def test_coverage_counts_errors_within_two_std():
    assert coverage(np.array([0.5, 1.0, 2.5, -3.0]), np.ones(4)) == 0.5


def test_fit_is_the_smallest_scale_reaching_the_target():
    error, std = np.array([1.0, 2.0, 3.0, 4.0, 8.0]), np.array([1.0, 1.0, 1.0, 1.0, 2.0])
    scale = fit_std_scale(error, std, target=0.8)
    assert scale == pytest.approx(2.0)  # ratios 1, 2, 3, 4, 4: the 4th smallest is 4 = 2 x 2
    assert coverage(error, scale * std) >= 0.8
    assert coverage(error, 0.99 * scale * std) < 0.8


def test_fit_leaves_out_zero_std_and_refuses_all_zero():
    assert fit_std_scale(np.array([5.0, 1.0]), np.array([0.0, 1.0]), target=0.5) == pytest.approx(0.5)
    with pytest.raises(ConfigError, match="std"):
        fit_std_scale(np.ones(3), np.zeros(3))


@pytest.mark.parametrize("target", [0.0, 1.0, 1.5])
def test_fit_refuses_targets_outside_the_open_interval(target):
    with pytest.raises(ConfigError, match="target"):
        fit_std_scale(np.ones(3), np.ones(3), target=target)


def test_card_lookup_per_source_and_tta():
    card = {CARD_KEY: {"scales": {"tta": {"8": 3.5}}, "target": 0.9}}
    assert std_scale_for(card, 8)[0] == 3.5
    scale, text = std_scale_for(card, 4)
    assert scale == 1.0 and "no calibration" in text
    assert std_scale_for({}, 8)[0] == 1.0


def test_calibrate_writes_the_card_and_the_pipeline_applies_it(tmp_path):
    from MedDenoiseLib.training.calibrate import calibrate_model

    rng = np.random.default_rng(0)
    zz, yy, xx = np.mgrid[0:6, 0:40, 0:40]
    clean = (100 + 60 * ((yy - 20) ** 2 + (xx - 20) ** 2 < 150) + 5 * rng.normal(size=zz.shape)).astype(np.float32)
    image = tmp_path / "train.nrrd"
    write_volume(Volume(clean), image)
    root = write_tiny_models_root(tmp_path / "models")
    weights_before = (root / "mr_tiny" / "model.safetensors").read_bytes()

    entry = calibrate_model(root / "mr_tiny", levels=[6.0], data=[str(image)], tta_counts=(2, 8), crop=(6, 32, 32))
    card = json.loads((root / "mr_tiny" / "card.json").read_text())
    assert card[CARD_KEY] == json.loads(json.dumps(entry))
    scale = entry["scales"]["tta"]["8"]
    assert scale > 0 and set(entry["scales"]["tta"]) == {"2", "8"}
    assert (root / "mr_tiny" / "model.safetensors").read_bytes() == weights_before

    loaded = load_model(root / "mr_tiny")
    noisy = Volume(clean + rng.normal(scale=6.0, size=clean.shape).astype(np.float32))
    calibrated = denoise_volume(noisy, loaded, modality="mr", options=InferenceOptions(tta=8, device="cpu"))
    raw = denoise_volume(noisy, loaded.network, modality="mr", options=InferenceOptions(tta=8, device="cpu"))
    assert calibrated.report["std_scale"] == pytest.approx(scale)
    np.testing.assert_allclose(calibrated.uncertainty.array, scale * raw.uncertainty.array, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(calibrated.denoised.array, raw.denoised.array)
