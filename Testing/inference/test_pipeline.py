"""denoise_volume end to end: geometry, source untouched, bad inputs, MC dropout, cancel, OOM back-off."""

import numpy as np
import pytest
import torch
from torch import nn

from MedDenoiseLib.errors import CancelledError, ConfigError, DeviceError, InputError
from MedDenoiseLib.testing import tiny_model
from MedDenoiseLib.pipeline import InferenceOptions, denoise_volume
from MedDenoiseLib.volume import Geometry, Volume

OBLIQUE = Geometry(spacing=(0.7, 0.9, 2.5), origin=(-12.5, 30.25, 7.0),
                   direction=tuple(np.array([[0.866025, -0.5, 0.0], [0.5, 0.866025, 0.0], [0.0, 0.0, 1.0]]).ravel()))
FAST = dict(roi_size=(8, 32, 32), tta=2, device="cpu")


def mr_volume(shape=(6, 40, 36), seed=0):
    rng = np.random.default_rng(seed)
    z, y, x = np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij")
    clean = 200.0 * (x**2 + y**2 < 0.6) + 50
    return Volume((clean + rng.normal(0, 10, shape)).astype(np.float32), OBLIQUE, "float32")


def small_model(**kw):
    return tiny_model(**kw)


class TestDenoiseVolume:
    def test_outputs_keep_geometry_and_source_is_untouched(self):
        volume = mr_volume()
        before = volume.array.copy()
        result = denoise_volume(volume, small_model(), modality="mr", options=InferenceOptions(**FAST))
        assert np.array_equal(volume.array, before)
        for out in (result.denoised, result.uncertainty, result.labels):
            assert out.geometry == OBLIQUE and out.shape == volume.shape
        assert result.labels.array.dtype == np.uint8 and set(np.unique(result.labels.array)) <= {0, 1, 2, 3}
        assert result.denoised.array.dtype == np.float32
        assert result.report["patches"] >= 1 and result.report["tta"] == 2

    def test_outputs_are_marked_derived_without_source_uids(self):
        volume = mr_volume()
        volume.metadata.update(Modality="MR", SeriesInstanceUID="1.2.3.4")
        result = denoise_volume(volume, small_model(), modality="mr", options=InferenceOptions(**FAST))
        assert result.denoised.metadata["Modality"] == "MR"
        assert "SeriesInstanceUID" not in result.denoised.metadata
        assert result.labels.metadata["DerivedBy"].startswith("MedDenoise ")

    def test_uncertainty_is_in_input_units(self):
        """Scaling the input by 10 scales the std map by 10 (normalisation is undone)."""
        volume = mr_volume()
        opts = InferenceOptions(**FAST)
        a = denoise_volume(volume, small_model(), modality="mr", options=opts)
        b = denoise_volume(volume.with_array(volume.array * 10), small_model(), modality="mr", options=opts)
        np.testing.assert_allclose(b.uncertainty.array, 10 * a.uncertainty.array, rtol=1e-3, atol=1e-4)
        np.testing.assert_allclose(b.denoised.array, 10 * a.denoised.array, rtol=1e-3, atol=1e-2)

    def test_single_slice_and_tiny_volume(self):
        volume = Volume(np.random.default_rng(1).random((1, 5, 7)).astype(np.float32) * 100)
        result = denoise_volume(volume, small_model(), modality="xr", options=InferenceOptions(device="cpu"))
        assert result.denoised.shape == (1, 5, 7)

    def test_constant_volume_returned_unchanged(self):
        volume = Volume(np.full((3, 8, 8), 42.0, np.float32))
        result = denoise_volume(volume, small_model(), modality="ct")
        assert np.all(result.denoised.array == 42.0) and not result.uncertainty.array.any()
        assert "constant input" in result.report["backoff"][0]

    def test_nonfinite_rejected(self):
        array = mr_volume().array
        array[0, 0, :3] = np.nan
        with pytest.raises(InputError, match=r"must hold only finite voxels; got '3 NaN/Inf voxels'"):
            denoise_volume(Volume(array), small_model(), modality="mr")

    def test_bad_options(self):
        with pytest.raises(ConfigError, match=r"overlap must be in \[0, 1\); got 1.0"):
            InferenceOptions(overlap=1.0)
        with pytest.raises(ConfigError, match="tta must be one of"):
            InferenceOptions(tta=3)
        with pytest.raises(ConfigError, match="modality must be one of"):
            denoise_volume(mr_volume(), small_model(), modality="pet")

    def test_cuda_requested_without_gpu(self):
        if torch.cuda.is_available():
            pytest.skip("a GPU is present")
        with pytest.raises(DeviceError, match="needs a CUDA GPU"):
            denoise_volume(mr_volume(), small_model(), modality="mr", options=InferenceOptions(device="cuda"))


