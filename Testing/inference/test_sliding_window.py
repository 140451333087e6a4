"""Sliding window + Gaussian blending + TTA: identity, constants, seams, flips, cancel, progress."""

import itertools

import pytest
import torch
from torch import nn

from MedDenoiseLib.errors import CancelledError, ConfigError, ShapeError
from MedDenoiseLib.inference.blending import gaussian_importance_map, patch_grid, patch_starts
from MedDenoiseLib.inference.sliding_window import sliding_window_moments
from MedDenoiseLib.inference.tta import View, apply_view, flip_set

CPU = torch.device("cpu")


def run(image, predictor, roi=(4, 8, 8), tta=1, **kw):
    kw.setdefault("overlap", 0.25)
    return sliding_window_moments(image, predictor, roi_size=roi, sigma_scale=0.125,
                                  sw_batch_size=kw.pop("batch", 3), sw_device=CPU, views=flip_set(tta), **kw)


class TestBlending:
    def test_gaussian_map_peaks_at_centre_and_is_floored(self):
        w = gaussian_importance_map((5, 9, 9), 0.125)
        assert w.shape == (5, 9, 9)
        assert w[2, 4, 4] == pytest.approx(1.0)
        assert float(w.min()) >= 1e-9  # floored per axis: at least 1e-3 ** 3 in a corner
        # along one axis the profile is the same at the centre and at a border of the others
        torch.testing.assert_close(w[0, 0] / w[0, 0].max(), w[2, 4] / w[2, 4].max())

    def test_patch_starts_cover_axis_and_end_flush(self):
        assert patch_starts(10, 4, 0.5) == [0, 2, 4, 6]
        assert patch_starts(3, 8, 0.5) == [0]
        starts = patch_starts(37, 16, 0.25)
        assert starts[0] == 0 and starts[-1] == 21
        covered = set()
        for s in starts:
            covered |= set(range(s, s + 16))
        assert covered == set(range(37))

    def test_grid_count(self):
        assert len(patch_grid((10, 10, 10), (4, 4, 4), 0.5)) == 4 ** 3


class TestSlidingWindow:
    @pytest.mark.parametrize("shape", [(1, 9, 11), (3, 17, 13), (7, 20, 9), (12, 31, 30)])
    def test_identity_predictor_returns_input(self, shape):
        image = torch.rand(1, 1, *shape, generator=torch.Generator().manual_seed(0))
        mean, var = run(image, lambda x: x, tta=8)
        torch.testing.assert_close(mean, image, atol=1e-5, rtol=1e-5)
        assert float(var.abs().max()) < 1e-10  # TTA of an identity network has zero spread

    def test_constant_predictor_gives_constant(self):
        image = torch.rand(1, 1, 6, 19, 23)
        mean, _ = run(image, lambda x: torch.full_like(x, 3.5))
        torch.testing.assert_close(mean, torch.full_like(image, 3.5))

    @pytest.mark.parametrize("overlap", [0.5])
    def test_smooth_input_through_conv_net_has_no_seams(self, overlap):
        """A real conv net on a smooth ramp: tiled result matches the whole-volume pass, no steps at borders.

        The net's receptive field reaches 2 voxels. Gaussian weights (sigma = patch / 8) fall so fast
        that where a small overlap meets the flush last patch, patch edges still carry a few percent
        of the weight (1.8 % error here at overlap 0.25 with these tiny patches); the product defaults
        are checked on realistic patches in ``test_default_patch_and_overlap_have_no_seams``.
        """
        torch.manual_seed(1)
        net = nn.Sequential(nn.Conv3d(1, 4, 3, padding=1), nn.Tanh(), nn.Conv3d(4, 1, 3, padding=1)).eval()
        z, y, x = torch.meshgrid(torch.linspace(0, 1, 40), torch.linspace(0, 1, 64), torch.linspace(0, 1, 64), indexing="ij")
        image = (0.3 * x + 0.5 * y + 0.2 * z)[None, None]
        with torch.no_grad():
            whole = net(nn.functional.pad(image, (2,) * 6, mode="replicate"))[..., 2:-2, 2:-2, 2:-2]
        tiled, _ = run(image, net, roi=(24, 32, 32), overlap=overlap)
        inner = (..., slice(4, -4), slice(4, -4), slice(4, -4))  # volume borders: reflect vs replicate context
        assert float((tiled - whole)[inner].abs().max()) < 1e-2 * float(whole.abs().max())
        # second differences along W stay as small at patch borders as elsewhere (no step)
        d2 = (tiled[..., 2:] - 2 * tiled[..., 1:-1] + tiled[..., :-2]).abs()[..., 2:-2, 2:-2, 2:-2]
        assert float(d2.max()) < 1e-2

    @pytest.mark.slow
    def test_default_patch_and_overlap_have_no_seams(self):
        """Defaults (32 x 160 x 160, overlap 0.25) on 45 x 190 x 170: within 1 % of the whole-volume pass."""
        torch.manual_seed(1)
        net = nn.Sequential(nn.Conv3d(1, 4, 3, padding=1), nn.Tanh(), nn.Conv3d(4, 1, 3, padding=1)).eval()
        axes = [torch.linspace(0, 1, n) for n in (45, 190, 170)]
        z, y, x = torch.meshgrid(*axes, indexing="ij")
        image = (0.3 * x + 0.5 * y + 0.2 * z)[None, None]
        with torch.no_grad():
            whole = net(nn.functional.pad(image, (2,) * 6, mode="replicate"))[..., 2:-2, 2:-2, 2:-2]
        tiled, _ = run(image, net, roi=(32, 160, 160), overlap=0.25, batch=1)
        inner = (..., slice(4, -4), slice(4, -4), slice(4, -4))
        assert float((tiled - whole)[inner].abs().max()) < 1e-2 * float(whole.abs().max())

    def test_volume_smaller_than_patch(self):
        image = torch.rand(1, 1, 1, 5, 6)
        mean, _ = run(image, lambda x: 2 * x, roi=(32, 160, 160))
        torch.testing.assert_close(mean, 2 * image)

    def test_rejects_bad_shape(self):
        with pytest.raises(ShapeError, match=r"must be \(1, 1, D, H, W\)"):
            run(torch.rand(2, 1, 4, 4, 4), lambda x: x)


