"""Real-noise scoring from two acquisitions, and the Dice of a fixed tissue segmentation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from MedDenoiseLib.errors import ConfigError
from MedDenoiseLib.metrics import (dice_per_class, noise_sigma_from_pairs, paired_acquisition_mse,
                                   paired_acquisition_psnr, segmentation_dice, tissue_classes)


class TestPairedAcquisition:
    def test_hand_computed(self):
        # f(y1) = x = 0 exactly, y2 = ±1: mean (f - y2)² = 1, minus sigma² = 1 -> 0
        assert paired_acquisition_mse(np.zeros(4), np.array([1.0, -1.0, 1.0, -1.0]), sigma=1.0) == 0.0

    def test_unbiased_against_the_true_error(self):
        rng = np.random.default_rng(0)
        x = ndimage.gaussian_filter(rng.random((256, 256)), 4) * 4
        sigma = 0.1
        y1, y2 = x + rng.normal(0, sigma, x.shape), x + rng.normal(0, sigma, x.shape)
        f = ndimage.gaussian_filter(y1, 1.0)
        true_mse = float(np.mean((f - x) ** 2))
        estimate = paired_acquisition_mse(f, y2, sigma=sigma)
        # estimate - truth = mean(n2² - σ²) - 2 mean((f - x) n2): SD ≈ sqrt(2σ⁴ + 4σ² MSE) / sqrt(N)
        se = math.sqrt(2 * sigma**4 + 4 * sigma**2 * true_mse) / 256
        assert estimate == pytest.approx(true_mse, abs=4 * se)
        # the identity "denoiser" scores the noise variance
        assert paired_acquisition_mse(y1, y2, sigma=sigma) == pytest.approx(sigma**2, abs=4 * 2 * sigma**2 / 256)

    def test_sigma_from_pairs_and_per_voxel_map(self):
        rng = np.random.default_rng(1)
        x = np.zeros((200, 200))
        y1, y2 = x + rng.normal(0, 0.2, x.shape), x + rng.normal(0, 0.2, x.shape)
        s = noise_sigma_from_pairs(y1, y2)
        assert s == pytest.approx(0.2, rel=4 / math.sqrt(2 * 40_000))
        assert paired_acquisition_mse(x, y2, sigma=np.full(x.shape, s)) == pytest.approx(
            paired_acquisition_mse(x, y2, sigma=s), abs=1e-12)

    def test_psnr_and_errors(self):
        assert paired_acquisition_psnr(np.zeros(4), np.array([1.1, -0.9, 1.1, -0.9]), sigma=1.0,
                                       data_range=1.0) == pytest.approx(20.0, abs=1e-9)
        with pytest.raises(ConfigError, match="sigma must be a finite number >= 0; got -1"):
            paired_acquisition_mse(np.zeros(3), np.zeros(3), sigma=-1.0)
        with pytest.raises(ConfigError, match="sigma map must be >= 0 with the image shape"):
            paired_acquisition_mse(np.zeros(3), np.zeros(3), sigma=np.ones(2))


class TestSegmentationDice:
    def test_dice_by_hand(self):
        a, b = np.array([0, 1, 1, 2, 2, 2]), np.array([0, 1, 2, 2, 2, 0])
        # class 1: |A|=2 |B|=1 |A∩B|=1 -> 2/3 ; class 2: |A|=3 |B|=3 |A∩B|=2 -> 4/6
        assert dice_per_class(a, b, [1, 2]) == {1: pytest.approx(2 / 3), 2: pytest.approx(4 / 6)}
        assert math.isnan(dice_per_class(a, b, [5])[5])

    def test_fixed_thresholds(self):
        labels = tissue_classes(np.array([0.0, 0.1, 0.3, 0.5, 0.7, 1.0]), thresholds=np.array([0.3, 0.7]))
        assert labels.tolist() == [0, 0, 1, 1, 2, 2]  # x >= threshold goes up, as scikit-image

    @pytest.mark.parametrize("method", ["otsu", "kmeans"])
    def test_three_tissues_recovered(self, method):
        img = np.repeat([0.1, 0.5, 0.9], 400).reshape(30, 40)
        assert tissue_classes(img, method=method).tolist() == np.repeat([0, 1, 2], 400).reshape(30, 40).tolist()
        assert segmentation_dice(img, img, method=method) == 1.0

    def test_noise_lowers_dice_and_denoising_restores_it(self):
        rng = np.random.default_rng(2)
        clean = np.repeat([0.1, 0.5, 0.9], 1200).reshape(60, 60)
        noisy = clean + rng.normal(0, 0.15, clean.shape)
        smoothed = ndimage.median_filter(noisy, 5)
        d_noisy, d_smooth = segmentation_dice(clean, noisy), segmentation_dice(clean, smoothed)
        assert d_noisy < 0.9 < d_smooth

    def test_errors(self):
        with pytest.raises(ConfigError, match="n_classes must be an integer in \\[2, 8\\]; got 1"):
            tissue_classes(np.arange(10.0), n_classes=1)
        with pytest.raises(ConfigError, match="thresholds_from must be 'each' or 'reference'"):
            segmentation_dice(np.arange(10.0), np.arange(10.0), thresholds_from="clean")
