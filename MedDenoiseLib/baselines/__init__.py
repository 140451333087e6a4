"""Classical denoisers a user would pick instead of a network, each from a real library.

Every method is ``denoise_<name>(array, *, sigma=None, **params)`` on a 2D image or 3D volume
(numpy, (D, H, W)); ``sigma`` is the noise std in image units (None: estimated). Filters run
in SimpleITK (Gaussian, median, bilateral, curvature and gradient anisotropic diffusion),
scikit-image (non-local means, wavelet shrinkage), DIPY (Rician non-local means) and the
optional, non-commercial ``bm4d`` package. Heavy libraries are imported only when a method
runs; a missing one raises :class:`MissingDependencyError` naming the pip extra.
"""

from ._common import MissingDependencyError
from .bilateral import denoise_bilateral
from .bm4d import denoise_bm4d
from .diffusion import denoise_curvature_diffusion, denoise_gradient_diffusion
from .gaussian import denoise_gaussian
from .median import denoise_median
from .nlm import denoise_dipy_nlm, denoise_nlm
from .registry import BASELINES, BaselineSpec, get_baseline, list_baselines, run_baseline
from .sigma import estimate_noise_sigma
from .vst import rician_vst, rician_vst_inverse
from .wavelet import denoise_wavelet

__all__ = [
    "BASELINES",
    "BaselineSpec",
    "MissingDependencyError",
    "denoise_bilateral",
    "denoise_bm4d",
    "denoise_curvature_diffusion",
    "denoise_dipy_nlm",
    "denoise_gaussian",
    "denoise_median",
    "denoise_nlm",
    "denoise_gradient_diffusion",
    "denoise_wavelet",
    "estimate_noise_sigma",
    "get_baseline",
    "list_baselines",
    "rician_vst",
    "rician_vst_inverse",
    "run_baseline",
]
