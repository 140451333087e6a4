"""Records, replay and argument checks of MedDenoiseLib.noise.base / .checks."""

from __future__ import annotations

import pytest
import torch

from MedDenoiseLib.errors import ConfigError
from MedDenoiseLib.noise import GaussianNoise, RandomGaussianNoise, from_record, replay, seeded_generator
from MedDenoiseLib.noise.base import draw_seed, draw_uniform
from MedDenoiseLib.noise.checks import check_number, parse_range


class TestParseRange:
    def test_scalar_is_degenerate_range(self):
        assert parse_range("sigma_range", 3) == (3.0, 3.0)

    def test_pair(self):
        assert parse_range("sigma_range", (1, 2.5)) == (1.0, 2.5)
        assert parse_range("sigma_range", [0, 0]) == (0.0, 0.0)

    def test_exceptions(self):
        with pytest.raises(ConfigError, match=r"sigma_range must satisfy min <= max; got \(2, 1\)\. Use \(1, 2\)"):
            parse_range("sigma_range", (2, 1))
        with pytest.raises(ConfigError, match=r"dose_range\[0\] must be in \(0, 1\]; got 0"):
            parse_range("dose_range", (0, 0.5), low=0.0, high=1.0, low_open=True)
        with pytest.raises(ConfigError, match=r"sigma_range must be a number or a \(min, max\) pair"):
            parse_range("sigma_range", (1, 2, 3))
        with pytest.raises(ConfigError, match="must be a real number"):
            parse_range("sigma_range", (True, 2))
        with pytest.raises(ConfigError, match="must be finite"):
            parse_range("sigma_range", float("nan"))


class TestCheckNumber:
    def test_message_has_name_rule_value_fix(self):
        with pytest.raises(ConfigError, match=r"^sigma_percent must be in \[0, 100\]; got -2\. Use a percentage\.$"):
            check_number("sigma_percent", -2, low=0, high=100, fix="Use a percentage.")

    def test_open_bounds_and_integer(self):
        assert check_number("a", 1.0, low=0.0, low_open=True) == 1.0
        with pytest.raises(ConfigError, match=r"a must be in \(0, inf\); got 0"):
            check_number("a", 0, low=0.0, low_open=True)
        with pytest.raises(ConfigError, match="n must be an integer; got 2.5"):
            check_number("n", 2.5, integer=True)
        with pytest.raises(ConfigError, match="must be a real number"):
            check_number("a", "1")


class TestDraws:
    def test_uniform_degenerate_returns_low_and_consumes_one_number(self):
        g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
        assert draw_uniform(g1, 0.3, 0.3) == 0.3
        draw_uniform(g2, 0.0, 1.0)
        assert draw_seed(g1) == draw_seed(g2)

    def test_uniform_within_range(self):
        g = torch.Generator().manual_seed(0)
        values = [draw_uniform(g, 2.0, 3.0) for _ in range(200)]
        assert min(values) >= 2.0 and max(values) < 3.0

    def test_seed_is_python_int(self):
        seed = draw_seed(torch.Generator().manual_seed(0))
        assert isinstance(seed, int) and 0 <= seed < 2**62

    def test_sampler_does_not_touch_global_rng(self):
        state = torch.random.get_rng_state()
        RandomGaussianNoise((1.0, 2.0))(torch.zeros(4, 4), torch.Generator().manual_seed(0))
        assert torch.equal(torch.random.get_rng_state(), state)


class TestRecords:
    def test_record_format(self):
        transform, record = RandomGaussianNoise(2.0).draw(torch.Generator().manual_seed(0))
        assert record["name"] == "gaussian" and record["params"] == {"sigma": 2.0, "mean": 0.0}
        assert record["version"] == 1 and transform.to_record(record["seed"]) == record
        assert "sigma=2.0" in repr(transform)

    def test_from_record_rebuilds_equal_transform(self):
        transform = from_record({"name": "gaussian", "params": {"sigma": 1.5, "mean": 0.0}, "seed": 3})
        assert isinstance(transform, GaussianNoise) and transform.sigma == 1.5

    def test_replay_matches_manual_application(self):
        record = {"name": "gaussian", "params": {"sigma": 1.5, "mean": 0.0}, "seed": 11, "version": 1}
        x = torch.zeros(3, 5)
        expected = GaussianNoise(1.5)(x, generator=torch.Generator().manual_seed(11))
        assert torch.equal(replay(record, x), expected)

    @pytest.mark.parametrize(
        "record, pattern",
        [
            ({"name": "gaussian"}, "record must be a mapping with keys name, params, seed"),
            ({"name": "nope", "params": {}, "seed": 1}, r"record\['name'\] must be one of"),
            ({"name": "gaussian", "params": {}, "seed": 1, "version": 9}, r"record\['version'\] must be 1"),
            ({"name": "gaussian", "params": {"sigma": 1, "bogus": 2}, "seed": 1}, r"record\['params'\] must match"),
            ({"name": "gaussian", "params": {"sigma": -1}, "seed": 1}, r"sigma must be in \[0, inf\); got -1"),
        ],
    )
    def test_bad_records(self, record, pattern):
        with pytest.raises(ConfigError, match=pattern):
            from_record(record)

    def test_bad_seed(self):
        with pytest.raises(ConfigError, match=r"seed must be an integer in \[0, 2\*\*64\); got -1"):
            seeded_generator(-1)
