"""Log-uniform level draws (``random_modality_noise(draw="log_uniform")``, training's ``noise.level_draw``)."""

import math

import pytest
import torch

from MedDenoiseLib.errors import ConfigError
from MedDenoiseLib.noise import random_modality_noise
from MedDenoiseLib.noise.base import replay
from MedDenoiseLib.noise.modality import LogUniformLevelNoise


def _level(record):
    return record["params"]["dose_fraction"]


def test_the_level_is_drawn_log_uniformly_by_hand():
    sampler = random_modality_noise("xr", level_range=(0.01, 1.0), draw="log_uniform")
    assert isinstance(sampler, LogUniformLevelNoise)
    _, record = sampler(torch.full((4, 4), 100.0), generator=torch.Generator().manual_seed(11))
    u = float(torch.rand((), generator=torch.Generator().manual_seed(11), dtype=torch.float64))
    assert _level(record) == pytest.approx(0.01 * 100.0 ** u, rel=1e-12)  # exp(log 0.01 + (log 1 - log 0.01) u)


def test_half_of_the_draws_fall_below_the_geometric_mean():
    sampler = random_modality_noise("xr", level_range=(0.01, 1.0), draw="log_uniform")
    generator = torch.Generator().manual_seed(0)
    levels = [_level(sampler(torch.ones(2, 2), generator=generator)[1]) for _ in range(2000)]
    below = sum(level < 0.1 for level in levels) / len(levels)
    assert below == pytest.approx(0.5, abs=0.04)  # a uniform draw would put 9 % there
    assert 0.01 <= min(levels) and max(levels) <= 1.0


def test_the_record_replays_and_keeps_the_options():
    sampler = random_modality_noise("xr", level_range=(0.05, 1.0), draw="log_uniform", photons_at_max=1.0e5)
    x = torch.full((8, 8), 500.0)
    noisy, record = sampler(x, generator=torch.Generator().manual_seed(4))
    assert torch.equal(replay(record, x), noisy)
    assert record["params"]["photons_at_max"] == 1.0e5 and sampler.photons_at_max == 1.0e5


@pytest.mark.parametrize(("level_range", "draw", "message"), [
    ((0.0, 15.0), "log_uniform", r"level_range must be \(low, high\) with 0 < low <= high.*\(0\.0, 15\.0\)"),
    ((1.0, 15.0), "normal", r"draw must be 'uniform' or 'log_uniform'; got 'normal'"),
])
def test_bad_draws_are_refused_naming_the_parameter(level_range, draw, message):
    with pytest.raises(ConfigError, match=message):
        random_modality_noise("mr", level_range=level_range, draw=draw)


def test_uniform_stays_the_default():
    sampler = random_modality_noise("mr", level_range=(1.0, 15.0))
    assert not isinstance(sampler, LogUniformLevelNoise) and not math.isnan(sampler.sigma_percent_range[0])
