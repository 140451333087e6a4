"""Ultrasound speckle, multiplicative noise and X-ray dose noise.

Tolerances are 5 standard errors of the estimator for the sample size used.
"""

from __future__ import annotations

import math

import pytest
import torch

from MedDenoiseLib.errors import ConfigError, InputError
from MedDenoiseLib.noise import (
    RandomSpeckleNoise,
    SpeckleNoise,
    XRayNoise,
    add_multiplicative_noise,
    add_speckle_noise,
    add_xray_noise,
)

SCALE = 10 * 255 / (60 * math.log(10))  # grey levels per neper of intensity speckle at 60 dB: 18.457


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _moments_se(sample: torch.Tensor) -> tuple[float, float]:
    """Standard errors of the sample mean and sample std (from the 4th moment)."""
    n = sample.numel()
    centred = sample - sample.mean()
    var = centred.pow(2).mean()
    m4 = centred.pow(4).mean()
    return math.sqrt(var.item() / n), math.sqrt(((m4 - var**2) / (4 * var * n)).item())


class TestSpeckleNoise:
    @pytest.mark.parametrize("looks", [1.0, 4.0])
    def test_log_speckle_moments(self, looks):
        # y - x = SCALE * ln S, S ~ Gamma(L, 1/L): mean SCALE (digamma(L) - ln L), var SCALE^2 trigamma(L)
        x = torch.full((400, 500), 200.0, dtype=torch.float64)  # far from both clip limits
        d = add_speckle_noise(x, looks, generator=_gen()) - x
        L = torch.tensor(looks, dtype=torch.float64)
        mean = SCALE * (torch.special.digamma(L) - math.log(looks)).item()
        std = SCALE * math.sqrt(torch.special.polygamma(1, L).item())
        se_mean, se_std = _moments_se(d)
        assert abs(d.mean().item() - mean) < 5 * se_mean
        assert abs(d.std().item() - std) < 5 * se_std
        if looks == 1.0:  # hand values: -2.507 dB mean, pi/sqrt(6) nepers std
            assert mean == pytest.approx(-SCALE * 0.5772157, rel=1e-6)
            assert std == pytest.approx(SCALE * math.pi / math.sqrt(6), rel=1e-6)

    def test_more_looks_less_noise(self):
        x = torch.full((100, 100), 128.0)
        stds = [(add_speckle_noise(x, L, generator=_gen(1)) - x).std().item() for L in (1.0, 4.0, 16.0)]
        assert stds[0] > stds[1] > stds[2]

    def test_identity_in_the_limit(self):
        x = torch.linspace(10, 245, 2500, dtype=torch.float64).reshape(50, 50)
        y = add_speckle_noise(x, 1e6, generator=_gen(2))
        assert (y - x).abs().max() < 0.2  # expected std SCALE / 1000 = 0.018 grey levels

    def test_values_stay_in_display_range(self):
        x = torch.linspace(0, 255, 10000).reshape(100, 100)
        y = add_speckle_noise(x, 1.0, generator=_gen(3))
        assert y.min() >= 0 and y.max() <= 255
        assert (y == 0).any()  # dark pixels saturate at 0

    def test_module_and_sampler(self):
        x = torch.full((8, 8), 100.0)
        assert torch.equal(SpeckleNoise(2.0)(x, generator=_gen(4)), add_speckle_noise(x, 2.0, generator=_gen(4)))
        record = RandomSpeckleNoise((2.0, 3.0)).draw(_gen())[1]
        assert 2.0 <= record["params"]["looks"] <= 3.0

    def test_exceptions(self):
        x = torch.full((4, 4), 100.0)
        with pytest.raises(ConfigError, match=r"looks must be in \[1, inf\); got 0.5\. looks L >= 1"):
            add_speckle_noise(x, 0.5, generator=_gen())
        with pytest.raises(InputError, match=r"x must be a B-mode image in \[0, 255\]"):
            add_speckle_noise(x * 3, 1.0, generator=_gen())
        with pytest.raises(ConfigError, match=r"dynamic_range_db must be in \(0, inf\); got 0"):
            SpeckleNoise(1.0, dynamic_range_db=0)
        with pytest.raises(ConfigError, match=r"looks_range\[0\] must be in \[1, inf\); got 0"):
            RandomSpeckleNoise((0, 2))


