"""Which Python packages the worker still needs (checked without importing them).

Installing is Slicer's job and happens only from the Widget or an explicit call, with
the user's consent: torch through the PyTorch extension (``PyTorchUtils``), the rest via
``slicer.packaging.pip_ensure`` (Slicer >= 5.12) or ``slicer.util.pip_install`` before.
SimpleITK and numpy ship with Slicer and are never listed or pinned.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

#: Requirement name -> import name, where they differ.
IMPORT_NAMES = {"pyyaml": "yaml", "scikit-image": "skimage"}
TORCH_REQUIREMENT = "torch>=2.2"


def read_requirements(path: str | Path) -> list[str]:
    """Requirement lines of a ``requirements.txt`` (comments and blank lines dropped).

    Examples
    --------
    >>> import tempfile, os
    >>> f = tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False); _ = f.write("tqdm>=4  # bar\\n\\n"); f.close()
    >>> read_requirements(f.name)
    ['tqdm>=4']
    >>> os.unlink(f.name)
    """
    lines = []
    for raw in Path(path).read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            lines.append(line)
    return lines


def requirement_name(requirement: str) -> str:
    """Distribution name of a requirement line (``"scipy>=1.10"`` -> ``"scipy"``)."""
    return re.split(r"[\s<>=!~;\[]", requirement.strip(), maxsplit=1)[0]


def is_importable(module: str) -> bool:
    """True when ``module`` can be imported here (it is located, not imported)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def missing_requirements(requirements: list[str]) -> list[str]:
    """The requirement lines whose package cannot be imported in this Python."""
    missing = []
    for requirement in requirements:
        name = requirement_name(requirement).lower()
        if not is_importable(IMPORT_NAMES.get(name, name.replace("-", "_"))):
            missing.append(requirement)
    return missing


def torch_available() -> bool:
    """True when torch is installed for this Python (the worker runs with the same site-packages)."""
    return is_importable("torch")


def missing_worker_packages(requirements_path: str | Path) -> list[str]:
    """What the worker still needs here: :data:`TORCH_REQUIREMENT` first when torch is absent, then
    the lines of ``requirements_path`` whose package cannot be imported."""
    torch = [] if torch_available() else [TORCH_REQUIREMENT]
    return torch + missing_requirements(read_requirements(requirements_path))
