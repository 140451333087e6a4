"""Parallel-beam Radon transform and filtered back-projection (FBP) in torch.

All lengths are in pixels. Slice pixel ``(row, col)`` sits at
:math:`(x, y) = (col - (W-1)/2,\\ row - (H-1)/2)`; angle :math:`\\theta_k = k\\pi/M`,
:math:`k = 0..M-1`; detector coordinate :math:`s = x\\cos\\theta + y\\sin\\theta` sampled at
integers :math:`-R..R`, with :math:`R` just over the half-diagonal so every pixel projects
inside the detector.

Both operators use the shear (row-by-row) form so that every step is a contiguous
1D operation rather than a 2D gather:

* forward projection is Joseph's method (Joseph 1982): for angles with
  :math:`|\\cos\\theta| \\ge |\\sin\\theta|` the ray is sampled once per image row with
  linear interpolation along the row and the sum is scaled by :math:`1/|\\cos\\theta|`;
  the other angles use columns;
* back-projection evaluates the filtered projection, band-limited interpolated to a
  half-pixel grid, at each row's shifted pixel positions (linear across the shift).

A 512 x 512 slice with 360 angles takes about 0.4 s each way on one CPU core.

References
----------
Kak & Slaney, *Principles of Computerized Tomographic Imaging*, IEEE Press 1988, ch. 3
(Ram-Lak kernel, FBP). Joseph, "An improved algorithm for reprojecting rays through pixel
images", IEEE TMI 1(3), 1982.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..errors import ShapeError, rule_message
from .checks import check_choice

__all__ = [
    "FILTERS",
    "detector_radius",
    "projection_angles",
    "forward_project",
    "ramp_filter",
    "filter_projections",
    "back_project",
    "fbp",
]

FILTERS = ("ram-lak", "shepp-logan", "cosine", "hann")
_CHUNK_VOXELS = 2_000_000  # slices x angles x pixels per vectorised step: 8 angles of one 512 x 512 slice
# (fastest, cache-sized); many slices and angles at once for small slices (fewer ops, less overhead)
_UPSAMPLE = 2  # filtered projections are interpolated to a half-pixel grid before back-projection


def detector_radius(height: int, width: int) -> int:
    """Half-width R of the detector in pixels (bins ``-R..R``)."""
    return math.ceil(math.hypot((height - 1) / 2, (width - 1) / 2)) + 1


def projection_angles(n_angles: int, *, device: torch.device | str = "cpu") -> torch.Tensor:
    """``n_angles`` angles evenly covering [0, pi), float64."""
    return torch.arange(n_angles, dtype=torch.float64, device=device) * (math.pi / n_angles)


def _as_batch(images: torch.Tensor, name: str) -> tuple[torch.Tensor, bool]:
    """(B, H, W) view of a (H, W) or (B, H, W) tensor, and whether a batch axis was added."""
    if images.ndim not in (2, 3):
        raise ShapeError(rule_message(f"{name}.shape", "must be (H, W) or (B, H, W)", tuple(images.shape),
                                      "Flatten leading axes into one batch axis."))
    return (images[None], True) if images.ndim == 2 else (images, False)


def _chunk(batch: int, n_out: int, n_in: int) -> int:
    return max(1, _CHUNK_VOXELS // (batch * n_out * n_in))


def _groups(angles: torch.Tensor):
    """Yield (angle indices, transposed, a, b) with s = a * inner + b * outer and |a| >= |b|.

    ``transposed`` is False for angles walked along image rows (inner axis = x) and True
    for those walked along columns (inner axis = y).
    """
    cos, sin = torch.cos(angles), torch.sin(angles)
    row_major = cos.abs() >= sin.abs()
    for transposed, a, b in ((False, cos, sin), (True, sin, cos)):
        ids = torch.nonzero(row_major != transposed).flatten()
        if ids.numel():
            yield ids, transposed, a, b


def _interp_rows(values: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Linear interpolation of each row of ``values`` (..., L) at ``positions`` (..., P); 0 outside."""
    length = values.shape[-1]
    padded = F.pad(values, (1, 1))
    pos = (positions + 1.0).clamp(0.0, length + 1.0)
    left = pos.floor().clamp(max=length)
    weight = (pos - left).to(values.dtype)
    left = left.long()
    return torch.lerp(padded.gather(-1, left), padded.gather(-1, left + 1), weight)


