"""Noise power spectrum (NPS) of residual noise in uniform ROIs: the texture of the noise.

Two outputs with the same noise standard deviation can look very different: fine-grained
noise (power at high spatial frequency) reads like the original scan, blotchy noise (power
pushed to low frequency) gives the "plastic" look of over-regularised reconstructions.
The NPS measures this. Noise here is the residual (image - clean) of an output, so anatomy
does not enter; its 2D NPS is averaged over the uniform ROIs, then radially.

References
----------
ICRU Report 87, "Radiation dose and image-quality assessment in computed tomography",
J. ICRU 12(1), 2012 (NPS definition and estimation from ROIs).
E. Samei et al., "Performance evaluation of computed tomography systems: summary of AAPM
Task Group 233", Med. Phys. 46(11), e735-e756, 2019 (radial NPS, peak and average
frequency f_av as texture descriptors).
J. T. Dobbins III, "Image quality metrics for digital systems", Handbook of Medical
Imaging vol. 1, SPIE, 2000 (periodogram normalisation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import InputError, rule_message
from ..metrics.image import ArrayLike
from ._arrays import as_volume, check_spacing
from .rois import UniformROIs

__all__ = ["NPSResult", "noise_power_spectrum", "radial_average", "nps_shift"]


@dataclass(frozen=True)
class NPSResult:
    """Radially averaged NPS (``frequency`` in cycles/mm, ``nps`` in units² · mm²) and its summaries."""

    frequency: np.ndarray
    nps: np.ndarray
    counts: np.ndarray
    peak_frequency: float
    mean_frequency: float
    variance: float

    def to_dict(self) -> dict:
        return {"frequency": self.frequency.tolist(), "nps": self.nps.tolist(), "peak_frequency": self.peak_frequency,
                "mean_frequency": self.mean_frequency, "variance": self.variance}


def _periodogram(patches: np.ndarray, pixel_yx: tuple[float, float]) -> np.ndarray:
    """Mean 2D NPS of mean-subtracted patches: (Δx Δy / (Nx Ny)) ⟨|DFT|²⟩ (ICRU Report 87)."""
    n = patches.shape[-1]
    detrended = patches - patches.mean(axis=(1, 2), keepdims=True)
    power = np.abs(np.fft.fft2(detrended)) ** 2
    return power.mean(axis=0) * (pixel_yx[0] * pixel_yx[1]) / (n * n)


def radial_average(nps2d: np.ndarray, pixel_yx: tuple[float, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Radial mean of an unshifted 2D NPS in rings of width 1 / (N Δ) up to the Nyquist frequency.

    Ring k holds the frequencies whose radius (in units of the sampling step) rounds to k;
    returns ring mean radius (cycles/mm), mean NPS and sample count for k = 1 .. N/2 (the DC
    ring is dropped: the ROI mean is subtracted).
    """
    n = nps2d.shape[0]
    fy = np.fft.fftfreq(n, d=pixel_yx[0])
    fx = np.fft.fftfreq(n, d=pixel_yx[1])
    df = 1.0 / (n * max(pixel_yx))
    radius = np.hypot(*np.meshgrid(fy, fx, indexing="ij"))
    ring = np.rint(radius / df).astype(int).ravel()
    keep = (ring >= 1) & (ring <= n // 2)
    counts = np.bincount(ring[keep], minlength=n // 2 + 1)[1:]
    sums = np.bincount(ring[keep], weights=nps2d.ravel()[keep], minlength=n // 2 + 1)[1:]
    radii = np.bincount(ring[keep], weights=radius.ravel()[keep], minlength=n // 2 + 1)[1:]
    valid = counts > 0
    return radii[valid] / counts[valid], sums[valid] / counts[valid], counts[valid]


def noise_power_spectrum(residual: ArrayLike, rois: UniformROIs, *,
                         spacing_zyx: tuple[float, float, float] | None = None) -> NPSResult:
    """Radially averaged 2D NPS of ``residual`` (image - clean) over the uniform ROIs.

    Parameters
    ----------
    residual : array (z, y, x) or (H, W)
        Noise of one image: output - clean (or noisy - clean for the input).
    rois : UniformROIs
        Where to measure (:func:`~MedDenoiseLib.fidelity.rois.find_uniform_rois`).
    spacing_zyx : (float, float, float), optional
        Voxel size in mm; frequencies are in cycles/mm (cycles/voxel for 1 mm voxels).

    Returns
    -------
    NPSResult
        Radial NPS; ``peak_frequency`` (argmax), ``mean_frequency``
        f_av = Σ f NPS(f) / Σ NPS(f) (AAPM TG-233) and ``variance`` (the NPS integral, which
        equals the ROI noise variance by Parseval).

    Notes
    -----
    NPS(f_x, f_y) = Δx Δy / (N_x N_y) · ⟨|DFT[ROI - mean(ROI)]|²⟩ over ROIs. White noise of
    variance σ² has the flat NPS σ² Δx Δy; noise filtered by a transfer function H has
    σ² Δx Δy |H(f)|².

    Examples
    --------
    >>> from MedDenoiseLib.fidelity.rois import find_uniform_rois
    >>> noise = np.random.default_rng(0).normal(0.0, 2.0, (8, 64, 64))
    >>> rois = find_uniform_rois(np.ones_like(noise), size=32, fraction=1.0, foreground=False)
    >>> result = noise_power_spectrum(noise, rois)
    >>> bool(abs(result.nps.mean() - 4.0) < 0.2)  # flat at σ² = 4
    True
    """
    volume = as_volume("residual", residual)
    spacing = check_spacing(spacing_zyx)
    if len(rois) == 0:
        raise InputError(rule_message("number of ROIs", "must be >= 1", 0, "Find ROIs with find_uniform_rois()."))
    pixel = (spacing[1], spacing[2])
    nps2d = _periodogram(rois.patches(volume), pixel)
    frequency, nps, counts = radial_average(nps2d, pixel)
    total = float(nps.sum())
    mean_f = float((frequency * nps).sum() / total) if total > 0 else math.nan
    peak = float(frequency[int(np.argmax(nps))]) if total > 0 else math.nan
    variance = float(nps2d.sum() / (pixel[0] * pixel[1] * nps2d.size))
    return NPSResult(frequency, nps, counts, peak, mean_f, variance)


def nps_shift(result: NPSResult, reference: NPSResult) -> float:
    """Relative change of the NPS mean frequency, (f_av - f_av,ref) / f_av,ref (negative: blotchier).

    Examples
    --------
    >>> r = NPSResult(np.ones(1), np.ones(1), np.ones(1), 0.2, 0.18, 1.0)
    >>> round(nps_shift(r, NPSResult(np.ones(1), np.ones(1), np.ones(1), 0.2, 0.2, 1.0)), 3)
    -0.1
    """
    if not math.isfinite(reference.mean_frequency) or reference.mean_frequency <= 0:
        return math.nan
    return (result.mean_frequency - reference.mean_frequency) / reference.mean_frequency