class TestMultiplicativeNoise:
    def test_relative_variance(self):
        x = torch.full((400, 500), 50.0, dtype=torch.float64)
        rel = add_multiplicative_noise(x, 0.04, generator=_gen()) / x - 1
        assert abs(rel.var().item() - 0.04) < 5 * 0.04 * math.sqrt(2 / rel.numel())

    def test_identity_and_clip(self):
        x = torch.rand(5, 5, generator=_gen(1))
        assert torch.equal(add_multiplicative_noise(x, 0.0, generator=_gen()), x)
        y = add_multiplicative_noise(x, 4.0, generator=_gen(), clip_range=(0.0, 1.0))
        assert y.min() >= 0 and y.max() <= 1

    def test_exceptions(self):
        with pytest.raises(ConfigError, match=r"clip_range must satisfy low < high"):
            add_multiplicative_noise(torch.ones(2, 2), 0.1, generator=_gen(), clip_range=(1, 0))
        with pytest.raises(ConfigError, match=r"variance must be in \[0, inf\); got -0.1"):
            add_multiplicative_noise(torch.ones(2, 2), -0.1, generator=_gen())


class TestXRayNoise:
    def test_variance_proportional_to_signal_over_dose(self):
        reference, photons = 1000.0, 1000.0
        for dose in (1.0, 0.25):
            gain = reference / (photons * dose)  # detector units per quantum
            for signal in (100.0, 400.0):
                x = torch.full((200, 500), signal, dtype=torch.float64)
                y = add_xray_noise(x, dose, generator=_gen(int(signal / dose)), photons_at_max=photons,
                                   electronic_sigma=0.0, reference=reference)
                counts = signal / gain
                expected = gain * signal  # = gain^2 * counts
                se = gain**2 * math.sqrt((counts + 2 * counts**2) / x.numel())
                assert abs(y.var().item() - expected) < 5 * se
                assert abs(y.mean().item() - signal) < 5 * math.sqrt(expected / x.numel())

    def test_electronic_noise_adds_gain_squared_sigma_squared(self):
        x = torch.zeros(400, 500, dtype=torch.float64)
        y = add_xray_noise(x, 0.5, generator=_gen(), photons_at_max=100.0, electronic_sigma=4.0, reference=10.0)
        gain = 10.0 / (100.0 * 0.5)
        expected = (gain * 4.0) ** 2
        assert abs(y.var().item() - expected) < 5 * expected * math.sqrt(2 / x.numel())

    def test_reference_defaults_to_max(self):
        x = torch.rand(10, 10, generator=_gen(1)) * 50
        a = add_xray_noise(x, 0.3, generator=_gen(2))
        b = add_xray_noise(x, 0.3, generator=_gen(2), reference=float(x.max()))
        assert torch.equal(a, b)
        assert torch.equal(XRayNoise(0.3)(x, generator=_gen(2)), a)

    def test_exceptions(self):
        x = torch.ones(3, 3)
        with pytest.raises(ConfigError, match=r"dose_fraction must be in \(0, 1\]; got 1.5"):
            add_xray_noise(x, 1.5, generator=_gen())
        with pytest.raises(ConfigError, match=r"photons_at_max must be in \(0, inf\); got 0"):
            XRayNoise(0.5, photons_at_max=0)
        with pytest.raises(InputError, match=r"x.max\(\) must be > 0 to set the photon scale"):
            add_xray_noise(torch.zeros(3, 3), 0.5, generator=_gen())
        with pytest.raises(InputError, match="x must be >= 0 for Poisson noise"):
            add_xray_noise(x - 2, 0.5, generator=_gen(), reference=1.0)
