"""DUAL-NET auxiliary losses (``training/dualnet_losses.py``) on tiny hand-made tensors, their config
fields and their wiring into ``TrainingObjective``."""

import math

import pytest
import torch
from pydantic import ValidationError

from MedDenoiseLib.errors import ConfigError, ShapeError
from MedDenoiseLib.training.config import LossConfig, TrainConfig
from MedDenoiseLib.training.dualnet_losses import AuxiliaryLoss, consistency_loss, gaussian_nll, total_variation
from MedDenoiseLib.training.module import Batch, TrainingObjective

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def vol(values):
    """A (1, 1, 1, 1, N) tensor."""
    return torch.tensor(values, dtype=torch.float64).reshape(1, 1, 1, 1, -1)


class TestGaussianNLL:
    def test_values_by_hand(self):
        # voxel 1: r = 0, s = 1 -> 0.5 log 2pi; voxel 2: r = 2, s = 2 -> 0.5 log 2pi + log 2 + 0.5
        expected = HALF_LOG_2PI + (math.log(2.0) + 0.5) / 2
        assert float(gaussian_nll(vol([0.0, 2.0]), vol([1.0, 2.0]))) == pytest.approx(expected, rel=1e-12)

    def test_minimum_at_the_true_std(self):
        residual = vol([0.3, -0.3, 0.3, -0.3])  # empirical std 0.3
        values = [float(gaussian_nll(residual, torch.full_like(residual, s))) for s in (0.2, 0.3, 0.45)]
        assert values[1] < values[0] and values[1] < values[2]
        torch.testing.assert_close(torch.autograd.functional.jacobian(
            lambda s: gaussian_nll(residual, s.expand_as(residual)), torch.tensor(0.3, dtype=torch.float64)),
            torch.tensor(0.0, dtype=torch.float64))

    def test_mask_and_empty_mask(self):
        residual, sigma = vol([0.0, 2.0]), vol([1.0, 2.0])
        mask = torch.tensor([False, True]).reshape(1, 1, 1, 1, 2)
        assert float(gaussian_nll(residual, sigma, mask)) == pytest.approx(HALF_LOG_2PI + math.log(2) + 0.5)
        empty = gaussian_nll(residual, sigma.requires_grad_(), torch.zeros_like(mask))
        assert float(empty.detach()) == 0.0 and empty.requires_grad

    def test_exceptions(self):
        with pytest.raises(ConfigError, match="sigma must be > 0 everywhere"):
            gaussian_nll(vol([1.0]), vol([0.0]))
        with pytest.raises(ShapeError, match="needs tensors of one shape"):
            gaussian_nll(vol([1.0, 2.0]), vol([1.0]))


def test_consistency_and_tv_by_hand():
    assert float(consistency_loss(vol([1.0, 3.0]), vol([0.0, 0.0]), vol([1.0, 0.5]))) == 1.25
    x = torch.zeros(1, 1, 2, 2, 3, dtype=torch.float64)
    x[..., 2] = 3.0  # W differences |0|, |3| -> mean 1.5; D and H constant -> 0
    assert float(total_variation(x)) == pytest.approx(1.5 / 3)
    assert float(total_variation(torch.ones(1, 1, 1, 1, 1))) == 0.0


class TestAuxiliaryLoss:
    def outputs(self):
        return {"denoised": vol([1.0, 2.0]), "sigma": vol([1.0, 2.0]), "alpha": vol([0.5, 1.0]),
                "neb_denoised": vol([0.0, 0.0]), "error_std": vol([0.5, 0.25])}

    def test_supervised_terms_by_hand(self):
        noisy, clean = vol([1.0, 4.0]), vol([1.0, 2.0])  # residual (0, 2), SRB error (0, 0)
        weights = {"noise_nll": 1.0, "neb_l1": 2.0, "error_nll": 0.5, "consistency": 1.0, "tv": 4.0}
        total, parts = AuxiliaryLoss(weights)(self.outputs(), noisy, clean)
        expected = {
            "noise_nll": HALF_LOG_2PI + (math.log(2.0) + 0.5) / 2,
            "neb_l1": (1.0 + 2.0) / 2,
            "error_nll": HALF_LOG_2PI + (math.log(0.5) + math.log(0.25)) / 2,
            "consistency": (0.5 * 1.0 + 1.0 * 2.0) / 2,
            "tv": 1.0,
        }
        assert parts == pytest.approx(expected)
        assert float(total) == pytest.approx(sum(weights[k] * v for k, v in expected.items()))

    def test_self_supervised_nll_uses_the_neb_denoise_on_masked_voxels(self):
        noisy = vol([3.0, 2.0])  # residuals against neb_denoised (0, 0): 3 and 2
        mask = torch.tensor([False, True]).reshape(1, 1, 1, 1, 2)
        _, parts = AuxiliaryLoss({"noise_nll": 1.0})(self.outputs(), noisy, None, mask)
        assert parts["noise_nll"] == pytest.approx(HALF_LOG_2PI + math.log(2.0) + 0.5)

    def test_gradients_stop_where_documented(self):
        outputs = {k: v.clone().requires_grad_() for k, v in self.outputs().items()}
        total, _ = AuxiliaryLoss({"error_nll": 1.0, "consistency": 1.0})(outputs, vol([1.0, 4.0]), vol([0.0, 2.0]))
        total.backward()
        assert outputs["neb_denoised"].grad is None and outputs["alpha"].grad is None  # detached
        assert outputs["denoised"].grad.abs().sum() > 0 and outputs["error_std"].grad.abs().sum() > 0

    def test_exceptions(self):
        with pytest.raises(ConfigError, match="must be >= 0 and named in"):
            AuxiliaryLoss({"kl": 1.0})
        with pytest.raises(ConfigError, match="need a model with a noise-estimation branch"):
            AuxiliaryLoss({"noise_nll": 1.0})(vol([1.0]), vol([1.0]), vol([1.0]))
        with pytest.raises(ConfigError, match="need clean images"):
            AuxiliaryLoss({"error_nll": 1.0})(self.outputs(), vol([1.0, 2.0]), None)
        assert not AuxiliaryLoss({"tv": 1.0}).needs_model_outputs and AuxiliaryLoss({"tv": 1.0}).active


