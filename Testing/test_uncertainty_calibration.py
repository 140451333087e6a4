"""Sigma scaling of the shown std, with and without an error floor and an edge term: hand-computed fits, card
lookup, and the fitted calibration applied by the pipeline."""

from __future__ import annotations

import json

import numpy as np
import pytest

from MedDenoiseLib.errors import ConfigError, InputError
from MedDenoiseLib.io import read_volume, write_volume
from MedDenoiseLib.models.card import load_model
from MedDenoiseLib.pipeline import InferenceOptions, denoise_volume
from MedDenoiseLib.testing import write_tiny_models_root
from MedDenoiseLib.uncertainty_calibration import (CARD_KEY, EDGE_UNITS, EDGE_WIDTH_UNITS, EDGE_WIDTHS, FLOOR_UNITS,
                                                  StdCalibration, coverage,
                                                  edge_strength, fit_std_floor, fit_std_scale, fit_std_terms,
                                                  shown_std, std_calibration_for)
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
    missing = std_calibration_for(card, 4)
    assert (missing.scale, missing.floor, missing.edge) == (1.0, 0.0, 0.0) and "no calibration" in missing.meaning
    assert std_calibration_for({}, 8)[:2] == (1.0, 0.0)
    floored = {CARD_KEY: {"scales": {"tta": {"8": 1.3}}, "floors": {"tta": {"8": 0.02}}, "target": 0.9,
                          "floor_units": FLOOR_UNITS}}
    calibration = std_calibration_for(floored, 8)
    assert (calibration.scale, calibration.floor) == (1.3, 0.02)
    assert "with floor 0.02 x noise std" in calibration.meaning
    assert std_calibration_for(floored, 8, mc_dropout=2)[:2] == (1.0, 0.0)
    assert calibration.edge == 0.0 and "edge" not in calibration.meaning  # cards from before edge terms
    edged = {CARD_KEY: {**floored[CARD_KEY], "edges": {"tta": {"8": 0.35}}, "edge_units": EDGE_UNITS}}
    calibration = std_calibration_for(edged, 8)
    assert (calibration.scale, calibration.floor, calibration.edge) == (1.3, 0.02, 0.35)
    assert "and edge term 0.35 voxel x gradient" in calibration.meaning
    assert std_calibration_for(edged, 8, mc_dropout=2).edge == 0.0


def test_edge_terms_in_another_unit_are_refused_with_the_fix():
    card = {CARD_KEY: {"scales": {"tta": {"8": 1.3}}, "edges": {"tta": {"8": 0.3}}, "edge_units": "mm"}}
    with pytest.raises(ConfigError, match="edge_units.*meddenoise calibrate"):
        std_calibration_for(card, 8)


def test_edge_strength_is_the_in_plane_slope_per_voxel():
    zz, yy, xx = np.mgrid[0:3, 0:6, 0:7].astype(np.float32)
    assert np.allclose(edge_strength(3.0 * xx)[:, :, 1:-1], 3.0)  # slope 3 along x; the border is one-sided
    assert np.allclose(edge_strength(4.0 * yy)[:, 1:-1, :], 4.0)
    assert np.allclose(edge_strength(3.0 * xx + 4.0 * yy)[:, 1:-1, 1:-1], 5.0)  # |(3, 4)|
    np.testing.assert_array_equal(edge_strength(10.0 * zz), 0.0)  # never across slices
    step = (xx >= 3).astype(np.float32)  # a unit step between x = 2 and 3: central differences give 1/2 on both
    np.testing.assert_allclose(edge_strength(step)[1, 2], [0, 0, 0.5, 0.5, 0, 0, 0])
    assert edge_strength(np.ones((4, 5))).shape == (4, 5) and edge_strength(xx).dtype == np.float32
    with pytest.raises(ConfigError, match="image"):
        edge_strength(np.arange(4.0))


def test_shown_std_adds_the_terms_in_quadrature():
    raw, denoised = np.full((1, 3, 5), 2.0), np.tile(np.arange(5.0) * 4.0, (1, 3, 1))  # gradient 4 inside
    calibration = StdCalibration(scale=1.5, floor=0.5, meaning="", edge=0.25)
    std = shown_std(raw, calibration, noise_sigma=2.0, denoised=denoised)
    assert std.dtype == np.float32
    np.testing.assert_allclose(std[0, 1, 1:-1], np.sqrt(3.0 ** 2 + 1.0 ** 2 + 1.0 ** 2), rtol=1e-6)
    without_edge = shown_std(raw, calibration._replace(edge=0.0), noise_sigma=2.0, denoised=denoised)
    np.testing.assert_allclose(without_edge, np.hypot(3.0, 1.0), rtol=1e-6)


def _term_data(weights: tuple[float, float, float], n: int = 200_000, seed: int = 0):
    """Errors drawn as N(0, (w0 * spread)^2 + w1^2 + (w2 * gradient)^2), spread and gradient independent."""
    rng = np.random.default_rng(seed)
    spread, gradient = rng.uniform(0.0, 1.0, n), rng.exponential(1.0, n)
    std = np.sqrt((weights[0] * spread) ** 2 + weights[1] ** 2 + (weights[2] * gradient) ** 2)
    return rng.normal(size=n) * std, spread, gradient


