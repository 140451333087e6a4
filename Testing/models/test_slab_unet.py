"""``slab_unet``: the shared architecture contract plus its own facts (parameter count by hand,
identity at init, 2.5D locality across slices, in-plane reach, padding to the UNet's multiple)."""

from __future__ import annotations

import pytest
import torch

from MedDenoiseLib.models import count_parameters
from architecture_contract import ArchitectureContract, assert_2p5d_locality, perturb_weights, random_input


class TestSlabUNet(ArchitectureContract):
    name = "slab_unet"
    slice_config = {"context": 0}
    bad_configs = [
        ({"features": [32]}, "features must list at least two positive ints"),
        ({"features": [32, 0]}, "features must list at least two positive ints"),
        ({"blocks": 0}, "blocks must be an int >= 1"),
        ({"context": -1}, "context must be an int >= 0"),
        ({"downscale": 0}, "downscale must be an int >= 1"),
    ]

    def test_parameter_formula(self):
        """Defaults: 12 input channels (3 slices x 2x2), scales 32/64/128, one residual block per side."""
        conv = lambda a, b, k=9: a * b * k + b  # noqa: E731
        block = lambda c: 2 * conv(c, c)  # noqa: E731
        expected = (conv(12, 32) + block(32) + conv(32, 64, 4) + block(64) + conv(64, 128, 4) + block(128)
                    + conv(128, 64, 4) + block(64) + conv(64, 32, 4) + block(32) + conv(32, 4))
        assert count_parameters(self.model()) == expected == 566_724

    def test_untrained_is_identity(self):
        x = random_input((2, 1, 3, 10, 12))
        with torch.no_grad():
            assert torch.equal(self.model()(x), x)

    def test_records_resolved_config(self):
        config = self.model().architecture_config
        assert config == {"name": "slab_unet", "context": 1, "features": [32, 64, 128], "blocks": 1,
                          "downscale": 2, "dropout": 0.0}

    def test_slices_see_only_their_neighbours(self):
        assert_2p5d_locality(perturb_weights(self.model()))

    def test_reach_in_plane(self):
        """A voxel 40 pixels away changes the output (slab25d's 8 convolutions reach 17)."""
        model = perturb_weights(self.model())
        x = random_input((1, 1, 1, 64, 64))
        y = x.clone()
        y[..., 50, 50] += 1.0
        with torch.no_grad():
            a, b = model(x), model(y)
        assert not torch.equal(a[..., 10, 10], b[..., 10, 10])

    @pytest.mark.parametrize("size", [(7, 9), (16, 16), (17, 33)])
    def test_padding_keeps_alignment(self, size):
        """Sizes off the multiple of 8 are reflect-padded at the far ends and cropped back: the output is the
        padded image's output, cropped (no shift)."""
        model = perturb_weights(self.model())
        assert model.multiple == 8
        x = random_input((1, 1, 2, *size))
        pad_h, pad_w = (-size[0]) % 8, (-size[1]) % 8
        padded = torch.nn.functional.pad(x[0], (0, pad_w, 0, pad_h), mode="reflect")[None]
        with torch.no_grad():
            y, y_padded = model(x), model(padded)
        assert y.shape == x.shape
        torch.testing.assert_close(y, y_padded[..., :size[0], :size[1]], rtol=0, atol=1e-6)
