"""Training noise-level-conditioned models (``model.noise_map``): the level each sample gets, replay of
blind runs, starting from a blind model, validation, export and inference."""

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from MedDenoiseLib.inference.noise_level import laplacian_noise_sigma
from MedDenoiseLib.models.card import load_model
from MedDenoiseLib.normalization import fit_normalization
from MedDenoiseLib.pipeline import InferenceOptions, denoise_volume
from MedDenoiseLib.training.config import TrainConfig
from MedDenoiseLib.training.data import PatchSampler
from MedDenoiseLib.training.module import TrainingObjective, build_network, widen_input_channels
from MedDenoiseLib.training.supervised import export, train
from MedDenoiseLib.training.validation import ValidationSet
from MedDenoiseLib.volume import Volume

BLIND = {"name": "slab25d", "features": 8, "depth": 3, "norm": "none"}
CONDITIONED = {**BLIND, "noise_map": True}


def raw_config(path, *, model=CONDITIONED, steps=3, **sections):
    raw = {"name": "cond", "seed": 11, "checkpoint_every": 1, "model": dict(model),
           "data": {"train": [str(path)], "patch_size": (3, 16, 16), "batch_size": 3, "refresh_every": 2},
           "noise": {"modality": "mr", "level_range": (4.0, 4.0)},
           "optim": {"steps": steps, "warmup_steps": 1, "lr": 1e-3}}
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value} if isinstance(value, dict) else value
    return TrainConfig.model_validate(raw)


@pytest.fixture()
def mr_file(tmp_path):
    z, y, x = np.meshgrid(*[np.linspace(-1, 1, s) for s in (6, 24, 24)], indexing="ij")
    image = (100 + 80 * (x**2 + y**2 < 0.5) + 20 * z).astype(np.float32)
    sitk.WriteImage(sitk.GetImageFromArray(image), str(tmp_path / "mr.nrrd"))
    return tmp_path / "mr.nrrd"


def sampled(config):
    sampler = PatchSampler(config, torch.Generator().manual_seed(3))
    sampler.refresh(0)
    return sampler, sampler.batch()


class TestSampledLevel:
    def test_level_is_the_volume_estimate_times_the_intensity_factor(self, mr_file):
        config = raw_config(mr_file, data={"augment": {"intensity_scale": (2.0, 2.0)}},
                            noise={"estimate_jitter": 0.0})
        sampler, batch = sampled(config)
        expected = 2.0 * laplacian_noise_sigma(sampler.pairs[0].noisy.numpy())
        assert expected > 0
        assert batch.noise_level.shape == (3,)
        torch.testing.assert_close(batch.noise_level, torch.full((3,), expected, dtype=torch.float32))
        assert batch.noisy.shape == batch.clean.shape == (3, 1, 3, 16, 16)

    def test_jitter_spreads_levels_log_normally(self, mr_file):
        config = raw_config(mr_file, data={"batch_size": 64}, noise={"estimate_jitter": 0.5})
        sampler, batch = sampled(config)
        ratios = torch.log(batch.noise_level / laplacian_noise_sigma(sampler.pairs[0].noisy.numpy()))
        assert 0.3 < float(ratios.std()) < 0.7  # intensity factors U(0.8, 1.2) add about 0.12

    def test_patches_match_the_blind_sampler_without_jitter(self, mr_file):
        conditioned = sampled(raw_config(mr_file, noise={"estimate_jitter": 0.0}))[1]
        blind = sampled(raw_config(mr_file, model=BLIND))[1]
        assert blind.noise_level is None
        assert torch.equal(conditioned.noisy, blind.noisy) and torch.equal(conditioned.clean, blind.clean)

    def test_jitter_out_of_range_is_refused(self, mr_file):
        with pytest.raises(ValueError, match="estimate_jitter"):
            raw_config(mr_file, noise={"estimate_jitter": 2.0})


class Recorder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.seen = None

    def forward(self, x, noise_level=None):
        self.seen = noise_level
        return x


def test_objective_passes_the_level_to_the_network(mr_file):
    objective = TrainingObjective(raw_config(mr_file))
    batch = objective.prepare(torch.rand(2, 1, 3, 8, 8), torch.rand(2, 1, 3, 8, 8), torch.Generator(),
                              torch.tensor([0.1, 0.2]))
    recorder = Recorder()
    objective.forward(recorder, batch.inputs, batch.noise_level)
    assert recorder.seen.tolist() == pytest.approx([0.1, 0.2])


class TestStartFromBlindModel:
    def test_zero_weight_channel_reproduces_the_blind_model(self, tmp_path, mr_file):
        blind_config = raw_config(mr_file, model=BLIND, steps=2)
        train(blind_config, tmp_path / "blind")
        blind = load_model(export(blind_config, tmp_path / "blind", tmp_path / "blind_model")).network.eval()
        conditioned = build_network(raw_config(mr_file, init=str(tmp_path / "blind_model"))).eval()
        x = torch.rand(1, 1, 4, 16, 16)
        with torch.no_grad():
            for level in (0.0, 0.3, 5.0):
                torch.testing.assert_close(conditioned(x, torch.tensor([level])), blind(x))

    def test_only_missing_trailing_channels_are_padded(self):
        old = {"w": torch.ones(4, 2, 3, 3), "other": torch.ones(4, 3, 3, 3)}
        new = {"w": torch.empty(4, 3, 3, 3), "other": torch.empty(5, 3, 3, 3)}
        widened = widen_input_channels(old, new, "init")
        assert widened["w"][:, :2].eq(1).all() and widened["w"][:, 2].eq(0).all()
        assert widened["other"] is old["other"]  # an output-channel mismatch is left for load_state_dict


class TestConditionedRun:
    def test_train_validate_export_and_denoise_with_the_same_estimate(self, tmp_path, mr_file):
        other = tmp_path / "other.nrrd"
        sitk.WriteImage(sitk.ReadImage(str(mr_file))[::-1], str(other))  # another "patient" for validation
        config = raw_config(mr_file, data={"validation": [str(other)]}, validation={"every": 1, "patches": 2})
        validation = ValidationSet(config)
        assert validation.noise_level is not None and len(validation.noise_level) == len(validation)
        train(config, tmp_path / "run")
        assert "val_psnr" in (tmp_path / "run" / "train_log.csv").read_text(encoding="utf-8")
        loaded = load_model(export(config, tmp_path / "run", tmp_path / "model"))
        assert loaded.card["architecture"]["noise_map"] is True
        source = sitk.GetArrayFromImage(sitk.ReadImage(str(mr_file))).astype(np.float32)
        levels = []
        loaded.network.register_forward_pre_hook(lambda module, args: levels.append(float(args[1][0])))
        result = denoise_volume(Volume(source.copy()), loaded, modality="mr", options=InferenceOptions(tta=1))
        assert result.denoised.array.shape == source.shape and np.isfinite(result.denoised.array).all()
        # inference conditions on the estimate training used: Immerkaer on the whole normalised volume
        expected = laplacian_noise_sigma(fit_normalization(source, "mr").forward(source))
        assert levels and levels == pytest.approx([expected] * len(levels), rel=1e-5)
