"""The edge term's width: the gradient magnitude spread in-plane, its likelihood-chosen width, the card entry that
records it and the std that applies it (hand-computed cases)."""

from __future__ import annotations

import numpy as np
import pytest

from MedDenoiseLib.errors import ConfigError
from MedDenoiseLib.uncertainty_calibration import (CARD_KEY, EDGE_UNITS, EDGE_WIDTH_UNITS, EDGE_WIDTHS, FLOOR_UNITS,
                                                  StdCalibration, edge_strength, fit_edge_width, profile_nll,
                                                  shown_std, std_calibration_for)


def test_spreading_keeps_a_ramp_and_the_mass_of_a_step_and_never_crosses_slices():
    zz, yy, xx = np.mgrid[0:3, 0:24, 0:25].astype(np.float32)
    np.testing.assert_allclose(edge_strength(3.0 * xx, 1.5)[:, 8:-8, 8:-8], 3.0, rtol=1e-5)
    step = (xx >= 12).astype(np.float32)  # Sobel: 1/2 at x = 11 and 12, 0 elsewhere
    sharp, spread = edge_strength(step)[1, 12], edge_strength(step, 2.0)[1, 12]
    assert sharp.sum() == pytest.approx(1.0) and spread.sum() == pytest.approx(1.0, rel=1e-5)
    assert spread.max() < 0.25 and spread[11] == pytest.approx(spread[12]) and spread[5] > 0 == sharp[5]
    np.testing.assert_array_equal(edge_strength(10.0 * zz, 3.0), 0.0)
    np.testing.assert_array_equal(edge_strength(step, 0.0), edge_strength(step))
    assert edge_strength(step, 1.0).dtype == np.float32


@pytest.mark.parametrize("width", [-1.0, float("nan"), "wide"])
def test_a_bad_width_is_refused_naming_it(width):
    with pytest.raises(ConfigError, match="width"):
        edge_strength(np.ones((4, 5)), width)


def test_profile_nll_ignores_a_common_factor_and_prefers_the_true_shape():
    rng = np.random.default_rng(1)
    std = rng.uniform(0.5, 3.0, 20_000)
    error = rng.normal(size=std.size) * std
    assert profile_nll(error, 7.0 * std) == pytest.approx(profile_nll(error, std))
    assert profile_nll(error, std) < profile_nll(error, np.ones_like(std))
    assert profile_nll(error, std) < profile_nll(error, std ** 2)
    assert profile_nll(np.array([1.0, 2.0, 5.0]), np.array([1.0, 2.0, 0.0])) == pytest.approx(np.log(4.0) / 2)
    with pytest.raises(ConfigError, match="std"):
        profile_nll(np.ones(2), np.zeros(2))


def test_the_width_the_errors_were_drawn_with_is_found():
    rng = np.random.default_rng(2)
    yy, xx = np.mgrid[0:64, 0:64]
    image = (100.0 * ((yy - 32) ** 2 + (xx - 32) ** 2 < 300) + 40.0 * (xx > 40)).astype(np.float32)[None]
    gradients = [edge_strength(image, w).ravel() for w in EDGE_WIDTHS]
    floor = np.ones(image.size)
    true = np.hypot(2.0, 0.3 * gradients[EDGE_WIDTHS.index(1.5)])
    error = rng.normal(size=image.size) * true
    weights, width = fit_edge_width(error, [floor], gradients)
    assert width == 1.5 and weights[1] / weights[0] == pytest.approx(0.15, rel=0.2)
    flat_error = rng.normal(size=image.size) * 2.0  # errors that ignore the edges: no edge term, width 0
    weights, width = fit_edge_width(flat_error, [floor], gradients)
    assert width == 0.0 or weights[1] / weights[0] < 0.01
    with pytest.raises(ConfigError, match="one map per width"):
        fit_edge_width(error, [floor], gradients[:2])


def _card(**extra) -> dict:
    return {CARD_KEY: {"scales": {"tta": {"8": 1.3}}, "floors": {"tta": {"8": 0.2}}, "edges": {"tta": {"8": 0.35}},
                       "target": 0.9, "floor_units": FLOOR_UNITS, "edge_units": EDGE_UNITS, **extra}}


def test_the_card_width_reaches_the_shown_std():
    calibration = std_calibration_for(_card(edge_widths={"tta": {"8": 1.5}}, edge_width_units=EDGE_WIDTH_UNITS), 8)
    assert calibration.edge_width == 1.5 and "spread over 1.5 voxel" in calibration.meaning
    assert std_calibration_for(_card(), 8).edge_width == 0.0  # cards from before widths existed
    denoised = (np.mgrid[0:2, 0:16, 0:16][2] >= 8).astype(np.float32) * 10.0
    std = shown_std(np.zeros_like(denoised), calibration, noise_sigma=1.0, denoised=denoised)
    expected = np.hypot(1.3 * 0.0 + 0.2, 0.35 * edge_strength(denoised, 1.5))
    np.testing.assert_allclose(std, expected, rtol=1e-6)
    assert std[0, 8, 4] > 0.2 * (1 + 1e-3)  # three voxels off the edge: raised by the spread edge term alone


def test_widths_in_another_unit_are_refused_with_the_fix():
    card = _card(edge_widths={"tta": {"8": 1.5}}, edge_width_units="mm")
    with pytest.raises(ConfigError, match="edge_width_units.*meddenoise calibrate"):
        std_calibration_for(card, 8)


def test_a_width_without_an_edge_term_is_not_applied():
    card = _card(edge_widths={"tta": {"8": 2.0}}, edge_width_units=EDGE_WIDTH_UNITS)
    card[CARD_KEY]["edges"]["tta"]["8"] = 0.0
    calibration = std_calibration_for(card, 8)
    assert (calibration.edge, calibration.edge_width) == (0.0, 0.0) and "spread over" not in calibration.meaning
    assert isinstance(calibration, StdCalibration)


def test_a_calibration_fitted_with_other_tta_views_is_not_applied_beyond_the_shared_four(caplog):
    old = _card()  # before view sets: fitted with the flips
    assert std_calibration_for(old, 8, views="flips").scale == 1.3
    raw = std_calibration_for(old, 8, views="in-plane")
    assert (raw.scale, raw.floor, raw.edge) == (1.0, 0.0, 0.0)
    assert "calibrated with the flips views, this run used in-plane" in raw.meaning and "re-run" in raw.meaning
    assert "fitted with the ['flips'] TTA views" in caplog.text
    old[CARD_KEY]["scales"]["tta"]["4"] = 1.1
    assert std_calibration_for(old, 4, views="in-plane").scale == 1.1  # TTA 4: the same views in both sets
    new = _card(tta_views=["in-plane"])
    assert std_calibration_for(new, 8, views="in-plane").scale == 1.3
    assert std_calibration_for(new, 8, views="flips").scale == 1.0
    assert std_calibration_for(new, 8).scale == 1.3  # no view set given: the card's fit


def test_widths_are_compared_on_the_voxels_every_width_covers():
    rng = np.random.default_rng(3)
    image = np.zeros((1, 32, 32), np.float32)
    image[:, :, 16:] = 50.0
    gradients = [edge_strength(image, w).ravel() for w in (0.0, 2.0)]
    error = rng.normal(size=image.size) * (0.05 + 0.3 * gradients[1])
    spread = np.zeros(image.size)  # no spread and no floor: the sharp map leaves most voxels at std 0
    weights, width = fit_edge_width(error, [spread], gradients, widths=(0.0, 2.0))
    assert width == 2.0 and weights[1] > 0
