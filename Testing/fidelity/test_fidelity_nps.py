"""Noise power spectrum: white noise is flat at σ², blurred noise falls off as σ² |H(f)|².

Tolerances come from the sample size: a periodogram ordinate is exponentially distributed,
so a ring mean over n ordinates has relative standard error 1 / √n; tests allow 4 of them,
plus 3 % for the leakage of a 128-voxel window (the Fejér kernel smooths the spectrum).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from MedDenoiseLib.errors import ConfigError, InputError, ShapeError
from MedDenoiseLib.fidelity import find_uniform_rois, noise_power_spectrum, nps_shift


@pytest.fixture(scope="module")
def white():
    """σ = 2 white Gaussian noise, 16 slices of 256 x 256 (fixed generator)."""
    return np.random.default_rng(11).normal(0.0, 2.0, (16, 256, 256))


def _rois(shape, size):
    return find_uniform_rois(np.ones(shape), size=size, fraction=1.0, foreground=False)


class TestNoisePowerSpectrum:
    def test_white_noise_is_flat_at_variance(self, white):
        rois = _rois(white.shape, 64)
        result = noise_power_spectrum(white, rois)
        tolerance = 4.0 / np.sqrt(result.counts * len(rois))
        assert np.all(np.abs(result.nps / 4.0 - 1.0) < tolerance)
        assert result.variance == pytest.approx(4.0, rel=0.02)
        # f_av of a flat radial NPS is the mean ring radius, (1 + 32) / 2 / 64 cycles/voxel for 64-voxel ROIs
        assert result.mean_frequency == pytest.approx(33 / 128, rel=0.02)

    def test_spacing_scales_frequency_and_density(self, white):
        rois = _rois(white.shape, 64)
        unit = noise_power_spectrum(white, rois)
        mm = noise_power_spectrum(white, rois, spacing_zyx=(3.0, 0.5, 0.5))
        np.testing.assert_allclose(mm.frequency, unit.frequency / 0.5)
        np.testing.assert_allclose(mm.nps, unit.nps * 0.25)  # NPS has units of value² · mm²
        assert mm.variance == pytest.approx(unit.variance)

    def test_blurred_noise_follows_squared_transfer_function(self, white):
        s = 1.5
        blurred = ndimage.gaussian_filter(white, (0, s, s), mode="wrap")
        rois = _rois(white.shape, 128)
        result = noise_power_spectrum(blurred, rois)
        h2 = np.exp(-4 * np.pi ** 2 * s ** 2 * result.frequency ** 2)
        keep = h2 > 0.05
        tolerance = 0.03 + 4.0 / np.sqrt(result.counts[keep] * len(rois))
        assert np.all(np.abs(result.nps[keep] / (4.0 * h2[keep]) - 1.0) < tolerance)
        assert result.peak_frequency < 0.05  # the power moved to the lowest ring

    def test_smoothing_shifts_mean_frequency_down(self, white):
        rois = _rois(white.shape, 64)
        noisy = noise_power_spectrum(white, rois)
        smooth = noise_power_spectrum(ndimage.gaussian_filter(white, (0, 1.0, 1.0)), rois)
        assert nps_shift(noisy, noisy) == 0.0
        assert nps_shift(smooth, noisy) < -0.3

    def test_two_dimensional_input(self, white):
        rois = _rois((1, 256, 256), 64)
        assert noise_power_spectrum(white[0], rois).nps.shape == (32,)

    def test_exceptions(self, white):
        rois = _rois(white.shape, 64)
        with pytest.raises(ConfigError, match="spacing_zyx must be 3 finite numbers > 0"):
            noise_power_spectrum(white, rois, spacing_zyx=(1.0, 0.0, 1.0))
        with pytest.raises(ShapeError, match="residual dimensions must be 2"):
            noise_power_spectrum(white[..., None], rois)
        bad = white.copy()
        bad[0, 0, 0] = np.nan
        with pytest.raises(ConfigError, match="non-finite"):
            noise_power_spectrum(bad, rois)
        empty = find_uniform_rois(np.ones((1, 8, 8)), size=8, foreground=False)
        object.__setattr__(empty, "corners", np.zeros((0, 3), int))
        with pytest.raises(InputError, match="number of ROIs must be >= 1"):
            noise_power_spectrum(white, empty)
