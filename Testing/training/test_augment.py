"""Augmentation: rot90 only on isotropic in-plane spacing, replayable draws, elastic deformation."""

import pytest
import torch

from MedDenoiseLib.training.augment import augment_batch, centre_slice_everywhere, elastic_deform, isotropic_in_plane
from MedDenoiseLib.training.config import AugmentConfig


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


class TestAugment:
    def test_isotropy(self):
        assert isotropic_in_plane((0.703125, 0.703125, 2.5))
        assert not isotropic_in_plane((0.5, 0.6, 1.0))

    def test_rot90_only_where_isotropic(self):
        noisy = torch.rand(8, 1, 1, 6, 6, generator=_gen(1))
        config = AugmentConfig(flip=False, rot90=True, intensity_scale=(1.0, 1.0))
        out, clean = augment_batch(noisy, noisy.clone(), config=config, isotropic=torch.tensor([False] * 8),
                                   generator=_gen())
        assert torch.equal(out, noisy) and torch.equal(clean, out)
        out, clean = augment_batch(noisy, noisy.clone(), config=config, isotropic=torch.tensor([True] * 8),
                                   generator=_gen())
        assert not torch.equal(out, noisy) and torch.equal(clean, out)  # pairs rotate together
        for sample, original in zip(out, noisy):
            assert any(torch.equal(sample, torch.rot90(original, k, dims=(2, 3))) for k in range(4))

    def test_replay_and_self_supervised_batches(self):
        noisy = torch.rand(2, 1, 3, 8, 8, generator=_gen(2))
        config = AugmentConfig(rot90=True)
        a, _ = augment_batch(noisy, None, config=config, isotropic=torch.tensor([True, True]), generator=_gen(5))
        b, none = augment_batch(noisy, None, config=config, isotropic=torch.tensor([True, True]), generator=_gen(5))
        assert torch.equal(a, b) and none is None

    def test_elastic_is_deterministic_and_keeps_thin_axes(self):
        volume = torch.rand(2, 24, 24, generator=_gen(3))
        a = elastic_deform(volume, magnitude=2.0, control_points=4, generator=_gen(4))
        b = elastic_deform(volume, magnitude=2.0, control_points=4, generator=_gen(4))
        assert torch.equal(a, b) and a.shape == volume.shape and not torch.equal(a, volume)
        assert float((a - volume).abs().mean()) < float(volume.std())  # smooth, not a scramble

    def test_single_slice_samples_repeat_their_noisy_and_clean_centre(self):
        noisy = torch.rand(64, 1, 5, 4, 4, generator=_gen(6))
        clean = noisy * 0.5
        config = AugmentConfig(flip=False, intensity_scale=(1.0, 1.0), single_slice_probability=0.5)
        out, target = augment_batch(noisy, clean, config=config, isotropic=torch.ones(64, dtype=torch.bool),
                                    generator=_gen(7))
        single = torch.tensor([bool((o == o[:, 2:3]).all()) for o in out])
        assert 16 < int(single.sum()) < 48  # about half of 64 (binomial sd 4)
        for o, t, x, c, s in zip(out, target, noisy, clean, single):
            expected = (x[:, 2:3].expand_as(x), c[:, 2:3].expand_as(c)) if s else (x, c)
            assert torch.equal(o, expected[0]) and torch.equal(t, expected[1])  # the pair stays a pair
        again, _ = augment_batch(noisy, clean, config=config, isotropic=torch.ones(64, dtype=torch.bool),
                                 generator=_gen(7))
        assert torch.equal(again, out)

    def test_single_slice_off_draws_nothing(self):
        # p = 0 keeps the draw sequence of older configs: the generator ends in the same state
        config = AugmentConfig(single_slice_probability=0.0)
        g = _gen(8)
        augment_batch(torch.rand(2, 1, 3, 4, 4), None, config=config, isotropic=torch.ones(2, dtype=torch.bool),
                      generator=g)
        reference = _gen(8)
        for _ in range(3):
            torch.rand((), generator=reference)
        torch.rand((2, 1, 1, 1, 1), generator=reference)
        assert torch.equal(torch.rand(4, generator=g), torch.rand(4, generator=reference))

    def test_centre_slice_by_hand(self):
        x = torch.arange(6.0).reshape(2, 1, 3, 1, 1)
        out = centre_slice_everywhere(x, torch.tensor([False, True]))
        assert out.flatten().tolist() == [0.0, 1.0, 2.0, 4.0, 4.0, 4.0]

    def test_bad_single_slice_probability_is_refused(self):
        with pytest.raises(ValueError, match="single_slice_probability"):
            AugmentConfig(single_slice_probability=1.5)

    def test_single_slice_is_refused_for_blind_spot_training(self):
        from MedDenoiseLib.training.config import TrainConfig

        raw = {"name": "s", "algorithm": "n2v", "model": {"name": "dncnn"}, "noise": {"modality": "mr"},
               "data": {"train": ["a.nii.gz"], "patch_size": (3, 16, 16), "augment": {"single_slice_probability": 0.5}}}
        with pytest.raises(ValueError, match=r"single_slice_probability must be 0 for algorithm n2v/n2s .*got 0.5"):
            TrainConfig.model_validate(raw)

    def test_bad_scale_range_is_refused(self):
        with pytest.raises(ValueError, match=r"intensity_scale must be \(low, high\) with low <= high; got \(1.2, 0.8\)"):
            AugmentConfig(intensity_scale=(1.2, 0.8))


