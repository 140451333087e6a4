"""Helpers of the Slicer-module tests: headless app, fake worker launcher, phantoms, rendering."""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np
import slicer
import vtk
from vtk.util import numpy_support

from MedDenoiseSlicer.job import WorkerLauncher
from MedDenoiseSlicer.protocol import worker_arguments

ROOT = Path(__file__).resolve().parents[2]
MODULE_DIR = ROOT / "MedDenoise"
FAKE_WORKER = Path(__file__).resolve().parent / "fake_worker.py"


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
    """Runs ``fake_worker.py`` in ``mode`` instead of the engine (denoise and adapt); records every command."""

    def __init__(self, mode: str = "ok", extra_env: dict | None = None) -> None:
        super().__init__(python=sys.executable, script=str(FAKE_WORKER), pythonpath=[str(ROOT)])
        self.mode, self.extra_env, self.commands = mode, dict(extra_env or {}), []

    def command(self, request):
        argv = [self.python, self.script, "--fake-mode", self.mode, *worker_arguments(request)]
        self.commands.append(argv)
        return argv

    def environment(self, request):
        env = super().environment(request)
        env.update(self.extra_env)
        return env


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


def volume_nodes(scene) -> list:
    """Every volume node of ``scene`` (scalar and label map)."""
    return [scene.GetNthNodeByClass(i, "vtkMRMLVolumeNode") for i in range(scene.GetNumberOfNodesByClass("vtkMRMLVolumeNode"))]


def render_slice(slice_logic, path: str | None = None, *, fit: bool = True) -> np.ndarray:
    """The blended RGBA image a slice view shows, as (rows, columns, 4) uint8; optionally saved as PNG.

    No OpenGL: the slice logic's reslice/blend pipeline is read directly.
    """
    if fit:
        slice_logic.FitSliceToBackground()
    port = slice_logic.GetImageDataConnection()
    port.GetProducer().Update()
    image = port.GetProducer().GetOutputDataObject(0)
    if path is not None:
        writer = vtk.vtkPNGWriter()
        writer.SetFileName(str(path))
        writer.SetInputConnection(port)
        writer.Write()
    columns, rows, _ = image.GetDimensions()
    scalars = numpy_support.vtk_to_numpy(image.GetPointData().GetScalars())
    return scalars.reshape(rows, columns, -1)


def side_by_side_png(left_logic, right_logic, path: str) -> None:
    """Two slice views appended left to right into one PNG."""
    append = vtk.vtkImageAppend()
    append.SetAppendAxis(0)
    for logic in (left_logic, right_logic):
        append.AddInputConnection(logic.GetImageDataConnection())
    writer = vtk.vtkPNGWriter()
    writer.SetFileName(str(path))
    writer.SetInputConnection(append.GetOutputPort())
    writer.Write()


def poll_until(job, condition, timeout=20.0):
    """Poll a running job until ``condition()`` holds (asserting it did); returns the events seen."""
    deadline = time.monotonic() + timeout
    events = []
    while not condition() and time.monotonic() < deadline:
        events += job.poll(timeout=0.05)
    assert condition(), f"timed out; log: {job.log}"
    return events


def process_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def assert_process_gone(pidfile: Path, timeout: float = 5.0) -> None:
    """The process whose pid the fake worker wrote to ``pidfile`` ends within ``timeout`` seconds."""
    pid = int(Path(pidfile).read_text(encoding="utf-8"))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process_alive(pid):
        time.sleep(0.05)
    assert not process_alive(pid)
