"""Classical baselines: each reduces the error on a noisy phantom, keeps shape/dtype, fails clearly."""

from __future__ import annotations

import builtins

import numpy as np
import pytest

from MedDenoiseLib.baselines import (BASELINES, MissingDependencyError, denoise_bilateral, denoise_curvature_diffusion,
                                     denoise_gaussian, denoise_median, denoise_nlm, estimate_noise_sigma,
                                     get_baseline, list_baselines, run_baseline)
from MedDenoiseLib.baselines.diffusion import stable_time_step
from MedDenoiseLib.errors import ConfigError, InputError, ShapeError

FAST = [name for name in list_baselines() if name != "bm4d"]  # bm4d: see test_bm4d.py (slow, optional)
SIGMA = 0.1


def _phantom(shape) -> np.ndarray:
    """Piecewise-smooth phantom in [0.2, 0.9]: a disc, a small bright square and a gentle ramp."""
    z, y, x = np.meshgrid(*[np.arange(s, dtype=np.float64) for s in shape], indexing="ij")
    cy, cx = shape[1] / 2, shape[2] / 2
    img = 0.2 + 0.5 * (((y - cy) ** 2 + (x - cx) ** 2) < (0.3 * shape[1]) ** 2)
    img += 0.2 * ((np.abs(y - cy + 6) < 3) & (np.abs(x - cx - 7) < 3)) + 0.05 * x / shape[2]
    return img


@pytest.fixture(scope="module")
def volume():
    clean = _phantom((12, 40, 40))
    noisy = clean + np.random.default_rng(0).normal(0.0, SIGMA, clean.shape)
    return clean, noisy


def _rmse(a, b):
    return float(np.sqrt(np.mean((np.asarray(a, np.float64) - b) ** 2)))


class TestRegistry:
    def test_every_issue_method_is_registered(self):
        assert {"gaussian", "median", "bilateral", "curvature_diffusion", "gradient_diffusion", "nlm", "dipy_nlm",
                "wavelet", "bm4d"} == set(list_baselines())
        assert all(spec.name == name for name, spec in BASELINES.items())

    def test_unknown_name_lists_the_known_ones(self):
        with pytest.raises(ConfigError, match="baseline must be one of .*'median'.*got 'medain'"):
            get_baseline("medain")

    def test_unknown_parameter_names_the_method(self):
        with pytest.raises(ConfigError, match="parameters of baseline 'median'.*\\['width'\\]"):
            run_baseline("median", np.zeros((5, 5)), width=2.0)


class TestDenoisingReducesError:
    """Noisy phantom with white noise of std 0.1: every method must beat the noisy input."""

    @pytest.mark.parametrize("name", FAST)
    def test_volume(self, name, volume):
        clean, noisy = volume
        out = run_baseline(name, noisy, sigma=SIGMA)
        assert out.shape == noisy.shape and out.dtype == np.float64
        assert _rmse(out, clean) < 0.75 * _rmse(noisy, clean), name

    @pytest.mark.parametrize("name", [n for n in FAST if n != "dipy_nlm"])  # DIPY's filter is 3D-only in spirit
    def test_single_slice_as_2d(self, name, volume):
        clean, noisy = volume[0][:1], volume[1][:1].astype(np.float32)
        out = run_baseline(name, noisy, sigma=SIGMA)
        assert out.shape == (1, 40, 40) and out.dtype == np.float32
        assert _rmse(out, clean) < 0.8 * _rmse(noisy, clean), name

    def test_plain_2d_image(self, volume):
        out = denoise_nlm(volume[1][5], sigma=SIGMA)
        assert out.shape == (40, 40) and _rmse(out, volume[0][5]) < 0.75 * _rmse(volume[1][5], volume[0][5])


class TestDtypeAndIdentity:
    def test_integer_input_comes_back_float32(self):
        img = (np.arange(100).reshape(10, 10) % 7).astype(np.int16)
        assert denoise_median(img).dtype == np.float32

    @pytest.mark.parametrize("name", ["bilateral", "nlm", "wavelet", "dipy_nlm"])
    def test_sigma_zero_is_identity(self, name, volume):
        noisy = volume[1][:4]
        np.testing.assert_array_equal(run_baseline(name, noisy, sigma=0.0), noisy)

    def test_median_removes_an_impulse_exactly(self):
        img = np.zeros((5, 5))
        img[2, 2] = 9.0
        np.testing.assert_array_equal(denoise_median(img), np.zeros((5, 5)))

    def test_gaussian_keeps_a_constant(self):
        np.testing.assert_allclose(denoise_gaussian(np.full((6, 9, 9), 3.0), width=2.0), 3.0, rtol=0, atol=1e-6)


class TestNoiseEstimate:
    def test_white_noise_level_is_recovered(self):
        rng = np.random.default_rng(1)
        noise = rng.normal(0.0, 0.05, (128, 128))
        # MAD estimator: relative standard error about 1.3 / sqrt(N / 4) for N/4 finest coefficients
        assert estimate_noise_sigma(noise) == pytest.approx(0.05, rel=4 * 1.3 / np.sqrt(128 * 128 / 4))

    def test_sigma_none_estimates(self, volume):
        clean, noisy = volume
        out = denoise_bilateral(noisy[:2])
        assert _rmse(out, clean[:2]) < _rmse(noisy[:2], clean[:2])


class TestExceptions:
    def test_bad_shape(self):
        with pytest.raises(ShapeError, match="must be \\(H, W\\), \\(D, H, W\\) or \\(1, H, W\\)"):
            denoise_median(np.zeros((2, 2, 2, 2)))

    def test_nan(self):
        img = np.zeros((4, 4))
        img[1, 1] = np.nan
        with pytest.raises(InputError, match="NaN/inf voxels in array must be 0; got 1"):
            denoise_gaussian(img)

    def test_negative_sigma(self):
        with pytest.raises(ConfigError, match="sigma must be a finite number >= 0; got -1"):
            denoise_nlm(np.zeros((8, 8)), sigma=-1)

    def test_bad_radius(self):
        with pytest.raises(ConfigError, match="radius must be an integer >= 1; got 0"):
            denoise_median(np.zeros((5, 5)), radius=0)

    def test_unstable_time_step(self):
        assert stable_time_step(3) == 0.0625 and stable_time_step(2, (0.5, 0.5)) == 0.0625
        with pytest.raises(ConfigError, match="time_step must be <= .* 0.0625 .*got 0.1"):
            denoise_curvature_diffusion(np.zeros((6, 6, 6)), time_step=0.1)

    def test_missing_optional_package_names_the_extra(self, monkeypatch):
        real_import = builtins.__import__

        def fail_skimage(name, *args, **kwargs):
            if name.startswith("skimage"):
                raise ImportError("No module named 'skimage'")
            return real_import(name, *args, **kwargs)

        monkeypatch.setattr(builtins, "__import__", fail_skimage)
        monkeypatch.setattr("importlib.import_module", lambda name: fail_skimage(name))
        with pytest.raises(MissingDependencyError, match=r"pip install 'meddenoise\[baselines\]'"):
            denoise_nlm(np.zeros((8, 8)), sigma=0.1)