def raw_config(**overrides):
    raw = {"name": "t", "seed": 0, "model": {"name": "dualnet", "edge": True},
           "data": {"train": ["unused.nii.gz"], "patch_size": [3, 16, 16], "loss_margin": 1},
           "noise": {"modality": "mr", "level_range": [5.0, 5.0]}}
    raw.update(overrides)
    return raw


class TestConfig:
    def test_new_weights_default_to_zero(self):
        assert LossConfig().model_dump() == {"l1": 1.0, "mse": 0.0, "ssim": 0.0, "edge": 0.0, "ssim_sigma": 1.5,
                                             "noise_normalized": False, "noise_nll": 0.0, "neb_l1": 0.0,
                                             "error_nll": 0.0, "consistency": 0.0, "tv": 0.0}
        with pytest.raises(ValidationError):
            LossConfig(noise_nll=-0.1)

    def test_branch_terms_need_dualnet_with_neb(self):
        with pytest.raises(ValidationError, match="need a model with a noise-estimation branch"):
            TrainConfig.model_validate(raw_config(model={"name": "slab25d"}, loss={"noise_nll": 0.1}))
        with pytest.raises(ValidationError, match="need a model with a noise-estimation branch"):
            TrainConfig.model_validate(raw_config(model={"name": "dualnet", "neb": False}, loss={"consistency": 1}))
        TrainConfig.model_validate(raw_config(model={"name": "slab25d"}, loss={"tv": 0.01}))  # TV fits any model

    def test_supervised_only_terms(self):
        with pytest.raises(ValidationError, match="need clean images"):
            TrainConfig.model_validate(raw_config(algorithm="n2v", loss={"error_nll": 0.1}))
        TrainConfig.model_validate(raw_config(algorithm="n2v", loss={"noise_nll": 0.1, "consistency": 0.5}))


class TestObjective:
    def test_dict_outputs_are_cut_to_the_inner_slices_and_summed(self):
        config = TrainConfig.model_validate(raw_config(loss={"l1": 1.0, "noise_nll": 0.5}))
        objective = TrainingObjective(config)
        clean = torch.zeros(1, 1, 3, 4, 4)
        noisy = clean.clone()
        noisy[:, :, 1] = 0.5  # residual 0.5 on the inner slice only
        sigma = torch.full_like(clean, 0.5)
        sigma[:, :, 0] = 1e-3  # outer slices are ignored (they would dominate the NLL)
        outputs = {"denoised": noisy.clone(), "sigma": sigma, "alpha": torch.zeros_like(clean),
                   "neb_denoised": clean, "error_std": sigma}
        total, parts = objective.loss(outputs, Batch(noisy, clean))
        nll = HALF_LOG_2PI + math.log(0.5) + 0.5
        assert parts["l1"] == pytest.approx(0.5) and parts["noise_nll"] == pytest.approx(nll)
        assert float(total) == pytest.approx(0.5 + 0.5 * nll)

    def test_forward_asks_for_all_outputs_only_when_needed(self):
        calls = []

        def network(x, **kwargs):
            calls.append(kwargs)
            return x

        TrainingObjective(TrainConfig.model_validate(raw_config(loss={"noise_nll": 1}))).forward(network, 1)
        TrainingObjective(TrainConfig.model_validate(raw_config(loss={"tv": 1}))).forward(network, 1)
        assert calls == [{"return_all": True}, {}]

    def test_check_model(self):
        from MedDenoiseLib.testing import tiny_model

        objective = TrainingObjective(TrainConfig.model_validate(raw_config(loss={"noise_nll": 1})))
        with pytest.raises(ConfigError, match="need a model with a noise-estimation branch"):
            objective.check_model(tiny_model())
