"""Tests of MedDenoiseLib.normalization: per-modality maps, exact inverse, modality guess."""

import json
import logging

import numpy as np
import pytest

from MedDenoiseLib.errors import ConfigError, InputError
from MedDenoiseLib.normalization import (
    Normalization,
    canonical_modality,
    fit_normalization,
    guess_modality,
    normalization_choice,
)
from MedDenoiseLib.volume import Volume


def _assert_round_trip(norm: Normalization, array: np.ndarray) -> None:
    """inverse(forward(x)) == x within float32 rounding of the normalised value.

    forward returns float32, so the error is about eps32 * |x'| * scale; the bound
    1e-5 relative to max(|x|, scale) covers it with a wide margin.
    """
    back = norm.inverse(norm.forward(array))
    assert back.dtype == np.float32
    bound = 1e-5 * np.maximum(np.abs(array.astype(np.float64)), norm.scale)
    assert np.all(np.abs(back - array.astype(np.float64)) <= bound)


class TestCanonicalModality:
    @pytest.mark.parametrize(("given", "expected"), [("ct", "ct"), ("CT", "ct"), (" Mr ", "mr"), ("US", "us"),
                                                     ("xr", "xr"), ("DX", "xr"), ("cr", "xr"), ("MG", "xr"),
                                                     ("XA", "xr"), ("RF", "xr"), ("DR", "xr")])
    def test_values(self, given, expected):
        assert canonical_modality(given) == expected

    def test_exception(self):
        with pytest.raises(ConfigError, match=r"modality must be one of ct, mr, us, xr.*got 'PET'"):
            canonical_modality("PET")


class TestNormalization:
    def test_smoke(self):
        norm = Normalization("CT", scale=2000, offset=-1000, method="ct_window")
        assert norm.modality == "ct" and isinstance(norm.scale, float)
        assert norm.forward(np.zeros((1, 2, 2), np.int16)).dtype == np.float32

    def test_dict_round_trip(self):
        norm = fit_normalization(np.arange(1, 101, dtype=np.float32), "mr")
        record = json.loads(json.dumps(norm.to_dict()))
        assert Normalization.from_dict(record) == norm

    def test_exception(self):
        with pytest.raises(ConfigError, match="scale must be finite and > 0; got 0"):
            Normalization("ct", scale=0, offset=0, method="ct_window")
        with pytest.raises(ConfigError, match="offset must be finite"):
            Normalization("ct", scale=1, offset=float("nan"), method="ct_window")
        with pytest.raises(ConfigError, match="method must be one of"):
            Normalization("ct", scale=1, offset=0, method="zscore")
        with pytest.raises(ConfigError, match=r"record must have exactly the keys.*'extra'"):
            Normalization.from_dict({"modality": "ct", "scale": 1, "offset": 0, "method": "ct_window", "extra": 1})


