"""Sigma scaling of the shown std, with and without an error floor: hand-computed fits, card lookup, and the fitted
calibration applied by the pipeline."""

from __future__ import annotations

import json

import numpy as np
import pytest

from MedDenoiseLib.errors import ConfigError
from MedDenoiseLib.io import write_volume
from MedDenoiseLib.models.card import load_model
from MedDenoiseLib.pipeline import InferenceOptions, denoise_volume
from MedDenoiseLib.testing import write_tiny_models_root
from MedDenoiseLib.uncertainty_calibration import (CARD_KEY, FLOOR_UNITS, coverage, fit_std_floor, fit_std_scale,
                                                  std_calibration_for)
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


def _floor_data(scale: float, floor: float, n: int = 200_000, seed: int = 0):
    """Errors drawn as N(0, (scale * spread)^2 + floor^2) for spreads uniform in [0, 1]."""
    rng = np.random.default_rng(seed)
    spread = rng.uniform(0.0, 1.0, n)
    return rng.normal(size=n) * np.hypot(scale * spread, floor), spread


def test_floor_fit_recovers_the_floor_to_scale_ratio_and_reaches_the_target():
    error, spread = _floor_data(scale=2.0, floor=0.5)
    scale, floor = fit_std_floor(error, spread, target=0.9)
    assert floor / scale == pytest.approx(0.25, rel=0.05)
    shown = np.hypot(scale * spread, floor)
    assert coverage(error, shown) == pytest.approx(0.9, abs=1e-4)
    # Gaussian errors at their true std are covered 95.4 % within 2 std; 90 % needs a factor 0.84 (1.645 / 1.96)
    assert scale == pytest.approx(2.0 * 1.6449 / 2.0, rel=0.03)


def test_floor_vanishes_when_the_spread_explains_the_error():
    error, spread = _floor_data(scale=3.0, floor=0.0)
    scale, floor = fit_std_floor(error, spread, target=0.9)
    assert floor / scale < 0.02


def test_floor_covers_errors_the_spread_misses_where_scaling_cannot():
    """Half the voxels have a spread of almost 0 but the same error: scaling alone must blow up to cover them."""
    error, spread = np.tile([1.0, -1.0], 50), np.tile([1.0, 1.0, 1e-3, 1e-3], 25)
    scale_only = fit_std_scale(error, spread, target=0.9)
    scale, floor = fit_std_floor(error, spread, target=0.9)
    assert scale_only == pytest.approx(500.0)  # 1 / (2 * 1e-3)
    assert coverage(error, np.hypot(scale * spread, floor)) >= 0.9 and floor < 1.0 and scale < 1.0


def test_floor_fit_edge_cases_are_hand_computed():
    assert fit_std_floor(np.zeros(4), np.ones(4)) == (1.0, 0.0)
    assert fit_std_floor(np.array([1.0, -1.0, 3.0, -1.0]), np.zeros(4), target=0.75) == (1.0, 0.5)
    with pytest.raises(ConfigError, match="target"):
        fit_std_floor(np.ones(3), np.ones(3), target=1.0)
    with pytest.raises(ConfigError, match="one shape"):
        fit_std_floor(np.ones(3), np.ones(4))


def test_card_lookup_per_source_and_tta():
    card = {CARD_KEY: {"scales": {"tta": {"8": 3.5}}, "target": 0.9}}
    assert std_calibration_for(card, 8)[:2] == (3.5, 0.0)
    scale, floor, text = std_calibration_for(card, 4)
    assert (scale, floor) == (1.0, 0.0) and "no calibration" in text
    assert std_calibration_for({}, 8)[:2] == (1.0, 0.0)
    floored = {CARD_KEY: {"scales": {"tta": {"8": 1.3}}, "floors": {"tta": {"8": 0.02}}, "target": 0.9,
                          "floor_units": FLOOR_UNITS}}
    calibration = std_calibration_for(floored, 8)
    assert (calibration.scale, calibration.floor) == (1.3, 0.02)
    assert "with floor 0.02 x noise std" in calibration.meaning
    assert std_calibration_for(floored, 8, mc_dropout=2)[:2] == (1.0, 0.0)


def _calibration_case(tmp_path):
    rng = np.random.default_rng(0)
    zz, yy, xx = np.mgrid[0:6, 0:40, 0:40]
    clean = (100 + 60 * ((yy - 20) ** 2 + (xx - 20) ** 2 < 150) + 5 * rng.normal(size=zz.shape)).astype(np.float32)
    image = tmp_path / "train.nrrd"
    write_volume(Volume(clean), image)
    noisy = Volume(clean + rng.normal(scale=6.0, size=clean.shape).astype(np.float32))
    return image, noisy, write_tiny_models_root(tmp_path / "models") / "mr_tiny"


