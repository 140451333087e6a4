"""Blind-spot masking: N2V neighbours, structN2V lines, Noise2Self J-invariance, explicit generators."""

import pytest
import torch

from MedDenoiseLib.errors import ConfigError, ShapeError
from MedDenoiseLib.training.n2v_masking import n2s_mask, n2v_mask


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _ramp(shape):
    """Distinct values, so a replaced voxel's source can be located."""
    return torch.arange(torch.Size(shape).numel(), dtype=torch.float64).reshape(shape)


class TestN2V:
    def test_fraction_and_at_least_one_per_sample(self):
        x = torch.rand(2, 1, 5, 64, 64, generator=_gen(1))
        _, mask = n2v_mask(x, fraction=0.002, generator=_gen())
        share = mask.float().mean().item()
        assert abs(share - 0.002) < 4 * (0.002 / mask.numel()) ** 0.5 + 1e-4  # binomial tolerance
        _, tiny = n2v_mask(torch.rand(3, 1, 1, 4, 4, generator=_gen(2)), fraction=1e-4, generator=_gen())
        assert tiny.flatten(1).any(dim=1).all()

    def test_replacement_is_another_voxel_within_radius(self):
        x = _ramp((2, 1, 3, 9, 9))
        masked, mask = n2v_mask(x, fraction=0.3, radius=2, generator=_gen())
        for b, c, d, h, w in mask.nonzero().tolist():
            flat = int(masked[b, c, d, h, w].item()) - b * 3 * 81
            sd, sh, sw = flat // 81, (flat % 81) // 9, flat % 9
            assert (sd, sh, sw) != (d, h, w)
            assert abs(sd - d) <= 1 and abs(sh - h) <= 2 and abs(sw - w) <= 2  # depth radius capped by (3-1)//2
        assert torch.equal(masked[~mask], x[~mask])

    def test_single_slice_never_uses_the_voxel_itself(self):
        x = _ramp((1, 1, 1, 5, 5))
        masked, mask = n2v_mask(x, fraction=0.5, radius=3, generator=_gen(3))
        assert (masked[mask] != x[mask]).all()

    def test_same_generator_state_same_mask(self):
        x = torch.rand(2, 1, 3, 16, 16, generator=_gen(4))
        a, ma = n2v_mask(x, fraction=0.05, generator=_gen(9))
        b, mb = n2v_mask(x, fraction=0.05, generator=_gen(9))
        assert torch.equal(a, b) and torch.equal(ma, mb)

    def test_struct_line_hides_neighbours_along_the_axis(self):
        x = torch.zeros(1, 1, 1, 9, 9)
        x[0, 0, 0, 4, 4] = 1.0  # min 0, max 1: struct values are drawn in [0, 1]
        masked, mask = n2v_mask(x, fraction=1e-6, struct_axis="x", struct_span=2, generator=_gen(5))
        (_, _, _, h, w), = mask.nonzero().tolist()
        changed = (masked != x).nonzero().tolist()
        assert all(row[3] == h and abs(row[4] - w) <= 2 for row in changed)
        assert len(changed) >= 2

    def test_exceptions(self):
        with pytest.raises(ConfigError, match=r"fraction must be in \(0, 0.5\]; got 0.7"):
            n2v_mask(torch.rand(1, 1, 3, 8, 8), fraction=0.7, generator=_gen())
        with pytest.raises(ShapeError, match="needs an axis of length >= 3"):
            n2v_mask(torch.rand(1, 1, 1, 2, 2), fraction=0.1, generator=_gen())
        with pytest.raises(ShapeError, match=r"must be a non-empty \(B, C, D, H, W\) tensor"):
            n2v_mask(torch.rand(8, 8), fraction=0.1, generator=_gen())


class TestN2S:
    def test_one_coset_per_sample(self):
        _, mask = n2s_mask(torch.rand(2, 1, 2, 8, 8, generator=_gen()), grid=4, generator=_gen(1))
        assert mask.flatten(1).sum(1).tolist() == [2 * 4, 2 * 4]  # depth 2 < grid: all slices, 1/16 in-plane

    def test_j_invariance(self):
        """Masked inputs depend only on unmasked voxels: changing the masked voxels changes nothing."""
        x = torch.rand(1, 1, 4, 12, 12, generator=_gen(2))
        masked, mask = n2s_mask(x, grid=4, generator=_gen(7))
        altered = torch.where(mask, torch.full_like(x, 99.0), x)
        masked_again, mask_again = n2s_mask(altered, grid=4, generator=_gen(7))
        assert torch.equal(mask, mask_again) and torch.allclose(masked, masked_again)
        assert not torch.equal(masked[mask], x[mask])

    def test_exceptions(self):
        with pytest.raises(ConfigError, match="grid must be >= 2; got 1"):
            n2s_mask(torch.rand(1, 1, 1, 8, 8), grid=1, generator=_gen())
        with pytest.raises(ShapeError, match="must be >= 2 for Noise2Self"):
            n2s_mask(torch.rand(1, 1, 4, 1, 8), generator=_gen())
