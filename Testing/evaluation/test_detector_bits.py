"""``detector_bits`` (X-ray evaluation): noisy images clipped to a saturating detector's range, so a simulated
low-dose image of a 10-bit radiograph stays a 10-bit image, as a real one is."""

import json

import numpy as np
import pytest
import SimpleITK as sitk
from pydantic import ValidationError

from MedDenoiseLib.evaluation import EvaluationConfig, evaluate
from MedDenoiseLib.evaluation.cases import load_cases
from MedDenoiseLib.evaluation.report import write_report
from MedDenoiseLib.evaluation.runner import simulate_case_noise
from MedDenoiseLib.normalization import fit_normalization


@pytest.fixture()
def radiograph(tmp_path):
    """A 10-bit radiograph: background 100, soft tissue 500, a bright field at 1000 (near the top of 0-1023)."""
    image = np.full((1, 48, 48), 100.0, np.float32)
    image[:, 6:44, 6:44] = 500.0
    image[:, 14:34, 14:34] = 1000.0
    sitk.WriteImage(sitk.GetImageFromArray(image), str(tmp_path / "cr.nrrd"))
    return tmp_path / "cr.nrrd"


def test_clipping_is_the_unclipped_draw_inside_the_range(radiograph):
    case = load_cases([str(radiograph)])[0]
    free = simulate_case_noise(case, "xr", 0.1, 7, fast=False)
    clipped = simulate_case_noise(case, "xr", 0.1, 7, fast=False, detector_bits=10)
    assert free.max() > 1023.0  # quantum noise on the bright field crosses the 10-bit top
    np.testing.assert_array_equal(clipped, np.clip(free, 0.0, 1023.0))
    # the normalisation then reads a 10-bit image, as it would the real radiograph
    assert fit_normalization(free, "xr").scale == 4095.0
    assert fit_normalization(clipped, "xr").scale == 1023.0


def test_it_is_refused_for_other_modalities(radiograph):
    with pytest.raises(ValidationError, match=r"detector_bits applies to modality 'xr' only.*10 with modality 'mr'"):
        EvaluationConfig(data=[str(radiograph)], modality="mr", levels=[5.0], methods=["noisy"], detector_bits=10)
    with pytest.raises(ValidationError, match="detector_bits"):
        EvaluationConfig(data=[str(radiograph)], modality="xr", levels=[0.5], methods=["noisy"], detector_bits=4)


def test_the_report_scores_the_clipped_images_and_says_so(radiograph, tmp_path):
    config = EvaluationConfig(data=[str(radiograph)], modality="xr", levels=[0.1], methods=["noisy", "median"],
                              seed=3, detector_bits=10, figures=False, bootstrap_resamples=100)
    result = evaluate(config)
    write_report(result, tmp_path / "out")
    text = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    assert "noisy images clipped to a 10-bit detector's range [0, 1023]" in text
    report = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    unclipped = evaluate(config.model_copy(update={"detector_bits": None}))
    noisy_psnr = [r["psnr"] for r in report["records"] if r["method"] == "noisy"]
    free_psnr = [r["psnr"] for r in unclipped.records if r["method"] == "noisy"]
    assert noisy_psnr[0] != pytest.approx(free_psnr[0], abs=1e-3)  # clipping changed the scored input


def test_cli_option_reaches_the_report_and_is_refused_for_mr(radiograph, tmp_path, caplog):
    from MedDenoiseLib.cli.main import EXIT_ERROR, main

    common = ["evaluate", "--data", str(radiograph), "--noise", "0.1", "--methods", "noisy,median", "--seed", "2",
              "--bootstrap", "100", "--no-figures", "--detector-bits", "10"]
    assert main(common + ["--modality", "xr", "--out", str(tmp_path / "xr")]) == 0
    report = json.loads((tmp_path / "xr" / "report.json").read_text(encoding="utf-8"))
    assert report["config"]["detector_bits"] == 10
    assert main(common + ["--modality", "mr", "--out", str(tmp_path / "mr")]) == EXIT_ERROR
    assert "detector_bits applies to modality 'xr' only" in caplog.text
    assert not (tmp_path / "mr" / "report.json").exists()


def test_every_scored_image_comes_from_case_noise_with_the_clip(radiograph):
    from MedDenoiseLib.evaluation.runner import case_noise

    case = load_cases([str(radiograph)])[0]
    config = EvaluationConfig(data=[str(radiograph)], modality="xr", levels=[0.1], methods=["noisy"], detector_bits=10)
    np.testing.assert_array_equal(case_noise(config, case, 0.1, 7),
                                  simulate_case_noise(case, "xr", 0.1, 7, fast=False, detector_bits=10))


def test_a_clean_case_outside_the_detector_range_is_refused(radiograph):
    from MedDenoiseLib.errors import ConfigError

    config = EvaluationConfig(data=[str(radiograph)], modality="xr", levels=[0.1], methods=["noisy"], detector_bits=8,
                              figures=False)
    with pytest.raises(ConfigError, match=r"detector_bits must hold every clean case's range \[0, 255\].*"
                                          r"8 for cr \(range 100 to 1000\).*bit depth"):
        evaluate(config)


def test_the_cli_option_overrides_a_config_file(radiograph, tmp_path):
    import yaml

    from MedDenoiseLib.cli.main import main

    config = EvaluationConfig(data=[str(radiograph)], modality="xr", levels=[0.1], methods=["noisy", "median"],
                              seed=2, figures=False, bootstrap_resamples=100)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config.model_dump(mode="json")), encoding="utf-8")
    assert main(["evaluate", "--config", str(tmp_path / "c.yaml"), "--detector-bits", "10",
                 "--out", str(tmp_path / "out")]) == 0
    assert json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))["config"]["detector_bits"] == 10