def test_term_fit_recovers_all_ratios_and_reaches_the_target():
    error, spread, gradient = _term_data((2.0, 0.5, 0.8))
    scale, floor, edge = fit_std_terms(error, [spread, np.ones_like(spread), gradient], target=0.9)
    assert floor / scale == pytest.approx(0.25, rel=0.05) and edge / scale == pytest.approx(0.4, rel=0.05)
    shown = np.sqrt((scale * spread) ** 2 + floor ** 2 + (edge * gradient) ** 2)
    assert coverage(error, shown) == pytest.approx(0.9, abs=1e-4)


def test_edge_term_vanishes_when_the_errors_do_not_follow_the_gradient():
    error, spread, gradient = _term_data((2.0, 0.5, 0.0))
    scale, floor, edge = fit_std_terms(error, [spread, np.ones_like(spread), gradient], target=0.9)
    assert edge / scale < 0.02 and floor / scale == pytest.approx(0.25, rel=0.05)


def test_voxels_no_term_covers_do_not_drag_the_ratios_down():
    error, spread, gradient = _term_data((2.0, 0.0, 0.8), n=20_000)
    before = fit_std_terms(error, [spread, gradient], target=0.9)
    spread[:5], gradient[:5] = 0.0, 0.0  # 5 voxels with no std at all (error kept)
    after = fit_std_terms(error, [spread, gradient], target=0.9)
    assert after[1] / after[0] == pytest.approx(before[1] / before[0], rel=0.02) and before[1] / before[0] > 0.3


def test_term_fit_is_scale_free_and_refuses_non_finite_values():
    error, spread, gradient = _term_data((2.0, 0.5, 0.8), n=20_000)
    ones = np.ones_like(spread)
    plain = fit_std_terms(error, [spread, ones, gradient])
    huge = fit_std_terms(error * 1e150, [spread * 1e150, ones, gradient * 1e-150])  # squares would overflow
    assert huge[0] == pytest.approx(plain[0], rel=1e-6)
    assert huge[1] == pytest.approx(plain[1] * 1e150, rel=1e-4) and huge[2] == pytest.approx(plain[2] * 1e300, rel=1e-4)
    with pytest.raises(ConfigError, match="error must be finite.*1 NaN/Inf"):
        fit_std_terms(np.r_[error[:-1], np.nan], [spread, ones])
    with pytest.raises(ConfigError, match=r"terms\[1\] must be finite"):
        fit_std_terms(error, [spread, np.r_[ones[:-1], np.inf]])


def test_term_fit_edge_cases_are_hand_computed():
    # with no spread, the other terms are fitted alone: a floor of 1 covers errors of 2 at 2 std
    assert fit_std_terms(np.array([2.0, -2.0]), [np.zeros(2), np.ones(2), np.zeros(2)], target=0.5) == (1.0, 1.0, 0.0)
    assert fit_std_terms(np.zeros(3), [np.ones(3), np.ones(3), np.ones(3)]) == (1.0, 0.0, 0.0)
    # a term that is 0 everywhere gets weight 0 and changes nothing else
    error, spread = np.array([1.0, -1.0, 3.0, -1.0]), np.ones(4)
    assert fit_std_terms(error, [spread, np.zeros(4)], target=0.75) == (fit_std_scale(error, spread, target=0.75),
                                                                        0.0)
    with pytest.raises(ConfigError, match="std"):
        fit_std_terms(np.ones(3), [np.zeros(3)])
    with pytest.raises(ConfigError, match="terms"):
        fit_std_terms(np.ones(3), [])