def forward_project(images: torch.Tensor, n_angles: int) -> torch.Tensor:
    """Line integrals of one slice or a batch of slices (Joseph's method).

    Parameters
    ----------
    images : torch.Tensor
        ``(H, W)`` or ``(B, H, W)`` attenuation per pixel (line integrals come out in
        nepers when attenuation is per pixel length).
    n_angles : int
        Number of angles over [0, pi).

    Returns
    -------
    torch.Tensor
        Sinogram ``([B,] n_angles, 2R + 1)``, same dtype and device as ``images``.
    """
    batch_images, added = _as_batch(images, "images")
    batch, height, width = batch_images.shape
    device, dtype = images.device, images.dtype
    radius = detector_radius(height, width)
    angles = projection_angles(n_angles, device=device)
    sinogram = batch_images.new_zeros(batch, n_angles, 2 * radius + 1)
    s_grid = torch.arange(-radius, radius + 1, dtype=torch.float64, device=device)
    for ids, transposed, a_all, b_all in _groups(angles):
        oriented = batch_images.transpose(1, 2) if transposed else batch_images
        n_out, n_in = oriented.shape[1:]
        outer = torch.arange(n_out, dtype=torch.float64, device=device) - (n_out - 1) / 2
        margin = math.ceil(n_out / 2) + 2
        length = n_in + 1 + 2 * margin
        padded = F.pad(oriented, (1, 1))[:, None]  # (B, 1, n_out, n_in + 2)
        steps = torch.arange(n_in + 1, device=device)
        chunk = _chunk(batch, n_out, n_in)
        for start in range(0, ids.numel(), chunk):
            sel = ids[start : start + chunk]
            m = sel.numel()
            a = a_all[sel]
            shift = (b_all[sel] / a)[:, None] * outer[None, :]  # row o is read at u - shift_o
            whole = shift.floor()
            frac = (shift - whole).to(dtype)[None, :, :, None]
            # z[i] = (1 - f) row[i] + f row[i - 1], i = 0..n_in, lands on ray index i + whole + margin
            z = torch.lerp(padded[..., 1:], padded[..., :-1], frac)  # (B, m, n_out, n_in + 1)
            base = torch.arange(batch * m, device=device).reshape(batch, m, 1) * length + whole.long() + margin
            index = (base[..., None] + steps).reshape(-1)
            ray = batch_images.new_zeros(batch * m * length).index_add_(0, index, z.reshape(-1))
            positions = s_grid[None, :] / a[:, None] + (n_in - 1) / 2 + margin
            projected = _interp_rows(ray.reshape(batch, m, length), positions.expand(batch, m, -1))
            sinogram[:, sel] = projected / a.abs()[:, None].to(dtype)
    return sinogram[0] if added else sinogram


