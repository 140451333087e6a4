"""Fixtures for the MedDenoise Slicer-module tests: a fresh headless Slicer app per test.

The app is real MRML from the PyPI ``slicer-core`` wheel (no Qt): a scene, the application
logic, the colour logic (default tables), the Volumes and Subject Hierarchy module logics,
and ``slicer.mrmlScene`` pointing at the scene, as ``../shared/SLICER.md`` describes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

slicer = pytest.importorskip("slicer", reason="the Slicer-module tests need the slicer-core wheel")

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
for _path in (str(ROOT / "MedDenoise"), str(ROOT), str(HERE)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from meddenoise_slicer_helpers import HeadlessApp, oblique_matrix, phantom  # noqa: E402


@pytest.fixture()
def app():
    headless = HeadlessApp()
    yield headless
    headless.close()


@pytest.fixture()
def scene(app):
    return app.scene


@pytest.fixture()
def volume(scene):
    """An oblique MR-like scalar volume node with a display node, named "Brain"."""
    node = slicer.util.addVolumeFromArray(phantom(), ijkToRAS=oblique_matrix(), name="Brain")
    return node


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """A models root with a tiny untrained slab25d MR model (needs torch), as Testing/cli does."""
    pytest.importorskip("torch")
    from MedDenoiseLib.testing import write_tiny_models_root

    return write_tiny_models_root(tmp_path_factory.mktemp("models"), ("mr",))
