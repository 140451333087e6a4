"""Uncertainty label map: hand-computed thresholds, colour table file."""

import numpy as np
import pytest

from MedDenoiseLib.errors import ConfigError
from MedDenoiseLib.uncertainty_labels import UNCERTAINTY_COLORS, regional_std, uncertainty_labels, write_color_table


class TestUncertaintyLabels:
    def test_thresholds_scale_with_noise_sigma(self):
        std = np.array([[[0.0, 2.4, 2.6, 2.9, 3.1, 3.9, 4.0, 20.0]]])
        # sigma 10, thresholds (0.25, 0.3, 0.4) -> edges 2.5, 3.0, 4.0
        expected = np.array([[[0, 0, 1, 1, 2, 2, 3, 3]]], np.uint8)
        np.testing.assert_array_equal(uncertainty_labels(std, 10.0), expected)
        np.testing.assert_array_equal(uncertainty_labels(std * 3, 30.0), expected)

    def test_regional_std_is_rms_within_slices(self):
        std = np.zeros((3, 21, 21), np.float32)
        std[1, 10, 10] = 4.0
        region = regional_std(std, sigma_voxels=2.0)
        assert not region[0].any() and not region[2].any()  # never across slices
        # variance spread by a normalised 2D Gaussian: centre value = 4 / sqrt(2 pi sigma^2) (discrete ~ continuous)
        assert region[1, 10, 10] == pytest.approx(4.0 / np.sqrt(2 * np.pi * 4.0), rel=0.02)
        assert np.sum(region[1] ** 2) == pytest.approx(16.0, rel=1e-3)  # variance is conserved
        np.testing.assert_allclose(regional_std(np.full((2, 8, 8), 3.0)), 3.0, rtol=1e-6)

    def test_zero_sigma_marks_any_spread_high(self):
        np.testing.assert_array_equal(uncertainty_labels(np.array([0.0, 1e-6]), 0.0), [0, 3])

    def test_bad_thresholds(self):
        with pytest.raises(ConfigError, match="must be 3 increasing non-negative numbers"):
            uncertainty_labels(np.zeros(3), 1.0, thresholds=(0.5, 0.2, 1.0))
        with pytest.raises(ConfigError, match="noise_sigma must be finite and >= 0; got -1"):
            uncertainty_labels(np.zeros(3), -1.0)

    def test_color_table_file(self, tmp_path):
        path = write_color_table(tmp_path / "u.ctbl")
        lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if not ln.startswith("#")]
        assert lines == ["0 background 0 0 0 0", "1 low 46 204 113 255", "2 medium 241 196 15 255",
                         "3 high 231 76 60 255"]
        assert UNCERTAINTY_COLORS[0].rgba[3] == 0  # label 0 transparent