class TestTTA:
    def test_flip_sets(self):
        assert flip_set(1) == [()]
        every_subset = [c for n in range(4) for c in itertools.combinations((2, 3, 4), n)]
        assert sorted(flip_set(8)) == sorted(every_subset)
        assert flip_set(2) == [(), (4,)]
        with pytest.raises(ConfigError, match=r"tta must be one of \[1, 2, 4, 8\]; got 3"):
            flip_set(3)

    def test_flips_are_undone(self):
        """A predictor that marks one corner: averaged over flips, the mark stays where it was."""
        image = torch.zeros(1, 1, 4, 6, 6)
        image[..., 0, 0, 0] = 1.0
        mean, var = run(image, lambda x: x * 2, roi=(4, 6, 6), tta=8)
        torch.testing.assert_close(mean, image * 2)
        assert float(var.max()) < 1e-12

    def test_position_dependent_net_shows_spread(self):
        """A net that is not flip-equivariant gives non-zero TTA spread; the mean is the flip-average."""
        ramp = torch.linspace(0, 1, 7).view(1, 1, 1, 1, 7)  # patch = image, no context margin (7 // 8 == 0)
        image = torch.ones(1, 1, 2, 4, 7)
        mean, var = run(image, lambda x: x * ramp.to(x), roi=(2, 4, 7), tta=2)
        expected = (ramp + ramp.flip(-1)) / 2
        torch.testing.assert_close(mean, expected.expand_as(image))
        torch.testing.assert_close(var, ((ramp - ramp.flip(-1)) / 2).pow(2).expand_as(image))

    def test_a_flip_view_is_its_own_inverse(self):
        x = torch.rand(1, 1, 3, 4, 5)
        for dims in flip_set(8):
            torch.testing.assert_close(apply_view(apply_view(x, View(dims)), View(dims)), x)


class TestProgressAndCancel:
    def test_progress_reports_every_view(self):
        events = []
        image = torch.rand(1, 1, 4, 16, 16)
        run(image, lambda x: x, roi=(4, 8, 8), tta=4, batch=2, progress=events.append)
        patches = events[-1].patches
        assert patches == len(patch_grid((4, 18, 18), (4, 8, 8), 0.25))  # 16 + 2 x margin (8 // 8)
        assert events[-1].patch == patches and events[-1].tta == 4 and events[-1].fraction == pytest.approx(1.0)
        assert events[-1].eta_s == pytest.approx(0.0, abs=1e-6)
        assert all(e.tta_total == 4 for e in events)

    def test_cancel_raises_and_stops_early(self):
        calls = []

        def predictor(x):
            calls.append(1)
            return x

        with pytest.raises(CancelledError, match="cancelled at patch 3/36"):  # batch of 3 = patches 1-3
            run(torch.rand(1, 1, 4, 32, 32), predictor, should_stop=lambda: len(calls) >= 1)
        assert len(calls) == 1


class TestMemoryBound:
    def test_predictor_only_ever_sees_patches(self):
        seen = []

        def predictor(x):
            seen.append(tuple(x.shape))
            return x

        image = torch.rand(1, 1, 40, 50, 60)
        run(image, predictor, roi=(8, 16, 16), tta=2, batch=2)
        assert set(seen) == {(2, 1, 8, 16, 16)}

    def test_batches_span_patches_when_tta_is_small(self):
        """TTA 1 with batch 4: four patches per forward pass (last one partial), same result as batch 1."""
        seen = []

        def predictor(x):
            seen.append(x.shape[0])
            return x * x

        image = torch.rand(1, 1, 6, 40, 40, generator=torch.Generator().manual_seed(2))
        batched, _ = run(image, predictor, roi=(6, 16, 16), tta=1, batch=4)
        patches = sum(seen)
        assert seen == [4] * (patches // 4) + ([patches % 4] if patches % 4 else [])
        single, _ = run(image, lambda x: x * x, roi=(6, 16, 16), tta=1, batch=1)
        torch.testing.assert_close(batched, single)
        torch.testing.assert_close(batched, image * image, atol=1e-5, rtol=1e-5)

    @pytest.mark.slow
    def test_large_ct_sized_volume(self):
        """512 x 512 x 300 (78.6 M voxels): stitched on the CPU, only 32 x 160 x 160 patches move."""
        image = torch.zeros(1, 1, 300, 512, 512)
        image[..., 100:200, 200:300, 200:300] = 1.0
        shapes = set()

        def predictor(x):
            shapes.add(tuple(x.shape[2:]))
            return x

        mean, _ = run(image, predictor, roi=(32, 160, 160), tta=1, batch=1)
        assert shapes == {(32, 160, 160)}
        torch.testing.assert_close(mean, image, atol=1e-5, rtol=0)
