"""Fixtures shared by every test package."""

from __future__ import annotations

import pytest


@pytest.fixture()
def one_thread():
    """Run the test with one torch CPU thread (tiny tensors: threads only add overhead), then restore."""
    import torch  # here, not at import: the Slicer-module tests collect without needing torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
