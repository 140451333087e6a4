"""Noise-level estimates: Immerkaer on white noise, the conditioning estimate ignoring dark air."""

import numpy as np
import pytest

from MedDenoiseLib.inference.noise_level import (conditioning_noise_sigma, laplacian_noise_sigma, residual_noise_sigma,
                                                 robust_std)


def test_robust_std_of_a_gaussian_sample():
    values = np.random.default_rng(0).normal(5.0, 2.0, 200_000)
    assert robust_std(values) == pytest.approx(2.0, rel=0.01)
    assert robust_std(np.array([])) == 0.0 and robust_std(np.full(9, 3.0)) == 0.0


def test_immerkaer_reads_white_noise_and_ignores_a_plane():
    z, y, x = np.meshgrid(np.arange(4), np.arange(64), np.arange(64), indexing="ij")
    plane = 3.0 * x + 2.0 * y  # the mask cancels any plane exactly
    assert laplacian_noise_sigma(plane) == pytest.approx(0.0, abs=1e-9)
    noisy = plane + np.random.default_rng(1).normal(0, 1.5, plane.shape)
    assert laplacian_noise_sigma(noisy) == pytest.approx(1.5, rel=0.03)
    assert laplacian_noise_sigma(np.ones((2, 2))) == 0.0  # no 3 x 3 interior


def test_conditioning_estimate_reads_the_bright_half():
    rng = np.random.default_rng(2)
    image = np.zeros((4, 64, 64))
    image[:, :, 32:] = 100.0  # "tissue" on the right, "air" on the left
    image += np.where(image > 0, rng.normal(0, 4.0, image.shape), rng.normal(0, 1.0, image.shape))
    assert conditioning_noise_sigma(image) == pytest.approx(4.0, rel=0.05)
    assert laplacian_noise_sigma(image) < 3.5  # the plain estimate is pulled towards the air's 1.0
    assert conditioning_noise_sigma(np.zeros((1, 2, 5))) == 0.0


def test_residual_estimate_skips_untouched_voxels():
    noisy = np.random.default_rng(3).normal(0, 2.0, (16, 64, 64)).astype(np.float32)
    denoised = np.zeros_like(noisy)
    denoised[:, :32] = noisy[:, :32]  # half the voxels unchanged: left out of the median
    assert residual_noise_sigma(noisy, denoised) == pytest.approx(2.0, rel=0.03)
