"""Training noise-level-conditioned models (``model.noise_map``): the level each sample gets, replay of
blind runs, starting from a blind model, validation, export and inference."""

from types import SimpleNamespace

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from MedDenoiseLib.errors import ConfigError
from MedDenoiseLib.inference.noise_level import conditioning_noise_sigma
from MedDenoiseLib.models import build_model
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
        expected = 2.0 * conditioning_noise_sigma(sampler.pairs[0].noisy.numpy())
        assert expected > 0
        assert batch.noise_level.shape == (3,)
        torch.testing.assert_close(batch.noise_level, torch.full((3,), expected, dtype=torch.float32))
        assert batch.noisy.shape == batch.clean.shape == (3, 1, 3, 16, 16)

    def test_jitter_spreads_levels_log_normally(self, mr_file):
        config = raw_config(mr_file, data={"batch_size": 64}, noise={"estimate_jitter": 0.5})
        sampler, batch = sampled(config)
        ratios = torch.log(batch.noise_level / conditioning_noise_sigma(sampler.pairs[0].noisy.numpy()))
        assert 0.3 < float(ratios.std()) < 0.7  # intensity factors U(0.8, 1.2) add about 0.12

    def test_patches_match_the_blind_control_run(self, mr_file):
        conditioned, blind = sampled(raw_config(mr_file))[0], sampled(raw_config(mr_file, model=BLIND))[0]
        for step in range(3):  # the jitter has its own generator: both runs see the same patches
            a, b = conditioned.batch(step), blind.batch(step)
            assert b.noise_level is None and a.noise_level is not None
            assert torch.equal(a.noisy, b.noisy) and torch.equal(a.clean, b.clean)

    def test_jitter_depends_on_the_step_only(self, mr_file):
        config = raw_config(mr_file, data={"augment": {"intensity_scale": (1.0, 1.0)}})
        first, second = sampled(config)[0], sampled(config)[0]
        second.batch(0)  # a different history of batch draws
        assert torch.equal(first.batch(5).noise_level, second.batch(5).noise_level)  # as after a resume
        assert not torch.equal(first.batch(5).noise_level, first.batch(6).noise_level)

    def test_training_level_is_the_level_inference_gives(self, tmp_path, mr_file):
        clean = sitk.GetArrayFromImage(sitk.ReadImage(str(mr_file)))
        source = (clean + np.random.default_rng(0).normal(0, 9, clean.shape)).astype(np.float32)
        sitk.WriteImage(sitk.GetImageFromArray(source), str(tmp_path / "noisy.nrrd"))
        config = raw_config(tmp_path / "noisy.nrrd", model={**CONDITIONED, "context": 0}, algorithm="n2v",
                            noise={"level_range": None}, data={"patch_size": (1, 16, 16), "loss_margin": 0})
        sampler, _ = sampled(config)  # the file read as a noisy scan, normalised as in training
        network = build_model(**{**config.model, "name": "slab25d"}).eval()
        levels = []
        network.register_forward_pre_hook(lambda module, args: levels.append(float(args[1][0])))
        denoise_volume(Volume(source), network, modality="mr", options=InferenceOptions(tta=1))
        assert sampler.pairs[0].level > 0
        assert levels == pytest.approx([sampler.pairs[0].level] * len(levels), rel=1e-5)

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

    def test_another_architecture_is_not_widened(self, tmp_path, mr_file):
        blind_config = raw_config(mr_file, model=BLIND, steps=1)
        train(blind_config, tmp_path / "blind")
        export(blind_config, tmp_path / "blind", tmp_path / "blind_model")
        other = raw_config(mr_file, model={**CONDITIONED, "context": 2}, init=str(tmp_path / "blind_model"))
        with pytest.raises(ConfigError, match="init must hold weights of the architecture.*noise_map"):
            build_network(other)

    def test_only_a_missing_last_channel_is_padded(self):
        old = {"w": torch.ones(4, 2, 3, 3), "other": torch.ones(4, 3, 3, 3), "two": torch.ones(4, 2, 3, 3)}
        new = {"w": torch.empty(4, 3, 3, 3), "other": torch.empty(5, 3, 3, 3), "two": torch.empty(4, 4, 3, 3)}
        widened = widen_input_channels(old, new, "init")
        assert widened["w"][:, :2].eq(1).all() and widened["w"][:, 2].eq(0).all()
        assert widened["other"] is old["other"]  # an output-channel mismatch is left for load_state_dict
        assert widened["two"] is old["two"]  # so is more than one new input channel


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
        expected = conditioning_noise_sigma(fit_normalization(source, "mr").forward(source))
        assert levels and levels == pytest.approx([expected] * len(levels), rel=1e-5)


def test_auxiliary_dualnet_terms_refuse_a_noise_level(mr_file):
    objective = TrainingObjective(raw_config(mr_file))
    objective.auxiliary = SimpleNamespace(needs_model_outputs=True)  # as DUAL-NET's noise_nll would (the config
    # already refuses those terms without DUAL-NET, which has no noise map: this guards the objective itself)
    with pytest.raises(ConfigError, match="model.noise_map cannot be combined"):
        objective.forward(Recorder(), torch.rand(1, 1, 3, 8, 8), torch.tensor([0.1]))
