"""Re-estimated batch-norm statistics for EMA weights (MedDenoiseLib.training.batchnorm, export)."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from MedDenoiseLib.errors import ConfigError
from MedDenoiseLib.models.card import load_model
from MedDenoiseLib.training import TrainConfig, export, train
from MedDenoiseLib.training.batchnorm import batchnorm_layers, recompute_batchnorm_stats, training_inputs
from MedDenoiseLib.training.module import TrainingObjective, build_network


def _column(values) -> torch.Tensor:
    """A (N, 1, 1, 1, 1) batch holding ``values``."""
    return torch.tensor(values, dtype=torch.float32).view(-1, 1, 1, 1, 1)


def _run(model, batch):
    return model(batch)


class TestRecompute:
    def test_average_of_batch_statistics_by_hand(self):
        model = nn.Sequential(nn.BatchNorm3d(1, momentum=0.3)).eval()
        model[0].running_mean.fill_(100.0)
        model[0].num_batches_tracked.fill_(1000)  # as after a long run: without a reset 100 would barely move
        # batch 1: mean 2, unbiased var 2; batch 2: mean 7, unbiased var 20 / 3
        count = recompute_batchnorm_stats(model, [_column([1, 3]), _column([4, 6, 8, 10])], _run)
        assert count == 2
        assert model[0].running_mean.item() == pytest.approx(4.5)
        assert model[0].running_var.item() == pytest.approx((2 + 20 / 3) / 2)
        assert model[0].momentum == 0.3 and not model.training

    def test_train_mode_is_restored(self):
        model = nn.Sequential(nn.BatchNorm3d(1)).train()
        recompute_batchnorm_stats(model, [_column([1, 2])], _run)
        assert model.training and model[0].momentum == 0.1

    def test_no_batches_keep_the_old_statistics(self):
        model = nn.Sequential(nn.BatchNorm3d(1))
        model[0].running_mean.fill_(3.0)
        assert recompute_batchnorm_stats(model, [], _run) == 0
        assert model[0].running_mean.item() == 3.0

    def test_network_without_batchnorm_is_untouched(self):
        model = nn.Conv3d(1, 1, 1)
        seen = []
        assert recompute_batchnorm_stats(model, [_column([1, 2])], lambda m, b: seen.append(b)) == 0
        assert seen == [] and batchnorm_layers(model) == []

    def test_failing_forward_restores_momentum_and_mode(self):
        model = nn.Sequential(nn.BatchNorm3d(1, momentum=0.2)).eval()

        def broken(network, batch):
            raise RuntimeError("boom")

        model[0].running_var.fill_(7.0)
        with pytest.raises(RuntimeError, match="boom"):
            recompute_batchnorm_stats(model, [_column([1, 2])], broken)
        assert model[0].momentum == 0.2 and not model.training and model[0].running_var.item() == 7.0


def _ema_config(train_files, **optim) -> TrainConfig:
    return TrainConfig.model_validate({
        "name": "tiny_slab", "seed": 5, "checkpoint_every": 3,
        "model": {"name": "slab25d", "features": 8, "depth": 3, "norm": "batch"},
        "data": {"train": train_files, "patch_size": (3, 16, 16), "batch_size": 2, "refresh_every": 2},
        "noise": {"modality": "mr", "level_range": (3.0, 9.0)},
        "optim": {"steps": 3, "warmup_steps": 1, "lr": 1e-3, "ema_decay": 0.9, **optim},
        "logs": {"tensorboard": False}})


class TestExport:
    def test_ema_export_reestimates_statistics_deterministically(self, tmp_path, patients):
        config = _ema_config(patients[0], ema_bn_batches=3)
        ckpt = train(config, tmp_path / "run")
        ema = load_file(str(ckpt / "ema.safetensors"))
        first = load_model(export(config, tmp_path / "run", tmp_path / "a"))
        second = load_model(export(config, tmp_path / "run", tmp_path / "b"))
        assert "batch-norm statistics re-estimated on 3 training batches" in first.card["training"]["weights"]
        exported, again = first.network.state_dict(), second.network.state_dict()
        means = [k for k in ema if k.endswith("running_mean")]
        assert means and all(not torch.equal(exported[k], ema[k]) for k in means)
        assert all(torch.equal(exported[k], again[k]) for k in exported)
        weights = [k for k in ema if k.endswith("weight")]
        assert all(torch.equal(exported[k], ema[k]) for k in weights)  # only the statistics change
        by_hand = build_network(config, load_init=False)
        by_hand.load_state_dict(ema)
        objective = TrainingObjective(config)
        recompute_batchnorm_stats(by_hand, training_inputs(config, 3), lambda n, b: objective.forward(n, *b))
        assert all(torch.allclose(exported[k], by_hand.state_dict()[k]) for k in means)
        assert "before re-estimation" in first.card["metrics"]["units"]

    def test_last_step_weights_are_not_reestimated(self, tmp_path, patients):
        config = _ema_config(patients[0], ema_bn_batches=3)
        ckpt = train(config, tmp_path / "run")
        (ckpt / "ema.safetensors").unlink()  # a run that kept no average: export takes the last weights
        model = load_model(export(config, tmp_path / "run", tmp_path / "m"))
        last = load_file(str(ckpt / "model.safetensors"))
        assert "re-estimated" not in model.card["training"]["weights"]
        assert all(torch.equal(model.network.state_dict()[k], last[k]) for k in last)

    def test_missing_training_data_names_the_option(self, tmp_path, patients):
        config = _ema_config(patients[0], ema_bn_batches=3)
        train(config, tmp_path / "run")
        moved = config.model_copy(update={"data": config.data.model_copy(update={"train": [str(tmp_path / "gone.nii.gz")]})})
        with pytest.raises(ConfigError, match="ema_bn_batches.*set optim.ema_bn_batches: 0"):
            export(moved, tmp_path / "run", tmp_path / "m")
        assert not (tmp_path / "m").exists()

    def test_zero_batches_exports_the_saved_statistics(self, tmp_path, patients):
        config = _ema_config(patients[0], ema_bn_batches=0)
        ckpt = train(config, tmp_path / "run")
        ema = load_file(str(ckpt / "ema.safetensors"))
        model = load_model(export(config, tmp_path / "run", tmp_path / "m"))
        assert "re-estimated" not in model.card["training"]["weights"]
        exported = model.network.state_dict()
        assert all(torch.equal(exported[k], ema[k]) for k in ema)

    def test_training_inputs_repeat_and_carry_the_noise_level(self, patients):
        config = _ema_config(patients[0]).model_copy(
            update={"model": {"name": "slab25d", "features": 8, "depth": 3, "noise_map": True}})
        config = TrainConfig.model_validate(config.model_dump())
        first, second = list(training_inputs(config, 3)), list(training_inputs(config, 3))
        assert len(first) == 3
        for (a, level_a), (b, level_b) in zip(first, second):
            assert a.shape == (2, 1, 3, 16, 16) and torch.equal(a, b)
            assert level_a is not None and torch.equal(level_a, level_b)
