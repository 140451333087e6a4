"""Baseline registry: name -> function, library, whether it uses the noise level, extra to install."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError, rule_message
from .bilateral import denoise_bilateral
from .bm4d import denoise_bm4d
from .diffusion import denoise_curvature_diffusion, denoise_gradient_diffusion
from .gaussian import denoise_gaussian
from .median import denoise_median
from .nlm import denoise_dipy_nlm, denoise_nlm
from .wavelet import denoise_wavelet

__all__ = ["BaselineSpec", "BASELINES", "get_baseline", "list_baselines", "run_baseline"]


@dataclass(frozen=True)
class BaselineSpec:
    """What the harness needs to know about one classical method.

    Attributes
    ----------
    name : str, the ``--methods`` token.
    function : the ``denoise_<name>(array, *, sigma=None, **params)`` callable.
    library : the package doing the work (never a MedDenoise re-implementation).
    uses_sigma : whether the noise level changes the result (False: accepted, ignored).
    extra : the pip extra that installs the library (``meddenoise[<extra>]``).
    rician_param : name of the keyword that switches the method to Rician noise, if any,
        with the value to pass for MR (the harness sets it when ``modality == "mr"``).
    """

    name: str
    function: Callable[..., np.ndarray]
    library: str
    uses_sigma: bool
    extra: str
    rician_param: tuple[str, Any] | None = None


BASELINES: dict[str, BaselineSpec] = {s.name: s for s in (
    BaselineSpec("gaussian", denoise_gaussian, "SimpleITK", False, "baselines"),
    BaselineSpec("median", denoise_median, "SimpleITK", False, "baselines"),
    BaselineSpec("bilateral", denoise_bilateral, "SimpleITK", True, "baselines"),
    BaselineSpec("curvature_diffusion", denoise_curvature_diffusion, "SimpleITK", False, "baselines"),
    BaselineSpec("gradient_diffusion", denoise_gradient_diffusion, "SimpleITK", False, "baselines"),
    BaselineSpec("nlm", denoise_nlm, "scikit-image", True, "baselines"),
    BaselineSpec("dipy_nlm", denoise_dipy_nlm, "DIPY", True, "baselines", ("rician", True)),
    BaselineSpec("wavelet", denoise_wavelet, "scikit-image + PyWavelets", True, "baselines"),
    BaselineSpec("bm4d", denoise_bm4d, "bm4d (non-commercial licence)", True, "bm4d", ("noise", "rician")),
)}
"""name -> :class:`BaselineSpec` for every classical method (the libraries load only when one runs)."""


def list_baselines() -> list[str]:
    """Names of every baseline, in registry order."""
    return list(BASELINES.keys())


def get_baseline(name: str) -> BaselineSpec:
    """The spec of ``name``; ConfigError listing the known names otherwise."""
    if name not in BASELINES:
        raise ConfigError(rule_message("baseline", f"must be one of {list_baselines()}", name,
                                       "Check the spelling in --methods."))
    return BASELINES[name]


def run_baseline(name: str, array: np.ndarray, *, sigma: float | None = None, **params: Any) -> np.ndarray:
    """Call baseline ``name`` with its defaults overridden by ``params``.

    Examples
    --------
    >>> run_baseline("median", np.zeros((5, 5))).shape
    (5, 5)
    """
    spec = get_baseline(name)
    try:
        return spec.function(array, sigma=sigma, **params)
    except TypeError as exc:
        if "unexpected keyword" not in str(exc):
            raise
        raise ConfigError(rule_message(f"parameters of baseline {name!r}", "must be keywords it accepts",
                                       sorted(params), f"See help(MedDenoiseLib.baselines.{spec.function.__name__}) "
                                       f"({exc}).")) from exc