def test_sampler_deforms_clean_volumes_before_noise(patients):
    from MedDenoiseLib.training.config import TrainConfig
    from MedDenoiseLib.training.data import PatchSampler

    train_files, _ = patients
    raw = {"name": "e", "seed": 1, "model": {"name": "dncnn"},
           "data": {"train": train_files, "patch_size": (3, 16, 16), "batch_size": 2},
           "noise": {"modality": "mr", "level_range": (2.0, 2.0)}}
    plain = PatchSampler(TrainConfig.model_validate(raw), _gen())
    raw["data"]["augment"] = {"elastic_probability": 1.0, "elastic_magnitude": 3.0}
    elastic = PatchSampler(TrainConfig.model_validate(raw), _gen())
    for sampler in (plain, elastic):
        sampler.refresh(0)
    assert not torch.equal(plain.pairs[0].clean, elastic.pairs[0].clean)
    again = PatchSampler(TrainConfig.model_validate(raw), _gen())
    again.refresh(0)
    assert torch.equal(again.pairs[0].noisy, elastic.pairs[0].noisy)  # replayable from (seed, refresh index)


class TestIntensityScaleDraw:
    def test_log_uniform_factors_by_hand(self):
        noisy = torch.ones(4, 1, 1, 2, 2)
        config = AugmentConfig(flip=False, intensity_scale=(0.5, 8.0), intensity_scale_draw="log_uniform")
        out, clean = augment_batch(noisy, noisy.clone(), config=config, isotropic=torch.tensor([False] * 4),
                                   generator=_gen(3))
        u = torch.rand((4, 1, 1, 1, 1), generator=_gen(3))  # the one number per sample the draw consumes
        expected = 0.5 * 16.0 ** u  # exp(log 0.5 + (log 8 - log 0.5) u)
        assert torch.allclose(out, expected.expand_as(out)) and torch.equal(clean, out)

    def test_uniform_stays_the_default_draw(self):
        noisy = torch.ones(4, 1, 1, 2, 2)
        out, _ = augment_batch(noisy, None, config=AugmentConfig(flip=False), isotropic=torch.tensor([False] * 4),
                               generator=_gen(3))
        u = torch.rand((4, 1, 1, 1, 1), generator=_gen(3))
        assert AugmentConfig().intensity_scale_draw == "uniform"
        assert torch.allclose(out, (0.8 + 0.4 * u).expand_as(out))

    def test_an_unknown_draw_is_refused(self):
        with pytest.raises(ValueError, match="intensity_scale_draw"):
            AugmentConfig(intensity_scale_draw="normal")
