"""Salt-and-pepper noise and the seed papers' [0, 1] protocols (Gondara 2016, NIT Raipur)."""

from __future__ import annotations

import math

import pytest
import torch

from MedDenoiseLib.errors import ConfigError, InputError
from MedDenoiseLib.noise import (
    SEED_PROTOCOLS,
    GondaraGaussianNoise,
    GondaraPoissonNoise,
    SaltPepperNoise,
    add_gondara_gaussian_noise,
    add_gondara_poisson_noise,
    add_salt_pepper_noise,
    seed_protocol,
)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


class TestSaltPepperNoise:
    def test_fractions(self):
        x = torch.full((400, 500), 0.5)
        x[0, 0], x[0, 1] = 0.0, 1.0
        y = add_salt_pepper_noise(x, 0.1, generator=_gen(), salt_vs_pepper=0.3)
        changed = y != x
        n = x.numel()
        assert abs(changed.float().mean().item() - 0.1) < 5 * math.sqrt(0.1 * 0.9 / n)
        salt = (y == 1.0) & changed
        assert abs(salt.float().sum().item() / changed.sum().item() - 0.3) < 5 * math.sqrt(0.3 * 0.7 / changed.sum())
        assert set(torch.unique(y[changed]).tolist()) <= {0.0, 1.0}

    def test_hand_cases(self):
        x = torch.arange(12.0).reshape(3, 4)
        assert torch.equal(add_salt_pepper_noise(x, 0.0, generator=_gen()), x)
        assert torch.equal(add_salt_pepper_noise(x, 1.0, generator=_gen(), salt_vs_pepper=1.0), torch.full_like(x, 11))
        assert torch.equal(add_salt_pepper_noise(x, 1.0, generator=_gen(), salt_vs_pepper=0.0), torch.zeros_like(x))
        y = add_salt_pepper_noise(x, 1.0, generator=_gen(), low=-5, high=50)
        assert set(torch.unique(y).tolist()) <= {-5.0, 50.0}

    def test_module_matches_function(self):
        x = torch.rand(6, 6, generator=_gen(1))
        assert torch.equal(SaltPepperNoise(0.3)(x, generator=_gen(2)), add_salt_pepper_noise(x, 0.3, generator=_gen(2)))

    def test_exceptions(self):
        with pytest.raises(ConfigError, match=r"amount must be in \[0, 1\]; got 1.5\. amount is the fraction"):
            add_salt_pepper_noise(torch.ones(2, 2), 1.5, generator=_gen())
        with pytest.raises(ConfigError, match=r"low / high must satisfy low <= high; got \(2.0, 1.0\)"):
            SaltPepperNoise(0.1, low=2, high=1)
        with pytest.raises(ConfigError, match=r"salt_vs_pepper must be in \[0, 1\]; got -0.1"):
            SaltPepperNoise(0.1, salt_vs_pepper=-0.1)


class TestGondaraGaussian:
    def test_additive_scaled_noise(self):
        x = torch.full((400, 500), 0.5, dtype=torch.float64)
        d = add_gondara_gaussian_noise(x, 0.01, generator=_gen(), mean=2.0, sigma=1.0) - x
        # p * N(mean, sigma^2): mean 0.02, std 0.01; no clipping (0.5 +- 50 std)
        assert abs(d.mean().item() - 0.02) < 5 * 0.01 / math.sqrt(x.numel())
        assert abs(d.std().item() - 0.01) < 5 * 0.01 / math.sqrt(2 * x.numel())

    def test_nit_raipur_clips_to_unit_interval(self):
        transform = seed_protocol("nit_raipur")
        assert isinstance(transform, GondaraGaussianNoise)
        assert transform.params() == {"p": 0.3, "mean": 0.0, "sigma": 1.5}
        x = torch.full((200, 500), 0.5, dtype=torch.float64)
        y = transform(x, generator=_gen(1))
        assert y.min() >= 0 and y.max() <= 1
        # P(y == 1) = P(0.45 n > 0.5) = 1 - Phi(1.111) = 0.1333
        p_one = 0.5 * math.erfc((0.5 / 0.45) / math.sqrt(2))
        assert abs((y == 1).double().mean().item() - p_one) < 5 * math.sqrt(p_one * (1 - p_one) / x.numel())

    def test_zero_p_identity(self):
        x = torch.rand(4, 4, generator=_gen(2))
        assert torch.equal(add_gondara_gaussian_noise(x, 0.0, generator=_gen()), x)


class TestGondaraPoisson:
    def test_standardized_is_zero_mean_with_std_p(self):
        x = torch.full((400, 500), 0.5, dtype=torch.float64)
        d = add_gondara_poisson_noise(x, 0.02, 5.0, generator=_gen()) - x  # min -0.045: no clipping
        assert abs(d.mean().item()) < 5 * 0.02 / math.sqrt(x.numel())
        assert abs(d.std().item() - 0.02) < 5 * 0.02 * math.sqrt((1 / 5 + 2) / (4 * x.numel()))

    def test_literal_adds_p_lambda_on_average(self):
        x = torch.full((400, 500), 0.1, dtype=torch.float64)
        d = add_gondara_poisson_noise(x, 0.01, 5.0, generator=_gen(1), mode="literal") - x
        assert abs(d.mean().item() - 0.05) < 5 * 0.01 * math.sqrt(5.0 / x.numel())

    def test_published_setting(self):
        assert SEED_PROTOCOLS["gondara2016_poisson"]["params"] == {"p": 0.2, "lam": 5.0, "mode": "standardized"}
        transform = seed_protocol("gondara2016_poisson")
        assert isinstance(transform, GondaraPoissonNoise)
        y = transform(torch.full((50, 50), 0.5), generator=_gen())
        assert y.min() >= 0 and y.max() <= 1

    def test_exceptions(self):
        x = torch.full((3, 3), 0.5)
        with pytest.raises(InputError, match=r"x must be scaled to \[0, 1\]"):
            add_gondara_poisson_noise(x * 4, 0.2, 5.0, generator=_gen())
        with pytest.raises(ConfigError, match=r"lam must be in \(0, inf\); got 0"):
            add_gondara_poisson_noise(x, 0.2, 0, generator=_gen())
        with pytest.raises(ConfigError, match=r"mode must be one of \['standardized', 'literal'\]; got 'raw'"):
            GondaraPoissonNoise(0.2, mode="raw")
        with pytest.raises(ConfigError, match="protocol must be one of"):
            seed_protocol("gondara2099")
