"""Contract shared by every noise sampler: records, replay, seeds, shapes, dtypes, devices."""

from __future__ import annotations

import json

import pytest
import torch

from MedDenoiseLib.errors import ConfigError, InputError, ShapeError
from MedDenoiseLib import noise as N

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _ct(shape, dtype, device):
    x = torch.full(shape, -1000.0, dtype=dtype, device=device)
    x[..., 2:-2, 3:-3] = 40.0
    return x


def _positive(shape, dtype, device):
    g = torch.Generator().manual_seed(123)
    return (torch.rand(shape, generator=g, dtype=torch.float64) * 200 + 1).to(device=device, dtype=dtype)


def _bmode(shape, dtype, device):
    return (_positive(shape, dtype, device) * 1.2).clamp(max=255.0)


def _unit(shape, dtype, device):
    return _positive(shape, dtype, device) / 201.0


# name -> (sampler factory, input factory)
SAMPLERS = {
    "gaussian": (lambda: N.RandomGaussianNoise((1.0, 5.0)), _positive),
    "poisson_gaussian": (lambda: N.RandomPoissonGaussianNoise((0.5, 2.0), (0.0, 1.0)), _positive),
    "ct_projection": (lambda: N.RandomCTProjectionNoise((0.1, 0.25), n_angles=24), _ct),
    "ct_image": (lambda: N.RandomCTImageNoise((0.1, 0.25)), _ct),
    "rician": (lambda: N.RandomRicianNoise((1.0, 15.0), n_coils=2), _positive),
    "speckle": (lambda: N.RandomSpeckleNoise((1.0, 4.0)), _bmode),
    "multiplicative": (lambda: N.RandomMultiplicativeNoise((0.01, 0.1), clip_range=(0, 255)), _bmode),
    "xray": (lambda: N.RandomXRayNoise((0.1, 0.5)), _positive),
    "salt_pepper": (lambda: N.RandomSaltPepperNoise((0.05, 0.2)), _positive),
    "gondara_gaussian": (lambda: N.RandomGondaraGaussianNoise((0.05, 0.2)), _unit),
    "gondara_poisson": (lambda: N.RandomGondaraPoissonNoise((0.05, 0.2)), _unit),
}
SHAPE = (2, 1, 3, 10, 12)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
class TestSamplerContract:
    def _make(self, name, shape=SHAPE, dtype=torch.float32, device="cpu"):
        sampler_factory, input_factory = SAMPLERS[name]
        return sampler_factory(), input_factory(shape, dtype, device)

    @pytest.mark.parametrize("device", DEVICES)
    def test_record_replays_bit_for_bit(self, name, device):
        sampler, x = self._make(name, device=device)
        y, record = sampler(x, generator=torch.Generator().manual_seed(7))
        restored = json.loads(json.dumps(record))
        assert restored == record
        assert set(record) == {"name", "params", "seed", "version"} and isinstance(record["seed"], int)
        assert torch.equal(N.replay(restored, x), y)
        transform = N.from_record(restored)
        again = transform(x, generator=torch.Generator(device=device).manual_seed(record["seed"]))
        assert torch.equal(again, y)

    def test_same_seed_same_output_different_seed_differs(self, name):
        sampler, x = self._make(name)
        y1, r1 = sampler(x, torch.Generator().manual_seed(1))
        y2, r2 = sampler(x, torch.Generator().manual_seed(1))
        y3, r3 = sampler(x, torch.Generator().manual_seed(2))
        assert torch.equal(y1, y2) and r1 == r2
        assert r1["seed"] != r3["seed"] and not torch.equal(y1, y3)

    def test_draw_is_deterministic_and_returns_module(self, name):
        sampler, _ = self._make(name)
        transform, record = sampler.draw(torch.Generator().manual_seed(3))
        assert isinstance(transform, N.NoiseTransform) and record["name"] == transform.noise_name
        assert transform.params() == record["params"]
        assert sampler.draw(torch.Generator().manual_seed(3))[1] == record

    @pytest.mark.parametrize("shape", [(9, 11), (1, 1, 4, 9, 11), (0, 1, 8, 8)])
    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    def test_shape_dtype_device_preserved(self, name, shape, dtype):
        sampler, x = self._make(name, shape=shape, dtype=dtype)
        y, _ = sampler(x, torch.Generator().manual_seed(0))
        assert y.shape == x.shape and y.dtype == dtype and y.device == x.device
        assert bool(torch.isfinite(y).all())

    def test_noncontiguous_input(self, name):
        sampler, x = self._make(name, shape=(3, 12, 10))
        xt = x.transpose(-1, -2)
        assert not xt.is_contiguous()
        transform, record = sampler.draw(torch.Generator().manual_seed(5))
        y = transform(xt, generator=N.seeded_generator(record["seed"]))
        assert torch.equal(y, transform(xt.contiguous(), generator=N.seeded_generator(record["seed"])))

    def test_generator_required(self, name):
        sampler, x = self._make(name)
        transform, _ = sampler.draw(torch.Generator().manual_seed(0))
        with pytest.raises(TypeError):
            transform(x)
        with pytest.raises(ConfigError, match="generator is required"):
            transform(x, generator=None)
        with pytest.raises(ConfigError, match="generator is required"):
            sampler.draw(None)
        with pytest.raises(ConfigError, match="generator is required"):
            transform(x, generator=0)

    def test_bad_inputs(self, name):
        sampler, x = self._make(name)
        transform, _ = sampler.draw(torch.Generator().manual_seed(0))
        g = torch.Generator().manual_seed(0)
        with pytest.raises(InputError, match="x.dtype must be floating point"):
            transform(x.to(torch.int32), generator=g)
        with pytest.raises(ShapeError, match=r"x.shape must have at least 2 axes"):
            transform(x.flatten()[:5], generator=g)
        bad = x.clone()
        bad.view(-1)[0] = float("nan")
        with pytest.raises(InputError, match="x must be finite"):
            transform(bad, generator=g)

    @pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
    def test_generator_device_mismatch(self, name):
        sampler, x = self._make(name, device="cuda")
        transform, _ = sampler.draw(torch.Generator().manual_seed(0))
        with pytest.raises(ConfigError, match="generator.device must match"):
            transform(x, generator=torch.Generator().manual_seed(0))


class TestRegistry:
    def test_every_sampler_is_registered(self):
        names = {SAMPLERS[key][0]().transform_type.noise_name for key in SAMPLERS}
        assert names == set(N.registered_noise_names())

    def test_public_names_exported(self):
        for name in N.__all__:
            assert hasattr(N, name), name