class TestFitNormalization:
    def test_ct_window(self):
        norm = fit_normalization(np.zeros(3, np.int16), "CT")
        np.testing.assert_array_equal(norm.forward(np.array([-1000, 0, 1000, 3000, -2000])),
                                      np.array([0.0, 0.5, 1.0, 2.0, -0.5], np.float32))
        hu = np.arange(-3024, 3072, 7, dtype=np.int16)
        np.testing.assert_array_equal(np.rint(norm.inverse(norm.forward(hu))).astype(np.int16), hu)
        _assert_round_trip(norm, hu)

    def test_mr_percentiles(self):
        values = np.arange(1, 1001, dtype=np.float32)
        norm = fit_normalization(values, "mr")
        low, high = np.percentile(values, [0.5, 99.5])
        assert norm.method == "mr_percentile"
        assert norm.offset == pytest.approx(low) and norm.scale == pytest.approx(high - low)
        np.testing.assert_allclose(norm.forward(np.array([low, high])), [0.0, 1.0], atol=1e-6)
        _assert_round_trip(norm, values)

    def test_mr_zero_background_excluded(self):
        values = np.zeros(1000, np.float32)
        values[:100] = np.linspace(100, 200, 100)
        assert fit_normalization(values, "mr").offset == pytest.approx(np.percentile(values[:100], 0.5))
        values[:600] = np.linspace(100, 200, 600)  # mostly non-zero: all voxels used
        assert fit_normalization(values, "mr").offset == pytest.approx(np.percentile(values, 0.5))

    def test_mr_degenerate(self, caplog):
        with caplog.at_level(logging.WARNING):
            constant = fit_normalization(np.full((2, 3, 4), 250.0, np.float32), "mr")
        assert constant.method == "constant" and constant.scale == 1.0
        forward = constant.forward(np.full(3, 250.0))
        np.testing.assert_array_equal(forward, [0.5, 0.5, 0.5])
        np.testing.assert_array_equal(constant.inverse(forward), [250.0, 250.0, 250.0])
        assert "Constant MR volume" in caplog.text
        spiky = np.full(1000, 5.0)
        spiky[0] = 9.0  # percentiles equal, min < max
        minmax = fit_normalization(spiky, "mr")
        assert minmax.method == "mr_minmax" and minmax.offset == 5.0 and minmax.scale == 4.0
        zeros = fit_normalization(np.zeros(8), "mr")
        assert np.isfinite(zeros.forward(np.zeros(8))).all()

    def test_us(self):
        norm = fit_normalization(np.array([0, 128, 255], np.uint8), "us")
        np.testing.assert_allclose(norm.forward(np.array([0, 255])), [0.0, 1.0])
        _assert_round_trip(norm, np.arange(256, dtype=np.uint8))

    @pytest.mark.parametrize(("peak", "bits"), [(0, 8), (255, 8), (256, 10), (1023, 10), (4000, 12),
                                                (16383, 14), (16384, 16), (65535, 16)])
    def test_xr_bits(self, peak, bits):
        values = np.array([0, peak], np.uint16)
        norm = fit_normalization(values, "DX")
        assert norm.modality == "xr" and norm.scale == 2**bits - 1
        _assert_round_trip(norm, values)

    def test_xr_percentile(self):
        values = np.arange(1, 1001, dtype=np.float32)  # p99.5 by linear interpolation: 1 + 0.995 * 999 = 995.005
        norm = fit_normalization(values, "DX", "xr_percentile")
        assert norm.method == "xr_percentile" and norm.offset == 0.0
        assert norm.scale == pytest.approx(995.005)
        _assert_round_trip(norm, values)

    def test_xr_percentile_ignores_a_few_pixels_across_a_bit_boundary(self):
        clipped = np.full(1000, 1023.0, np.float32)
        clipped[:500] = np.linspace(0, 1023, 500)
        noisy = clipped.copy()
        noisy[:3] = 1030.0  # three pixels above 10 bits: the bit rule scales by 4095 instead of 1023
        assert fit_normalization(clipped, "xr").scale == 1023 and fit_normalization(noisy, "xr").scale == 4095
        assert fit_normalization(noisy, "xr", "xr_percentile").scale == 1023.0
        assert fit_normalization(clipped, "xr", "xr_percentile").scale == 1023.0

    def test_xr_percentile_degenerate(self, caplog):
        spiky = np.zeros(1000, np.float32)
        spiky[0] = 40.0  # p99.5 is 0, the maximum is not
        with caplog.at_level(logging.WARNING):
            assert fit_normalization(spiky, "xr", "xr_percentile").scale == 40.0
            zeros = fit_normalization(np.zeros(8), "xr", "xr_percentile")
        assert zeros.method == "constant" and zeros.scale == 1.0
        assert "scaling by the maximum 40" in caplog.text and "no positive value" in caplog.text

    def test_normalization_choice(self):
        assert normalization_choice({}) == "default"
        assert normalization_choice({"normalization": "xr_percentile"}) == "xr_percentile"
        with pytest.raises(ConfigError, match=r"card normalization must be one of default, xr_percentile; got 'z'"):
            normalization_choice({"normalization": "z"})

    def test_exception(self):
        with pytest.raises(ConfigError, match=r"choice must be one of default, xr_percentile; got 'p99'"):
            fit_normalization(np.zeros(3), "xr", "p99")
        with pytest.raises(ConfigError, match=r"modality must be xr for a model normalised with 'xr_percentile'.*"
                                              r"got 'mr'.*modality='xr', --modality xr"):
            fit_normalization(np.ones(3), "mr", "xr_percentile")
        with pytest.raises(ConfigError, match="modality must be one of"):
            fit_normalization(np.zeros(3), "pet")
        with pytest.raises(InputError, match="at least one voxel"):
            fit_normalization(np.zeros((0, 3)), "ct")
        with pytest.raises(InputError, match="1 NaN/Inf voxels"):
            fit_normalization(np.array([1.0, np.nan]), "mr")
        with pytest.raises(InputError, match="must fit in 16 bits.*max 70000"):
            fit_normalization(np.array([0, 70000], np.int32), "xr")

    def test_float32_round_trip_random(self):
        rng = np.random.default_rng(0)
        values = rng.normal(300, 150, size=(3, 5, 7)).astype(np.float32)
        for modality in ("ct", "mr", "us"):
            _assert_round_trip(fit_normalization(values, modality), values)


class TestGuessModality:
    def test_dicom_tag(self):
        volume = Volume(np.zeros((1, 2, 2), np.uint16), metadata={"Modality": "MG"})
        assert guess_modality(volume) == ("xr", "DICOM Modality tag is 'MG'")

    def test_ct(self):
        array = np.array([[[-1024, -500, 40, 1500]]], np.int16)
        modality, reason = guess_modality(Volume(array, source_dtype="int16"))
        assert modality == "ct" and "air in HU" in reason

    def test_us(self):
        assert guess_modality(Volume(np.array([[[0, 17, 255]]], np.uint8)))[0] == "us"

    def test_xr(self):
        modality, reason = guess_modality(Volume(np.array([[[0, 900, 4000]]], np.uint16)))
        assert modality == "xr" and "single slice" in reason

    def test_mr_and_unmapped_tag(self):
        array = np.array([[[0, 120, 900]], [[3, 5, 8]]], np.int16)
        assert guess_modality(Volume(array))[0] == "mr"
        modality, reason = guess_modality(Volume(array, metadata={"Modality": "PT"}))
        assert modality == "mr" and "'PT' not mapped" in reason
