"""Which Python packages the worker still needs (checked without importing them), and installing them in Slicer.

Installing is Slicer's job and happens only from the Widget or an explicit call, with
the user's consent (:func:`install_worker_packages`): torch through the PyTorch extension
(``PyTorchUtils``), the rest via ``slicer.packaging.pip_ensure`` (Slicer >= 5.12) or
``slicer.util.pip_install`` before. SimpleITK and numpy ship with Slicer and are never listed or pinned.
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
    for raw in Path(path).read_text(encoding="utf-8").splitlines():
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


def install_worker_packages(requirements_path: str | Path, *, ask_confirmation: bool = True,
                            cpu_only: bool = False) -> bool:
    """Install what :func:`missing_worker_packages` lists, asking first (inside Slicer only; never at import).

    Returns True when nothing is missing any more, False when the user declined or torch was not installed.

    Raises
    ------
    RuntimeError
        Torch is missing and the PyTorch extension is not installed.
    """
    missing = missing_worker_packages(requirements_path)
    if not missing:
        return True
    import slicer  # the application's, with slicer.util dialogs and pip

    try:
        from slicer.i18n import tr as _
    except ImportError:  # slicer-core
        _ = str
    if ask_confirmation and not slicer.util.confirmOkCancelDisplay(
            _("MedDenoise needs these Python packages: {pkgs}. Install them now (this can take minutes)?")
            .format(pkgs=", ".join(missing))):
        return False
    if TORCH_REQUIREMENT in missing:
        try:
            import PyTorchUtils
        except ImportError as exc:
            raise RuntimeError(_("Install the PyTorch extension from the Extensions Manager, restart Slicer and "
                                 "press Apply again.")) from exc
        if PyTorchUtils.PyTorchUtilsLogic().installTorch(
                askConfirmation=False, forceComputationBackend="cpu" if cpu_only else None,
                torchVersionRequirement=TORCH_REQUIREMENT[len("torch"):]) is None:
            return False
    others = [r for r in missing if r != TORCH_REQUIREMENT]
    if others and hasattr(slicer, "packaging"):  # Slicer >= 5.12
        slicer.packaging.pip_ensure(others, prompt_install=False, requester="MedDenoise", skip_in_testing=False)
    elif others:
        slicer.util.pip_install(others)
    return not missing_worker_packages(requirements_path)
