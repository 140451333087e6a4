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
    loaded = load_pairs(pairs)
    result = evaluate_real_noise(loaded, ["noisy", "median"], "ct", mask="foreground", n_resamples=200)
    for pair in loaded:
        clean = _clean(int(pair.name[1]))
        records = {r["method"]: r for r in result["records"] if r["case"] == pair.name}
        assert records["noisy"]["sigma_pairs"] == pytest.approx(SIGMA, rel=0.03)
        assert records["noisy"]["mse_estimate"] == pytest.approx(SIGMA**2, rel=0.08)
        truth = []  # both directions, each on the foreground of the image it denoised
        for source in (pair.first, pair.second):
            filtered = sitk.GetArrayFromImage(sitk.Median(sitk.GetImageFromArray(source), [1, 1, 1]))
            truth.append(float(np.mean((filtered - clean)[tissue_classes(source, n_classes=2) > 0] ** 2)))
        # about 1.5 standard errors of the estimate on ~5,000 foreground voxels per direction
        assert records["median"]["mse_estimate"] == pytest.approx(np.mean(truth), rel=0.25)
        assert records["median"]["psnr_estimate"] > records["noisy"]["psnr_estimate"] + 2
    assert result["reference"] == "noisy"
    comparison = result["comparisons"][0]
    assert comparison["other"] == "median" and comparison["n"] == 3
    assert comparison["metric"] == "mse_estimate" and comparison["mean_diff"] > 0  # noisy has the larger error
    summary = {row["method"]: row for row in result["summary"]}
    assert summary["median"]["psnr_of_mean_mse"] > summary["noisy"]["psnr_of_mean_mse"]


class _Oracle:
    """A "denoiser" that returns the clean image: its true error is exactly 0."""

    name, kind = "oracle", "test"

    def __init__(self, clean):
        self.clean = clean

    def run(self, noisy, *, sigma, geometry):
        from MedDenoiseLib.evaluation.methods import MethodOutput

        return MethodOutput(self.clean, 0.0)


def test_oracle_scores_zero_on_average():
    """No bias from the foreground mask: each direction's mask comes from the image denoised, never from
    the noise it is scored against (a mask from the mean image would bias it upwards)."""
    from MedDenoiseLib.evaluation.realnoise_protocol import AcquisitionPair, _score_method, _setup
    from MedDenoiseLib.volume import Geometry

    clean, rng, estimates = _clean(0), np.random.default_rng(11), []
    for k in range(80):
        first, second = (clean + rng.normal(0, SIGMA, clean.shape).astype(np.float32) for _ in range(2))
        pair = AcquisitionPair(f"p{k}", ("a", "b"), first, second, Geometry())
        estimates.append(_score_method(_Oracle(clean), pair, _setup(pair, "foreground"), sigma_given=SIGMA)
                         ["mse_estimate"])
    standard_error = np.std(estimates, ddof=1) / np.sqrt(len(estimates))
    assert standard_error < 0.9  # fine enough to reveal a bias of a few units
    assert abs(np.mean(estimates)) < 2.5 * standard_error


def test_cli_writes_the_report(tmp_path, pairs):
    out = tmp_path / "report"
    argv = ["evaluate", "--protocol", "real-noise", "--modality", "ct", "--methods", "noisy,median,gaussian",
            "--reference", "median", "--bootstrap", "200", "--out", str(out)]  # --mask defaults to foreground
    for first, second in pairs:
        argv += ["--pairs", first, second]
    assert main(argv) == 0
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert len(report["records"]) == 3 * 3 and report["reference"] == "median"
    assert {r["other"] for r in report["comparisons"]} == {"noisy", "gaussian"}
    assert all(r["p_holm"] is not None for r in report["comparisons"])
    text = (out / "report.md").read_text(encoding="utf-8")
    assert "Estimated MSE to the unknown clean image" in text and "s0_1+s0_2" in text
    assert report["mask"] == "foreground" and isinstance(report["seed"], int)
    for flag in ("--protocol real-noise", "--reference median", "--mask foreground", f"--seed {report['seed']}",
                 "--sigma estimate", "--bootstrap 200"):
        assert flag in report["command"], flag  # the recorded command re-runs the same evaluation


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
