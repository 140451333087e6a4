"""The contract every registered architecture passes (``models.registry`` docstring), as a base
class in the kornia manner: each architecture's test class subclasses it and sets ``name``,
``slice_config`` and ``bad_configs``. Imported by the ``test_*`` modules beside it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from MedDenoiseLib.errors import ConfigError, ShapeError
from MedDenoiseLib.models import build_model, count_parameters, get_spec

__all__ = ["DEVICES", "SHAPES", "ArchitectureContract", "assert_2p5d_locality", "conv_parameters", "perturb_weights",
           "random_input"]

DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA absent")),
]
SHAPES = [(1, 16, 16), (3, 17, 19), (5, 33, 20), (32, 40, 40)]


def conv_parameters(cin: int, cout: int, k: int = 27, bias: bool = True) -> int:
    """Parameters of a Conv3d with ``k`` weights per kernel."""
    return cin * cout * k + (cout if bias else 0)


def random_input(shape: tuple[int, ...], dtype: torch.dtype = torch.float32, device: str = "cpu") -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.rand(shape, generator=g, dtype=dtype).to(device)


class ArchitectureContract:
    """Tests every registered model must pass; subclasses set ``name`` and the configs."""

    name: str
    slice_config: dict = {}  # the configuration meant for single slices (D = 1)
    bad_configs: list[tuple[dict, str]] = []

    def model(self, **config) -> nn.Module:
        return build_model(self.name, **config).eval()

    def test_smoke(self):
        model = self.model()
        spec = get_spec(self.name)
        assert spec.citation and spec.description
        assert model.conditions_on_noise_level is False
        assert model.has_dropout is False
        assert model.architecture_config["name"] == self.name
        x = random_input((1, 1, 8, 24, 24))
        with torch.no_grad():
            y = model(x)
        assert y.shape == x.shape and torch.isfinite(y).all()

    @pytest.mark.parametrize("batch", [1, 2])
    @pytest.mark.parametrize("spatial", SHAPES)
    def test_cardinality(self, batch, spatial):
        model = self.model()
        x = random_input((batch, 1, *spatial))
        with torch.no_grad():
            assert model(x).shape == x.shape

    @pytest.mark.parametrize("spatial", [(1, 1, 1), (1, 13, 11), (2, 5, 3)])
    @pytest.mark.parametrize("use_slice_config", [False, True])
    def test_thin_volumes(self, spatial, use_slice_config):
        model = self.model(**(self.slice_config if use_slice_config else {}))
        x = random_input((2, 1, *spatial))
        with torch.no_grad():
            y = model(x)
        assert y.shape == x.shape and torch.isfinite(y).all()

    def test_dtype_float64(self):
        model = self.model()
        x = random_input((1, 1, 3, 17, 19), dtype=torch.float64)
        with torch.no_grad():
            y = model(x)
            y32 = model(x.float())
            y_double_model = model.double()(x)
        assert y.dtype == torch.float64 and y_double_model.dtype == torch.float64
        torch.testing.assert_close(y.float(), y32)
        torch.testing.assert_close(y_double_model, y, atol=1e-5, rtol=1e-4)

    def test_autocast_bfloat16(self):
        model = self.model()
        x = random_input((1, 1, 4, 12, 12))
        with torch.no_grad():
            reference = model(x)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                y = model(x)
        assert y.dtype == torch.float32 and y.shape == x.shape
        assert (y - reference).abs().max() < 0.1

    @pytest.mark.parametrize("device", DEVICES)
    def test_device(self, device):
        model = self.model().to(device)
        x = random_input((1, 1, 2, 9, 10), device=device)
        with torch.no_grad():
            assert model(x).device == x.device

    def test_count_parameters(self):
        assert count_parameters(self.model()) > 0
        assert count_parameters(self.model(dropout=0.2)) == count_parameters(self.model())

    def test_dropout(self):
        model = self.model(dropout=0.5)
        assert model.has_dropout is True
        assert any(isinstance(m, (nn.Dropout, nn.Dropout3d)) for m in model.modules())
        with torch.no_grad():  # move every weight off its initial value (dncnn starts as the identity)
            for p in model.parameters():
                p.add_(0.05 * torch.randn_like(p))
        x = random_input((1, 1, 4, 16, 16))
        torch.manual_seed(0)
        with torch.no_grad():
            model.eval()
            assert torch.equal(model(x), model(x))
            model.train()
            assert not torch.equal(model(x), model(x))
            model.eval()  # Monte-Carlo dropout: only the dropout layers sampling
            for m in model.modules():
                if isinstance(m, (nn.Dropout, nn.Dropout3d)):
                    m.train()
            assert not torch.equal(model(x), model(x))

    def test_exception(self):
        for config, match in self.bad_configs + [({"not_an_option": 1}, "unknown or missing key"),
                                                 ({"dropout": 1.0}, r"dropout must be a probability in \[0, 1\)")]:
            with pytest.raises(ConfigError, match=match):
                build_model(self.name, **config)
        model = self.model()
        with pytest.raises(ShapeError, match="must have shape"):
            model(torch.rand(1, 8, 8, 8))
        with pytest.raises(ShapeError, match="must have shape"):
            model(torch.rand(1, 2, 4, 8, 8))
        with pytest.raises(ShapeError, match="floating-point"):
            model(torch.ones(1, 1, 4, 8, 8, dtype=torch.int64))


def perturb_weights(model: nn.Module) -> nn.Module:
    """Add seeded noise to every weight: residual models start as the identity (last layer zero)."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    return model


def assert_2p5d_locality(model: nn.Module) -> None:
    """With context 1, changing slice 0 changes slice 1 and leaves slices >= 2 exactly as they were."""
    x = random_input((1, 1, 6, 16, 16))
    y = x.clone()
    y[:, :, 0] += 1.0
    with torch.no_grad():
        a, b = model(x), model(y)
    assert torch.equal(a[:, :, 2:], b[:, :, 2:]) and not torch.equal(a[:, :, 1], b[:, :, 1])
