"""Tests of MedDenoiseLib.metrics.image, one class per metric (kornia style).

Hand-checkable cases first, then agreement with scikit-image, then error messages.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from MedDenoiseLib.errors import ConfigError, ShapeError
from MedDenoiseLib.metrics import mae, psnr, rmse, ssim, ssim_map, ssim_margin

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                                  reason="CUDA absent"))]


@pytest.fixture(params=["numpy", "torch"])
def backend(request):
    """Convert a float64 numpy array to the backend under test (float32 for torch, to vary dtype)."""
    if request.param == "numpy":
        return lambda a: a
    return lambda a: torch.as_tensor(a, dtype=torch.float32)


@pytest.fixture(scope="module")
def camera() -> np.ndarray:
    """A 128×128 crop of skimage's camera in [0, 1] (bundled, no network), else a synthetic pattern."""
    try:
        from skimage import data

        img = data.camera()[128:256, 160:288].astype(np.float64) / 255.0
    except Exception:  # pragma: no cover - offline fallback
        y, x = np.mgrid[0:128, 0:128] / 128.0
        img = 0.5 + 0.25 * np.sin(12 * x) * np.cos(9 * y) + 0.2 * (x > 0.5)
    return img


def noisy(img: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    return img + np.random.default_rng(seed).normal(0.0, sigma, img.shape)


def skimage_ssim(a: np.ndarray, b: np.ndarray, data_range: float) -> float:
    metrics = pytest.importorskip("skimage.metrics")
    return metrics.structural_similarity(a, b, data_range=data_range, gaussian_weights=True, sigma=1.5,
                                         use_sample_covariance=False)


def one_off() -> tuple[np.ndarray, np.ndarray]:
    """2×2 zeros and the same with one voxel off by 0.1: MSE = 0.01 / 4."""
    ref = np.zeros((2, 2))
    test = ref.copy()
    test[0, 0] = 0.1
    return ref, test


class TestPSNR:
    def test_smoke(self, backend):
        ref, test = one_off()
        assert isinstance(psnr(backend(ref), backend(test), data_range=1.0), float)

    def test_hand_computed(self):
        ref, test = one_off()
        assert psnr(ref, test, data_range=1.0) == pytest.approx(10 * math.log10(1 / (0.01 / 4)))
        assert psnr(ref, test, data_range=2.0) == pytest.approx(10 * math.log10(4 / (0.01 / 4)))

    def test_identity_is_inf(self, backend):
        img = np.arange(12.0).reshape(3, 4)
        assert psnr(backend(img), backend(img), data_range=11.0) == math.inf

    @pytest.mark.parametrize("sigma", [0.01, 0.1])
    def test_agrees_with_skimage(self, camera, sigma):
        metrics = pytest.importorskip("skimage.metrics")
        test = noisy(camera, sigma)
        ours = psnr(camera, test, data_range=1.0)
        assert ours == pytest.approx(metrics.peak_signal_noise_ratio(camera, test, data_range=1.0), abs=1e-9)

    def test_uint8_input(self, camera):
        ref = (camera * 255).astype(np.uint8)
        test = ref.copy()
        test[0, 0] = ref[0, 0] ^ 1  # one grey level off
        assert psnr(ref, test, data_range=255) == pytest.approx(10 * math.log10(255**2 * ref.size))

    def test_mask_selects_region(self):
        ref, test = one_off()
        outside = np.array([[False, True], [True, True]])
        assert psnr(ref, test, data_range=1.0, mask=outside) == math.inf
        inside = np.array([[1, 1], [0, 0]])  # 0/1 masks are accepted
        assert psnr(ref, test, data_range=1.0, mask=inside) == pytest.approx(10 * math.log10(1 / (0.01 / 2)))

    @pytest.mark.parametrize("device", DEVICES)
    def test_torch_device_and_grad(self, device):
        ref, test = one_off()
        t = torch.tensor(test, device=device, requires_grad=True)
        assert psnr(torch.tensor(ref, device=device), t, data_range=1.0) == pytest.approx(26.0206, abs=1e-4)

    def test_data_range_is_required(self):
        ref, test = one_off()
        with pytest.raises(TypeError, match="data_range"):
            psnr(ref, test)  # type: ignore[call-arg]

    @pytest.mark.parametrize("bad", [0, -1.0, math.nan, math.inf, True, "1"])
    def test_exception_data_range(self, bad):
        ref, test = one_off()
        with pytest.raises(ConfigError, match=r"data_range must be a finite number > 0; got .*data_range=1\.0"):
            psnr(ref, test, data_range=bad)

    def test_exception_shape(self):
        with pytest.raises(ShapeError, match=r"test must have the same shape as reference \(2, 2\); got \(2, 3\)"):
            psnr(np.zeros((2, 2)), np.zeros((2, 3)), data_range=1.0)

    def test_exception_non_finite(self):
        ref, test = one_off()
        test[0, 1], test[1, 1] = np.nan, np.inf
        with pytest.raises(ConfigError, match=r"non-finite values .* in test must be 0; got 2\. Replace"):
            psnr(ref, test, data_range=1.0)

    def test_exception_mask(self):
        ref, test = one_off()
        with pytest.raises(ConfigError, match=r"mask must have the image shape \(2, 2\); got \(4,\)"):
            psnr(ref, test, data_range=1.0, mask=np.ones(4, bool))
        with pytest.raises(ConfigError, match=r"voxels selected by mask must be >= 1; got 0"):
            psnr(ref, test, data_range=1.0, mask=np.zeros((2, 2), bool))
        with pytest.raises(ConfigError, match=r"mask must be boolean or contain only 0 and 1"):
            psnr(ref, test, data_range=1.0, mask=np.full((2, 2), 0.5))

    def test_exception_empty_and_scalar(self):
        with pytest.raises(ShapeError, match="non-empty array"):
            psnr(np.zeros((0, 4)), np.zeros((0, 4)), data_range=1.0)
        with pytest.raises(ShapeError, match="non-empty array"):
            psnr(np.float64(1.0), np.float64(1.0), data_range=1.0)


class TestRMSE:
    def test_hand_computed(self, backend):
        ref, test = one_off()
        assert rmse(backend(ref), backend(test)) == pytest.approx(0.05)

    def test_identity_is_zero(self):
        img = np.arange(27.0).reshape(3, 3, 3)
        assert rmse(img, img) == 0.0

    def test_consistent_with_psnr(self, camera):
        test = noisy(camera, 0.05)
        assert psnr(camera, test, data_range=1.0) == pytest.approx(20 * math.log10(1.0 / rmse(camera, test)))

    def test_mask(self):
        ref, test = one_off()
        assert rmse(ref, test, mask=np.array([[True, False], [False, False]])) == pytest.approx(0.1)
        assert rmse(ref, test, mask=torch.tensor([[False, True], [True, True]])) == 0.0

    def test_exception(self):
        with pytest.raises(ShapeError, match=r"\(3,\); got \(4,\)"):
            rmse(np.zeros(3), np.zeros(4))
        with pytest.raises(ConfigError, match="in reference must be 0; got 1"):
            rmse(np.array([np.nan, 0.0]), np.zeros(2))
        with pytest.raises(ConfigError, match="real numeric dtype"):
            rmse(np.zeros(2, complex), np.zeros(2))


class TestMAE:
    def test_hand_computed(self, backend):
        ref = np.zeros(4)
        test = np.array([0.0, 1.0, -1.0, 2.0])
        assert mae(backend(ref), backend(test)) == pytest.approx(1.0)

    def test_mask(self):
        ref = np.zeros(4)
        test = np.array([0.0, 1.0, -1.0, 2.0])
        assert mae(ref, test, mask=np.array([0, 0, 1, 1])) == pytest.approx(1.5)

    def test_exception(self):
        with pytest.raises(ConfigError, match="voxels selected by mask must be >= 1"):
            mae(np.zeros(3), np.zeros(3), mask=[False, False, False])


class TestSSIM:
    def test_smoke(self, backend, camera):
        value = ssim(backend(camera), backend(noisy(camera, 0.05)), data_range=1.0)
        assert isinstance(value, float) and 0.0 < value < 1.0

    @pytest.mark.parametrize("shape", [(11, 11), (13, 17), (11, 12, 15), (1, 13, 12)])
    def test_identity_is_one(self, backend, shape):
        img = np.random.default_rng(1).random(shape)
        assert ssim(backend(img), backend(img), data_range=1.0) == pytest.approx(1.0, abs=1e-12)

    def test_constant_images_hand_computed(self):
        # Zero variance everywhere: SSIM = (2ab + C1) / (a² + b² + C1), C1 = (0.01 · 1)².
        a, b, c1 = 0.2, 0.4, 1e-4
        value = ssim(np.full((11, 11), a), np.full((11, 11), b), data_range=1.0)
        assert value == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1))

    @pytest.mark.parametrize("sigma", [0.02, 0.05, 0.1, 0.3])
    def test_agrees_with_skimage_2d(self, camera, sigma):
        test = noisy(camera, sigma)
        assert ssim(camera, test, data_range=1.0) == pytest.approx(skimage_ssim(camera, test, 1.0), abs=1e-3)

    def test_agrees_with_skimage_2d_data_range(self, camera):
        ref, test = camera * 1000.0, noisy(camera, 0.05) * 1000.0
        assert ssim(ref, test, data_range=1000.0) == pytest.approx(skimage_ssim(ref, test, 1000.0), abs=1e-3)

    def test_agrees_with_skimage_3d(self):
        vol = np.random.default_rng(2).random((16, 18, 20))
        test = noisy(vol, 0.1)
        assert ssim(vol, test, data_range=1.0) == pytest.approx(skimage_ssim(vol, test, 1.0), abs=1e-3)

    def test_3d_decreases_with_noise(self):
        z, y, x = np.mgrid[0:16, 0:16, 0:16] / 16.0
        vol = 0.5 + 0.3 * np.sin(6 * x) * np.cos(5 * y) * np.cos(4 * z)
        assert ssim(vol, vol, data_range=1.0) == pytest.approx(1.0)
        values = [ssim(vol, noisy(vol, s, seed=3), data_range=1.0) for s in (0.01, 0.05, 0.1, 0.3)]
        assert all(a > b for a, b in zip(values, values[1:])), values

    def test_single_slice_volume_is_2d(self, camera):
        test = noisy(camera, 0.05)
        assert ssim(camera[None], test[None], data_range=1.0) == pytest.approx(ssim(camera, test, data_range=1.0))

    def test_spatial_dims_2_is_mean_over_slices(self):
        vol = np.random.default_rng(4).random((11, 12, 13))
        test = noisy(vol, 0.1)
        per_slice = [ssim(vol[k], test[k], data_range=1.0) for k in range(11)]
        assert ssim(vol, test, data_range=1.0, spatial_dims=2) == pytest.approx(np.mean(per_slice))
        assert ssim(vol, test, data_range=1.0, spatial_dims=2) != pytest.approx(ssim(vol, test, data_range=1.0))

    @pytest.mark.parametrize("batch", [1, 2])
    def test_leading_axes_are_averaged(self, batch):
        vol = np.random.default_rng(5).random((batch, 1, 11, 12, 13))  # (B, C, D, H, W)
        test = noisy(vol, 0.1)
        expected = np.mean([ssim(vol[b, 0], test[b, 0], data_range=1.0) for b in range(batch)])
        assert ssim(torch.from_numpy(vol), torch.from_numpy(test), data_range=1.0, spatial_dims=3) == \
            pytest.approx(expected)

    def test_symmetric(self, camera):
        test = noisy(camera, 0.1)
        assert ssim(camera, test, data_range=1.0) == pytest.approx(ssim(test, camera, data_range=1.0))

    def test_mask_selects_region(self, camera):
        test = camera.copy()
        test[:, :40] = noisy(camera[:, :40], 0.2)  # damage the left strip only
        right = np.zeros(camera.shape, bool)
        right[:, 60:] = True  # further than the 5-voxel window radius from the damage
        assert ssim(camera, test, data_range=1.0, mask=right) == pytest.approx(1.0)
        assert ssim(camera, test, data_range=1.0, mask=~right) < 0.9
        full = np.ones(camera.shape, bool)
        assert ssim(camera, test, data_range=1.0, mask=full) == pytest.approx(ssim(camera, test, data_range=1.0))

    def test_gaussian_sigma_changes_result(self, camera):
        test = noisy(camera, 0.1)
        assert ssim(camera, test, data_range=1.0, sigma=0.8) != pytest.approx(ssim(camera, test, data_range=1.0))

    def test_exception_mask_in_border_only(self):
        img = np.random.default_rng(6).random((16, 16))
        border = np.zeros_like(img, bool)
        border[:, :5] = True
        with pytest.raises(ConfigError, match=r"inside the SSIM interior \(border of 5 voxels.*got 0"):
            ssim(img, img, data_range=1.0, mask=border)

    def test_exception_window_too_large(self):
        with pytest.raises(ShapeError, match=r"must be >= the 11-voxel Gaussian window .*got \(10, 11\).*spatial_dims=2"):
            ssim(np.zeros((10, 11)), np.zeros((10, 11)), data_range=1.0)
        with pytest.raises(ShapeError, match=r"got \(4, 16, 16\)"):
            ssim(np.zeros((4, 16, 16)), np.zeros((4, 16, 16)), data_range=1.0)

    def test_exception_ndim_needs_spatial_dims(self):
        with pytest.raises(ShapeError, match=r"must be 2D or 3D when spatial_dims is None; got \(1, 1, 11, 11, 11\)"):
            ssim(np.zeros((1, 1, 11, 11, 11)), np.zeros((1, 1, 11, 11, 11)), data_range=1.0)
        with pytest.raises(ShapeError, match="2D or 3D"):
            ssim(np.zeros(11), np.zeros(11), data_range=1.0)

    @pytest.mark.parametrize("bad", [1, 4, True])
    def test_exception_spatial_dims(self, bad):
        with pytest.raises(ConfigError, match=f"spatial_dims must be 2 or 3 and <= the image ndim 2; got {bad}"):
            ssim(np.zeros((11, 11)), np.zeros((11, 11)), data_range=1.0, spatial_dims=bad)

    @pytest.mark.parametrize("name", ["data_range", "sigma", "k1", "k2"])
    def test_exception_parameters(self, name):
        kwargs = {"data_range": 1.0, name: -0.5}
        with pytest.raises(ConfigError, match=f"{name} must be a finite number > 0; got -0.5"):
            ssim(np.zeros((11, 11)), np.zeros((11, 11)), **kwargs)

    def test_exception_shape_and_non_finite(self):
        with pytest.raises(ShapeError, match=r"reference \(11, 11\); got \(11, 12\)"):
            ssim(np.zeros((11, 11)), np.zeros((11, 12)), data_range=1.0)
        bad = np.zeros((11, 11))
        bad[:3, 0] = np.nan
        with pytest.raises(ConfigError, match="in reference must be 0; got 3"):
            ssim(bad, np.zeros((11, 11)), data_range=1.0)


class TestSSIMMap:
    def test_shape_and_identity(self, backend):
        img = np.random.default_rng(7).random((11, 12, 13))
        smap = ssim_map(backend(img), backend(img), data_range=1.0)
        assert isinstance(smap, np.ndarray) and smap.dtype == np.float64 and smap.shape == img.shape
        np.testing.assert_allclose(smap, 1.0, atol=1e-12)

    def test_mean_of_interior_is_ssim(self, camera):
        test = noisy(camera, 0.1)
        smap = ssim_map(camera, test, data_range=1.0)
        m = ssim_margin(1.5)
        assert m == 5
        assert smap[m:-m, m:-m].mean() == pytest.approx(ssim(camera, test, data_range=1.0))
        assert smap.max() <= 1.0 + 1e-12

    def test_agrees_with_skimage_full_map(self, camera):
        metrics = pytest.importorskip("skimage.metrics")
        test = noisy(camera, 0.1)
        _, expected = metrics.structural_similarity(camera, test, data_range=1.0, gaussian_weights=True,
                                                    sigma=1.5, use_sample_covariance=False, full=True)
        np.testing.assert_allclose(ssim_map(camera, test, data_range=1.0), expected, atol=1e-6)
