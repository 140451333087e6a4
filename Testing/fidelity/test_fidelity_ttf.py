"""Task transfer function of an inserted disc: a known Gaussian blur gives its analytic MTF."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from MedDenoiseLib.errors import ConfigError, InputError
from MedDenoiseLib.fidelity import DiscInsert, task_transfer_function, ttf50

GAUSS_TTF50 = np.sqrt(np.log(2) / 2) / np.pi  # TTF50 · σ of a Gaussian blur, ≈ 0.1874


def _gaussian_mtf(f, sigma):
    return np.exp(-2 * np.pi ** 2 * sigma ** 2 * f ** 2)


@pytest.fixture()
def disc():
    return DiscInsert((40.3, 39.7), 20.0, 100.0, 0, 2)


class TestTaskTransferFunction:
    @pytest.mark.parametrize("sigma", [1.0, 2.0])
    def test_gaussian_blur_matches_analytic_mtf(self, disc, sigma):
        image = ndimage.gaussian_filter(disc.profile((2, 80, 80), (1, 1, 1)), (0, sigma, sigma))
        result = task_transfer_function(image, disc, half_range_mm=10.0)
        analytic = _gaussian_mtf(result.frequency, sigma)
        keep = analytic > 0.1
        np.testing.assert_allclose(result.ttf[keep], analytic[keep], rtol=0.05)
        assert result.ttf50 == pytest.approx(GAUSS_TTF50 / sigma, rel=0.05) and not result.capped

    def test_blurred_edge_profile_is_its_own_gaussian(self):
        disc = DiscInsert((32.3, 32.6), 16.0, -50.0, 0, 1, edge_sigma_mm=1.5)  # negative contrast: same TTF
        result = task_transfer_function(disc.profile((1, 64, 64), (1, 1, 1)), disc)
        assert result.ttf50 == pytest.approx(GAUSS_TTF50 / 1.5, rel=0.02)

    def test_relative_to_input_is_the_filter_transfer(self):
        disc = DiscInsert((40.3, 39.7), 20.0, 100.0, 0, 1, edge_sigma_mm=0.6)
        image = disc.profile((1, 80, 80), (1, 1, 1))
        before = task_transfer_function(image, disc, half_range_mm=10.0)
        after = task_transfer_function(ndimage.gaussian_filter(image, (0, 1.2, 1.2)), disc, half_range_mm=10.0)
        assert after.ttf50 / before.ttf50 == pytest.approx(0.6 / np.hypot(0.6, 1.2), rel=0.05)

    def test_anisotropic_spacing_gives_cycles_per_mm(self):
        disc = DiscInsert((40.3, 39.7), 10.0, 100.0, 0, 1, edge_sigma_mm=1.0)
        result = task_transfer_function(disc.profile((1, 80, 80), (2.0, 0.5, 0.5)), disc,
                                        spacing_zyx=(2.0, 0.5, 0.5))
        assert result.frequency[-1] == pytest.approx(1.0, abs=1e-3)  # Nyquist of 0.5 mm voxels
        assert result.ttf50 == pytest.approx(GAUSS_TTF50, rel=0.03)

    def test_sharp_disc_is_capped_at_nyquist(self, disc):
        result = task_transfer_function(disc.profile((2, 80, 80), (1, 1, 1)), disc)
        assert result.capped and result.ttf50 == pytest.approx(0.5, abs=1e-3)

    def test_ttf50_interpolates(self):
        assert ttf50(np.array([0.0, 0.2]), np.array([1.0, 0.0])) == (pytest.approx(0.1), False)

    def test_exceptions(self, disc):
        image = disc.profile((2, 80, 80), (1, 1, 1))
        with pytest.raises(InputError, match=r"disc slices \[z0, z1\) must lie within \[0, 2\)"):
            task_transfer_function(image, DiscInsert((40.0, 40.0), 20.0, 1.0, 0, 3))
        with pytest.raises(InputError, match="method erased the disc"):
            task_transfer_function(np.zeros((2, 80, 80)), disc)
        with pytest.raises(ConfigError, match="half_range_mm must be in"):
            task_transfer_function(image, disc, half_range_mm=-1.0)
        with pytest.raises(InputError, match="must fill at least half of the ESF bins"):
            task_transfer_function(image[:, :8, :8], disc)
