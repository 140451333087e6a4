"""``noise.reference_level_range``: training references get their own acquisition noise before the
training noise, drawn from the run's generator and recorded."""

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from MedDenoiseLib.errors import ConfigError
from MedDenoiseLib.training.config import TrainConfig
from MedDenoiseLib.training.data import PatchSampler


@pytest.fixture()
def disc_file(tmp_path):
    """A bright constant disc on a dimmer constant background: any spread inside the disc is noise."""
    y, x = np.meshgrid(*[np.linspace(-1, 1, 64)] * 2, indexing="ij")
    image = np.where(x**2 + y**2 < 0.6, 400.0, 100.0)[None].repeat(4, axis=0).astype(np.float32)
    sitk.WriteImage(sitk.GetImageFromArray(image), str(tmp_path / "disc.nrrd"))
    return tmp_path / "disc.nrrd"


def config(path, **noise):
    return TrainConfig.model_validate({
        "name": "refnoise", "seed": 5, "model": {"name": "slab25d", "features": 8, "depth": 3, "norm": "none"},
        "data": {"train": [str(path)], "patch_size": (3, 16, 16), "batch_size": 2},
        "noise": {"modality": "mr", "level_range": (8.0, 8.0), **noise},
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

    def test_level_outside_the_modality_domain(self, disc_file):
        with pytest.raises(ConfigError, match=r"noise\.reference_level_range.*-1\.0"):
            refreshed(config(disc_file, reference_level_range=(-1.0, 2.0)))
