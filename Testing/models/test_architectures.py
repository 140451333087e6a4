"""Tests of the built-in architectures (cdae, cae, dncnn, resunet) and of ``models.padding``.

One class per architecture, in the kornia manner; the contract shared by every model
(``registry`` docstring) lives in ``architecture_contract.ArchitectureContract`` and runs once per subclass.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from MedDenoiseLib.errors import ConfigError, ShapeError
from MedDenoiseLib.models import build_model, count_parameters, get_spec
from MedDenoiseLib.models.padding import pad_to_multiple

from architecture_contract import (ArchitectureContract, assert_2p5d_locality, conv_parameters, perturb_weights,
                                   random_input)

class _SigmoidAutoencoderContract(ArchitectureContract):
    def test_output_activation(self):
        x = 5 * random_input((1, 1, 4, 8, 8)) - 2
        with torch.no_grad():
            torch.manual_seed(0)
            y = self.model()(x)
            torch.manual_seed(0)  # same weights, linear output
            linear = self.model(output_activation="none")(x)
        assert y.min() > 0 and y.max() < 1
        torch.testing.assert_close(y, torch.sigmoid(linear))


class TestCDAE(_SigmoidAutoencoderContract):
    name = "cdae"
    slice_config = {"pool_depth": False}
    bad_configs = [
        ({"channels": (64, 32)}, "channels must be four positive ints"),
        ({"channels": (64, 32, 0, 64)}, "channels entry must be an int >= 1"),
        ({"output_activation": "relu"}, "output_activation must be one of"),
        ({"pool_depth": "yes"}, "pool_depth must be one of"),
    ]

    def test_parameter_formula(self):
        expected = conv_parameters(1, 64) + conv_parameters(64, 32) + conv_parameters(32, 32) + conv_parameters(32, 64) + conv_parameters(64, 1)
        assert count_parameters(self.model()) == expected == 141_889


class TestCAE(_SigmoidAutoencoderContract):
    name = "cae"
    slice_config = {"pool_depth": False, "base_channels": 8}
    bad_configs = [
        ({"base_channels": 0}, "base_channels must be an int >= 1"),
        ({"base_channels": 16.0}, "base_channels must be an int >= 1"),
        ({"pool_depth": 1}, "pool_depth must be one of"),
    ]

    @pytest.mark.parametrize("b", [64, 16])
    def test_parameter_formula(self, b):
        expected = conv_parameters(1, b) + conv_parameters(b, 2 * b) + conv_parameters(2 * b, 2 * b) + conv_parameters(2 * b, b) + conv_parameters(b, 1)
        assert count_parameters(self.model(base_channels=b)) == expected


class TestDnCNN(ArchitectureContract):
    name = "dncnn"
    slice_config = {"kernel_depth": 1}
    bad_configs = [
        ({"depth": 1}, "depth must be an int >= 2"),
        ({"features": 2.5}, "features must be an int >= 1"),
        ({"kernel_depth": 2}, "kernel_depth must be one of"),
        ({"kernel_depth": 3.0}, "kernel_depth must be one of"),
        ({"norm": "layer"}, "norm must be one of"),
    ]

    @pytest.mark.parametrize("norm", ["none", "group", "batch"])
    @pytest.mark.parametrize("depth, features, kernel_depth", [(10, 32, 3), (17, 64, 3), (4, 8, 1)])
    def test_parameter_formula(self, depth, features, kernel_depth, norm):
        k, f = 9 * kernel_depth, features
        middle = conv_parameters(f, f, k, bias=norm == "none") + (0 if norm == "none" else 2 * f)
        expected = conv_parameters(1, f, k) + (depth - 2) * middle + conv_parameters(f, 1, k)
        model = self.model(depth=depth, features=features, kernel_depth=kernel_depth, norm=norm)
        assert count_parameters(model) == expected
        if (depth, features, kernel_depth, norm) == (10, 32, 3, "none"):
            assert expected == 223_201  # the figure quoted in the docstring

    def test_untrained_is_identity(self):
        x = random_input((1, 1, 3, 7, 6))
        with torch.no_grad():
            assert torch.equal(self.model()(x), x)

    def test_kernel_depth_one_is_per_slice(self):
        model = self.model(kernel_depth=1, depth=3, features=4)
        with torch.no_grad():
            for p in model.parameters():
                p.normal_(0, 0.3)
            x = random_input((1, 1, 3, 8, 8))
            per_slice = torch.cat([model(x[:, :, i:i + 1]) for i in range(3)], dim=2)
            torch.testing.assert_close(model(x), per_slice)

    def test_overfit_one_patch(self):
        torch.manual_seed(0)
        model = build_model(self.name, depth=5, features=16)
        g = torch.Generator().manual_seed(0)
        z = torch.linspace(0, 1, 16)
        clean = (0.3 + 0.4 * z[None, :] * z[:, None]).expand(8, 16, 16)[None, None].contiguous()
        noisy = clean + 0.3 * torch.randn(clean.shape, generator=g)
        optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
        losses = []
        for _ in range(30):
            optimiser.zero_grad()
            loss = nn.functional.mse_loss(model(noisy), clean)
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
        assert losses[-1] < 0.5 * losses[0]


class TestResUNet(ArchitectureContract):
    name = "resunet"
    slice_config = {"pool_depth": False}
    bad_configs = [
        ({"channels": (16,)}, "channels must be at least two positive ints"),
        ({"num_res_units": -1}, "num_res_units must be an int >= 0"),
        ({"norm": "batch"}, "norm must be one of"),
    ]

    @pytest.mark.parametrize("norm", ["group", "none"])
    def test_norms(self, norm):
        x = random_input((1, 1, 1, 9, 9))
        with torch.no_grad():
            assert self.model(norm=norm)(x).shape == x.shape


class TestSlab25D(ArchitectureContract):
    name = "slab25d"
    slice_config = {"context": 0}
    bad_configs = [
        ({"depth": 2}, "depth must be an int >= 3"),
        ({"context": -1}, "context must be an int >= 0"),
        ({"norm": "layer"}, "norm must be one of"),
    ]

    def test_parameter_formula(self):
        """Defaults: 3 slices x 2x2 space-to-depth = 12 input channels, 48 features, 8 convolutions."""
        f, c_in, c_out = 48, 12, 4
        conv = lambda a, b, bias=True: a * b * 9 + (b if bias else 0)  # noqa: E731
        expected = conv(c_in, f) + 6 * (conv(f, f, bias=False) + 2 * f) + conv(f, c_out)
        assert count_parameters(self.model()) == expected == 131956

    def test_slices_see_only_their_neighbours(self):
        """Changing slice 0 leaves slices >= 2 unchanged with context 1 (2.5D locality)."""
        assert_2p5d_locality(perturb_weights(self.model(norm="none")))

    def test_untrained_is_identity(self):
        x = random_input((2, 1, 3, 10, 12))
        with torch.no_grad():
            assert torch.equal(self.model()(x), x)

    def test_noise_map_requires_level(self):
        model = self.model(noise_map=True)
        x = random_input((2, 1, 3, 8, 8))
        with pytest.raises(ConfigError, match="noise_level is required"):
            model(x)
        with torch.no_grad():
            assert model(x, torch.tensor([0.05, 0.1])).shape == x.shape


class TestPadToMultiple:
    @pytest.mark.parametrize("spatial", [(1, 1, 1), (3, 17, 19), (5, 33, 20), (8, 8, 8)])
    @pytest.mark.parametrize("multiples", [4, (1, 4, 4), (2, 8, 1)])
    def test_crop_round_trip(self, spatial, multiples):
        x = random_input((2, 1, *spatial))
        padded, crop = pad_to_multiple(x, multiples)
        m = (multiples,) * 3 if isinstance(multiples, int) else multiples
        assert all(s % k == 0 and s >= n for s, k, n in zip(padded.shape[2:], m, spatial))
        assert torch.equal(padded[crop], x)

    def test_reflect_and_replicate(self):
        x = torch.arange(3.0).reshape(1, 1, 1, 1, 3)
        padded, _ = pad_to_multiple(x, (4, 1, 6))
        assert padded[0, 0, 0, 0].tolist() == [1.0, 0.0, 1.0, 2.0, 1.0, 0.0]  # reflect, 3 | 3 -> 1 | 2
        assert torch.equal(padded[0, 0, :, 0], padded[0, 0, :1, 0].expand(4, 6))  # D = 1 replicated

    def test_min_sizes(self):
        padded, crop = pad_to_multiple(torch.zeros(1, 1, 1, 3, 3), (1, 4, 4), min_sizes=(1, 8, 8))
        assert padded.shape[2:] == (1, 8, 8)
        assert padded[crop].shape == (1, 1, 1, 3, 3)

    def test_exception(self):
        with pytest.raises(ShapeError, match="must have 5 dimensions"):
            pad_to_multiple(torch.zeros(3, 3), 2)
        with pytest.raises(ConfigError, match="multiples must be a positive int"):
            pad_to_multiple(torch.zeros(1, 1, 2, 2, 2), (0, 2, 2))
