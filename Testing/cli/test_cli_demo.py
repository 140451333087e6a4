"""`meddenoise demo` on the bundled sample with the shipped MR model (no training, no download)."""

import json

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from MedDenoiseLib.cli.demo import sample_path
from MedDenoiseLib.cli.main import main


def test_demo_writes_outputs_and_improves_psnr(tmp_path):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--tta", "2", "--device", "cpu", "--progress", "none"]) == 0
    sample = sitk.ReadImage(str(sample_path()))
    for name in ("clean", "noisy", "denoised", "uncertainty", "uncertainty_labels"):
        image = sitk.ReadImage(str(out / f"{name}.nii.gz"))
        assert image.GetSize() == sample.GetSize()
        np.testing.assert_allclose(image.GetOrigin(), sample.GetOrigin(), atol=1e-4)
        np.testing.assert_allclose(image.GetDirection(), sample.GetDirection(), atol=1e-6)
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "uncertainty_labels.nii.gz")))
    assert labels.dtype == np.uint8 and labels.max() <= 3
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    scores = report["scores"]
    assert scores["psnr_denoised"] > scores["psnr_noisy"] + 3.0  # a real model, on a held-out volume
    assert scores["ssim_denoised"] > scores["ssim_noisy"]
    assert report["denoise"]["model"] == "mr_slab25d"
    figure = np.asarray(Image.open(out / "before_after.png").convert("RGB"))
    assert figure.shape[0] > 200 and figure.std() > 10  # a drawn figure, not a blank canvas


@pytest.mark.parametrize("report, title", [
    ({"std_scale": 1.0, "std_floor": 0.0}, "uncertainty (raw TTA std)"),
    ({}, "uncertainty (raw TTA std)"),
    ({"std_scale": 1.3, "std_floor": 0.0}, "uncertainty (calibrated std: spread)"),
    ({"std_scale": 0.7, "std_floor": 4.2, "std_edge": 0.27}, "uncertainty (calibrated std: spread + floor + edge)"),
])
def test_figure_title_names_what_the_std_map_holds(report, title):
    from MedDenoiseLib.cli.figure import std_title

    assert std_title(report) == title
