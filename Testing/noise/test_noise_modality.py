"""Default noise model per modality and the meaning of "level"."""

from __future__ import annotations

import pytest
import torch

from MedDenoiseLib.errors import ConfigError
from MedDenoiseLib.noise import (
    LEVELS,
    MODALITY_NOISE,
    RandomCTImageNoise,
    RandomCTProjectionNoise,
    RandomRicianNoise,
    RandomSpeckleNoise,
    RandomXRayNoise,
    add_ct_image_noise,
    add_rician_noise,
    noise_level_name,
    random_modality_noise,
    simulate_noise,
)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


class TestModalityNoise:
    def test_level_names(self):
        assert {m: noise_level_name(m) for m in ("ct", "mr", "us", "xr")} == {
            "ct": "dose_fraction", "mr": "sigma_percent", "us": "looks", "xr": "dose_fraction"}
        assert noise_level_name("CT") == "dose_fraction"
        assert set(MODALITY_NOISE) == set(LEVELS) == {"ct", "mr", "us", "xr"}

    @pytest.mark.parametrize(
        "modality, fast, kind, attribute, expected",
        [
            ("ct", False, RandomCTProjectionNoise, "dose_range", (0.10, 0.25)),
            ("ct", True, RandomCTImageNoise, "dose_range", (0.10, 0.25)),
            ("mr", False, RandomRicianNoise, "sigma_percent_range", (1.0, 15.0)),
            ("us", False, RandomSpeckleNoise, "looks_range", (1.0, 8.0)),
            ("xr", False, RandomXRayNoise, "dose_range", (0.10, 0.50)),
        ],
    )
    def test_default_samplers(self, modality, fast, kind, attribute, expected):
        sampler = random_modality_noise(modality, fast=fast)
        assert isinstance(sampler, kind) and getattr(sampler, attribute) == expected

    def test_narrower_range_and_options(self):
        sampler = random_modality_noise("mr", level_range=(2.0, 4.0), n_coils=4)
        record = sampler.draw(_gen())[1]
        assert 2.0 <= record["params"]["sigma_percent"] <= 4.0 and record["params"]["n_coils"] == 4
        ct = random_modality_noise("ct", level_range=0.2, fast=True, pixel_size_mm=0.7)
        assert ct.draw(_gen())[1]["params"]["dose_fraction"] == 0.2

    def test_simulate_matches_direct_call(self):
        x = torch.rand(2, 16, 16, generator=_gen(1)) * 100
        assert torch.equal(simulate_noise("mr", x, level=5.0, generator=_gen(2)),
                           add_rician_noise(x, generator=_gen(2), sigma_percent=5.0))
        hu = x * 10 - 500
        assert torch.equal(simulate_noise("ct", hu, level=0.2, generator=_gen(3), fast=True),
                           add_ct_image_noise(hu, 0.2, generator=_gen(3)))
        for modality, image in (("us", x * 2), ("xr", x), ("ct", hu)):
            y = simulate_noise(modality, image, level=0.5 if modality != "us" else 2.0, generator=_gen(4),
                               **({"n_angles": 20} if modality == "ct" else {}))
            assert y.shape == image.shape and not torch.equal(y, image)

    def test_exceptions(self):
        with pytest.raises(ConfigError, match=r"modality must be one of \['ct', 'mr', 'us', 'xr'\].*got 'pet'"):
            random_modality_noise("pet")
        with pytest.raises(ConfigError, match=r"sigma_percent_range\[1\] must be in \[0, 100\]; got 150"):
            random_modality_noise("mr", level_range=(1.0, 150.0))
        with pytest.raises(ConfigError, match=r"dose_range\[0\] must be in \(0, 1\]; got 0"):
            random_modality_noise("ct", level_range=(0.0, 0.2))
        with pytest.raises(ConfigError, match="modality must be one of"):
            noise_level_name("dx")
