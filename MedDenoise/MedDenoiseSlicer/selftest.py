"""Tiny inputs and output checks for the module's in-Slicer self test (also exercised by the pytest suite).

``tiny_model`` trains nothing: it saves an untrained 8-feature slab25d network with the
worker's own Python, so torch never loads in Slicer's process.
"""

from __future__ import annotations

import os

import numpy as np
import slicer

from .job import WorkerLauncher
from .nodes import ijk_to_ras
from .runner import WorkerProcess

TINY_MODEL_CODE = (
    "import sys\n"
    "from MedDenoiseLib.models.card import save_model\n"
    "from MedDenoiseLib.testing import tiny_model\n"
    "save_model(tiny_model(), sys.argv[1], {'name': 'mr_tiny_test', 'modality': 'mr'})\n"
)
#: An oblique IJK-to-RAS (rotated, anisotropic, shifted) for geometry checks.
OBLIQUE_IJK_TO_RAS = np.array([[0.0, -0.9, 0.1, 10.0], [0.8, 0.0, 0.0, -5.0], [0.0, 0.1, 2.5, 3.0], [0, 0, 0, 1]])


def tiny_model(launcher: WorkerLauncher, folder: str) -> str:
    """Write an untrained tiny MR model into ``folder/mr_tiny_test`` with the worker's Python.

    Raises
    ------
    RuntimeError
        With the child's output when it fails (e.g. torch missing).
    """
    target = os.path.join(folder, "mr_tiny_test")
    process = WorkerProcess([launcher.python, "-c", TINY_MODEL_CODE, target], env=launcher.device_environment("cpu"))
    if process.run() != 0:
        raise RuntimeError("could not create the tiny test model:\n" + "\n".join(process.lines[-20:]))
    return target


def tiny_volume(name: str = "MedDenoiseTestVolume", shape=(5, 24, 28)):
    """``(node, array)``: a small noisy int16 volume with :data:`OBLIQUE_IJK_TO_RAS`, added to ``slicer.mrmlScene``."""
    array = np.random.default_rng(0).normal(300, 40, shape).astype(np.int16)
    node = slicer.util.addVolumeFromArray(array, ijkToRAS=OBLIQUE_IJK_TO_RAS, name=name)
    return node, array


def output_problems(volume, array, denoised, labels) -> list[str]:
    """What is wrong with the nodes of a denoise run of ``volume`` (whose voxels were ``array``); empty when all is well.

    Checked: the input is unchanged; ``"<input> denoised"`` / ``"<input> uncertainty"`` names, shape and
    IJK-to-RAS equal to the input's; uint8 labels shown with the low / medium / high colour table.
    """
    problems = []
    if not np.array_equal(slicer.util.arrayFromVolume(volume), array):
        problems.append("the input volume was modified")
    for node, suffix in ((denoised, "denoised"), (labels, "uncertainty")):
        expected = f"{volume.GetName()} {suffix}"
        if node.GetName() != expected:
            problems.append(f"{node.GetName()!r} should be named {expected!r}")
        if slicer.util.arrayFromVolume(node).shape != array.shape:
            problems.append(f"{expected} has shape {slicer.util.arrayFromVolume(node).shape}, not {array.shape}")
        if not np.array_equal(ijk_to_ras(node), ijk_to_ras(volume)):
            problems.append(f"{expected} is not on the input's grid (IJK-to-RAS differs)")
    if slicer.util.arrayFromVolume(labels).dtype != np.uint8:
        problems.append(f"uncertainty labels are {slicer.util.arrayFromVolume(labels).dtype}, not uint8")
    display = labels.GetDisplayNode()
    table = display.GetColorNode() if display is not None else None
    names = [table.GetColorName(i) for i in (1, 2, 3)] if table is not None else []
    if names != ["low", "medium", "high"]:
        problems.append(f"uncertainty colour names are {names}, not low / medium / high")
    return problems
