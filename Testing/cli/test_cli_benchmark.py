"""`meddenoise benchmark`: JSON with timing, voxels/s and memory per (size, TTA) case."""

import json

from MedDenoiseLib.cli.main import main
from MedDenoiseLib.models.resolve import MODELS_ENV
from MedDenoiseLib.testing import write_tiny_models_root


def test_benchmark_json(tmp_path, monkeypatch, capsys):
    write_tiny_models_root(tmp_path, ("mr",))
    monkeypatch.setenv(MODELS_ENV, str(tmp_path))
    out = tmp_path / "bench.json"
    assert main(["benchmark", "--sizes", "24x20x6", "40x32x9", "--tta", "1", "2", "--device", "cpu",
                 "--baselines", "median", "--out", str(out)]) == 0
    payload = json.loads(out.read_text(encoding="utf-8"))
    assert json.loads(capsys.readouterr().out) == payload
    cases = [row for row in payload["results"] if "tta" in row]
    baselines = [row for row in payload["results"] if "method" in row]
    assert [(b["method"], b["size_xyz"]) for b in baselines] == [("median", [24, 20, 6]), ("median", [40, 32, 9])]
    assert [(c["size_xyz"], c["tta"]) for c in cases] == [([24, 20, 6], 1), ([24, 20, 6], 2), ([40, 32, 9], 1),
                                                          ([40, 32, 9], 2)]
    for case in cases:
        assert case["device"] == "cpu" and case["seconds"] > 0 and case["process_peak_rss_mib"] > 0
        voxels = case["size_xyz"][0] * case["size_xyz"][1] * case["size_xyz"][2]
        # seconds are rounded to 1 ms in the JSON: voxels/s must lie within that rounding
        assert voxels / (case["seconds"] + 5e-4) - 1 <= case["voxels_per_s"] <= voxels / (case["seconds"] - 5e-4) + 1
    assert payload["model"] == "mr_tiny" and payload["parameters"] > 0
    complexity = payload["complexity"]
    assert complexity["patch_dhw"] == [32, 160, 160] and complexity["parameters"] == payload["parameters"]
    # the tiny slab25d (3 slices in, 2x2 space-to-depth, 8 features, 3 layers, no norm) by hand:
    # 32 slices x 80 x 80 positions x (12*8 + 8*8 + 8*4) x 9 MACs, 2 FLOPs each
    assert complexity["flops"] == 2 * 32 * 80 * 80 * (12 * 8 + 8 * 8 + 8 * 4) * 9
    assert complexity["macs"] * 2 == complexity["flops"] and "2 x multiply-accumulates" in complexity["convention"]