def test_calibrate_writes_the_card_and_the_pipeline_applies_it(tmp_path):
    from MedDenoiseLib.training.calibrate import calibrate_model

    image, noisy, model_dir = _calibration_case(tmp_path)
    weights_before = (model_dir / "model.safetensors").read_bytes()

    entry = calibrate_model(model_dir, levels=[6.0], data=[str(image)], tta_counts=(2, 8), crop=(6, 32, 32))
    card = json.loads((model_dir / "card.json").read_text())
    assert card[CARD_KEY] == json.loads(json.dumps(entry))
    scale, floor = entry["scales"]["tta"]["8"], entry["floors"]["tta"]["8"]
    assert scale > 0 and floor >= 0 and set(entry["scales"]["tta"]) == set(entry["floors"]["tta"]) == {"2", "8"}
    assert "error floor" in entry["method"] and entry["crop"] == [6, 32, 32]
    assert (model_dir / "model.safetensors").read_bytes() == weights_before

    loaded = load_model(model_dir)
    calibrated = denoise_volume(noisy, loaded, modality="mr", options=InferenceOptions(tta=8, device="cpu"))
    raw = denoise_volume(noisy, loaded.network, modality="mr", options=InferenceOptions(tta=8, device="cpu"))
    unit = raw.noise_sigma  # the floor is a fraction of the volume's estimated noise std
    assert calibrated.noise_sigma == pytest.approx(unit) and unit > 0
    assert calibrated.report["std_scale"] == pytest.approx(scale)
    assert calibrated.report["std_floor"] == pytest.approx(floor * unit)
    expected = np.hypot(scale * raw.uncertainty.array, floor * unit)
    np.testing.assert_allclose(calibrated.uncertainty.array, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(calibrated.denoised.array, raw.denoised.array)


def test_recalibrating_fits_the_raw_spread_not_the_calibrated_std(tmp_path):
    from MedDenoiseLib.training.calibrate import calibrate_model

    image, _, model_dir = _calibration_case(tmp_path)
    first = calibrate_model(model_dir, levels=[6.0], data=[str(image)], tta_counts=(8,), crop=(6, 32, 32))
    second = calibrate_model(model_dir, levels=[6.0], data=[str(image)], tta_counts=(8,), crop=(6, 32, 32))
    assert second == first


def test_calibrate_without_floor_is_pure_sigma_scaling(tmp_path):
    from MedDenoiseLib.training.calibrate import calibrate_model

    image, noisy, model_dir = _calibration_case(tmp_path)
    entry = calibrate_model(model_dir, levels=[6.0], data=[str(image)], tta_counts=(8,), crop=(6, 32, 32),
                            floor=False)
    assert "floors" not in entry and "floor" not in entry["method"]
    loaded = load_model(model_dir)
    calibrated = denoise_volume(noisy, loaded, modality="mr", options=InferenceOptions(tta=8, device="cpu"))
    raw = denoise_volume(noisy, loaded.network, modality="mr", options=InferenceOptions(tta=8, device="cpu"))
    assert calibrated.report["std_floor"] == 0.0
    np.testing.assert_allclose(calibrated.uncertainty.array, entry["scales"]["tta"]["8"] * raw.uncertainty.array,
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("flags, has_floor", [([], True), (["--no-floor"], False)])
def test_cli_fits_the_floor_unless_told_not_to(tmp_path, flags, has_floor):
    from MedDenoiseLib.cli.main import main

    image, _, model_dir = _calibration_case(tmp_path)
    code = main(["calibrate", "--model", str(model_dir), "--levels", "6", "--data", str(image), "--tta", "2",
                 "--crop", "6", "32", "32", *flags])
    assert code == 0
    assert ("floors" in json.loads((model_dir / "card.json").read_text())[CARD_KEY]) == has_floor


def test_floored_std_follows_the_intensity_scale_of_the_scan(tmp_path):
    _, noisy, model_dir = _calibration_case(tmp_path)
    card = json.loads((model_dir / "card.json").read_text())
    card[CARD_KEY] = {"scales": {"tta": {"2": 1.5}}, "floors": {"tta": {"2": 0.4}}, "target": 0.9,
                      "floor_units": FLOOR_UNITS}
    (model_dir / "card.json").write_text(json.dumps(card))
    loaded, options = load_model(model_dir), InferenceOptions(tta=2, device="cpu")
    plain = denoise_volume(noisy, loaded, modality="mr", options=options)
    scaled = denoise_volume(Volume(noisy.array * 10.0), loaded, modality="mr", options=options)
    assert plain.report["std_floor"] == pytest.approx(0.4 * plain.noise_sigma)
    np.testing.assert_allclose(scaled.uncertainty.array, 10.0 * plain.uncertainty.array, rtol=1e-3, atol=1e-3)
    assert plain.uncertainty.array.min() >= 0.4 * plain.noise_sigma * (1 - 1e-6)


def test_floors_in_another_unit_are_refused_with_the_fix():
    card = {CARD_KEY: {"scales": {"tta": {"8": 1.3}}, "floors": {"tta": {"8": 0.01}}, "target": 0.9,
                       "floor_units": "normalised intensity (times the input normalisation's scale)"}}
    with pytest.raises(ConfigError, match="floor_units.*meddenoise calibrate"):
        std_calibration_for(card, 8)
