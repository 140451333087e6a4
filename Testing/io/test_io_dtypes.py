"""Tests of MedDenoiseLib.io.dtypes: float views, casts, constant volumes."""

import logging

import numpy as np
import pytest

from MedDenoiseLib.errors import ConfigError, InputError
from MedDenoiseLib.io import as_float, cast_array, is_constant
from MedDenoiseLib.volume import Volume


class TestAsFloat:
    def test_smoke(self):
        array = np.array([[[-1024, 0, 3071]]], np.int16)
        result = as_float(Volume(array, source_dtype="int16"))
        assert result.dtype == np.float32
        np.testing.assert_array_equal(result, array)

    def test_source_untouched(self):
        volume = Volume(np.ones((1, 2, 2), np.int16))
        as_float(volume)[0, 0, 0] = 5
        assert volume.array[0, 0, 0] == 1


class TestIsConstant:
    @pytest.mark.parametrize(("array", "expected"), [(np.full((2, 2, 2), 7, np.int16), True),
                                                     (np.arange(8.0).reshape(2, 2, 2), False),
                                                     (np.zeros((1, 1, 1)), True)])
    def test_values(self, array, expected):
        assert is_constant(Volume(array)) is expected

    def test_nan_is_not_constant(self):
        assert not is_constant(Volume(np.full((1, 2, 2), np.nan)))


class TestCastArray:
    def test_integer_rounds_half_even_and_clips(self, caplog):
        with caplog.at_level(logging.WARNING):
            result = cast_array(np.array([-40000.0, -0.5, 1.5, 2.5, 40000.0]), "int16")
        np.testing.assert_array_equal(result, [-32768, 0, 2, 2, 32767])
        assert result.dtype == np.int16
        assert "clipped 2 voxels" in caplog.text

    def test_same_dtype_is_identity(self):
        array = np.zeros(3, np.int16)
        assert cast_array(array, "int16") is array

    def test_float_and_widening(self):
        assert cast_array(np.array([1, 2], np.int16), "float32").dtype == np.float32
        np.testing.assert_array_equal(cast_array(np.array([-5, 7], np.int16), "int32"), [-5, 7])

    def test_exception(self):
        with pytest.raises(InputError, match="2 non-finite voxels"):
            cast_array(np.array([np.nan, np.inf, 1.0]), "int16")
        with pytest.raises(ConfigError, match="dtype must be one of"):
            cast_array(np.zeros(2), "not-a-dtype")
