"""Rician VST (forward stabilises, inverse is unbiased) and the optional BM4D baseline."""

from __future__ import annotations

import math

import numpy as np
import pytest

from MedDenoiseLib.baselines import denoise_bm4d, rician_vst, rician_vst_inverse
from MedDenoiseLib.baselines.vst import rician_mean, rician_std
from MedDenoiseLib.errors import ConfigError

N = 100_000  # samples per signal level; tolerances below are multiples of 1/sqrt(N)


def _rician(nu: float, sigma: float, rng) -> np.ndarray:
    return np.abs(nu + rng.normal(0, sigma, N) + 1j * rng.normal(0, sigma, N))


class TestRicianMoments:
    def test_closed_forms_at_zero(self):
        assert float(rician_mean(0.0)) == pytest.approx(math.sqrt(math.pi / 2), abs=1e-12)
        assert float(rician_std(0.0)) == pytest.approx(math.sqrt(2 - math.pi / 2), abs=1e-12)

    def test_high_snr_limit(self):  # mean -> sqrt(nu² + 1), std -> 1
        assert float(rician_mean(30.0)) == pytest.approx(math.sqrt(901.0), rel=1e-6)
        assert float(rician_std(30.0)) == pytest.approx(1.0, abs=1e-3)

    def test_against_samples(self):
        rng = np.random.default_rng(0)
        z = _rician(1.5, 1.0, rng)
        assert z.mean() == pytest.approx(float(rician_mean(1.5)), abs=5 / math.sqrt(N))


class TestVST:
    @pytest.mark.parametrize("nu", [1.0, 3.0, 10.0, 50.0])
    def test_stabilised_std_is_near_one(self, nu):
        rng = np.random.default_rng(int(nu))
        assert rician_vst(_rician(nu * 2.0, 2.0, rng), 2.0).std() == pytest.approx(1.0, abs=0.08)

    @pytest.mark.parametrize("nu", [0.5, 2.0, 8.0, 45.0])
    def test_exact_unbiased_inverse(self, nu):
        rng = np.random.default_rng(10 + int(nu))
        sigma = 3.0
        d = rician_vst(_rician(nu * sigma, sigma, rng), sigma).mean()
        # the inverse of the sample mean of f(z) recovers nu: SE of the mean is ~1/sqrt(N), slope dnu/dD <= ~2
        assert float(rician_vst_inverse(np.array(d), sigma)) == pytest.approx(nu * sigma, abs=sigma * 8 / math.sqrt(N))

    def test_algebraic_inverse_would_be_biased(self):
        """Why the exact inverse matters: mapping E{f(z)} back through f^-1 overestimates low signals."""
        rng = np.random.default_rng(3)
        fz = rician_vst(_rician(0.5, 1.0, rng), 1.0)
        grid = np.linspace(0, 5, 5001)
        naive = np.interp(fz.mean(), rician_vst(grid, 1.0), grid)
        assert naive > 0.5 + 0.3 and float(rician_vst_inverse(np.array(fz.mean()), 1.0)) == pytest.approx(0.5, abs=0.05)

    def test_sigma_must_be_positive(self):
        with pytest.raises(ConfigError, match="sigma must be a finite number > 0; got 0"):
            rician_vst(np.ones(3), 0)


class TestBM4D:
    def test_bad_noise_name(self):
        with pytest.raises(ConfigError, match="noise must be one of .*got 'poisson'"):
            denoise_bm4d(np.zeros((4, 4)), sigma=1.0, noise="poisson")

    def test_rician_phantom_error_and_bias_drop(self):
        pytest.importorskip("bm4d")  # optional, non-commercial extra: skipped only when absent
        rng = np.random.default_rng(0)
        z, y, x = np.mgrid[0:6, 0:20, 0:20]
        clean = 2.0 + 6.0 * (((y - 10) ** 2 + (x - 10) ** 2) < 30)
        noisy = np.abs(clean + rng.normal(0, 1, clean.shape) + 1j * rng.normal(0, 1, clean.shape))
        out = denoise_bm4d(noisy.astype(np.float32), sigma=1.0, noise="rician")
        assert out.shape == noisy.shape and out.dtype == np.float32
        rmse = lambda a: float(np.sqrt(np.mean((a - clean) ** 2)))  # noqa: E731
        assert rmse(out) < 0.5 * rmse(noisy)
        # Rician bias of the input (~0.24 here) is removed by the VST + exact inverse
        assert abs(float((out - clean).mean())) < 0.4 * float((noisy - clean).mean())
