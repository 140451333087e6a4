"""``meddenoise train``: config errors, run directory defaults, --steps, --resume and --export."""

import json

from MedDenoiseLib.cli.main import EXIT_ERROR, main
from MedDenoiseLib.training import TrainConfig, dump_config


def test_train_resume_and_export(tmp_path, patients, monkeypatch):
    train_files, _ = patients
    config = TrainConfig.model_validate({
        "name": "cli_tiny", "seed": 2, "checkpoint_every": 1, "model": {"name": "dncnn", "depth": 3, "features": 8},
        "data": {"train": train_files, "patch_size": (3, 16, 16), "batch_size": 2},
        "noise": {"modality": "mr", "level_range": (2.0, 6.0)}, "optim": {"steps": 3, "warmup_steps": 1},
        "logs": {"tensorboard": False, "plot": False}})
    dump_config(config, tmp_path / "c.yaml")
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--config", "c.yaml", "--steps", "2", "--progress", "none"]) == 0
    first = tmp_path / "runs" / "cli_tiny" / "checkpoint"  # default run directory: runs/<name>
    assert json.loads((first / "state.json").read_text(encoding="utf-8"))["step"] == 2
    assert main(["train", "--config", "c.yaml", "--run-dir", "other", "--resume", str(first), "--export", "model",
                 "--progress", "json"]) == 0
    state = json.loads((tmp_path / "other" / "checkpoint" / "state.json").read_text(encoding="utf-8"))
    assert state["step"] == 3 and [h["step"] for h in state["history"]] == [1, 2, 3]
    assert json.loads((tmp_path / "model" / "card.json").read_text(encoding="utf-8"))["training"]["steps"] == 3


def test_bad_config_exits_with_a_message(tmp_path, caplog):
    (tmp_path / "bad.yaml").write_text("name: t\nmodel: {name: dncnn}\ndata: {train: [a.nii.gz]}\n"
                                       "noise: {modality: mr, level_range: [1, 2]}\noptim: {lr: -1}\n", encoding="utf-8")
    assert main(["train", "--config", str(tmp_path / "bad.yaml"), "--run-dir", str(tmp_path / "run")]) == EXIT_ERROR
    assert "optim.lr Input should be greater than 0; got -1" in caplog.text


def test_tensorboard_events_when_installed(tmp_path, patients):
    import pytest

    pytest.importorskip("tensorboard")
    from MedDenoiseLib.training import train

    train_files, _ = patients
    config = TrainConfig.model_validate({
        "name": "tb", "seed": 2, "checkpoint_every": 1, "model": {"name": "dncnn", "depth": 3, "features": 8},
        "data": {"train": train_files, "patch_size": (3, 16, 16), "batch_size": 2},
        "noise": {"modality": "mr", "level_range": (2.0, 6.0)}, "optim": {"steps": 1, "warmup_steps": 1}})
    train(config, tmp_path / "run")
    assert any((tmp_path / "run" / "tensorboard").iterdir())
