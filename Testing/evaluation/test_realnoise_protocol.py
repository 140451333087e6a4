"""``meddenoise evaluate --protocol real-noise``: the estimate from two acquisitions matches the true
error to the (here known) clean image, pairs are checked, the report carries every number."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from MedDenoiseLib.cli.main import EXIT_ERROR, main
from MedDenoiseLib.errors import InputError
from MedDenoiseLib.evaluation.realnoise_protocol import evaluate_real_noise, load_pairs
from MedDenoiseLib.metrics.segmentation import tissue_classes

SIGMA = 20.0


def _clean(i: int) -> np.ndarray:
    """A smooth blob on a flat background (a median filter has no corners to erode)."""
    z, y, x = np.mgrid[0:6, 0:64, 0:64]
    radius2 = (y - 32) ** 2 + (x - 30) ** 2
    return (100 + 400 * np.exp(-radius2 / (2 * (10 + 2 * i) ** 2))).astype(np.float32)


def _write(array: np.ndarray, path, spacing=(1.0, 1.0, 3.0)) -> str:
    image = sitk.GetImageFromArray(array.astype(np.float32))
    image.SetSpacing(spacing)
    sitk.WriteImage(image, str(path))
    return str(path)


@pytest.fixture()
def pairs(tmp_path):
    """Three subjects, each acquired twice with independent Gaussian noise of std SIGMA."""
    rng = np.random.default_rng(7)
    entries = []
    for i in range(3):
        clean = _clean(i)
        entries.append(tuple(_write(clean + rng.normal(0, SIGMA, clean.shape), tmp_path / f"s{i}_{k}.nrrd")
                             for k in (1, 2)))
    return entries


def test_estimate_matches_the_true_error(pairs):
    """For 'noisy' the true MSE is σ²; for the median filter it is what the clean image says."""
    result = evaluate_real_noise(load_pairs(pairs), ["noisy", "median"], "ct", mask="foreground")
    for (first, second), pair in zip(pairs, load_pairs(pairs)):
        mean_image = 0.5 * (pair.first + pair.second)
        sel = tissue_classes(mean_image, n_classes=2) > 0
        clean = _clean(int(pair.name[1]))
        records = {r["method"]: r for r in result["records"] if r["case"] == pair.name}
        assert records["noisy"]["sigma_pairs"] == pytest.approx(SIGMA, rel=0.03)
        assert records["noisy"]["mse_estimate"] == pytest.approx(SIGMA**2, rel=0.08)
        filtered = sitk.GetArrayFromImage(sitk.Median(sitk.GetImageFromArray(pair.first), [1, 1, 1]))
        true_mse = float(np.mean((filtered - clean)[sel] ** 2))
        assert records["median"]["mse_estimate"] == pytest.approx(true_mse, rel=0.25)
        assert records["median"]["psnr_estimate"] > records["noisy"]["psnr_estimate"] + 2
    assert result["reference"] == "noisy"
    comparison = result["comparisons"][0]
    assert comparison["other"] == "median" and comparison["n"] == 3 and comparison["mean_diff"] < 0


def test_cli_writes_the_report(tmp_path, pairs):
    out = tmp_path / "report"
    argv = ["evaluate", "--protocol", "real-noise", "--modality", "ct", "--methods", "noisy,median,gaussian",
            "--reference", "median", "--mask", "foreground", "--out", str(out)]
    for first, second in pairs:
        argv += ["--pairs", first, second]
    assert main(argv) == 0
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert len(report["records"]) == 3 * 3 and report["reference"] == "median"
    assert {r["other"] for r in report["comparisons"]} == {"noisy", "gaussian"}
    assert all(r["p_holm"] is not None for r in report["comparisons"])
    text = (out / "report.md").read_text(encoding="utf-8")
    assert "Estimated PSNR to the unknown clean image" in text and "--protocol real-noise" in text
    assert "s0_1+s0_2" in text


def test_pairs_must_share_a_grid_and_differ(tmp_path):
    a = _write(_clean(0), tmp_path / "a.nrrd")
    moved = _write(_clean(0) + 1, tmp_path / "b.nrrd", spacing=(1.0, 1.0, 2.5))
    with pytest.raises(InputError, match="same voxel grid"):
        load_pairs([(a, moved)])
    with pytest.raises(InputError, match="must differ"):
        load_pairs([(a, a)])


def test_cli_names_missing_arguments(tmp_path, caplog):
    code = main(["evaluate", "--protocol", "real-noise", "--modality", "ct", "--out", str(tmp_path / "r")])
    assert code == EXIT_ERROR
    assert "must include --pairs, --modality and --methods" in caplog.text and "'--pairs'" in caplog.text
    assert not (tmp_path / "r").exists()
