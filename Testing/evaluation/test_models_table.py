"""docs/models.md generation: bars checked against hand-made report numbers, calibration rows, CLI."""

from __future__ import annotations

import json

import pytest

from MedDenoiseLib.cli.main import main
from MedDenoiseLib.evaluation.models_table import load_reports, models_markdown
from MedDenoiseLib.testing import write_tiny_models_root


def _summary(table: dict) -> list[dict]:
    rows = []
    for (method, level), (psnr, ssim) in table.items():
        rows += [{"metric": "psnr", "level": level, "method": method, "mean": psnr},
                 {"metric": "ssim", "level": level, "method": method, "mean": ssim}]
    return rows


def _report(modality: str = "mr", fidelity: dict | None = None) -> dict:
    table = {("noisy", 3.0): (30.0, 0.70), ("model:m", 3.0): (36.0, 0.90), ("bm4d", 3.0): (34.0, 0.91),
             ("dipy_nlm", 3.0): (33.0, 0.85),
             ("noisy", 9.0): (22.0, 0.40), ("model:m", 9.0): (29.0, 0.80), ("bm4d", 9.0): (28.0, 0.78),
             ("dipy_nlm", 9.0): (27.0, 0.70)}
    return {"config": {"modality": modality, "levels": [3.0, 9.0]}, "command": "meddenoise evaluate --config c.yaml",
            "cases": [{"name": "brain", "shape_zyx": [4, 8, 8]}],
            "methods": [{"name": n} for n in ("noisy", "model:m", "bm4d", "dipy_nlm")],
            "summary": _summary(table), "timing": [{"method": "model:m", "mean_seconds": 2.0, "voxels_per_s": 128.0}],
            "fidelity": fidelity, "_path": "r.json"}


def _lines_with(text: str, needle: str) -> list[str]:
    return [line for line in text.splitlines() if needle in line]


def test_bars_use_the_measured_gaps(tmp_path):
    page = models_markdown([_report()], command="cmd", root=write_tiny_models_root(tmp_path))
    bm4d = _lines_with(page, "| bm4d |")
    # level 3: 36 - 34 = 2.00 dB >= 1.5 but SSIM 0.90 < 0.91 -> not met; level 9: 29 - 28 = 1.00 < 1.5 -> not met
    assert "| 3 | bm4d | 2.00 | +1.5 | -0.010 | **no** |" in bm4d
    assert "| 9 | bm4d | 1.00 | +1.5 | 0.020 | **no** |" in bm4d
    assert "| 3 | dipy_nlm | 3.00 | +1.5 | 0.050 | yes |" in page
    # lowest noise = highest noisy PSNR = level 3; best baseline there is bm4d (34): 36 - 34 = 2 >= 0
    assert "| 3 (lowest noise) | best baseline (bm4d) | 2.00 | ≥ 0 | – | yes |" in page
    assert "| model:m | 36.00 / 0.900 | 29.00 / 0.800 |" in page


def test_best_baseline_bar_for_ultrasound_ignores_ssim(tmp_path):
    page = models_markdown([_report("us")], command="cmd", root=write_tiny_models_root(tmp_path))
    assert "| 9 | best baseline (bm4d) | 1.00 | +1 | 0.020 | yes |" in page
    assert "| 3 | best baseline (bm4d) | 2.00 | +1 | -0.010 | yes |" in page  # SSIM bar is MR-only


def test_missing_numbers_do_not_meet_a_bar(tmp_path):
    report = _report()
    report["summary"] = [r for r in report["summary"] if not (r["method"] == "model:m" and r["level"] == 9.0)]
    page = models_markdown([report], command="cmd", root=write_tiny_models_root(tmp_path))
    assert "| 9 | bm4d | – | +1.5 | – | **no** |" in page


