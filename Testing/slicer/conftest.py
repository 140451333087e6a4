"""Fixtures for the MedDenoise Slicer-module tests: a fresh headless Slicer app per test.

The app is real MRML from the PyPI ``slicer-core`` wheel (no Qt): a scene, the application
logic, the colour logic (default tables), the Volumes and Subject Hierarchy module logics,
and ``slicer.mrmlScene`` pointing at the scene, as ``../shared/SLICER.md`` describes.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

slicer = pytest.importorskip("slicer", reason="the Slicer-module tests need the slicer-core wheel")
import vtk  # noqa: E402  (after the importorskip)

ROOT = Path(__file__).resolve().parents[2]
MODULE_DIR = ROOT / "MedDenoise"
HERE = Path(__file__).resolve().parent
FAKE_WORKER = HERE / "fake_worker.py"
for _path in (str(MODULE_DIR), str(ROOT), str(HERE)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from MedDenoiseSlicer.job import WorkerLauncher  # noqa: E402
from MedDenoiseSlicer.protocol import denoise_arguments  # noqa: E402


class HeadlessApp:
    """Scene + application logic + module logics, the way the Slicer application wires them."""

    def __init__(self) -> None:
        self.scene = slicer.vtkMRMLScene()
        self.app_logic = slicer.vtkSlicerApplicationLogic()
        self.app_logic.SetMRMLScene(self.scene)
        colors = self.app_logic.GetColorLogic()
        colors.SetMRMLScene(self.scene)
        self.app_logic.SetModuleLogic("Colors", colors)
        self.app_logic.SetSliceLogics(vtk.vtkCollection())
        self.app_logic.SetViewLogics(vtk.vtkCollection())
        slicer.vtkMRMLSliceNode.AddDefaultSliceOrientationPresets(self.scene)
        self.logics = {}
        for name, cls in (("Volumes", slicer.vtkSlicerVolumesLogic),
                          ("SubjectHierarchy", slicer.vtkSlicerSubjectHierarchyModuleLogic)):
            logic = cls()
            logic.SetMRMLApplicationLogic(self.app_logic)
            logic.SetMRMLScene(self.scene)
            self.app_logic.SetModuleLogic(name, logic)
            self.logics[name] = logic
        self.slice_logics = {}
        slicer.mrmlScene = self.scene

    def slice_view(self, name: str = "Red", orientation: str = "Axial", size=(256, 256)):
        """A vtkMRMLSliceLogic with its slice node and composite node (layout name ``name``)."""
        logic = slicer.vtkMRMLSliceLogic()
        logic.SetMRMLApplicationLogic(self.app_logic)
        logic.SetMRMLScene(self.scene)
        node = logic.AddSliceNode(name)
        node.SetDimensions(size[0], size[1], 1)
        node.SetOrientation(orientation)
        self.slice_logics[name] = logic
        return logic

    def close(self) -> None:
        for logic in self.slice_logics.values():
            logic.SetMRMLScene(None)
        for logic in self.logics.values():
            logic.SetMRMLScene(None)
        self.scene.Clear(1)


class FakeLauncher(WorkerLauncher):
    """Runs ``fake_worker.py`` in ``mode`` instead of the engine; records every command."""

    def __init__(self, mode: str = "ok", extra_env: dict | None = None) -> None:
        super().__init__(python=sys.executable, script=str(FAKE_WORKER), pythonpath=[str(ROOT)])
        self.mode, self.extra_env, self.commands = mode, dict(extra_env or {}), []

    def command(self, request):
        argv = [self.python, self.script, "--fake-mode", self.mode, *denoise_arguments(request)]
        self.commands.append(argv)
        return argv

    def environment(self, request):
        env = super().environment(request)
        env.update(self.extra_env)
        return env


@pytest.fixture()
def app():
    headless = HeadlessApp()
    yield headless
    headless.close()


@pytest.fixture()
def scene(app):
    return app.scene


def oblique_matrix(angle_deg: float = 20.0, spacing=(0.7, 0.8, 2.5), origin=(-30.0, 12.5, 4.0)) -> np.ndarray:
    """An oblique IJK-to-RAS: rotation about two axes, anisotropic spacing, non-zero origin."""
    a, b = math.radians(angle_deg), math.radians(angle_deg / 2)
    rz = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]])
    matrix = np.eye(4)
    matrix[:3, :3] = rz @ rx @ np.diag(spacing)
    matrix[:3, 3] = origin
    return matrix


def phantom(shape=(6, 40, 48), seed: int = 0, noise: float = 20.0) -> np.ndarray:
    """A noisy ellipsoid phantom (K, J, I) in int16, MR-like values."""
    k, j, i = np.mgrid[0:shape[0], 0:shape[1], 0:shape[2]]
    r = np.sqrt(((i - shape[2] / 2) / (shape[2] / 2.6)) ** 2 + ((j - shape[1] / 2) / (shape[1] / 2.8)) ** 2
                + ((k - shape[0] / 2) / (shape[0] / 1.6)) ** 2)
    clean = np.where(r < 1, 400.0, 40.0) + np.where(r < 0.4, 300.0, 0.0)
    noisy = clean + np.random.default_rng(seed).normal(0, noise, shape)
    return np.clip(noisy, 0, None).astype(np.int16)


@pytest.fixture()
def volume(scene):
    """An oblique MR-like scalar volume node with a display node, named "Brain"."""
    node = slicer.util.addVolumeFromArray(phantom(), ijkToRAS=oblique_matrix(), name="Brain")
    return node


@pytest.fixture()
def fake_launcher():
    return FakeLauncher


@pytest.fixture()
def tiny_models(tmp_path_factory):
    """A models root with a tiny untrained slab25d MR model (needs torch), as Testing/cli does."""
    torch = pytest.importorskip("torch")
    from MedDenoiseLib.models import build_model
    from MedDenoiseLib.models.card import save_model

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("models")
    save_model(build_model("slab25d", features=8, depth=3).eval(), root / "mr_tiny",
               {"name": "mr_tiny", "modality": "mr"})
    (root / "index.json").write_text(json.dumps({"defaults": {"mr": "mr_tiny"}}))
    return root


def volume_nodes(scene) -> list:
    """Every volume node of ``scene`` (scalar and label map)."""
    return [scene.GetNthNodeByClass(i, "vtkMRMLVolumeNode") for i in range(scene.GetNumberOfNodesByClass("vtkMRMLVolumeNode"))]
