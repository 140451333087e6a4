"""`meddenoise evaluate --fidelity` end to end on a tiny synthetic MR case with a tiny model."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import SimpleITK as sitk
import yaml

from MedDenoiseLib.cli.main import EXIT_ERROR, main
from MedDenoiseLib.evaluation import load_evaluation_config
from MedDenoiseLib.evaluation.fidelity import fidelity_level
from MedDenoiseLib.testing import write_tiny_models_root


@pytest.fixture()
def mr_case(tmp_path):
    """One 4 x 96 x 96 MR-like subject: a textured square of tissue with a bright disc, 2 mm slices."""
    z, y, x = np.mgrid[0:4, 0:96, 0:96]
    img = 30 + 170 * ((np.abs(y - 48) < 42) & (np.abs(x - 48) < 42)) + 120 * ((y - 28) ** 2 + (x - 64) ** 2 < 64)
    img = img + 2.0 * np.sin(x / 5.0) * np.cos(y / 7.0)
    image = sitk.GetImageFromArray(img.astype(np.float32))
    image.SetSpacing((1.0, 1.0, 2.0))
    path = tmp_path / "subject0.nii.gz"
    sitk.WriteImage(image, str(path))
    return path


def test_fidelity_section_verdicts_and_figures(tmp_path, mr_case, monkeypatch):
    monkeypatch.setenv("MEDDENOISE_MODELS", str(write_tiny_models_root(tmp_path / "models", ("mr",))))
    out = tmp_path / "report"
    code = main(["evaluate", "--data", str(mr_case), "--modality", "mr", "--noise", "8", "--methods",
                 "noisy,model,gaussian", "--seed", "3", "--bootstrap", "200", "--tta", "2", "--fidelity",
                 "--out", str(out)])
    assert code == 0
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    fidelity = report["fidelity"]
    assert fidelity["level"] == 8.0 and report["config"]["fidelity"] is True
    assert [r["method"] for r in fidelity["records"]] == ["noisy", "model", "gaussian"]
    model = fidelity["records"][1]
    assert 0.0 <= model["calibration_coverage"] <= 1.0 and model["calibration_source"] == "raw tta spread (no calibration recorded for TTA 2)"
    assert fidelity["records"][2]["calibration_coverage"] is None  # baselines show no uncertainty map
    assert fidelity["error_draws"] == 8 and -1.0 <= model["calibration_spearman_empirical"] <= 1.0
    assert fidelity["records"][2]["calibration_spearman_empirical"] is None
    assert fidelity["cases"][0]["phantom"]["disc"] is not None and len(fidelity["cases"][0]["phantom"]["lesions"]) == 4
    assert {v["method"] for v in fidelity["verdicts"]} == {"model", "gaussian"}
    text = (out / "report.md").read_text(encoding="utf-8")
    for heading in ("## Clinical fidelity", "### MR", "| noisy | 100.0 |", "### Verdict per method",
                    "ρ of the empirical error std", "also denoised 8 fresh noise draws",
                    "- **model** — ", "- **gaussian** — **fails: texture smoothed", "Clinical fidelity failures:"):
        assert heading in text
    assert text.index("## Clinical fidelity") < text.index("## Notes")
    for name in ("fidelity_nps.png", "fidelity_ttf.png", "fidelity_reliability.png", "fidelity_lesion_cnr.png"):
        assert (out / "figures" / name).stat().st_size > 1000
    saved = yaml.safe_load((out / "config.yaml").read_text(encoding="utf-8"))
    assert saved["fidelity"] is True  # the printed re-run command reproduces the section


def test_config_accepts_fidelity_and_the_flag_overrides(tmp_path, mr_case):
    path = tmp_path / "eval.yaml"
    fields = {"data": [str(mr_case)], "modality": "mr", "levels": [4.0], "methods": ["noisy", "median"]}
    path.write_text(yaml.safe_dump({**fields, "fidelity": True, "fidelity_lesions": 2}), encoding="utf-8")
    config = load_evaluation_config(path)
    assert config.fidelity is True and config.fidelity_lesions == 2
    path.write_text(yaml.safe_dump(fields), encoding="utf-8")
    assert load_evaluation_config(path).fidelity is False


def test_bad_fidelity_settings_are_refused(tmp_path, mr_case, caplog):
    path = tmp_path / "eval.yaml"
    path.write_text(yaml.safe_dump({"data": [str(mr_case)], "modality": "mr", "levels": [4.0],
                                    "methods": ["noisy", "median"], "fidelity_lesions": 0}), encoding="utf-8")
    assert main(["evaluate", "--config", str(path), "--fidelity", "--out", str(tmp_path / "r")]) == EXIT_ERROR
    assert "fidelity_lesions" in caplog.text and "greater than or equal to 1" in caplog.text
    assert not (tmp_path / "r" / "report.json").exists()


def test_fidelity_level_is_the_middle_level():
    assert fidelity_level([12.0, 3.0, 6.0]) == 6.0 and fidelity_level([0.1]) == 0.1
    assert math.isclose(fidelity_level([0.5, 0.1, 0.25, 0.15]), 0.25)


def test_one_model_calibrated_per_uncertainty_source(tmp_path, mr_case):
    """model:DIR@tta and model:DIR@model side by side: each gets its own calibration line."""
    from MedDenoiseLib.models.card import save_model
    from MedDenoiseLib.testing import tiny_dualnet, tiny_model

    dual = tmp_path / "dual"
    save_model(tiny_dualnet(), dual, {"name": "dual", "modality": "mr"})
    drop = tmp_path / "drop"
    save_model(tiny_model(dropout=0.2), drop, {"name": "drop", "modality": "mr"})
    out = tmp_path / "report"
    methods = f"noisy,model:{dual}@tta,model:{dual}@model,model:{drop}@mc_dropout=2"
    code = main(["evaluate", "--data", str(mr_case), "--modality", "mr", "--noise", "8", "--methods", methods,
                 "--seed", "3", "--bootstrap", "100", "--tta", "2", "--fidelity", "--out", str(out)])
    assert code == 0
    records = {r["method"]: r for r in json.loads((out / "report.json").read_text())["fidelity"]["records"]}
    sources = {name.rsplit("@", 1)[1]: r["calibration_source"] for name, r in records.items() if "@" in name}
    assert sources["tta"].startswith("raw tta spread") and sources["model"].startswith("raw model spread")
    assert "MC-dropout" in sources["mc_dropout=2"]
    own, spread = records[f"model:{dual}@model"], records[f"model:{dual}@tta"]
    assert own["calibration_coverage"] != spread["calibration_coverage"]


def test_bad_uncertainty_suffix_is_refused(tmp_path, mr_case):
    from MedDenoiseLib.errors import ConfigError
    from MedDenoiseLib.evaluation.methods import parse_model_token

    with pytest.raises(ConfigError, match="@mc_dropout=N"):
        parse_model_token("model:x@mc_dropout=1")
    with pytest.raises(ConfigError, match="@tta, @model"):
        parse_model_token("model:x@spread")


def test_error_draws_are_fresh_seeded_runs_of_each_model_only(tmp_path, mr_case, monkeypatch):
    from MedDenoiseLib.evaluation import evaluate
    from MedDenoiseLib.evaluation.runner import error_draw_seed, noise_seed

    monkeypatch.setenv("MEDDENOISE_MODELS", str(write_tiny_models_root(tmp_path / "models", ("mr",))))
    fields = {"data": [str(mr_case)], "modality": "mr", "levels": [8.0], "methods": ["noisy", "model", "median"],
              "seed": 3, "tta": 2, "fidelity": True, "bootstrap_resamples": 100, "figures": False}
    seen = []
    evaluate(load_evaluation_config_from(fields, tmp_path, fidelity_error_draws=3),
             progress=lambda done, total, message: seen.append((done, total, message)))
    assert seen[-1][0] == seen[-1][1] == 3 + 2 * 2 + 3  # 3 methods at the level, clean + phantom of 2, 3 draws
    assert sum("error draw" in m for _, _, m in seen) == 3
    none = evaluate(load_evaluation_config_from(fields, tmp_path, fidelity_error_draws=0))
    record = next(r for r in none.fidelity["records"] if r["method"] == "model")
    assert math.isnan(record["calibration_spearman_empirical"]) and none.fidelity["error_draws"] == 0
    from MedDenoiseLib.evaluation.fidelity_report import fidelity_section

    section = "\n".join(fidelity_section(none.fidelity, none.config, tmp_path, figures=False))
    assert "| Dice |" in section and "empirical error std" not in section  # no draws, no column
    seeds = {error_draw_seed(3, 0, 0, k) for k in range(3)}
    assert len(seeds) == 3 and noise_seed(3, 0, 0) not in seeds


def load_evaluation_config_from(fields: dict, tmp_path, **extra):
    path = tmp_path / "eval.yaml"
    path.write_text(yaml.safe_dump({**fields, **extra}), encoding="utf-8")
    return load_evaluation_config(path)
