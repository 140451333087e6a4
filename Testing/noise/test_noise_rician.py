"""Rician / non-central chi MR noise (Gudbjartsson & Patz 1995; Constantinides 1997).

Tolerances are 5 standard errors of the estimator for the sample size used.
"""

from __future__ import annotations

import math

import pytest
import torch

from MedDenoiseLib.errors import ConfigError, InputError
from MedDenoiseLib.noise import RandomRicianNoise, RicianNoise, add_rician_noise, rician_background_mean

N_SAMPLES = 200_000


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


class TestRicianNoise:
    def test_background_mean_is_rayleigh(self):
        sigma = 3.0
        y = add_rician_noise(torch.zeros(400, 500, dtype=torch.float64), sigma, generator=_gen())
        expected = sigma * math.sqrt(math.pi / 2)  # 3.7599
        se = sigma * math.sqrt(2 - math.pi / 2) / math.sqrt(N_SAMPLES)  # Rayleigh std / sqrt(n)
        assert rician_background_mean(sigma) == pytest.approx(expected)
        assert abs(y.mean().item() - expected) < 5 * se

    def test_high_snr_std_is_sigma(self):
        sigma = 2.0
        x = torch.full((400, 500), 1000.0, dtype=torch.float64)  # SNR 500
        y = add_rician_noise(x, sigma, generator=_gen(1))
        assert abs(y.std().item() - sigma) < 5 * sigma / math.sqrt(2 * N_SAMPLES)
        # E[y] = sqrt(x^2 + sigma^2) to first order: 1000.002
        assert abs(y.mean().item() - math.sqrt(1000.0**2 + sigma**2)) < 5 * sigma / math.sqrt(N_SAMPLES)

    def test_multi_coil_background_mean(self):
        # chi with 2L = 8 dof: sigma * sqrt(2) * Gamma(4.5) / Gamma(4) = sigma * sqrt(2) * 11.6317 / 6
        sigma, coils = 1.0, 4
        expected = math.sqrt(2) * (3.5 * 2.5 * 1.5 * 0.5 * math.sqrt(math.pi)) / 6.0
        assert rician_background_mean(sigma, coils) == pytest.approx(expected)  # 2.7416
        y = add_rician_noise(torch.zeros(200, 500, dtype=torch.float64), sigma, generator=_gen(2), n_coils=coils)
        # chi(k) variance: k sigma^2 - mean^2
        se = math.sqrt(2 * coils * sigma**2 - expected**2) / math.sqrt(y.numel())
        assert abs(y.mean().item() - expected) < 5 * se

    def test_multi_coil_signal_preserved_at_high_snr(self):
        x = torch.full((200, 500), 500.0, dtype=torch.float64)
        y = add_rician_noise(x, 1.0, generator=_gen(3), n_coils=8)
        # E[y^2] = x^2 + 2 L sigma^2 exactly for the sum of squares
        expected_power = 500.0**2 + 2 * 8
        se = math.sqrt((y**2).var().item() / y.numel())
        assert abs((y**2).mean().item() - expected_power) < 5 * se

    def test_sigma_percent_of_max(self):
        x = torch.zeros(400, 500, dtype=torch.float64)
        x[0, 0] = 200.0  # max 200, 5 % -> sigma 10
        y = add_rician_noise(x, generator=_gen(4), sigma_percent=5.0)
        background = y.flatten()[1:]
        se = 10 * math.sqrt(2 - math.pi / 2) / math.sqrt(background.numel())
        assert abs(background.mean().item() - 10 * math.sqrt(math.pi / 2)) < 5 * se
        with_reference = add_rician_noise(x, generator=_gen(4), sigma_percent=5.0, reference=200.0)
        assert torch.equal(with_reference, y)

    def test_zero_sigma_is_identity(self):
        x = torch.rand(3, 4, 5, generator=_gen(5)) * 100
        assert torch.equal(add_rician_noise(x, 0.0, generator=_gen()), x)
        assert torch.equal(add_rician_noise(x, generator=_gen(), sigma_percent=0.0), x)

    def test_non_negative_output_and_module(self):
        x = torch.rand(20, 20, generator=_gen(6))
        y = RicianNoise(sigma=0.5)(x, generator=_gen(7))
        assert (y >= 0).all()
        assert torch.equal(y, add_rician_noise(x, 0.5, generator=_gen(7)))

    def test_sampler_ranges(self):
        record = RandomRicianNoise((2.0, 5.0)).draw(_gen())[1]
        assert record["params"]["sigma"] is None and 2.0 <= record["params"]["sigma_percent"] <= 5.0
        record = RandomRicianNoise(sigma_range=(1.0, 2.0)).draw(_gen())[1]
        assert record["params"]["sigma_percent"] is None and 1.0 <= record["params"]["sigma"] <= 2.0
        assert RandomRicianNoise().sigma_percent_range == (1.0, 15.0)

    def test_exceptions(self):
        x = torch.ones(3, 3)
        with pytest.raises(ConfigError, match=r"sigma_percent must be in \[0, 100\]; got -2\. It is a percentage"):
            add_rician_noise(x, generator=_gen(), sigma_percent=-2)
        with pytest.raises(ConfigError, match="exactly one must be given"):
            add_rician_noise(x, 1.0, generator=_gen(), sigma_percent=2.0)
        with pytest.raises(ConfigError, match="exactly one must be given"):
            add_rician_noise(x, generator=_gen())
        with pytest.raises(ConfigError, match=r"n_coils must be in \[1, inf\); got 0"):
            RicianNoise(sigma=1.0, n_coils=0)
        with pytest.raises(InputError, match="x must be a non-negative magnitude image"):
            add_rician_noise(-x, 1.0, generator=_gen())
        with pytest.raises(ConfigError, match=r"sigma_percent_range\[1\] must be in \[0, 100\]; got 150"):
            RandomRicianNoise((1.0, 150.0))
        with pytest.raises(ConfigError, match="at most one may be given"):
            RandomRicianNoise((1.0, 2.0), sigma_range=(1.0, 2.0))
