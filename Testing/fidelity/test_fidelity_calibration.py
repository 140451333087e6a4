"""Uncertainty calibration, hallucination check and segmentation fidelity on hand-checkable data."""

from __future__ import annotations

import math

import numpy as np
import pytest

from MedDenoiseLib.errors import ConfigError, ShapeError
from MedDenoiseLib.fidelity import edge_mask, segmentation_fidelity, structured_residual, uncertainty_calibration
from MedDenoiseLib.fidelity.calibration import empirical_error_std


class TestUncertaintyCalibration:
    def test_std_equal_to_half_the_error_covers_everything(self):
        err = np.linspace(-1.0, 1.0, 64).reshape(1, 8, 8)
        result = uncertainty_calibration(np.zeros_like(err), err, np.abs(err) / 2.0, n_bins=4)
        assert result["coverage"] == 1.0 and result["spearman"] == pytest.approx(1.0)
        assert [b["count"] for b in result["bins"]] == [16, 16, 16, 16]

    def test_zero_std_covers_only_exact_voxels(self):
        err = np.array([[0.0, 0.5, -0.5, 0.0]])
        assert uncertainty_calibration(np.zeros((1, 4)), err, np.zeros((1, 4)))["coverage"] == 0.5

    def test_gaussian_errors_with_their_std_are_calibrated(self):
        rng = np.random.default_rng(2)
        std = rng.uniform(0.5, 3.0, (4, 64, 64))
        err = rng.normal(0.0, 1.0, std.shape) * std
        result = uncertainty_calibration(np.zeros_like(std), err, std)
        n = std.size
        p = math.erf(2 / math.sqrt(2))  # P(|Z| <= 2) = 0.9545
        assert result["coverage"] == pytest.approx(p, abs=4 * math.sqrt(p * (1 - p) / n))
        assert result["spearman"] > 0.3
        for b in result["bins"]:  # reliability: RMSE ≈ mean std in each bin
            assert b["rmse"] == pytest.approx(b["std_mean"], rel=4 / math.sqrt(2 * b["count"]) + 0.02)

    def test_constant_std_has_no_rank_correlation(self):
        err = np.arange(8.0).reshape(1, 2, 4)
        assert math.isnan(uncertainty_calibration(np.zeros_like(err), err, np.ones_like(err))["spearman"])

    def test_exceptions(self):
        ones = np.ones((1, 4, 4))
        with pytest.raises(ConfigError, match="std minimum must be >= 0"):
            uncertainty_calibration(ones, ones, -ones)
        with pytest.raises(ConfigError, match="k must be in"):
            uncertainty_calibration(ones, ones, ones, k=0)
        with pytest.raises(ShapeError, match="std shape must equal"):
            uncertainty_calibration(ones, ones, ones[:, :2])

    def test_the_empirical_error_std_is_reported_on_the_same_voxels(self):
        rng = np.random.default_rng(5)
        std = rng.uniform(0.5, 3.0, (2, 64, 64))
        err = rng.normal(0.0, 1.0, std.shape) * std
        draws = [rng.normal(0.0, 1.0, std.shape) * std for _ in range(16)]  # other draws of the same error model
        empirical = empirical_error_std(np.zeros_like(std), iter(draws))
        result = uncertainty_calibration(np.zeros_like(std), err, np.ones_like(std), empirical_std=empirical)
        assert math.isnan(result["spearman"])  # a flat std ranks nothing ...
        exact = uncertainty_calibration(np.zeros_like(std), err, std)["spearman"]
        assert 0.3 < result["spearman_empirical"] <= exact + 0.02  # ... 16 draws rank almost as the true std
        assert "spearman_empirical" not in uncertainty_calibration(np.zeros_like(std), err, std)

    def test_empirical_error_std_is_the_rms_over_draws_bias_included(self):
        clean = np.full((1, 1, 3), 10.0)
        outputs = [np.array([[[13.0, 10.0, 12.0]]]), np.array([[[7.0, 10.0, 12.0]]])]
        np.testing.assert_allclose(empirical_error_std(clean, outputs), [[[3.0, 0.0, 2.0]]])  # a bias of 2 counts
        with pytest.raises(ConfigError, match="outputs must hold at least one"):
            empirical_error_std(clean, [])
        with pytest.raises(ShapeError, match=r"outputs\[1\] shape must equal"):
            empirical_error_std(clean, [clean, clean[:, :, :2]])
        with pytest.raises(ShapeError, match="empirical_std shape must equal"):
            uncertainty_calibration(clean, clean, np.ones_like(clean), empirical_std=np.ones((1, 1, 2)))


class TestStructuredResidual:
    @pytest.fixture()
    def step(self):
        img = np.zeros((2, 32, 32))
        img[:, :, 16:] = 100.0
        return img

    def test_edges_are_at_the_step(self, step):
        mask = edge_mask(step)
        assert mask[:, :, 15:17].all() and not mask[:, :, :12].any() and not mask[:, :, 20:].any()

    def test_constant_offset_passes_the_low_pass(self, step):
        result = structured_residual(step, step + 1.0, step + 3.0)
        assert result["edge_rms"] == pytest.approx(3.0) and result["ratio"] == pytest.approx(3.0)

    def test_white_noise_is_mostly_removed_by_the_low_pass(self, step):
        noise = np.random.default_rng(0).normal(0.0, 1.0, step.shape)
        result = structured_residual(step, step + noise, step + noise)
        # Gaussian low-pass of width s keeps σ / (2 s √π) of white noise in 2D: 0.14 for s = 2
        assert result["ratio"] == 1.0 and result["edge_rms"] < 0.3

    def test_blurred_edge_is_structure(self, step):
        from scipy import ndimage

        blurred = ndimage.gaussian_filter(step, (0, 2, 2))
        noise = np.random.default_rng(0).normal(0.0, 1.0, step.shape)
        assert structured_residual(step, step + noise, blurred)["ratio"] > 10

    def test_exceptions(self, step):
        with pytest.raises(ConfigError, match="lowpass_px must be in"):
            structured_residual(step, step, step, lowpass_px=0)
        with pytest.raises(ConfigError, match="quantile must be in"):
            edge_mask(step, quantile=1.0)


class TestSegmentationFidelity:
    def test_reuses_metrics_dice(self):
        img = np.repeat(np.array([0.0, 0.5, 1.0]), 12).reshape(1, 6, 6)
        noisy = img + np.tile([0.3, -0.3], 18).reshape(1, 6, 6)
        result = segmentation_fidelity(img, noisy, img)
        assert result["dice"] == 1.0 and result["dice_noisy"] < 1.0
        assert result["gain"] == pytest.approx(1.0 - result["dice_noisy"])


def test_std_error_spearman_ranks_against_absolute_error_and_is_nan_when_constant():
    from MedDenoiseLib.fidelity.calibration import std_error_spearman

    assert std_error_spearman(np.array([1.0, 2.0, 3.0]), np.array([-0.1, 0.5, -0.9])) == 1.0  # signs ignored
    assert std_error_spearman(np.array([3.0, 2.0, 1.0]), np.array([0.1, -0.5, 0.9])) == -1.0
    assert np.isnan(std_error_spearman(np.ones(3), np.array([0.1, 0.5, 0.9])))
    assert np.isnan(std_error_spearman(np.array([1.0, 2.0, 3.0]), np.array([0.5, -0.5, 0.5])))
