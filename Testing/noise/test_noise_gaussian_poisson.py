"""Additive Gaussian and Poisson–Gaussian noise: recovered statistics, identities, errors.

Tolerances are 5 standard errors of the estimator for the sample size used.
"""

from __future__ import annotations

import math

import pytest
import torch

from MedDenoiseLib.errors import ConfigError, InputError
from MedDenoiseLib.noise import (
    GaussianNoise,
    PoissonGaussianNoise,
    RandomPoissonGaussianNoise,
    add_gaussian_noise,
    add_poisson_gaussian_noise,
)

N_SAMPLES = 200_000


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


class TestGaussianNoise:
    def test_sigma_and_mean_recovered(self):
        sigma = 7.0
        x = torch.full((N_SAMPLES // 100, 100), 50.0, dtype=torch.float64)
        n = add_gaussian_noise(x, sigma, generator=_gen()) - x
        assert abs(n.mean().item()) < 5 * sigma / math.sqrt(N_SAMPLES)
        # SE of the sample std of Gaussian data: sigma / sqrt(2 n); 5 SE = 1.1 % here (< 5 %)
        assert abs(n.std().item() - sigma) < 5 * sigma / math.sqrt(2 * N_SAMPLES)

    def test_mean_offset(self):
        x = torch.zeros(400, 500)
        n = add_gaussian_noise(x, 1.0, generator=_gen(), mean=3.0)
        assert abs(n.mean().item() - 3.0) < 5 / math.sqrt(x.numel())

    def test_zero_sigma_is_identity(self):
        x = torch.randn(3, 4, 5, generator=_gen(1))
        y = add_gaussian_noise(x, 0.0, generator=_gen())
        assert torch.equal(y, x) and y.data_ptr() != x.data_ptr()

    def test_module_matches_function(self):
        x = torch.zeros(6, 7)
        assert torch.equal(GaussianNoise(2.0)(x, generator=_gen(4)), add_gaussian_noise(x, 2.0, generator=_gen(4)))

    def test_float16_computed_in_float32(self):
        x = torch.zeros(8, 8, dtype=torch.float16)
        y = add_gaussian_noise(x, 1.0, generator=_gen())
        assert y.dtype == torch.float16 and y.abs().max() > 0

    def test_exceptions(self):
        with pytest.raises(ConfigError, match=r"sigma must be in \[0, inf\); got -2\. sigma is a standard deviation"):
            add_gaussian_noise(torch.zeros(2, 2), -2, generator=_gen())
        with pytest.raises(ConfigError, match=r"sigma must be in \[0, inf\); got -1"):
            GaussianNoise(-1)


class TestPoissonGaussianNoise:
    def test_poisson_variance_equals_mean(self):
        lam = 20.0
        x = torch.full((N_SAMPLES,), lam, dtype=torch.float64).reshape(400, -1)
        y = add_poisson_gaussian_noise(x, 1.0, 0.0, generator=_gen())
        assert torch.equal(y, y.round())  # counts
        assert abs(y.mean().item() - lam) < 5 * math.sqrt(lam / N_SAMPLES)
        # Var of the sample variance of Poisson(lam): (mu4 - sigma^4) / n = (lam + 2 lam^2) / n
        assert abs(y.var().item() - lam) < 5 * math.sqrt((lam + 2 * lam**2) / N_SAMPLES)

    def test_variance_is_affine_in_signal(self):
        gain, sigma = 0.5, 2.0
        for level in (10.0, 80.0):
            x = torch.full((400, 500), level, dtype=torch.float64)
            y = add_poisson_gaussian_noise(x, gain, sigma, generator=_gen(int(level)))
            expected = gain * level + sigma**2
            # Gaussian approximation of the SE of a sample variance: expected * sqrt(2 / n) (+ Poisson excess)
            se = math.sqrt((2 * expected**2 + gain**3 * level) / x.numel())
            assert abs(y.var().item() - expected) < 5 * se
            assert abs(y.mean().item() - level) < 5 * math.sqrt(expected / x.numel())

    def test_zero_gain_and_sigma_is_identity(self):
        x = torch.rand(4, 5, generator=_gen(2)) * 9
        assert torch.equal(add_poisson_gaussian_noise(x, 0.0, 0.0, generator=_gen()), x)

    def test_zero_gain_is_gaussian_only(self):
        x = torch.zeros(4, 5)
        y = add_poisson_gaussian_noise(x, 0.0, 1.0, generator=_gen(3))
        assert torch.equal(y, add_gaussian_noise(x, 1.0, generator=_gen(3)))

    def test_module_and_sampler(self):
        x = torch.full((5, 5), 4.0)
        assert torch.equal(PoissonGaussianNoise(2.0, 1.0)(x, generator=_gen(1)),
                           add_poisson_gaussian_noise(x, 2.0, 1.0, generator=_gen(1)))
        transform, record = RandomPoissonGaussianNoise((1.0, 2.0), (0.0, 0.5)).draw(_gen())
        assert 1.0 <= record["params"]["gain"] <= 2.0 and 0.0 <= record["params"]["sigma"] <= 0.5

    def test_exceptions(self):
        with pytest.raises(InputError, match="x must be >= 0 for Poisson noise"):
            add_poisson_gaussian_noise(torch.full((2, 2), -1.0), 1.0, 0.0, generator=_gen())
        with pytest.raises(ConfigError, match=r"gain must be in \[0, inf\); got -0.5"):
            add_poisson_gaussian_noise(torch.ones(2, 2), -0.5, 0.0, generator=_gen())
        with pytest.raises(ConfigError, match=r"sigma_range\[1\] must be in \[0, inf\); got -1"):
            RandomPoissonGaussianNoise(1.0, (0.0, -1.0))
