"""`meddenoise evaluate` end to end on a tiny synthetic set, the runner's reproducibility, leakage checks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from MedDenoiseLib.cli.main import EXIT_ERROR, main
from MedDenoiseLib.evaluation import EvaluationConfig, evaluate
from MedDenoiseLib.evaluation.cases import foreground_crop, load_cases
from MedDenoiseLib.evaluation.runner import noise_seed, simulate_case_noise
from MedDenoiseLib.models import build_model
from MedDenoiseLib.models.card import save_model


@pytest.fixture()
def mr_dir(tmp_path):
    """Three MR-like 4 x 40 x 44 "subjects": discs of different sizes on a dim background."""
    folder = tmp_path / "mr"
    folder.mkdir()
    for i in range(3):
        z, y, x = np.mgrid[0:4, 0:40, 0:44]
        img = 50 + 300 * (((y - 20) ** 2 + (x - 22) ** 2) < (10 + 2 * i) ** 2) + 100 * ((np.abs(y - 14) < 3) & (x > 30))
        image = sitk.GetImageFromArray(img.astype(np.float32))
        image.SetSpacing((1.0, 1.0, 3.0))
        sitk.WriteImage(image, str(folder / f"subject{i}.nii.gz"))
    return folder


def test_cli_writes_json_markdown_and_figures(tmp_path, mr_dir):
    out = tmp_path / "report"
    code = main(["evaluate", "--data", str(mr_dir), "--modality", "mr", "--noise", "4,12", "--methods",
                 "noisy,median,gaussian", "--seed", "3", "--bootstrap", "200", "--out", str(out)])
    assert code == 0
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert len(report["records"]) == 3 * 2 * 3  # cases x levels x methods, every per-case number kept
    assert {r["method"] for r in report["records"]} == {"noisy", "median", "gaussian"}
    assert report["reference"] == "median" and report["config"]["seed"] == 3
    by = {(r["case"], r["level"], r["method"]): r for r in report["records"]}
    for case in ("subject0", "subject1", "subject2"):  # the median filter beats the noisy input at 12 %
        assert by[(case, 12.0, "median")]["psnr"] > by[(case, 12.0, "noisy")]["psnr"] + 3
        assert by[(case, 12.0, "median")]["seconds"] > 0
    text = (out / "report.md").read_text(encoding="utf-8")
    for heading in ("## Image quality", "### PSNR (dB)", "## Paired comparisons", "### Δ SSIM", "## Time per method",
                    "LPIPS is not reported"):
        assert heading in text
    assert "| 12 | noisy | 3 |" in text  # comparison row: level, other method, n
    for name in ("panels_level0.png", "panels_level1.png", "metrics_vs_noise.png", "time_per_method.png"):
        assert (out / "figures" / name).stat().st_size > 1000
    # the saved config reproduces the run: same noise seeds, same scores
    assert main(["evaluate", "--config", str(out / "config.yaml"), "--no-figures", "--out", str(tmp_path / "again")]) == 0
    again = json.loads((tmp_path / "again" / "report.json").read_text(encoding="utf-8"))
    assert [r["psnr"] for r in again["records"]] == [r["psnr"] for r in report["records"]]


def test_cli_rejects_unknown_method(tmp_path, mr_dir, caplog):
    code = main(["evaluate", "--data", str(mr_dir), "--modality", "mr", "--noise", "5", "--methods", "noisy,bm3d",
                 "--out", str(tmp_path / "r")])
    assert code == EXIT_ERROR and "methods ['bm3d'] are unknown" in caplog.text
    assert not (tmp_path / "r" / "report.json").exists()


def test_noise_draws_are_replayable_and_distinct(mr_dir):
    case = load_cases([str(mr_dir)])[0]
    a = simulate_case_noise(case, "mr", 5.0, noise_seed(1, 0, 0), fast=False)
    b = simulate_case_noise(case, "mr", 5.0, noise_seed(1, 0, 0), fast=False)
    c = simulate_case_noise(case, "mr", 5.0, noise_seed(1, 0, 1), fast=False)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_foreground_crop_is_centred_and_clipped():
    img = np.zeros((3, 50, 60))
    img[:, 30:40, 10:20] = 1.0
    window = foreground_crop(img, (8, 10, 10))
    assert window == (slice(0, 3), slice(30, 40), slice(10, 20))


@pytest.fixture()
def tiny_model(tmp_path, mr_dir):
    """A small untrained slab25d model whose card says it was trained on subject0."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = build_model("slab25d", features=8, depth=3).eval()
    card = {"name": "mr_tiny", "modality": "mr",
            "training": {"config": {"data": {"train": [str(mr_dir / "subject0.nii.gz")]}}}}
    return save_model(net, tmp_path / "mr_tiny", card)


def test_model_method_and_leakage_guard(tmp_path, mr_dir, tiny_model):
    base = dict(data=[str(mr_dir)], modality="mr", levels=[8.0], seed=0, tta=2, bootstrap_resamples=200,
                methods=["noisy", f"model:{tiny_model}", "median"])
    with pytest.raises(Exception, match="must not include a model's training data.*subject0"):
        evaluate(EvaluationConfig(**base))
    result = evaluate(EvaluationConfig(**base, exclude_training=True))
    assert [c["name"] for c in result.cases] == ["subject1", "subject2"]
    assert result.reference == f"model:{tiny_model}"
    model_rows = [r for r in result.records if r["method"] == result.reference]
    assert len(model_rows) == 2 and all(r["tta"] == 2 and r["device"] == "cpu" for r in model_rows)
    assert result.panels[8.0]["uncertainty"][result.reference].shape == (40, 44)
    comp = [c for c in result.comparisons if c["metric"] == "psnr"]
    assert {c["other"] for c in comp} == {"noisy", "median"} and all(c["test"] == "none: n < 3" for c in comp)