def load_volume_array(path) -> np.ndarray:
    return read_volume(path).array


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
    scale, floor, edge = (entry[key]["tta"]["8"] for key in ("scales", "floors", "edges"))
    assert scale > 0 and floor >= 0 and edge >= 0
    assert set(entry["scales"]["tta"]) == set(entry["floors"]["tta"]) == set(entry["edges"]["tta"]) == {"2", "8"}
    assert "error floor and an edge term" in entry["method"] and entry["crop"] == [6, 32, 32]
    assert entry["edge_units"] == EDGE_UNITS and entry["edge_width_units"] == EDGE_WIDTH_UNITS
    width = entry["edge_widths"]["tta"]["8"]
    assert width in EDGE_WIDTHS and set(entry["edge_widths"]["tta"]) == {"2", "8"}
    assert entry["tta_views"] == ["in-plane"]  # a 2.5D model on square pixels
    ranking = entry["spearman"]["tta/8"]
    assert set(ranking) == {"raw", "shown"} and all(-1.0 <= v <= 1.0 for v in ranking.values())
    assert (model_dir / "model.safetensors").read_bytes() == weights_before

    loaded = load_model(model_dir)
    calibrated = denoise_volume(noisy, loaded, modality="mr", options=InferenceOptions(tta=8, device="cpu"))
    raw = denoise_volume(noisy, loaded.network, modality="mr", options=InferenceOptions(tta=8, device="cpu"))
    unit = raw.noise_sigma  # the floor is a fraction of the volume's estimated noise std
    assert calibrated.noise_sigma == pytest.approx(unit) and unit > 0
    assert calibrated.report["std_scale"] == pytest.approx(scale)
    assert calibrated.report["std_floor"] == pytest.approx(floor * unit) and calibrated.report["std_edge"] == edge
    assert calibrated.report["std_edge_width"] == (width if edge > 0 else 0.0)
    expected = np.sqrt((scale * raw.uncertainty.array) ** 2 + (floor * unit) ** 2
                       + (edge * edge_strength(raw.denoised.array, width)) ** 2)
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
                            floor=False, edge=False)
    assert "floors" not in entry and "edges" not in entry and "edge_widths" not in entry
    assert entry["method"] == "sigma scaling (Laves et al., MIDL 2020)"
    ranking = entry["spearman"]["tta/8"]
    assert ranking["raw"] == ranking["shown"] is not None  # scaling alone keeps the ranking
    loaded = load_model(model_dir)
    calibrated = denoise_volume(noisy, loaded, modality="mr", options=InferenceOptions(tta=8, device="cpu"))
    raw = denoise_volume(noisy, loaded.network, modality="mr", options=InferenceOptions(tta=8, device="cpu"))
    assert calibrated.report["std_floor"] == 0.0
    np.testing.assert_allclose(calibrated.uncertainty.array, entry["scales"]["tta"]["8"] * raw.uncertainty.array,
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("flags, has_floor, has_edge", [([], True, True), (["--no-floor"], False, True),
                                                      (["--no-edge"], True, False),
                                                      (["--no-floor", "--no-edge"], False, False)])
def test_cli_fits_the_floor_and_edge_term_unless_told_not_to(tmp_path, flags, has_floor, has_edge):
    from MedDenoiseLib.cli.main import main

    image, _, model_dir = _calibration_case(tmp_path)
    code = main(["calibrate", "--model", str(model_dir), "--levels", "6", "--data", str(image), "--tta", "2",
                 "--crop", "6", "32", "32", *flags])
    assert code == 0
    entry = json.loads((model_dir / "card.json").read_text())[CARD_KEY]
    assert ("floors" in entry, "edges" in entry) == (has_floor, has_edge)


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


def test_pipeline_adds_the_edge_term_of_the_card(tmp_path):
    _, noisy, model_dir = _calibration_case(tmp_path)
    card = json.loads((model_dir / "card.json").read_text())
    card[CARD_KEY] = {"scales": {"tta": {"2": 1.5}}, "floors": {"tta": {"2": 0.4}}, "edges": {"tta": {"2": 0.3}},
                      "target": 0.9, "floor_units": FLOOR_UNITS, "edge_units": EDGE_UNITS}
    (model_dir / "card.json").write_text(json.dumps(card))
    loaded, options = load_model(model_dir), InferenceOptions(tta=2, device="cpu")
    shown = denoise_volume(noisy, loaded, modality="mr", options=options)
    raw = denoise_volume(noisy, loaded.network, modality="mr", options=options)
    assert shown.report["std_edge"] == 0.3 and "edge term 0.3" in shown.report["std_meaning"]
    expected = np.sqrt((1.5 * raw.uncertainty.array) ** 2 + (0.4 * raw.noise_sigma) ** 2
                       + (0.3 * edge_strength(raw.denoised.array)) ** 2)
    np.testing.assert_allclose(shown.uncertainty.array, expected, rtol=1e-5, atol=1e-5)
    assert float(np.ptp(shown.uncertainty.array)) > float(np.ptp(np.hypot(1.5 * raw.uncertainty.array,
                                                                          0.4 * raw.noise_sigma)))


def test_calibration_shifts_images_the_model_was_trained_shifted_on(tmp_path):
    from MedDenoiseLib.training.calibrate import calibrate_model

    image, _, model_dir = _calibration_case(tmp_path)
    negative = tmp_path / "hu.nrrd"
    write_volume(Volume(load_volume_array(image) - 1000.0), negative)
    card = json.loads((model_dir / "card.json").read_text())
    card["training"] = {"config": {"data": {"train": [str(negative)], "shift_to_nonnegative": True}}}
    (model_dir / "card.json").write_text(json.dumps(card))
    entry = calibrate_model(model_dir, levels=[6.0], tta_counts=(2,), crop=(6, 32, 32))
    assert entry["data"] == [str(negative)] and entry["scales"]["tta"]["2"] > 0
    card["training"]["config"]["data"]["shift_to_nonnegative"] = False
    (model_dir / "card.json").write_text(json.dumps(card))
    with pytest.raises(InputError, match="non-negative"):
        calibrate_model(model_dir, levels=[6.0], tta_counts=(2,), crop=(6, 32, 32))


def test_floors_in_another_unit_are_refused_with_the_fix():
    card = {CARD_KEY: {"scales": {"tta": {"8": 1.3}}, "floors": {"tta": {"8": 0.01}}, "target": 0.9,
                       "floor_units": "normalised intensity (times the input normalisation's scale)"}}
    with pytest.raises(ConfigError, match="floor_units.*meddenoise calibrate"):
        std_calibration_for(card, 8)
