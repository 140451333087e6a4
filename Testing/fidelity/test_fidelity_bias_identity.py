"""Uniform ROIs, HU / intensity bias and clean in -> clean out: answers computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from MedDenoiseLib.errors import ConfigError, InputError
from MedDenoiseLib.fidelity import IDENTITY_CAP_DB, clean_in_clean_out, default_roi_size, find_uniform_rois
from MedDenoiseLib.fidelity import foreground_threshold, intensity_bias


@pytest.fixture()
def ct_like():
    """Air (-1000 HU) around a 40 HU body with a textured half and a flat half, 2 slices."""
    img = np.full((2, 64, 64), -1000.0)
    img[:, 8:56, 8:56] = 40.0
    img[:, 8:56, 8:32] += 20.0 * np.sin(np.arange(24) / 2.0)
    return img


class TestUniformROIs:
    def test_flat_foreground_tiles_are_chosen(self, ct_like):
        rois = find_uniform_rois(ct_like, size=8, fraction=0.5)
        for z, y, x in rois.corners:
            tile = ct_like[z, y:y + 8, x:x + 8]
            assert tile.min() > -1000 and tile.std() == 0.0  # body, flat half, never air or its border
        assert rois.mask(ct_like.shape).sum() == len(rois) * 64

    def test_crop_inside_tissue_is_all_foreground(self):
        # a graded tissue (400-500) beside a brighter one (600), no dark background: Otsu would split the two
        x = np.arange(64.0)[None, None, :]
        tissue = np.where(x < 32, 400.0 + 100.0 * x / 31, 600.0) * np.ones((1, 64, 64))
        assert foreground_threshold(tissue) == -np.inf
        assert len(find_uniform_rois(tissue, size=16, fraction=1.0)) == 16

    def test_ties_are_kept_and_at_least_one_tile(self, ct_like):
        assert len(find_uniform_rois(ct_like, size=8, fraction=0.01)) >= 1
        flat = np.ones((1, 32, 32))
        assert len(find_uniform_rois(flat, size=8, fraction=0.25, foreground=False)) == 16

    def test_default_size(self):
        assert [default_roi_size(s) for s in [(1, 32, 32), (16, 128, 128), (1, 1024, 900)]] == [8, 32, 64]

    def test_exceptions(self, ct_like):
        with pytest.raises(ConfigError, match="size must be in"):
            find_uniform_rois(ct_like, size=2)
        with pytest.raises(ConfigError, match=r"fraction must be in \(0, 1\]"):
            find_uniform_rois(ct_like, fraction=0.0)
        checkerboard = (np.indices((1, 16, 16)).sum(axis=0) % 2).astype(float)  # every tile touches background
        with pytest.raises(InputError, match="number of foreground tiles must be >= 1"):
            find_uniform_rois(checkerboard, size=8)


class TestIntensityBias:
    def test_biased_output_gives_exactly_its_bias_in_hu(self, ct_like):
        rois = find_uniform_rois(ct_like, size=8)
        result = intensity_bias(ct_like, ct_like + 3.25, rois, modality="ct")
        assert result["value"] == 3.25 and result["unit"] == "HU" and result["roi_max_abs"] == 3.25
        assert result["bias_percent"] == pytest.approx(100 * 3.25 / 40.0)

    def test_other_modalities_report_percent_of_signal(self):
        clean = np.full((1, 16, 16), 200.0)
        rois = find_uniform_rois(clean, size=8, foreground=False)
        result = intensity_bias(clean, clean * 0.98, rois, modality="mr")
        assert result["unit"] == "%" and result["value"] == pytest.approx(-2.0)

    def test_bias_is_measured_only_in_the_rois(self, ct_like):
        rois = find_uniform_rois(ct_like, size=8)
        output = ct_like + 5.0 * ~rois.mask(ct_like.shape)
        assert intensity_bias(ct_like, output, rois)["value"] == 0.0


class TestCleanInCleanOut:
    def test_identity_gives_the_cap(self, ct_like):
        assert clean_in_clean_out(ct_like, ct_like.copy()) == IDENTITY_CAP_DB == 100.0
        assert clean_in_clean_out(ct_like, ct_like, cap_db=60.0) == 60.0

    def test_offset_gives_hand_computed_psnr(self, ct_like):
        span = ct_like.max() - ct_like.min()  # the default data range
        expected = 10 * math.log10(span ** 2 / 2.0 ** 2)
        assert clean_in_clean_out(ct_like, ct_like + 2.0) == pytest.approx(expected)
        assert clean_in_clean_out(ct_like, ct_like + 2.0, data_range=100.0) == pytest.approx(20 * math.log10(50))

    def test_exceptions(self, ct_like):
        with pytest.raises(ConfigError, match="cap_db must be in"):
            clean_in_clean_out(ct_like, ct_like, cap_db=0.0)
        with pytest.raises(Exception, match="output_on_clean shape must equal"):
            clean_in_clean_out(ct_like, ct_like[0])