class TestMCDropout:
    def test_needs_dropout_layers(self):
        with pytest.raises(ConfigError, match="mc_dropout needs a model with dropout layers"):
            denoise_volume(mr_volume(), small_model(), modality="mr", options=InferenceOptions(mc_dropout=4, **FAST))

    def test_spread_is_reproducible_by_seed(self):
        model = small_model(dropout=0.3).train()  # the caller's mode must come back after the run
        rng_before = torch.get_rng_state()
        run = lambda seed: denoise_volume(mr_volume(), model, modality="mr",  # noqa: E731
                                          options=InferenceOptions(mc_dropout=3, seed=seed, **FAST))
        a, b, c = run(1), run(1), run(2)
        assert a.uncertainty.array.max() > 0
        np.testing.assert_array_equal(a.uncertainty.array, b.uncertainty.array)
        assert not np.array_equal(a.uncertainty.array, c.uncertainty.array)
        assert model.training and all(m.training for m in model.modules())  # mode restored
        assert torch.equal(torch.get_rng_state(), rng_before)  # MC masks drawn in a forked RNG


class TestCancelAndBackoff:
    def test_cancel(self):
        with pytest.raises(CancelledError, match="no output was written"):
            denoise_volume(mr_volume(), small_model(), modality="mr", options=InferenceOptions(**FAST),
                           should_stop=lambda: True)

    def test_progress_events(self):
        events = []
        denoise_volume(mr_volume(), small_model(), modality="mr", options=InferenceOptions(**FAST),
                       progress=events.append)
        assert events[-1].fraction == pytest.approx(1.0) and events[-1].tta_total == 2

    def test_simulated_oom_backs_off_batch_then_patch(self):
        class Fussy(nn.Module):
            """Raises CUDA OOM for batches > 1 or patches wider than 32 voxels."""

            def __init__(self):
                super().__init__()
                self.inner = small_model()

            def forward(self, x):
                if x.shape[0] > 1 or x.shape[-1] > 32:
                    raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
                return self.inner(x)

        volume = mr_volume(shape=(4, 40, 70))
        options = InferenceOptions(roi_size=(4, 64, 64), tta=4, sw_batch_size=4, device="cpu")
        result = denoise_volume(volume, Fussy(), modality="mr", options=options)
        assert result.report["backoff"] == [
            "out of memory: retrying with patch batch 4 -> 2",
            "out of memory: retrying with patch batch 2 -> 1",
            "out of memory: retrying with patch (4, 40, 64) -> (4, 32, 32)",  # effective patch: image is 40 high
        ]
        assert result.report["roi_size"] == [4, 32, 32] and result.report["sw_batch_size"] == 1
        reference = denoise_volume(volume, small_model(), modality="mr", options=InferenceOptions(
            roi_size=(4, 32, 32), tta=4, sw_batch_size=1, device="cpu"))
        np.testing.assert_allclose(result.denoised.array, reference.denoised.array, rtol=1e-5, atol=1e-4)

    def test_other_errors_are_not_swallowed(self):
        class Broken(nn.Module):
            def forward(self, x):
                raise RuntimeError("shape mismatch in layer 3")

        with pytest.raises(RuntimeError, match="shape mismatch"):
            denoise_volume(mr_volume(), Broken(), modality="mr", options=InferenceOptions(**FAST))