def test_ct_bias_bar_from_fidelity(tmp_path):
    fidelity = {"level": 0.175, "summary": [{"method": "model:m", "bias_value": -2.5}], "verdicts": []}
    page = models_markdown([_report("ct", fidelity)], command="cmd", root=write_tiny_models_root(tmp_path))
    assert "-2.50 HU (bar: |bias| < 2 HU, **not met**)" in page
    assert "not measured" in models_markdown([_report("ct")], command="cmd", root=write_tiny_models_root(tmp_path))


def test_calibration_rows_and_verdicts(tmp_path):
    fidelity = {"level": 3.0, "summary": [{"method": "model:m", "calibration_coverage": 0.75,
                                           "calibration_spearman": 0.4, "calibration_source": "tta"}],
                "verdicts": [{"method": "model:m", "lines": ["texture kept", "HU unbiased"]}]}
    page = models_markdown([_report(fidelity=fidelity)], command="cmd", root=write_tiny_models_root(tmp_path))
    assert "| model:m | tta | 75.0 % | 0.400 | – | **no** |" in page  # a report from before the error draws
    assert "- `model:m`: texture kept; HU unbiased" in page
    fidelity["summary"][0].update(calibration_coverage=0.9, calibration_spearman_empirical=0.61)
    page = models_markdown([_report(fidelity=fidelity)], command="cmd", root=write_tiny_models_root(tmp_path))
    assert "| model:m | tta | 90.0 % | 0.400 | 0.610 | yes |" in page
    assert "(no calibration" in models_markdown([_report()], command="cmd", root=write_tiny_models_root(tmp_path))


def test_cli_writes_the_page(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDDENOISE_MODELS", str(write_tiny_models_root(tmp_path / "models")))
    report = _report()
    report.pop("_path")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "report.json").write_text(json.dumps(report), encoding="utf-8")
    doc = tmp_path / "docs" / "models.md"
    assert main(["evaluate", "--protocol", "models-table", "--reports", str(tmp_path / "run"), "--doc", str(doc)]) == 0
    text = doc.read_text(encoding="utf-8")
    assert "`mr_tiny`" in text and "--protocol models-table" in text
    assert load_reports([tmp_path / "run"])[0]["_path"].endswith("report.json")


