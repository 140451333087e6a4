"""The std map's source (``InferenceOptions.uncertainty_source``): TTA spread, MC dropout, or the model's own
(DUAL-NET), through the pipeline, the sliding window and ``meddenoise denoise --uncertainty-source``."""

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from MedDenoiseLib.cli.main import EXIT_ERROR, main
from MedDenoiseLib.errors import ConfigError, ShapeError
from MedDenoiseLib.inference.sliding_window import sliding_window_moments
from MedDenoiseLib.models.card import save_model
from MedDenoiseLib.models.resolve import MODELS_ENV
from MedDenoiseLib.normalization import fit_normalization
from MedDenoiseLib.pipeline import InferenceOptions, denoise_volume
from MedDenoiseLib.testing import tiny_dualnet, tiny_model
from MedDenoiseLib.volume import Geometry, Volume

OBLIQUE = Geometry(spacing=(0.7, 0.9, 2.5), origin=(-12.5, 30.25, 7.0),
                   direction=tuple(np.array([[0.866025, -0.5, 0.0], [0.5, 0.866025, 0.0], [0.0, 0.0, 1.0]]).ravel()))


pytestmark = pytest.mark.usefixtures("one_thread")


def mr_volume(shape=(5, 30, 27), seed=0):
    rng = np.random.default_rng(seed)
    z, y, x = np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij")
    clean = 200.0 * (x**2 + y**2 < 0.6) + 50
    return Volume((clean + rng.normal(0, 10, shape)).astype(np.float32), OBLIQUE, "float32")


class TestModelSource:
    def test_positive_std_with_the_input_geometry(self):
        volume = mr_volume()
        options = InferenceOptions(roi_size=(4, 16, 16), tta=2, device="cpu", uncertainty_source="model")
        result = denoise_volume(volume, tiny_dualnet(), modality="mr", options=options)
        for out in (result.denoised, result.uncertainty, result.labels):
            assert out.geometry == OBLIQUE and out.shape == volume.shape
        std = result.uncertainty.array
        assert std.dtype == np.float32 and (std > 0).all() and np.isfinite(std).all()
        assert result.report["uncertainty_source"] == "model"
        assert result.report["options"]["uncertainty_source"] == "model"

    def test_std_is_the_model_map_in_input_units(self):
        """Whole-volume patches, no flips: the std map is the model's own std times the scale (up to the
        context padding and blending of the sliding window, a few per cent here)."""
        volume, model = mr_volume(), tiny_dualnet(seed=1)
        options = InferenceOptions(roi_size=(0, 0, 0), tta=1, device="cpu", uncertainty_source="model")
        result = denoise_volume(volume, model, modality="mr", options=options)
        norm = fit_normalization(volume.array, "mr")
        x = torch.from_numpy(norm.forward(volume.array))[None, None]
        with torch.no_grad():
            _, std = model.forward_with_uncertainty(x)
        np.testing.assert_allclose(result.uncertainty.array, std[0, 0].numpy() * norm.scale, rtol=0.05)

    def test_scaling_the_input_scales_the_std(self):
        volume = mr_volume()
        options = InferenceOptions(roi_size=(4, 16, 16), tta=1, device="cpu", uncertainty_source="model")
        base = denoise_volume(volume, tiny_dualnet(), modality="mr", options=options).uncertainty.array
        scaled = Volume(volume.array * 10, volume.geometry, "float32")
        ten = denoise_volume(scaled, tiny_dualnet(), modality="mr", options=options).uncertainty.array
        np.testing.assert_allclose(ten, 10 * base, rtol=1e-3, atol=1e-3)

    def test_models_without_own_uncertainty_are_refused(self):
        options = InferenceOptions(tta=1, device="cpu", uncertainty_source="model")
        for model in (tiny_model(), tiny_dualnet(neb=False)):
            with pytest.raises(ConfigError, match="uncertainty_source 'model' needs a model with its own uncertainty"):
                denoise_volume(mr_volume(), model, modality="mr", options=options)


