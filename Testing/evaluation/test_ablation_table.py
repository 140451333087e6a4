"""DUAL-NET ablation section: switches read from the report, differences to the full model by hand, CLI."""

from __future__ import annotations

import json

from MedDenoiseLib.cli.main import main
from MedDenoiseLib.evaluation.ablation_table import ablation_section, ablation_variants
from MedDenoiseLib.evaluation.methods import training_summary
from MedDenoiseLib.testing import write_tiny_models_root

LEVELS = [3.0, 9.0]
#: method -> (neb, nonlocal, algorithm, init), PSNR at 3 / 9, SSIM at 3 / 9.
VARIANTS = {
    "model:full": ((True, True, "n2v", "stage1"), (34.0, 29.0), (0.90, 0.80)),
    "model:no_ssl": ((True, True, "supervised", None), (33.5, 29.25), (0.91, 0.78)),
    "model:no_neb": ((False, True, "n2v", "stage1"), (33.0, 28.0), (0.88, 0.75)),
    "model:no_nonlocal": ((True, False, "n2v", "stage1"), (34.0, 30.0), (0.90, 0.81)),
}


def _method(name: str, switches: tuple) -> dict:
    neb, nonlocal_attention, algorithm, init = switches
    return {"name": name, "kind": "model", "model": name.split(":")[1],
            "architecture": {"name": "dualnet", "edge": True, "neb": neb, "nonlocal_attention": nonlocal_attention},
            "training": {"algorithm": algorithm, "init": init, "steps": 500}}


def _report(variants: dict = VARIANTS) -> dict:
    summary = [{"metric": "psnr", "level": lv, "method": "bm4d", "mean": 35.0} for lv in LEVELS]
    for name, (_, psnr, ssim) in variants.items():
        for i, level in enumerate(LEVELS):
            summary += [{"metric": "psnr", "level": level, "method": name, "mean": psnr[i]},
                        {"metric": "ssim", "level": level, "method": name, "mean": ssim[i]}]
    methods = [{"name": "noisy", "kind": "noisy"}, {"name": "bm4d", "kind": "baseline"},
               {"name": "model:slab", "kind": "model", "model": "slab", "architecture": {"name": "slab25d"}}]
    methods += [_method(name, switches) for name, (switches, _, _) in variants.items()]
    return {"config": {"modality": "mr", "levels": LEVELS}, "command": "meddenoise evaluate --config a.yaml",
            "cases": [{"name": "brain", "shape_zyx": [4, 8, 8]}], "methods": methods, "summary": summary,
            "_path": "abl/report.json"}


def _row(lines: list[str], model: str) -> str:
    return next(line for line in lines if f"`{model}`" in line)


def test_variants_are_the_dualnet_methods_with_their_switches():
    variants = {v["model"]: v for v in ablation_variants(_report())}
    assert sorted(variants) == ["full", "no_neb", "no_nonlocal", "no_ssl"]  # slab25d and baselines are not variants
    assert variants["no_neb"]["neb"] is False and variants["no_neb"]["self_supervised"] is True
    assert variants["no_ssl"]["self_supervised"] is False and variants["no_nonlocal"]["nonlocal"] is False
    assert variants["full"]["steps"] == 500


def test_differences_to_the_full_model_by_hand():
    lines = ablation_section([_report()])
    # no_ssl: 33.5 - 34 = -0.50, 0.91 - 0.90 = +0.010 at level 3; 29.25 - 29 = +0.25, 0.78 - 0.80 = -0.020 at 9
    assert _row(lines, "no_ssl") == "| no self-supervised | `no_ssl` | yes | yes | no | 500 | -0.50 / +0.010 | +0.25 / -0.020 |"
    assert _row(lines, "no_neb") == "| no NEB | `no_neb` | no | yes | yes | 500 (stage 2) | -1.00 / -0.020 | -1.00 / -0.050 |"
    assert _row(lines, "no_nonlocal").startswith("| no non-local attention | `no_nonlocal` | yes | no | yes | 500 (stage 2) | +0.00 / ")
    assert _row(lines, "full") == "| full | `full` | yes | yes | yes | 500 (stage 2) | – | – |"
    assert "| bm4d | 35.00 / – | 35.00 / – |" in lines  # the report's full table comes first


def test_without_a_full_variant_no_difference_is_invented():
    report = _report({k: v for k, v in VARIANTS.items() if k != "model:full"})
    lines = ablation_section([report])
    assert _row(lines, "no_neb").endswith("| – | – |")
    assert any(line.startswith("(no full variant") for line in lines)


def test_old_reports_without_training_show_unknown_stage():
    report = _report()
    for method in report["methods"]:
        method.pop("training", None)
    lines = ablation_section([report])
    # the stage is unknown, so no variant is the full model and no difference is computed
    assert _row(lines, "no_neb") == "| no NEB, stage unknown | `no_neb` | no | yes | ? | ? | – | – |"
    assert _row(lines, "no_ssl").startswith("| stage unknown | `no_ssl` | yes | yes | ? |")
    assert any(line.startswith("(no full variant") for line in lines)


def test_two_full_variants_give_no_differences():
    variants = dict(VARIANTS)
    variants["model:full_again"] = VARIANTS["model:full"]
    lines = ablation_section([_report(variants)])
    assert _row(lines, "no_neb").endswith("| – | – |")
    assert "(several variants have all three switches on: `full`, `full_again`; no differences computed)" in lines


def test_self_supervised_from_scratch_is_not_a_stage_2():
    variants = {"model:scratch": ((True, True, "n2v", None), (30.0, 25.0), (0.8, 0.6))}
    assert ablation_variants(_report(variants))[0]["self_supervised"] is None


def test_training_summary_reads_the_card():
    card = {"training": {"config": {"algorithm": "n2v", "init": "checkpoints/a", "optim": {"steps": 150}}}}
    assert training_summary(card) == {"algorithm": "n2v", "init": "checkpoints/a", "steps": 150}
    assert training_summary({}) == {"algorithm": None, "init": None, "steps": None}
    stopped = {"training": {"steps": 120, "config": {"algorithm": "supervised", "optim": {"steps": 500}}}}
    assert training_summary(stopped)["steps"] == 120  # the steps run (early stopping), not the configured ones


def test_cli_adds_the_ablation_section(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDDENOISE_MODELS", str(write_tiny_models_root(tmp_path / "models")))
    shipped = _report()
    shipped["methods"] = shipped["methods"][:3]
    for name, report in (("run", shipped), ("abl", _report())):
        report.pop("_path")
        (tmp_path / name).mkdir()
        (tmp_path / name / "report.json").write_text(json.dumps(report), encoding="utf-8")
    doc = tmp_path / "models.md"
    assert main(["evaluate", "--protocol", "models-table", "--reports", str(tmp_path / "run"),
                 "--ablations", str(tmp_path / "abl"), "--doc", str(doc)]) == 0
    head, section = doc.read_text(encoding="utf-8").split("## DUAL-NET ablations")
    assert "--ablations" in head and "| no NEB | `no_neb` |" in section and "no NEB" not in head
