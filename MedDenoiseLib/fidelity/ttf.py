"""Edge resolution as a task transfer function (TTF) measured on an inserted disc.

A denoiser can lower noise simply by blurring; the TTF says how much edge sharpness it
kept. A disc (a cylinder through the slices) of known contrast is added to the clean scan
before noise is simulated; the method then runs on the noisy scan with and without the
disc, and the *difference* of the two outputs holds the method's response to the disc
alone (background anatomy cancels, and so does the noise for any linear method). Its
radial profile about the disc centre, binned at a tenth of a voxel, is the edge-spread
function (ESF); its derivative, the line-spread function (LSF); the LSF's Fourier
magnitude normalised at zero frequency, the TTF. TTF50 is the frequency where it falls
to 0.5. Because nonlinear denoisers blur low-contrast edges more, the TTF depends on the
disc's contrast ("task"), as TG-233 prescribes.

References
----------
S. Richard, D. B. Husarik, G. Yadava, S. N. Murphy and E. Samei, "Towards task-based
assessment of CT performance: system and object MTF across different reconstruction
algorithms", Med. Phys. 39(7), 4115-4122, 2012 (circular-insert ESF, 1/10-voxel binning).
B. Chen, O. Christianson, J. M. Wilson and E. Samei, "Assessment of volumetric noise and
resolution performance for linear and nonlinear CT reconstruction methods", Med. Phys.
41(7), 071909, 2014.
E. Samei et al., AAPM Task Group 233, Med. Phys. 46(11), e735-e756, 2019 (TTF).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy.special import ndtr

from ..errors import InputError, rule_message
from ..metrics.image import ArrayLike
from ..noise.checks import check_number
from ._arrays import as_volume, check_spacing

__all__ = ["DiscInsert", "TTFResult", "task_transfer_function", "ttf50"]


@dataclass(frozen=True)
class DiscInsert:
    """A disc of ``contrast`` (image units) through slices ``z0 <= z < z1``, centre in voxel (y, x).

    ``edge_sigma_mm`` > 0 gives the edge the profile of a Gaussian blur of that width,
    Φ((R - r) / σ_e), so the insert is no sharper than the scan; 0 gives a binary disc
    sampled at voxel centres.
    """

    centre_yx: tuple[float, float]
    radius_mm: float
    contrast: float
    z0: int
    z1: int
    edge_sigma_mm: float = 0.0

    def radius_map(self, shape_yx: tuple[int, int], spacing_zyx: tuple[float, float, float]) -> np.ndarray:
        """Distance (mm) of every in-plane voxel centre from the disc centre."""
        y, x = np.ogrid[0:shape_yx[0], 0:shape_yx[1]]
        return np.hypot((y - self.centre_yx[0]) * spacing_zyx[1], (x - self.centre_yx[1]) * spacing_zyx[2])

    def profile(self, shape: tuple[int, int, int], spacing_zyx: tuple[float, float, float]) -> np.ndarray:
        """The insert as a volume of ``shape``: ``contrast`` inside, 0 outside (float64)."""
        r = self.radius_map(shape[1:], spacing_zyx)
        inside = ndtr((self.radius_mm - r) / self.edge_sigma_mm) if self.edge_sigma_mm > 0 \
            else (r < self.radius_mm).astype(np.float64)
        out = np.zeros(shape)
        out[self.z0:self.z1] = self.contrast * inside
        return out

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class TTFResult:
    """TTF on ``frequency`` (cycles/mm, up to Nyquist) and TTF50 (capped at Nyquist when never reached)."""

    frequency: np.ndarray
    ttf: np.ndarray
    ttf50: float
    capped: bool

    def to_dict(self) -> dict:
        return {"frequency": self.frequency.tolist(), "ttf": self.ttf.tolist(), "ttf50": self.ttf50,
                "capped": self.capped}


def ttf50(frequency: np.ndarray, ttf: np.ndarray) -> tuple[float, bool]:
    """First frequency where ``ttf`` falls to 0.5 (linear interpolation); (last frequency, True) if never.

    Examples
    --------
    >>> value, capped = ttf50(np.array([0.0, 0.1, 0.2]), np.array([1.0, 0.6, 0.4]))
    >>> round(value, 6), capped
    (0.15, False)
    """
    below = np.flatnonzero(ttf < 0.5)
    if below.size == 0:
        return float(frequency[-1]), True
    k = int(below[0])
    if k == 0:
        return float(frequency[0]), False
    f0, f1, t0, t1 = frequency[k - 1], frequency[k], ttf[k - 1], ttf[k]
    return float(f0 + (t0 - 0.5) * (f1 - f0) / (t0 - t1)), False


def _binned_esf(difference: np.ndarray, disc: DiscInsert, spacing: tuple[float, float, float], half_range: float,
                bin_mm: float) -> np.ndarray:
    """Mean of ``difference`` in bins of (r - R) across [-half_range, half_range), empty bins interpolated."""
    r = disc.radius_map(difference.shape[1:], spacing) - disc.radius_mm
    edges = np.arange(-half_range, half_range + bin_mm / 2, bin_mm)
    index = np.floor((r + half_range) / bin_mm).astype(int)
    keep = (index >= 0) & (index < edges.size - 1)
    n_bins = edges.size - 1
    values = difference[disc.z0:disc.z1][:, keep]
    idx = np.broadcast_to(index[keep], values.shape).ravel()
    counts = np.bincount(idx, minlength=n_bins)
    sums = np.bincount(idx, weights=values.ravel(), minlength=n_bins)
    filled = counts > 0
    if filled.sum() < n_bins // 2:
        raise InputError(rule_message("voxels around the disc edge", "must fill at least half of the ESF bins",
                                      f"{int(filled.sum())} of {n_bins}", "Use a larger disc or a smaller bin."))
    centres = (edges[:-1] + edges[1:]) / 2
    return np.interp(centres, centres[filled], sums[filled] / counts[filled])


def _tukey(n: int, alpha: float = 0.5) -> np.ndarray:
    """Tukey window: flat over the central 1 - alpha, cosine tapers at both ends."""
    x = np.linspace(0.0, 1.0, n)
    w = np.ones(n)
    edge = alpha / 2
    low, high = x < edge, x > 1 - edge
    w[low] = 0.5 * (1 + np.cos(np.pi * (x[low] / edge - 1)))
    w[high] = 0.5 * (1 + np.cos(np.pi * ((x[high] - 1) / edge + 1)))
    return w


def task_transfer_function(difference: ArrayLike, disc: DiscInsert, *,
                           spacing_zyx: tuple[float, float, float] | None = None,
                           half_range_mm: float | None = None, bin_fraction: float = 0.1) -> TTFResult:
    """TTF of the disc response ``difference`` (output with disc - output without).

    Parameters
    ----------
    difference : array (z, y, x) or (H, W)
        The method's response to the disc; for the clean image it is the insert itself.
    disc : DiscInsert
        Where the disc is and its contrast (sets the ESF sign).
    spacing_zyx : (float, float, float), optional
        Voxel size in mm (default 1 mm).
    half_range_mm : float, optional
        ESF measured over R ± this; default min(R, 8 in-plane voxels).
    bin_fraction : float, default 0.1
        ESF bin width as a fraction of the in-plane voxel size (oversampling).

    Returns
    -------
    TTFResult

    Notes
    -----
    LSF(d) = -dESF/dd (times the sign of the contrast), tapered by a Tukey window (flat over
    the central half) to quiet the noisy tails; TTF(f) = |F[LSF](f)| / |F[LSF](0)|, zero-padded
    to a fine frequency grid. For a Gaussian blur of standard deviation σ,
    TTF(f) = exp(-2π² σ² f²) and TTF50 = √(ln 2 / 2) / (π σ) ≈ 0.1874 / σ.

    Examples
    --------
    >>> disc = DiscInsert((32.3, 32.6), 16.0, 100.0, 0, 1, edge_sigma_mm=1.5)
    >>> result = task_transfer_function(disc.profile((1, 64, 64), (1, 1, 1)), disc)
    >>> round(result.ttf50 * 1.5, 2)  # 0.1874 / σ
    0.19
    """
    volume = as_volume("difference", difference)
    spacing = check_spacing(spacing_zyx)
    pixel = min(spacing[1], spacing[2])
    default = min(disc.radius_mm, 8 * pixel)
    half_range = check_number("half_range_mm", default if half_range_mm is None else half_range_mm, low=0.0,
                              low_open=True, fix="Use the disc radius or about 8 voxels.")
    step = check_number("bin_fraction", bin_fraction, low=0.0, high=1.0, low_open=True, fix="Use 0.1.") * pixel
    if not 0 <= disc.z0 < disc.z1 <= volume.shape[0]:
        raise InputError(rule_message("disc slices [z0, z1)", f"must lie within [0, {volume.shape[0]})",
                                      (disc.z0, disc.z1), "Insert the disc inside the volume."))
    esf = _binned_esf(volume, disc, spacing, half_range, step) * math.copysign(1.0, disc.contrast)
    lsf = -np.diff(esf) * _tukey(esf.size - 1)
    n_fft = max(4096, 2 ** int(np.ceil(np.log2(lsf.size))))
    spectrum = np.abs(np.fft.rfft(lsf, n=n_fft))
    frequency = np.fft.rfftfreq(n_fft, d=step)
    if spectrum[0] <= 0:
        raise InputError(rule_message("disc response (ESF step)", "must be > 0", float(spectrum[0]),
                                      "The method erased the disc: nothing to measure."))
    nyquist = 0.5 / max(spacing[1], spacing[2])
    keep = frequency < nyquist
    ttf = np.append(spectrum[keep], np.interp(nyquist, frequency, spectrum)) / spectrum[0]
    frequency = np.append(frequency[keep], nyquist)
    value, capped = ttf50(frequency, ttf)
    return TTFResult(frequency, ttf, value, capped)
