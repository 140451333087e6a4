"""Inserted lesions: exact insertion, recorded seeded draws, analytic CNR and NPW d′ for white noise."""

from __future__ import annotations

import math

import numpy as np
import pytest

from MedDenoiseLib.errors import ConfigError, ShapeError
from MedDenoiseLib.fidelity import Lesion, draw_lesions, find_uniform_rois, insert_lesions, lesion_scores


@pytest.fixture(scope="module")
def white_case():
    """Flat clean volume, σ = 2 white noise; ROIs cover every 32 x 32 tile of every slice."""
    clean = np.zeros((9, 128, 128))
    noise = np.random.default_rng(3).normal(0.0, 2.0, clean.shape)
    rois = find_uniform_rois(np.ones_like(clean), size=32, fraction=1.0, foreground=False)
    return clean, noise, rois


class TestInsertLesions:
    def test_sphere_voxels_get_the_contrast(self):
        out = insert_lesions(np.zeros((3, 5, 5)), [Lesion((1, 2, 2), 1.0, 10.0)])
        assert out.sum() == 70.0 and out[1, 2, 2] == 10.0 and out[0, 2, 2] == 10.0 and out[0, 1, 1] == 0.0

    def test_anisotropic_spacing(self):
        out = insert_lesions(np.zeros((3, 9, 9)), [Lesion((1, 4, 4), 2.0, 1.0)], spacing_zyx=(3.0, 1.0, 1.0))
        assert out[0].sum() == 0 and out[1].sum() == 13  # r = 2 disc in-plane: 13 voxel centres; ±3 mm is outside

    def test_mask_is_clipped_at_the_border(self):
        out = insert_lesions(np.zeros((1, 4, 4)), [Lesion((0, 0, 0), 1.0, 1.0)])
        assert out.sum() == 3


class TestDrawLesions:
    def _clean(self):
        z, y, x = np.mgrid[0:6, 0:64, 0:64]
        return 100.0 + 50.0 * (x >= 32) + 0.01 * np.sin(x + y)

    def test_same_seed_same_lesions_and_no_overlap(self):
        clean = self._clean()
        rois = find_uniform_rois(clean, size=16, fraction=1.0, foreground=False)
        args = dict(n=6, radius_mm=(1.5, 3.0), contrast=(10.0, 20.0))
        a = draw_lesions(clean, rois, generator=np.random.default_rng(5), **args)
        b = draw_lesions(clean, rois, generator=np.random.default_rng(5), **args)
        c = draw_lesions(clean, rois, generator=np.random.default_rng(6), **args)
        assert a == b and a != c and len(a) == 6
        masks = [insert_lesions(np.zeros_like(clean), [lesion]) != 0 for lesion in a]
        assert np.sum(masks, axis=0).max() == 1  # no voxel in two lesions
        for lesion in a:
            assert 1.5 <= lesion.radius_mm <= 3.0 and 10.0 <= abs(lesion.contrast) <= 20.0

    def test_sign_keeps_the_intensity_range(self):
        clean = self._clean()
        rois = find_uniform_rois(clean, size=16, fraction=1.0, foreground=False)
        lesions = draw_lesions(clean, rois, n=8, generator=np.random.default_rng(0), radius_mm=(1.5, 3.0),
                               contrast=(10.0, 20.0))
        inserted = insert_lesions(clean, lesions)
        assert inserted.max() <= clean.max() and inserted.min() >= clean.min()
        assert {np.sign(les.contrast) for les in lesions} == {-1.0, 1.0}  # bright side down, dark side up

    def test_constant_image_has_no_room(self, caplog):
        rois = find_uniform_rois(np.ones((1, 32, 32)), size=16, foreground=False)
        assert draw_lesions(np.ones((1, 32, 32)), rois, n=2, generator=np.random.default_rng(0),
                            radius_mm=(1.5, 2.0), contrast=(1.0, 2.0)) == []
        assert "only 0 of 2 lesions fit" in caplog.text

    def test_exceptions(self):
        rois = find_uniform_rois(np.ones((1, 32, 32)), size=16, foreground=False)
        with pytest.raises(ConfigError, match="n must be an integer"):
            draw_lesions(np.ones((1, 32, 32)), rois, n=1.5, generator=np.random.default_rng(0),
                         radius_mm=(1.5, 2.0), contrast=(1.0, 2.0))


class TestLesionScores:
    @pytest.mark.parametrize("lesion", [Lesion((4.0, 40.2, 50.7), 3.0, 1.5), Lesion((4.0, 90.0, 90.0), 2.0, -3.0)])
    def test_white_noise_dprime_and_cnr_are_analytic(self, white_case, lesion):
        clean, noise, rois = white_case
        inserted = insert_lesions(clean, [lesion])
        n_voxels = int(np.count_nonzero(inserted))
        scores = lesion_scores(lesion, clean=clean, output=clean + noise, output_inserted=inserted + noise, rois=rois)
        # d′ = |C| √N / σ; its estimate errs by σ_t's relative standard error 1 / √(2 (K - 1))
        tolerance = 3.0 / math.sqrt(2 * (scores["noise_placements"] - 1))
        assert scores["dprime"] == pytest.approx(abs(lesion.contrast) * math.sqrt(n_voxels) / 2.0, rel=tolerance)
        assert scores["signal_kept"] == pytest.approx(1.0)
        box = lesion.box(clean.shape, (1, 1, 1))
        local = 3.0 / math.sqrt(2 * noise[box].size)  # local noise std from at least the box's voxels
        assert scores["cnr"] == pytest.approx(abs(lesion.contrast) / 2.0, rel=local)

    def test_erased_lesion_keeps_no_signal(self, white_case):
        clean, noise, rois = white_case
        lesion = Lesion((4.0, 40.2, 50.7), 3.0, 1.5)
        scores = lesion_scores(lesion, clean=clean, output=clean + noise, output_inserted=clean + noise, rois=rois)
        assert scores["signal"] == 0.0 and scores["dprime"] == 0.0 and scores["cnr"] == 0.0

    def test_noise_free_output_is_infinitely_detectable(self, white_case):
        clean, _, rois = white_case
        lesion = Lesion((4.0, 40.2, 50.7), 3.0, 1.5)
        scores = lesion_scores(lesion, clean=clean, output=clean, output_inserted=insert_lesions(clean, [lesion]),
                               rois=rois)
        assert math.isinf(scores["dprime"]) and math.isinf(scores["cnr"])

    def test_exceptions(self, white_case):
        clean, noise, rois = white_case
        with pytest.raises(ShapeError, match="output_inserted shape must equal the clean image's shape"):
            lesion_scores(Lesion((4.0, 40.0, 50.0), 3.0, 1.5), clean=clean, output=clean,
                          output_inserted=clean[:, :64], rois=rois)
