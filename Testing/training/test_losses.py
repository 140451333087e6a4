"""Losses: differentiable SSIM agrees with the evaluation metric, edge and masked losses, weighted sum."""

from types import SimpleNamespace

import pytest
import torch

from MedDenoiseLib.errors import ConfigError, ShapeError
from MedDenoiseLib.metrics import ssim
from MedDenoiseLib.training.losses import DenoisingLoss, gradient_loss, masked_loss, ssim3d


def _pair(shape, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g, dtype=dtype)
    return x, (x + 0.1 * torch.randn(shape, generator=g, dtype=dtype)).clamp(0, 1)


class TestSSIM3d:
    def test_identical_is_one(self):
        x, _ = _pair((2, 1, 3, 16, 16))
        assert float(ssim3d(x, x)) == pytest.approx(1.0, abs=1e-6)

    def test_matches_metric_in_3d_and_per_slice(self):
        x, y = _pair((1, 1, 12, 20, 20), dtype=torch.float64)
        assert float(ssim3d(x, y)) == pytest.approx(ssim(x[0, 0], y[0, 0], data_range=1.0), abs=1e-6)
        thin_x, thin_y = x[:, :, :3], y[:, :, :3]  # depth 3 < 11-voxel window: 2D SSIM of each slice
        expected = ssim(thin_x[0, 0], thin_y[0, 0], data_range=1.0, spatial_dims=2)
        assert float(ssim3d(thin_x, thin_y)) == pytest.approx(expected, abs=1e-6)

    def test_single_slice_and_batch_cardinality(self):
        for batch in (1, 2):
            x, y = _pair((batch, 1, 1, 11, 13))
            assert 0 < float(ssim3d(x, y)) < 1

    def test_gradcheck(self):
        x, y = _pair((1, 1, 1, 11, 11), dtype=torch.float64)
        x.requires_grad_(True)
        assert torch.autograd.gradcheck(lambda a: ssim3d(a, y), (x,))

    def test_exceptions_name_the_rule(self):
        x, _ = _pair((1, 1, 3, 8, 8))
        with pytest.raises(ShapeError, match=r"patch \(H, W\) must be >= the 11-voxel SSIM window; got \(8, 8\)"):
            ssim3d(x, x)
        with pytest.raises(ShapeError, match="must both be"):
            ssim3d(x[0], x[0])


class TestOtherLosses:
    def test_gradient_loss_ignores_offsets_and_sees_edges(self):
        x, y = _pair((1, 1, 3, 8, 8))
        assert float(gradient_loss(x, x + 5.0)) == pytest.approx(0.0, abs=1e-6)  # float32 rounding of x + 5
        assert float(gradient_loss(x, y)) > 0.0

    def test_masked_loss_uses_masked_voxels_only(self):
        x = torch.zeros(1, 1, 1, 2, 2)
        y = torch.tensor([[[[[1.0, 3.0], [0.0, 0.0]]]]])
        mask = torch.tensor([[[[[True, False], [False, False]]]]])
        assert float(masked_loss(x, y, mask)) == 1.0
        assert float(masked_loss(x, y, mask, kind="l1")) == 1.0
        empty = masked_loss(x.requires_grad_(True), y, torch.zeros_like(mask))
        assert float(empty.detach()) == 0.0 and empty.requires_grad
        with pytest.raises(ConfigError, match="kind must be 'mse' or 'l1'; got 'huber'"):
            masked_loss(x, y, mask, kind="huber")

    def test_dual_loss_combines_weighted_terms(self):
        x, y = _pair((2, 1, 3, 16, 16))
        total, parts = DenoisingLoss(l1=1.0, ssim=0.5, edge=0.1)(x, y)
        assert set(parts) == {"l1", "ssim", "edge"}
        assert float(total) == pytest.approx(parts["l1"] + 0.5 * parts["ssim"] + 0.1 * parts["edge"], rel=1e-5)
        assert float(DenoisingLoss(l1=1.0, ssim=0.5, edge=0.1)(x, x)[0]) == pytest.approx(0.0, abs=1e-6)
        with pytest.raises(ConfigError, match="must be >= 0 with a positive sum; got \\(0.0, 0.0, 0.0, 0.0\\)"):
            DenoisingLoss(l1=0.0)