class TestOptions:
    def test_tta_default_unchanged(self):
        assert InferenceOptions().uncertainty_source == "tta"

    @pytest.mark.parametrize("kwargs, match", [
        ({"uncertainty_source": "neb"}, "uncertainty_source must be one of"),
        ({"uncertainty_source": "mc_dropout"}, "mc_dropout must be >= 2 when uncertainty_source is 'mc_dropout'"),
    ])
    def test_exceptions(self, kwargs, match):
        with pytest.raises(ConfigError, match=match):
            InferenceOptions(**kwargs)

    def test_mc_dropout_source_with_a_dropout_dualnet(self):
        options = InferenceOptions(roi_size=(4, 16, 16), tta=1, mc_dropout=2, device="cpu",
                                   uncertainty_source="mc_dropout")
        result = denoise_volume(mr_volume(), tiny_dualnet(dropout=0.3), modality="mr", options=options)
        assert result.uncertainty.array.max() > 0


class TestSlidingWindowChannels:
    def test_extra_channels_are_blended_like_the_image(self):
        image = torch.rand(1, 1, 5, 20, 23)

        def predictor(batch):  # image unchanged, a constant map, a map equal to 2 x the image
            return torch.cat([batch, torch.full_like(batch, 0.25), 2 * batch], dim=1)

        mean, var = sliding_window_moments(image, predictor, roi_size=(4, 8, 8), overlap=0.5, sigma_scale=0.125,
                                           sw_batch_size=3, sw_device=torch.device("cpu"),
                                           views=[(), (4,), (3,)], channels=3)
        assert mean.shape == (1, 3, 5, 20, 23) and var.shape == (1, 1, 5, 20, 23)
        torch.testing.assert_close(mean[:, 0:1], image)
        torch.testing.assert_close(mean[:, 1], torch.full((1, 5, 20, 23), 0.25))
        torch.testing.assert_close(mean[:, 2:3], 2 * image)
        assert float(var.abs().max()) < 1e-10

    def test_too_few_predictor_channels(self):
        with pytest.raises(ShapeError, match="must have >= 2 channels"):
            sliding_window_moments(torch.rand(1, 1, 2, 8, 8), lambda b: b, roi_size=(2, 8, 8), overlap=0.0,
                                   sigma_scale=0.125, sw_batch_size=1, sw_device=torch.device("cpu"), views=[()],
                                   channels=2)


class TestCommandLine:
    @pytest.fixture()
    def models_dir(self, tmp_path, monkeypatch):
        root = tmp_path / "models"
        save_model(tiny_dualnet(), root / "mr_dual", {"name": "mr_dual", "modality": "mr"})
        save_model(tiny_model(), root / "mr_tiny", {"name": "mr_tiny", "modality": "mr"})
        monkeypatch.setenv(MODELS_ENV, str(root))
        return root

    @pytest.fixture()
    def mr_file(self, tmp_path):
        image = sitk.GetImageFromArray(mr_volume().array)
        image.SetSpacing((0.9, 0.7, 2.5))
        sitk.WriteImage(image, str(tmp_path / "mr.nrrd"))
        return tmp_path / "mr.nrrd"

    def test_model_source_writes_a_positive_std_map(self, tmp_path, models_dir, mr_file):
        std_path = tmp_path / "std.nrrd"
        code = main(["denoise", str(mr_file), str(tmp_path / "den.nrrd"), "--modality", "mr", "--model", "mr_dual",
                     "--tta", "2", "--device", "cpu", "--patch", "4", "16", "16", "--uncertainty", str(std_path),
                     "--uncertainty-source", "model", "--progress", "none"])
        assert code == 0
        std = sitk.ReadImage(str(std_path))
        assert std.GetSpacing() == pytest.approx((0.9, 0.7, 2.5))
        assert (sitk.GetArrayFromImage(std) > 0).all()

    def test_model_without_own_uncertainty_is_a_clear_error(self, tmp_path, models_dir, mr_file, caplog):
        code = main(["denoise", str(mr_file), str(tmp_path / "den.nrrd"), "--modality", "mr", "--model", "mr_tiny",
                     "--device", "cpu", "--uncertainty-source", "model", "--progress", "none"])
        assert code == EXIT_ERROR
        assert "needs a model with its own uncertainty output" in caplog.text and "--uncertainty-source tta" in caplog.text
        assert not (tmp_path / "den.nrrd").exists()