def test_candidates_get_their_own_section(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDDENOISE_MODELS", str(write_tiny_models_root(tmp_path / "models")))
    for name, report in (("run", _report()), ("cand", _report())):
        report.pop("_path")
        (tmp_path / name).mkdir()
        (tmp_path / name / "report.json").write_text(json.dumps(report), encoding="utf-8")
    doc = tmp_path / "models.md"
    assert main(["evaluate", "--protocol", "models-table", "--reports", str(tmp_path / "run"), "--candidates",
                 str(tmp_path / "cand"), "--doc", str(doc)]) == 0
    text = doc.read_text(encoding="utf-8")
    shipped, candidates = text.split("## Candidates tried, not shipped")
    assert "### MR: `model:m`" in candidates and "--candidates" in shipped
    assert len(_lines_with(candidates, "| bm4d |")) == len(_lines_with(shipped, "| bm4d |")) >= 1
    report = _report()  # a shipped model's bars are not repeated among the candidates
    report["methods"] = [{"name": "model:mr_tiny@tta"}] + report["methods"]
    report["summary"] += [{**row, "method": "model:mr_tiny@tta"} for row in report["summary"] if row["method"] == "model:m"]
    page = models_markdown([_report()], command="cmd", root=write_tiny_models_root(tmp_path / "m2"), candidates=[report])
    assert "### MR: `model:m`" in page and "Quality bar for `model:mr_tiny@tta`" not in page


def test_cli_refuses_missing_reports(tmp_path):
    assert main(["evaluate", "--protocol", "models-table", "--doc", str(tmp_path / "m.md")]) == 2


def test_simulate_needs_out(caplog):
    assert main(["evaluate", "--data", "x.nii.gz", "--modality", "mr"]) == 2
    assert "--out is required" in caplog.text


@pytest.fixture(autouse=True)
def _quiet_logs(caplog):
    caplog.set_level("ERROR")


def test_shipped_table_names_the_weights_a_model_started_from(tmp_path):
    from MedDenoiseLib.model_files import read_card

    root = write_tiny_models_root(tmp_path / "m")
    card, _ = read_card(root / "mr_tiny")
    card["training"] = {"steps": 500, "wall_seconds": 480.0, "device": "cpu", "init": "checkpoints/stage2"}
    (root / "mr_tiny" / "card.json").write_text(json.dumps(card), encoding="utf-8")
    page = models_markdown([_report()], command="cmd", root=root)
    assert "| 500 steps, 8 min on cpu, starting from `checkpoints/stage2` |" in page


def test_shipped_table_spells_out_the_architecture(tmp_path):
    from MedDenoiseLib.model_files import read_card

    root = write_tiny_models_root(tmp_path / "m")
    card, _ = read_card(root / "mr_tiny")
    card["architecture"] = {"name": "slab25d", "features": 48, "depth": 8}
    (root / "mr_tiny" / "card.json").write_text(json.dumps(card), encoding="utf-8")
    page = models_markdown([_report()], command="cmd", root=root)
    assert "| slab25d (depth 8, features 48) |" in page and "{'" not in page


@pytest.mark.parametrize("calibration, shown", [
    (None, "| raw spread |"),
    ({"scales": {"tta": {"8": 1.234}}}, "| TTA-8 spread × 1.23 |"),
    ({"scales": {"tta": {"8": 1.234}}, "floors": {"tta": {"8": 0.5}}}, "| TTA-8 spread × 1.23 with floor 0.5 σ̂ |"),
    ({"scales": {"tta": {"8": 1.234}}, "floors": {"tta": {"8": 0.5}}, "edges": {"tta": {"8": 0.4567}}},
     "| TTA-8 spread × 1.23 with floor 0.5 σ̂ + edge 0.457 vox·|∇| |"),
    ({"scales": {"tta": {"8": 1.234}}, "edges": {"tta": {"8": 0.4567}}, "edge_widths": {"tta": {"8": 1.5}}},
     "| TTA-8 spread × 1.23 + edge 0.457 vox·|∇| (spread 1.5 vox) |"),
])
def test_shipped_table_shows_the_std_calibration_terms(tmp_path, calibration, shown):
    from MedDenoiseLib.model_files import read_card

    root = write_tiny_models_root(tmp_path / "m")
    card, _ = read_card(root / "mr_tiny")
    card.pop("uncertainty_calibration", None)
    if calibration is not None:
        card["uncertainty_calibration"] = calibration
    (root / "mr_tiny" / "card.json").write_text(json.dumps(card), encoding="utf-8")
    assert shown in models_markdown([_report()], command="cmd", root=root)


def test_a_clipped_candidate_report_says_so(tmp_path):
    clipped = _report("xr")
    clipped["config"]["detector_bits"] = 10
    page = models_markdown([_report("xr")], command="cmd", root=write_tiny_models_root(tmp_path / "m"),
                           candidates=[clipped, _report("xr")])
    assert len(_lines_with(page, "clipped to a 10-bit detector's range [0, 1023]")) == 1


def test_a_clipped_shipped_report_gets_its_own_titled_section(tmp_path):
    clipped = _report("xr")
    clipped["config"]["detector_bits"] = 10
    page = models_markdown([_report("xr"), clipped], command="cmd", root=write_tiny_models_root(tmp_path / "m"))
    assert "## XR\n" in page and "## XR, clipped to 10 bits\n" in page
    assert len(_lines_with(page, "clipped to a 10-bit detector's range [0, 1023]")) == 1


def test_a_candidate_report_with_only_shipped_models_adds_no_section(tmp_path):
    report = _report()
    report["methods"] = [{"name": "model:mr_tiny"}] + [m for m in report["methods"] if m["name"] != "model:m"]
    page = models_markdown([_report()], command="cmd", root=write_tiny_models_root(tmp_path / "m"), candidates=[report])
    assert "### MR:" not in page