def ramp_filter(n_pad: int, filter_name: str, *, dtype: torch.dtype, device: torch.device | str) -> torch.Tensor:
    """Frequency response (``n_pad // 2 + 1`` rfft bins) of the windowed ramp filter.

    The ramp is the DFT of the band-limited Ram-Lak kernel :math:`h[0] = 1/4`,
    :math:`h[n] = -1/(\\pi n)^2` for odd n, 0 for even n (Kak & Slaney eq. 61), which keeps
    the correct DC term; the window is applied on :math:`f \\in [0, 1/2]` cycles/pixel:
    Ram-Lak 1, Shepp-Logan :math:`\\mathrm{sinc}(f)`, cosine :math:`\\cos(\\pi f)`,
    Hann :math:`(1 + \\cos 2\\pi f)/2`.
    """
    check_choice("filter_name", filter_name, FILTERS, fix="Use 'hann' for a standard soft kernel.")
    n = torch.cat([torch.arange(0, n_pad // 2 + 1), torch.arange(-(n_pad // 2) + 1, 0)]).to(torch.float64)
    kernel = torch.zeros(n_pad, dtype=torch.float64)
    kernel[0] = 0.25
    odd = n.remainder(2) == 1
    kernel[odd] = -1.0 / (math.pi * n[odd]) ** 2
    response = torch.fft.rfft(kernel).real
    freq = torch.arange(n_pad // 2 + 1, dtype=torch.float64) / n_pad
    if filter_name == "shepp-logan":
        response = response * torch.sinc(freq)
    elif filter_name == "cosine":
        response = response * torch.cos(math.pi * freq)
    elif filter_name == "hann":
        response = response * 0.5 * (1.0 + torch.cos(2.0 * math.pi * freq))
    return response.to(device=device, dtype=dtype)


def filter_projections(sinogram: torch.Tensor, filter_name: str = "hann", *, upsample: int = 1) -> torch.Tensor:
    """Ramp-filter each projection (zero-padded FFT convolution).

    With ``upsample > 1`` the result is band-limited interpolated onto a grid of spacing
    ``1 / upsample`` (zero-padding of the spectrum): shape ``(M, upsample * S)``.
    """
    n_bins = sinogram.shape[-1]
    n_pad = max(64, 1 << math.ceil(math.log2(2 * n_bins)))
    work = torch.float64 if sinogram.dtype == torch.float64 else torch.float32
    spectrum = torch.fft.rfft(sinogram.to(work), n=n_pad, dim=-1)
    spectrum = spectrum * ramp_filter(n_pad, filter_name, dtype=work, device=sinogram.device)
    if upsample > 1:
        spectrum[..., -1] = spectrum[..., -1] * 0.5  # split the Nyquist bin for a symmetric interpolant
    filtered = torch.fft.irfft(spectrum, n=n_pad * upsample, dim=-1) * upsample
    return filtered[..., : n_bins * upsample].to(sinogram.dtype)


def back_project(filtered: torch.Tensor, height: int, width: int, *, upsample: int = 1) -> torch.Tensor:
    """Sum over angles of each projection smeared back along its rays (no scaling).

    Parameters
    ----------
    filtered : torch.Tensor
        ``([B,] M, upsample * S)`` projections on a grid of spacing ``1 / upsample``
        pixels, ``S = 2 * detector_radius(height, width) + 1``.
    height, width : int
        Output slice size.

    Returns
    -------
    torch.Tensor
        ``([B,] height, width)``.
    """
    radius = detector_radius(height, width)
    batch_filtered, added = (filtered[None], True) if filtered.ndim == 2 else (filtered, False)
    if batch_filtered.ndim != 3 or batch_filtered.shape[-1] != upsample * (2 * radius + 1):
        raise ShapeError(
            rule_message(
                "filtered.shape",
                f"must be ([B,] n_angles, {upsample * (2 * radius + 1)}) for a {height} x {width} slice",
                tuple(filtered.shape),
                "Project and back-project the same slice size.",
            )
        )
    batch, n_angles = batch_filtered.shape[:2]
    device, dtype = filtered.device, filtered.dtype
    angles = projection_angles(n_angles, device=device)
    result = filtered.new_zeros(batch, height, width)
    result_t = filtered.new_zeros(batch, width, height)
    for ids, transposed, a_all, b_all in _groups(angles):
        target = result_t if transposed else result
        n_out, n_in = target.shape[1:]
        outer = torch.arange(n_out, dtype=torch.float64, device=device) - (n_out - 1) / 2
        margin = math.ceil(n_out / 2) + 2
        length = n_in + 1 + 2 * margin
        inner = torch.arange(length, dtype=torch.float64, device=device) - margin - (n_in - 1) / 2
        chunk = _chunk(batch, n_out, n_in)
        for start in range(0, ids.numel(), chunk):
            sel = ids[start : start + chunk]
            m = sel.numel()
            a = a_all[sel]
            shift = (b_all[sel] / a)[:, None] * outer[None, :]  # pixel u of row o sees ray u + shift_o
            whole = shift.floor()
            frac = (shift - whole).to(dtype)[None, :, :, None]
            # g[j] = q(a * inner_j): the projection along the unsheared inner axis
            positions = (a[:, None] * inner[None, :] + radius) * upsample
            g = _interp_rows(batch_filtered[:, sel], positions.expand(batch, m, -1))  # (B, m, length)
            windows = g.unfold(-1, n_in, 1)  # view (B, m, length - n_in + 1, n_in): window r = g[r : r + n_in]
            rows = (whole.long() + margin)[None]  # (1, m, n_out)
            b_idx = torch.arange(batch, device=device)[:, None, None]
            m_idx = torch.arange(m, device=device)[None, :, None]
            left = windows[b_idx, m_idx, rows]  # (B, m, n_out, n_in)
            right = windows[b_idx, m_idx, rows + 1]
            target += torch.lerp(left, right, frac).sum(1)
    result += result_t.transpose(1, 2)
    return result[0] if added else result


def fbp(sinogram: torch.Tensor, height: int, width: int, filter_name: str = "hann") -> torch.Tensor:
    """Filtered back-projection of a parallel-beam sinogram ``([B,] M, S)`` over [0, pi).

    :math:`f(x, y) = \\frac{\\pi}{M} \\sum_k q_k(x\\cos\\theta_k + y\\sin\\theta_k)` with
    :math:`q_k = p_k * h` (windowed ramp). Units: if ``sinogram`` holds line integrals of
    attenuation per pixel, the result is attenuation per pixel.
    """
    filtered = filter_projections(sinogram, filter_name, upsample=_UPSAMPLE)
    return back_project(filtered, height, width, upsample=_UPSAMPLE) * (math.pi / sinogram.shape[-2])
