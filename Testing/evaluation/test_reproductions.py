"""Seed-paper reproductions: splits are patient-level, the 2D trainer learns, the document is generated.

The full runs (100 epochs) are marked slow: `make test-slow`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from MedDenoiseLib.evaluation.benchmark import time_baselines
from MedDenoiseLib.evaluation.reproductions import run_reproductions
from MedDenoiseLib.evaluation.reproductions.data2d import SPLITS, load_images
from MedDenoiseLib.evaluation.reproductions.document import render_document
from MedDenoiseLib.evaluation.reproductions.train2d import predict, train_autoencoder
from MedDenoiseLib.noise import add_gondara_gaussian_noise

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
needs_shared = pytest.mark.skipif(not (SHARED / "manifest.json").is_file(), reason="shared data absent")


class TestSplits:
    @pytest.mark.parametrize("protocol", sorted(SPLITS))
    def test_train_and_test_subjects_never_overlap(self, protocol):
        for group, split in SPLITS[protocol].items():
            assert split["train"] and split["test"], group
            assert not set(split["train"]) & set(split["test"]), group

    @needs_shared
    def test_split_files_are_in_the_manifest(self):
        listed = {f["path"] for f in json.loads((SHARED / "manifest.json").read_text(encoding="utf-8"))["files"]}
        for protocol in SPLITS.values():
            for split in protocol.values():
                assert set(split["train"]) | set(split["test"]) <= listed

    @needs_shared
    def test_images_are_unit_range_and_resized(self):
        images = load_images(SHARED, ["ct/pydicom_ct_small_spine_slice.nii.gz"], 64, per_volume=None)
        assert images.images.shape == (1, 64, 64) and images.subjects == ["pydicom_ct_small_spine_slice"]
        assert 0.0 <= images.images.min() and images.images.max() <= 1.0 and images.images.max() > 0.9


def test_autoencoder_training_lowers_the_loss():
    yy, xx = np.mgrid[0:16, 0:16] / 16.0
    images = np.stack([0.5 + 0.4 * np.sin(6 * xx + k) * np.cos(4 * yy) for k in range(8)]).astype(np.float32)
    noise = lambda x, g: add_gondara_gaussian_noise(x, 0.1, generator=g)  # noqa: E731
    model, history = train_autoencoder({"name": "cdae", "pool_depth": False, "channels": (8, 8, 8, 8)}, images,
                                       noise, epochs=20, batch_size=8, seed=0, lr=1e-2)
    assert history[-1] < 0.6 * history[0]  # seeded: 0.047 -> 0.021 on CPU
    assert predict(model, images[:2]).shape == (2, 16, 16)


def _fake_gondara(epochs: int) -> dict:
    stats = {"ssim": {"mean": 0.5, "sd": 0.1}, "psnr": {"mean": 20.0, "sd": 1.0}, "mae": {"mean": 0.1, "sd": 0.01}}
    row = {"setting": {"label": "p=0.1, σ=1"}, "methods": {k: stats for k in ("noisy", "nl_means", "median", "cdae")}}
    comp = {"setting": "p=0.1, σ=1", "other": "median", "mean_diff": 0.1, "ci_low": 0.05, "ci_high": 0.15,
            "test": "paired t", "p_value": 0.01, "p_holm": 0.03, "cohens_d": 1.2}
    return {"protocol": "gondara2016", "epochs": epochs, "paper_epochs": 100, "batch_size": 10,
            "training": "Adam", "n_train_images": 80, "n_test_images": 8, "test_subjects": list("abcdefgh"),
            "split": {"train": ["a"], "test": ["b"]}, "baselines": {"nl_means": "nlm", "median": "median"},
            "rows": [row], "comparisons": [comp]}


def test_document_marks_reduced_runs_and_untranscribed_values(tmp_path):
    path = render_document({"gondara2016": _fake_gondara(2)}, tmp_path / "r.md", commands=["meddenoise evaluate ..."])
    text = path.read_text(encoding="utf-8")
    assert "Reduced run: 2 epoch(s) instead of 100" in text and "not transcribed" in text
    assert "| p=0.1, σ=1 | 0.500 ± 0.100 |" in text and "| p=0.1, σ=1 | median | 0.100 [0.050, 0.150] |" in text
    full = render_document({"gondara2016": _fake_gondara(100)}, tmp_path / "f.md", commands=["x"]).read_text(encoding="utf-8")
    assert "Reduced run" not in full


def test_benchmark_hook_times_baselines():
    rows = time_baselines(np.random.default_rng(0).random((4, 16, 16)).astype(np.float32), ["median", "gaussian"])
    assert [r["method"] for r in rows] == ["median", "gaussian"]
    assert all(r["seconds"] >= 0 and r["size_xyz"] == [16, 16, 4] and r["process_peak_rss_mib"] > 0 for r in rows)


@pytest.mark.slow
@needs_shared
def test_full_reproductions(tmp_path):
    """The committed docs/reproductions.md comes from this (about 1-2 h on 2 CPU cores)."""
    torch.set_num_threads(2)
    results = run_reproductions("all", data_root=SHARED, out_dir=tmp_path, doc=tmp_path / "reproductions.md")
    assert "Reduced run" not in (tmp_path / "reproductions.md").read_text(encoding="utf-8")
    gondara = results["gondara2016"]["rows"]
    assert all(r["methods"]["cdae"]["ssim"]["mean"] > r["methods"]["noisy"]["ssim"]["mean"] for r in gondara)
