"""The real worker (Scripts/meddenoise_worker.py -> meddenoise denoise) on CPU with a tiny model, then a render.

The Red slice view is rendered without OpenGL through vtkMRMLSliceLogic: background =
original, foreground = denoised, label layer = uncertainty; the PNG must not be blank
and must contain the uncertainty colours.
"""

import sys

import numpy as np
import pytest
import slicer

from meddenoise_slicer_helpers import oblique_matrix, render_slice
from MedDenoiseLib.uncertainty_labels import UNCERTAINTY_COLORS
from MedDenoiseSlicer import nodes, selftest
from MedDenoiseSlicer.job import WorkerLauncher
from MedDenoiseSlicer.logic import DenoiseLogic

pytest.importorskip("torch")


def test_real_engine_denoises_and_the_red_view_shows_the_overlay(app, volume, tiny_models, tmp_path, monkeypatch):
    monkeypatch.setenv("MEDDENOISE_MODELS", str(tiny_models))  # the child inherits it: default MR model = mr_tiny
    source = slicer.util.arrayFromVolume(volume).copy()
    red = app.slice_view("Red", "Axial", size=(240, 200))
    logic = DenoiseLogic(WorkerLauncher(python=sys.executable))
    denoised, uncertainty, report = logic.denoise(volume, modality="mr", tta=2, device="cpu", opacity=0.5)

    assert report["model"] == "mr_tiny" and report["device"] == "cpu" and report["tta"] == 2
    np.testing.assert_array_equal(slicer.util.arrayFromVolume(volume), source)
    for node in (denoised, uncertainty):
        np.testing.assert_array_equal(nodes.ijk_to_ras(node), oblique_matrix())
        assert slicer.util.arrayFromVolume(node).shape == source.shape
    values = slicer.util.arrayFromVolume(denoised)
    assert values.dtype == np.float32 and np.isfinite(values).all() and not np.array_equal(values, source)
    labels = slicer.util.arrayFromVolume(uncertainty)
    assert labels.dtype == np.uint8 and labels.max() <= 3 and labels.any()
    assert selftest.output_problems(volume, source, denoised, uncertainty) == []

    composite = red.GetSliceCompositeNode()
    assert composite.GetBackgroundVolumeID() == volume.GetID()
    assert composite.GetForegroundVolumeID() == denoised.GetID()
    assert composite.GetLabelVolumeID() == uncertainty.GetID()
    red.GetSliceNode().RotateToVolumePlane(volume)
    rgba = render_slice(red, tmp_path / "red.png")
    assert (tmp_path / "red.png").stat().st_size > 1000
    assert rgba.shape == (200, 240, 4) and rgba[..., :3].std() > 10  # not blank
    assert composite.GetLabelOpacity() == pytest.approx(0.5)
    # Grey anatomy has R == G == B; the half-opaque overlay tints it towards each label colour.
    r, g, b = (rgba[..., i].astype(int) for i in range(3))
    shown = set(np.unique(labels)) - {0}
    if 1 in shown:  # low: green
        assert ((g - r > 40) & (g - b > 20)).sum() > 20, "green 'low' overlay missing"
    if shown & {2, 3}:  # medium / high: yellow / red
        assert ((r - b > 40) & (r >= g)).sum() > 20, "yellow/red overlay missing"
    assert len(np.unique(r)) > 20  # grey levels of the anatomy survive under the overlay
    assert {c.index for c in UNCERTAINTY_COLORS} == {0, 1, 2, 3}


def test_fade_changes_the_rendering(app, volume, tiny_models, monkeypatch):
    monkeypatch.setenv("MEDDENOISE_MODELS", str(tiny_models))
    red = app.slice_view("Red")
    logic = DenoiseLogic(WorkerLauncher(python=sys.executable))
    denoised, _labels, _report = logic.denoise(volume, modality="mr", tta=1, device="cpu")
    logic.showCompare(volume, denoised, None, opacity=0.0)
    before = render_slice(red)
    logic.setForegroundOpacity(app.scene, 1.0)
    after = render_slice(red)
    assert np.abs(before.astype(int) - after.astype(int)).max() > 0


def test_selftest_helpers_build_a_loadable_tiny_model(tmp_path, scene):
    launcher = WorkerLauncher(python=sys.executable)
    folder = selftest.tiny_model(launcher, str(tmp_path))
    from MedDenoiseSlicer.models import verify_model

    assert verify_model(folder).modality == "mr"
    node, array = selftest.tiny_volume()
    np.testing.assert_array_equal(slicer.util.arrayFromVolume(node), array)


def test_real_engine_with_the_models_own_uncertainty(app, volume, tmp_path, monkeypatch):
    """uncertaintyMethod 'model' with a (tiny) DUAL-NET: the worker blends the model's std map into the labels."""
    from MedDenoiseLib.models.card import save_model
    from MedDenoiseLib.testing import tiny_dualnet

    model_dir = save_model(tiny_dualnet(), tmp_path / "mr_dual", {"name": "mr_dual", "modality": "mr"})
    logic = DenoiseLogic(WorkerLauncher(python=sys.executable))
    denoised, uncertainty, report = logic.denoise(volume, modality="mr", model=str(model_dir), tta=2, device="cpu",
                                                  uncertaintyMethod="model", showResult=False)
    assert report["uncertainty_source"] == "model" and report["model"] == "mr_dual"
    for node in (denoised, uncertainty):
        np.testing.assert_array_equal(nodes.ijk_to_ras(node), oblique_matrix())
    labels = slicer.util.arrayFromVolume(uncertainty)
    assert labels.dtype == np.uint8 and labels.max() <= 3
