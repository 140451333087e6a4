"""DUAL-NET (``models/dualnet*.py``): the architecture contract, identity at init, the NEB's blind spot,
ablation switches, the edge variant, own uncertainty, card round trip, window attention, FLOP counting."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from MedDenoiseLib.errors import ConfigError, ShapeError
from MedDenoiseLib.models import build_model, count_parameters, get_spec
from MedDenoiseLib.models.card import load_model, read_card, save_model
from MedDenoiseLib.models.complexity import count_flops, model_complexity
from MedDenoiseLib.models.dualnet_attention import GuidanceGate, WindowSelfAttention3d
from MedDenoiseLib.models.dualnet_blocks import depth_to_space, space_to_depth
from MedDenoiseLib.models.dualnet_neb import NoiseEstimationBranch, blind_mean
from MedDenoiseLib.testing import TINY_DUALNET, tiny_dualnet

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA"))]


pytestmark = pytest.mark.usefixtures("one_thread")


def _input(shape, dtype=torch.float32, seed=0):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


class TestDualNetContract:
    """The registry contract every architecture passes (see Testing/models/test_architectures.py)."""

    def test_smoke(self):
        spec = get_spec("dualnet")
        assert spec.citation and spec.description
        model = tiny_dualnet()
        assert model.conditions_on_noise_level is False and model.has_dropout is False
        assert model.has_own_uncertainty is True
        assert model.architecture_config["name"] == "dualnet"
        x = _input((1, 1, 5, 24, 24))
        with torch.no_grad():
            y = model(x)
        assert y.shape == x.shape and torch.isfinite(y).all() and not torch.equal(y, x)

    @pytest.mark.parametrize("batch", [1, 2])
    @pytest.mark.parametrize("spatial", [(1, 1, 1), (2, 5, 3), (1, 13, 11), (5, 17, 19), (3, 33, 20)])
    def test_cardinality_odd_sizes(self, batch, spatial):
        model = tiny_dualnet()
        x = _input((batch, 1, *spatial))
        with torch.no_grad():
            outputs = model.forward_all(x)
        for key, value in outputs.items():
            assert value.shape == x.shape, key
            assert torch.isfinite(value).all(), key

    def test_pool_depth_and_no_downscale(self):
        model = tiny_dualnet(pool_depth=True, downscale=1)
        assert model.size_multiple == (2, 2, 2)
        x = _input((1, 1, 3, 7, 9))
        with torch.no_grad():
            assert model(x).shape == x.shape

    def test_dtype_float64_and_autocast(self):
        model = tiny_dualnet()
        x = _input((1, 1, 3, 17, 19), dtype=torch.float64)
        with torch.no_grad():
            y = model(x)
            y32 = model(x.float())
            with torch.autocast("cpu", dtype=torch.bfloat16):
                y_bf16 = model(x.float())
        assert y.dtype == torch.float64 and y_bf16.dtype == torch.float32
        torch.testing.assert_close(y.float(), y32)
        assert (y_bf16 - y32).abs().max() < 0.1

    @pytest.mark.parametrize("device", DEVICES)
    def test_device(self, device):
        model = tiny_dualnet().to(device)
        x = _input((1, 1, 2, 9, 10)).to(device)
        with torch.no_grad():
            assert all(v.device == x.device for v in model.forward_all(x).values())

    def test_dropout_enables_monte_carlo(self):
        model = tiny_dualnet(dropout=0.5)
        assert model.has_dropout is True and any(isinstance(m, nn.Dropout3d) for m in model.modules())
        assert count_parameters(model) == count_parameters(tiny_dualnet())
        x = _input((1, 1, 4, 16, 16))
        with torch.no_grad():
            assert torch.equal(model(x), model(x))
            model.train()
            assert not torch.equal(model(x), model(x))

    @pytest.mark.parametrize("config, match", [
        ({"edge": 1}, "edge must be one of"),
        ({"neb": "yes"}, "neb must be one of"),
        ({"nonlocal_attention": None}, "nonlocal_attention must be one of"),
        ({"channels": (8,)}, "channels must be at least two positive ints"),
        ({"channels": (8, 0)}, "channels entry must be an int >= 1"),
        ({"downscale": 3}, "downscale must be one of"),
        ({"heads": 3, "channels": (4, 8)}, "heads must divide the bottleneck width 8"),
        ({"window": (2, 8)}, "window must be three positive ints"),
        ({"own_uncertainty": "tta"}, "own_uncertainty must be one of"),
        ({"dropout": 1.0}, r"dropout must be a probability in \[0, 1\)"),
        ({"not_an_option": 1}, "unknown or missing key"),
    ])
    def test_exception(self, config, match):
        with pytest.raises(ConfigError, match=match):
            build_model("dualnet", **{**TINY_DUALNET, **config})

    def test_bad_input(self):
        model = tiny_dualnet()
        with pytest.raises(ShapeError, match="must have shape"):
            model(torch.rand(1, 2, 4, 8, 8))
        with pytest.raises(ShapeError, match="floating-point"):
            model(torch.ones(1, 1, 4, 8, 8, dtype=torch.int64))


class TestIdentityAndOutputs:
    @pytest.mark.parametrize("config", [{}, {"edge": True}, {"neb": False}, {**TINY_DUALNET, "pool_depth": True}])
    def test_untrained_model_is_the_identity(self, config):
        torch.manual_seed(0)
        model = build_model("dualnet", **config).eval()
        x = _input((1, 1, 3, 18, 21))
        with torch.no_grad():
            assert torch.equal(model(x), x)

    def test_sigma_positive_alpha_in_unit_interval(self):
        model = tiny_dualnet(scale=1.0)  # large weights push the heads to their extremes
        x = 50 * _input((2, 1, 4, 20, 20)) - 25
        with torch.no_grad():
            out = model.forward_all(x)
        assert (out["sigma"] > 0).all() and (out["alpha"] >= 0).all() and (out["alpha"] <= 1).all()
        torch.testing.assert_close(out["error_std"], out["sigma"] * (1 - out["alpha"]))

    def test_initial_noise_estimate_and_neb_denoise(self):
        torch.manual_seed(0)
        model = build_model("dualnet", **TINY_DUALNET).eval()
        x = _input((1, 1, 3, 8, 8))
        with torch.no_grad():
            out = model.forward_all(x)
        torch.testing.assert_close(out["neb_denoised"], blind_mean(x))  # the correction starts at zero
        assert 0.02 < float(out["sigma"].median()) < 0.1  # starts near 0.05, the training range's middle

    def test_forward_with_uncertainty(self):
        x = _input((1, 1, 3, 12, 12))
        with torch.no_grad():
            error = tiny_dualnet().forward_with_uncertainty(x)
            noise = tiny_dualnet(own_uncertainty="noise").forward_with_uncertainty(x)
            outputs = tiny_dualnet().forward_all(x)
        torch.testing.assert_close(error[1], outputs["error_std"])
        torch.testing.assert_close(noise[1], outputs["sigma"])
        with pytest.raises(ConfigError, match="needs DUAL-NET's noise-estimation branch"):
            tiny_dualnet(neb=False).forward_with_uncertainty(x)


class TestBlindSpot:
    """No NEB output at voxel p depends on the input at p (gradient and perturbation)."""

    @pytest.mark.parametrize("index", [(0, 0, 2, 5, 6), (0, 0, 0, 0, 0), (0, 0, 4, 10, 12), (0, 0, 1, 3, 0)])
    def test_gradient_at_the_centre_is_zero(self, index):
        model = tiny_dualnet(scale=0.3, neb_depth=4).double()
        x = _input((1, 1, 5, 11, 13), dtype=torch.float64).requires_grad_(True)
        outputs = model.forward_all(x)
        for key in ("sigma", "alpha", "neb_denoised"):
            (gradient,) = torch.autograd.grad(outputs[key][index], x, retain_graph=True)
            assert gradient[index] == 0.0, key
            assert gradient.abs().sum() > 0, key  # it does see the neighbours
        (gradient,) = torch.autograd.grad(outputs["denoised"][index], x)
        assert gradient[index] != 0.0  # the SRB is not blind

    def test_perturbing_the_centre_changes_only_the_neighbours(self):
        branch = NoiseEstimationBranch(4, depth=3)
        with torch.no_grad():
            for parameter in branch.parameters():
                parameter.add_(0.3 * torch.randn(parameter.shape, generator=torch.Generator().manual_seed(1)))
        x = _input((1, 1, 4, 9, 9), dtype=torch.float32)
        changed = x.clone()
        changed[0, 0, 2, 4, 4] += 5.0
        with torch.no_grad():
            before, after = branch(x), branch(changed)
        for a, b in zip(before, after):
            assert a[0, 0, 2, 4, 4] == b[0, 0, 2, 4, 4]
            assert not torch.equal(a, b)


class TestAblationsAndVariants:
    def test_switches_remove_modules_and_parameters(self):
        full = build_model("dualnet", **TINY_DUALNET)
        no_neb = build_model("dualnet", **TINY_DUALNET, neb=False)
        no_attention = build_model("dualnet", **TINY_DUALNET, nonlocal_attention=False)

        def kinds(model):
            return {type(m) for m in model.modules()}

        assert {NoiseEstimationBranch, GuidanceGate, WindowSelfAttention3d} <= kinds(full)
        assert not {NoiseEstimationBranch, GuidanceGate} & kinds(no_neb) and WindowSelfAttention3d in kinds(no_neb)
        assert WindowSelfAttention3d not in kinds(no_attention) and NoiseEstimationBranch in kinds(no_attention)
        assert count_parameters(no_neb) < count_parameters(full)
        assert count_parameters(no_attention) < count_parameters(full)
        assert no_neb.has_own_uncertainty is False
        with torch.no_grad():
            out = no_neb.forward_all(_input((1, 1, 2, 8, 8)))
        assert out["sigma"] is None and out["alpha"] is None and out["neb_denoised"] is None

    def test_edge_variant_is_far_smaller_and_records_its_sizes(self):
        full, edge = build_model("dualnet"), build_model("dualnet", edge=True)
        assert count_parameters(full) > 10 * count_parameters(edge)
        assert any(m.groups > 1 for m in edge.modules() if isinstance(m, nn.Conv3d))  # depthwise
        assert not any(m.groups > 1 for m in full.modules() if isinstance(m, nn.Conv3d))
        config = edge.architecture_config
        assert config["edge"] is True and config["channels"] == [16, 32, 64] and config["downscale"] == 2
        rebuilt = build_model(**{**config})
        assert count_parameters(rebuilt) == count_parameters(edge)

    def test_explicit_sizes_override_the_variant(self):
        model = build_model("dualnet", edge=True, channels=(8, 16), heads=2)
        assert model.architecture_config["channels"] == [8, 16]


class TestCardRoundTrip:
    def test_safetensors_round_trip_keeps_outputs_and_uncertainty_flag(self, tmp_path):
        model = tiny_dualnet(seed=3)
        directory = save_model(model, tmp_path / "dual", {"name": "dual_tiny", "modality": "mr"})
        card, _ = read_card(directory)
        assert card["own_uncertainty"] is True and card["architecture"]["name"] == "dualnet"
        assert card["architecture"]["neb_channels"] == 4
        loaded = load_model(directory)
        x = _input((1, 1, 3, 10, 12))
        with torch.no_grad():
            expected, actual = model.forward_all(x), loaded.network.forward_all(x)
        for key in expected:
            torch.testing.assert_close(actual[key], expected[key], rtol=0, atol=0)
        assert not any("mask" in key for key in loaded.network.state_dict())  # fixed masks are not weights

    def test_card_of_a_model_without_neb_says_so(self, tmp_path):
        directory = save_model(tiny_dualnet(neb=False), tmp_path / "plain", {"name": "plain"})
        assert read_card(directory)[0]["own_uncertainty"] is False


class TestWindowAttention:
    def _attention(self):
        torch.manual_seed(0)
        return WindowSelfAttention3d(4, heads=2, window=(1, 4, 4)).eval()

    def test_padded_windows_equal_their_unpadded_crops(self):
        attention = self._attention()
        x = _input((1, 4, 1, 5, 5))
        with torch.no_grad():
            whole = attention(x)
            torch.testing.assert_close(whole[..., :4, :4], attention(x[..., :4, :4]))
            torch.testing.assert_close(whole[..., 4:, 4:], attention(x[..., 4:, 4:]))  # one valid key

    def test_windows_do_not_mix(self):
        attention = self._attention()
        x = _input((1, 4, 1, 4, 8))
        changed = x.clone()
        changed[..., 4:] += 1.0
        with torch.no_grad():
            assert torch.equal(attention(x)[..., :4], attention(changed)[..., :4])


def test_space_to_depth_round_trip():
    x = _input((2, 3, 2, 6, 4))
    assert space_to_depth(x, 2).shape == (2, 12, 2, 3, 2)
    assert torch.equal(depth_to_space(space_to_depth(x, 2), 2), x)


class TestComplexity:
    class _Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv3d(1, 2, 3, padding=1)
            self.linear = nn.Linear(4, 3)

        def forward(self, x):
            y = self.linear(self.conv(x))  # (1, 2, 4, 4, 3)
            q = y.reshape(1, 1, 32, 3)
            return torch.nn.functional.scaled_dot_product_attention(q, q, q)

    def test_hand_computed_flops(self):
        # conv: 64 voxels x 2 outputs x 27 MACs = 3456; linear: 32 rows x 4 x 3 = 384;
        # attention: QK^T 32 x 32 x 3 + AV 32 x 32 x 3 = 6144 MACs; FLOPs = 2 x MACs
        expected = 2 * (3456 + 384 + 6144)
        assert count_flops(self._Tiny(), (1, 1, 4, 4, 4)) == expected
        info = model_complexity(self._Tiny(), (4, 4, 4))
        assert info["flops"] == expected and info["macs"] == expected // 2
        assert info["parameters"] == 2 * 27 + 2 + 4 * 3 + 3 and "multiply-accumulates" in info["convention"]

    class _Conditioned(nn.Module):
        conditions_on_noise_level = True

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv3d(2, 1, 1)

        def forward(self, x, noise_level):
            return self.conv(torch.cat([x, noise_level.reshape(-1, 1, 1, 1, 1).expand_as(x)], dim=1))

    def test_noise_conditioned_model_is_counted_with_a_level(self):
        # 64 voxels x 1 output x 2 input channels = 128 MACs
        assert count_flops(self._Conditioned(), (1, 1, 4, 4, 4)) == 2 * 128
        blind = model_complexity(build_model("slab25d", features=8, depth=3), (3, 16, 16))
        conditioned = model_complexity(build_model("slab25d", features=8, depth=3, noise_map=True), (3, 16, 16))
        assert conditioned["flops"] > blind["flops"] > 0

    def test_dualnet_counts_and_bad_shapes(self):
        edge = model_complexity(build_model("dualnet", edge=True), (8, 32, 32))
        plain = model_complexity(build_model("dualnet", edge=True, nonlocal_attention=False), (8, 32, 32))
        assert edge["flops"] > plain["flops"] > 0
        with pytest.raises(ConfigError, match="shape must be five positive ints"):
            count_flops(nn.Identity(), (1, 1, 4))