class TestMSETerm:
    """``loss.mse``: the posterior mean instead of L1's median."""

    def test_value_by_hand(self):
        x, y = torch.zeros(1, 1, 1, 2, 2), torch.tensor([0.0, 1.0, 2.0, 3.0]).view(1, 1, 1, 2, 2)
        total, parts = DenoisingLoss(l1=0.0, mse=2.0)(x, y)
        assert set(parts) == {"mse"}
        assert parts["mse"] == pytest.approx((0 + 1 + 4 + 9) / 4)
        assert float(total) == pytest.approx(2 * 14 / 4)

    def test_minimiser_is_the_mean_where_l1_gives_the_median(self):
        target = torch.tensor([0.0, 0.0, 0.0, 4.0]).view(1, 1, 1, 2, 2)  # skewed: median 0, mean 1
        for weights, expected in (({"l1": 0.0, "mse": 1.0}, 1.0), ({"l1": 1.0}, 0.0)):
            loss = DenoisingLoss(**weights)
            constant = torch.tensor(0.5, requires_grad=True)
            optimiser = torch.optim.SGD([constant], lr=0.05)
            for _ in range(400):
                optimiser.zero_grad()
                loss(constant.expand_as(target).clone(), target)[0].backward()
                optimiser.step()
            assert float(constant.detach()) == pytest.approx(expected, abs=0.05)

    def test_config_weight_reaches_the_objective(self):
        from MedDenoiseLib.training.config import LossConfig
        from MedDenoiseLib.training.module import TrainingObjective

        assert LossConfig(l1=0.0, mse=1.0).mse == 1.0
        with pytest.raises(ValueError, match=r"l1 \+ ssim \+ edge \+ mse"):
            LossConfig(l1=0.0)
        config = SimpleNamespace(data=SimpleNamespace(loss_margin=0),
                                 loss=LossConfig(l1=0.0, mse=1.0), masking=None)
        assert TrainingObjective(config).supervised_loss.weights["mse"] == 1.0


class TestNoiseNormalizedLoss:
    """``loss.noise_normalized``: each patch's L1 relative to its own noise std."""

    @staticmethod
    def _batch():
        clean = torch.zeros(2, 1, 3, 8, 8)
        sign = torch.ones(1, 1, 3, 8, 8)
        sign.view(-1)[::2] = -1  # +-1 pattern: std exactly known
        noisy = clean + torch.cat([0.1 * sign, 0.3 * sign])
        return noisy, clean

    def test_weights_by_hand(self):
        from MedDenoiseLib.training.module import noise_weights

        noisy, clean = self._batch()
        weights = noise_weights(noisy, clean).flatten()
        std = (noisy - clean).flatten(1).std(dim=1)  # 0.1 and 0.3 (ddof 1 on +-a with equal counts: a * sqrt(n/(n-1)))
        torch.testing.assert_close(weights, std.mean() / std)
        assert float(weights[0]) == pytest.approx(2.0, rel=1e-5) and float(weights[1]) == pytest.approx(2 / 3, rel=1e-5)

    def test_objective_scores_each_patch_relative_to_its_noise(self):
        from MedDenoiseLib.training.config import TrainConfig
        from MedDenoiseLib.training.module import TrainingObjective

        raw = {"name": "t", "seed": 0, "model": {"name": "slab25d", "features": 8, "depth": 3},
               "data": {"train": ["unused.nii.gz"], "patch_size": [3, 8, 8], "loss_margin": 0},
               "noise": {"modality": "mr", "level_range": [5.0, 5.0]}, "loss": {"l1": 1.0, "noise_normalized": True}}
        objective = TrainingObjective(TrainConfig.model_validate(raw))
        noisy, clean = self._batch()
        batch = objective.prepare(noisy, clean, torch.Generator())
        loss, _ = objective.loss(noisy, batch)  # the identity: L1 = noise std level of each patch
        assert float(loss) == pytest.approx(0.2, rel=1e-5)  # both patches weigh 2 x 0.1 = 2/3 x 0.3 = 0.2
        plain, _ = TrainingObjective(TrainConfig.model_validate({**raw, "loss": {"l1": 1.0}})).loss(noisy, batch)
        assert float(plain) == pytest.approx(0.2, rel=1e-5)  # plain mean of 0.1 and 0.3: the same here
        half_fixed = torch.cat([noisy[:1], clean[1:]])  # remove the high-noise patch's error only
        assert float(objective.loss(half_fixed, batch)[0]) == pytest.approx(0.1, rel=1e-5)
        assert float(TrainingObjective(TrainConfig.model_validate({**raw, "loss": {"l1": 1.0}})).loss(
            half_fixed, batch)[0]) == pytest.approx(0.05, rel=1e-5)

    def test_refuses_ssim(self):
        from MedDenoiseLib.training.config_sections import LossConfig

        with pytest.raises(ValueError, match="loss.noise_normalized needs loss.ssim = 0"):
            LossConfig(l1=1.0, ssim=0.5, noise_normalized=True)

    def test_refuses_self_supervised(self):
        from MedDenoiseLib.training.config import TrainConfig

        raw = {"name": "t", "algorithm": "n2v", "model": {"name": "slab25d"}, "data": {"train": ["unused.nii.gz"]},
               "noise": {"modality": "mr"},
               "loss": {"l1": 1.0, "noise_normalized": True}}
        with pytest.raises(ValueError, match="noise_normalized need clean images"):
            TrainConfig.model_validate(raw)
