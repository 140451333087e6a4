"""``noise.reference_level_range``: training references get their own acquisition noise before the
training noise, from a generator of its own, clamped below at the image minimum, and recorded."""

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from MedDenoiseLib.errors import ConfigError
from MedDenoiseLib.noise import replay
from MedDenoiseLib.normalization import fit_normalization
from MedDenoiseLib.training.config import TrainConfig
from MedDenoiseLib.training.data import PatchSampler


@pytest.fixture()
def disc_file(tmp_path):
    """A bright constant disc on a dimmer constant background: any spread inside the disc is noise."""
    y, x = np.meshgrid(*[np.linspace(-1, 1, 64)] * 2, indexing="ij")
    image = np.where(x**2 + y**2 < 0.6, 400.0, 100.0)[None].repeat(4, axis=0).astype(np.float32)
    sitk.WriteImage(sitk.GetImageFromArray(image), str(tmp_path / "disc.nrrd"))
    return tmp_path / "disc.nrrd"


def config(path, modality="mr", level_range=(8.0, 8.0), **noise):
    return TrainConfig.model_validate({
        "name": "refnoise", "seed": 5, "model": {"name": "slab25d", "features": 8, "depth": 3, "norm": "none"},
        "data": {"train": [str(path)], "patch_size": (3, 16, 16), "batch_size": 2},
        "noise": {"modality": modality, "level_range": level_range, **noise},
        "optim": {"steps": 2, "warmup_steps": 1}})


def refreshed(cfg, index=0):
    sampler = PatchSampler(cfg, torch.Generator().manual_seed(1))
    sampler.refresh(index)
    return sampler


def disc_spread(volume: torch.Tensor) -> float:
    """Std inside the disc (away from its edge), over all slices."""
    y, x = np.meshgrid(*[np.linspace(-1, 1, 64)] * 2, indexing="ij")
    inside = torch.from_numpy(x**2 + y**2 < 0.4)
    return float(volume[:, inside].std())


class TestReferenceNoise:
    def test_off_by_default_the_reference_is_noise_free(self, disc_file):
        sampler = refreshed(config(disc_file))
        assert disc_spread(sampler.pairs[0].clean) < 1e-6  # float rounding of the normalisation only
        assert "reference_noise" not in sampler.records[0]

    def test_reference_gets_noise_at_the_drawn_level(self, disc_file):
        sampler = refreshed(config(disc_file, reference_level_range=(2.0, 2.0)))
        pair = sampler.pairs[0]
        reference_std, training_std = disc_spread(pair.clean), disc_spread(pair.noisy - pair.clean)
        assert reference_std > 0
        assert training_std / reference_std == pytest.approx(8.0 / 2.0, rel=0.15)  # Rician ~ Gaussian at this SNR

    def test_drawn_reference_level_is_recorded_inside_its_range(self, disc_file):
        records = [refreshed(config(disc_file, reference_level_range=(1.0, 3.0)), i).records[0] for i in range(4)]
        levels = [r["reference_noise"]["params"]["sigma_percent"] for r in records]
        assert all(1.0 <= level <= 3.0 for level in levels)
        assert len(set(levels)) == 4  # a new draw per refresh

    def test_records_replay_reference_then_training_noise(self, disc_file):
        sampler = refreshed(config(disc_file, reference_level_range=(2.0, 3.0)), 3)
        record, raw = sampler.records[0], sampler.clean[0]
        reference = replay(record["reference_noise"], raw).clamp_min(record["reference_noise"]["clamped_below"])
        noisy = replay(record["training_noise"], reference)
        norm = fit_normalization(noisy.numpy(), "mr")
        torch.testing.assert_close(sampler.pairs[0].noisy, torch.from_numpy(norm.forward(noisy.numpy())))
        torch.testing.assert_close(sampler.pairs[0].clean, torch.from_numpy(norm.forward(reference.numpy())))

    def test_training_noise_draws_are_those_of_the_run_without_it(self, disc_file):
        with_reference = refreshed(config(disc_file, level_range=(4.0, 12.0), reference_level_range=(1.0, 3.0)), 2)
        without = refreshed(config(disc_file, level_range=(4.0, 12.0)), 2)
        assert with_reference.records[0]["training_noise"] == without.records[0]

    def test_reference_stays_above_the_image_minimum(self, tmp_path):
        image = np.zeros((1, 48, 48), np.float32)
        image[:, 16:32, 16:32] = 600.0  # X-ray with zero-valued pixels: Poisson-Gaussian needs x >= 0
        sitk.WriteImage(sitk.GetImageFromArray(image), str(tmp_path / "xr.nrrd"))
        cfg = config(tmp_path / "xr.nrrd", modality="xr", level_range=(0.2, 0.2), reference_level_range=(0.5, 0.5))
        sampler = refreshed(cfg)  # would raise from the training noise on a negative reference
        assert sampler.records[0]["reference_noise"]["clamped_below"] == 0.0
        pair = sampler.pairs[0]
        square = (slice(None), slice(18, 30), slice(18, 30))
        assert float(pair.clean[square].std()) > 0  # the reference did get noise
        assert float((pair.noisy - pair.clean)[square].std()) > float(pair.clean[square].std())  # dose 0.2 is noisier than 0.5

    def test_same_seed_and_refresh_replay_the_same_reference(self, disc_file):
        cfg = config(disc_file, reference_level_range=(1.0, 3.0))
        first, second = refreshed(cfg, 2), refreshed(cfg, 2)
        assert torch.equal(first.pairs[0].clean, second.pairs[0].clean)
        assert torch.equal(first.pairs[0].noisy, second.pairs[0].noisy)


class TestRefused:
    def test_self_supervised_runs(self, disc_file):
        raw = config(disc_file).model_dump()
        raw["algorithm"], raw["noise"]["reference_level_range"] = "n2v", (1.0, 2.0)
        with pytest.raises((ConfigError, ValueError), match=r"noise\.reference_level_range.*supervised"):
            TrainConfig.model_validate(raw)

    def test_reversed_range(self, disc_file):
        with pytest.raises((ConfigError, ValueError), match=r"noise\.reference_level_range"):
            config(disc_file, reference_level_range=(3.0, 1.0))

    def test_dualnet_noise_terms(self, disc_file):
        raw = config(disc_file).model_dump()
        raw["model"] = {"name": "dualnet", "edge": True}
        raw["noise"]["reference_level_range"], raw["loss"]["noise_nll"] = (1.0, 2.0), 0.1
        with pytest.raises((ConfigError, ValueError), match=r"noise\.reference_level_range.*noise_nll"):
            TrainConfig.model_validate(raw)

    def test_level_outside_the_modality_domain(self, disc_file):
        with pytest.raises(ConfigError, match=r"noise\.reference_level_range.*-1\.0"):
            refreshed(config(disc_file, reference_level_range=(-1.0, 2.0)))
