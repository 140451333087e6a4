"""Training configuration: factories, YAML round trip, and rule messages naming field, rule and value."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from MedDenoiseLib.errors import ConfigError
from MedDenoiseLib.training import create_n2v_config, create_supervised_config, dump_config, load_config, with_overrides
from MedDenoiseLib.training.config import TrainConfig

REPO = Path(__file__).resolve().parents[2]


def _raw(**overrides):
    raw = {"name": "t", "seed": 1, "model": {"name": "dncnn"}, "data": {"train": ["a.nii.gz"]},
           "noise": {"modality": "mr", "level_range": [1.0, 5.0]}}
    raw.update(overrides)
    return raw


class TestFactories:
    def test_supervised_defaults(self):
        c = create_supervised_config("m", "ct", ["a.nii.gz"], validation=["b.nii.gz"], model="resunet", seed=3)
        assert c.optim.lr == 2e-4 and c.optim.ema_decay == 0.999
        assert (c.loss.l1, c.loss.ssim, c.loss.edge) == (1.0, 0.5, 0.1)
        assert c.data.patch_size == (32, 160, 160) and c.data.loss_margin == 2 and c.data.augment.rot90
        assert c.noise.level_range == (0.10, 0.25) and c.data.validation == ["b.nii.gz"]

    def test_n2v_defaults_and_thin_patches(self):
        c = create_n2v_config("n", "mr", ["noisy.nii.gz"], patch_size=(1, 64, 64), seed=2)
        assert c.algorithm == "n2v" and c.masking.fraction == 0.002 and c.noise.level_range is None
        assert c.data.loss_margin == 0

    def test_seed_is_drawn_and_saved(self, tmp_path):
        c = create_supervised_config("m", "mr", ["a.nii.gz"])
        dump_config(c, tmp_path / "c.yaml")
        assert load_config(tmp_path / "c.yaml") == c

    def test_overrides(self):
        c = with_overrides(create_supervised_config("m", "mr", ["a.nii.gz"], seed=1), {"optim.lr": 1e-3})
        assert c.optim.lr == 1e-3
        with pytest.raises(ConfigError, match="override must name an existing config field; got 'optim.rate'"):
            with_overrides(c, {"optim.rate": 1.0})

    def test_shipped_and_example_configs_validate(self):
        assert load_config(REPO / "Resources/Models/mr_slab25d/config.yaml").algorithm == "supervised"
        examples = sorted((REPO / "configs").glob("*.yaml"))
        assert len(examples) >= 5
        for path in examples:
            load_config(path)


class TestRules:
    @pytest.mark.parametrize("overrides, message", [
        ({"data": {"train": ["a.nii.gz"], "validation": ["./a.nii.gz"]}},
         r"data.validation must not share volumes with data.train \(patient-level split\); got \["),
        ({"noise": {"modality": "mr"}}, r"noise.level_range must be set for algorithm 'supervised'; got None"),
        ({"noise": {"modality": "mr", "level_range": [5.0, 1.0]}},
         r"noise.level_range must be \(low, high\) with low <= high; got \(5.0, 1.0\)"),
        ({"loss": {"l1": 0.0}}, r"loss weights \(l1 \+ ssim \+ edge \+ mse\) must sum to > 0; got \(0.0, 0.0, 0.0, 0.0\)"),
        ({"loss": {"ssim": 1.0}, "data": {"train": ["a.nii.gz"], "patch_size": [5, 8, 8]}},
         r"data.patch_size \(H, W\) must be >= the 11-voxel SSIM window when loss.ssim > 0; got \(8, 8\)"),
        ({"data": {"train": ["a.nii.gz"], "patch_size": [5, 16, 32], "augment": {"rot90": True}}},
         r"data.augment.rot90 needs a square in-plane patch \(H == W\); got \(16, 32\)"),
        ({"masking": {"struct_axis": "x"}}, r"masking.struct_span must be >= 1 when struct_axis is set; got 0"),
        ({"algorithm": "n2v", "noise": {"modality": "mr"}, "data": {"train": ["a.nii.gz"], "validation": ["b.nii.gz"]}},
         r"validation.levels must be set when noise.level_range is None"),
        ({"device": "tpu"}, r"device must be 'auto', 'cpu' or 'cuda\[:N\]'; got 'tpu'"),
        ({"optim": {"ema_decay": 1.0}}, r"optim.ema_decay\n  Input should be less than 1"),
        ({"learning_rate": 1.0}, r"learning_rate\n  Extra inputs are not permitted"),
    ])
    def test_rule_messages(self, overrides, message):
        with pytest.raises(ValidationError, match=message):
            TrainConfig.model_validate(_raw(**overrides))

    def test_load_config_names_file_field_rule_value(self, tmp_path):
        path = tmp_path / "bad.yaml"
        path.write_text("name: t\nmodel: {name: dncnn}\ndata: {train: [a.nii.gz], batch_size: 0}\n"
                        "noise: {modality: mr, level_range: [1, 2]}\n", encoding="utf-8")
        with pytest.raises(ConfigError, match=r"bad.yaml: data.batch_size Input should be greater than or equal to 1; "
                                              r"got 0\. Fix this entry"):
            load_config(path)
        with pytest.raises(ConfigError, match="--config must be an existing YAML file"):
            load_config(tmp_path / "missing.yaml")


def test_n2v_factory_takes_the_architecture_of_init(tmp_path):
    from MedDenoiseLib.models.card import save_model
    from MedDenoiseLib.testing import tiny_model

    save_model(tiny_model(seed=1), tmp_path / "stage1", {"name": "stage1", "modality": "mr"})
    c = create_n2v_config("ft", "mr", ["noisy.nii.gz"], init=str(tmp_path / "stage1"), seed=1)
    assert c.model == {**tiny_model().architecture_config} and c.init == str(tmp_path / "stage1")
