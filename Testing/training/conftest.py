"""Shared fixtures of the training tests: small synthetic "patients" written as NIfTI files."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk


def phantom(shape=(8, 40, 40), seed: int = 0) -> np.ndarray:
    """A head-like ellipse with a few discs of other intensities (one "patient" per seed), float32."""
    rng = np.random.default_rng(seed)
    z, y, x = np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij")
    head = (x**2 / 0.8 + y**2 / 0.65) < 1
    image = np.where(head, 300 + 40 * z, 20.0)
    for _ in range(6):
        cx, cy = rng.uniform(-0.5, 0.5, 2)
        radius, value = rng.uniform(0.1, 0.3), rng.uniform(-150, 250)
        image = image + value * (((x - cx) ** 2 + (y - cy) ** 2) < radius**2) * head
    return image.astype(np.float32)


def write(path, array: np.ndarray, spacing=(1.0, 1.0, 2.0)) -> str:
    image = sitk.GetImageFromArray(np.asarray(array, dtype=np.float32))
    image.SetSpacing(spacing)
    sitk.WriteImage(image, str(path))
    return str(path)


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Every training test runs with one torch thread (``one_thread`` in Testing/conftest.py)."""
    yield


@pytest.fixture()
def patients(tmp_path):
    """Two training patients and one validation patient (clean MR-like volumes)."""
    train = [write(tmp_path / f"train{i}.nii.gz", phantom(seed=i)) for i in range(2)]
    validation = [write(tmp_path / "val.nii.gz", phantom(seed=10))]
    return train, validation


@pytest.fixture()
def make_phantom():
    """The :func:`phantom` function (test modules cannot import conftest under --import-mode=importlib)."""
    return phantom


@pytest.fixture()
def write_nifti():
    """The :func:`write` function."""
    return write
