"""Blind-spot masking for self-supervised denoising: Noise2Void, structN2V lines, Noise2Self grids.

Each function takes a noisy batch ``x`` of shape (B, C, D, H, W) and returns ``(masked, mask)``:
the network sees ``masked`` and the loss compares its output with ``x`` on ``mask`` only. Every
random draw uses the keyword ``generator`` (on the batch's device); nothing touches torch's
global generator.

References
----------
.. [1] A. Krull, T.-O. Buchholz and F. Jug, "Noise2Void - learning denoising from single noisy
   images", CVPR 2019.
.. [2] C. Broaddus, A. Krull, M. Weigert, U. Schmidt and G. Myers, "Removing structured noise with
   self-supervised blind-spot networks", ISBI 2020 (structN2V).
.. [3] J. Batson and L. Royer, "Noise2Self: blind denoising by self-supervision", ICML 2019.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..errors import ConfigError, ShapeError, rule_message

__all__ = ["AXES", "n2s_mask", "n2v_mask"]

#: Config axis name -> tensor dimension of a (B, C, D, H, W) batch.
AXES = {"z": 2, "y": 3, "x": 4}


def _check_batch(x: torch.Tensor) -> None:
    if x.ndim != 5 or x.numel() == 0:
        raise ShapeError(rule_message("x", "must be a non-empty (B, C, D, H, W) tensor", tuple(x.shape),
                                      "Add batch and channel axes: x[None, None]."))


def n2v_mask(x: torch.Tensor, *, fraction: float, radius: int = 2, struct_axis: str | None = None,
             struct_span: int = 0, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Noise2Void: hide a random ``fraction`` of voxels behind the value of a random neighbour.

    Parameters
    ----------
    x : torch.Tensor
        Noisy batch (B, C, D, H, W).
    fraction : float
        Probability that a voxel is masked, in (0, 0.5]; every sample gets at least one masked voxel.
    radius : int
        The replacement comes from a different voxel at most ``radius`` away per axis (fewer on axes
        too short for it, none on single-slice axes), never from the voxel itself.
    struct_axis : {"x", "y", "z"} or None
        structN2V: also overwrite ``struct_span`` voxels on each side of every masked voxel along this
        axis with values drawn uniformly in the sample's [min, max], so noise correlated along that
        axis cannot leak into the blind spot. The loss still uses the centre voxels only.
    struct_span : int
        Half-length of that line (>= 1 when ``struct_axis`` is set).
    generator : torch.Generator
        Source of every draw, on ``x.device``.

    Returns
    -------
    (masked, mask) : (torch.Tensor, torch.Tensor)
        The manipulated batch and a boolean mask of the blind-spot voxels.

    Notes
    -----
    With independent zero-mean noise n and y = s + n, the network f cannot see y_i at a masked
    voxel, so minimising E|f(y_{-i}) - y_i|^2 also minimises E|f(y_{-i}) - s_i|^2 (Krull et al.).

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> masked, mask = n2v_mask(torch.rand(2, 1, 3, 8, 8), fraction=0.05, generator=g)
    >>> bool(mask.any()), masked.shape
    (True, torch.Size([2, 1, 3, 8, 8]))
    """
    _check_batch(x)
    if not 0.0 < fraction <= 0.5:
        raise ConfigError(rule_message("fraction", "must be in (0, 0.5]", fraction, "Use 0.002 (N2V) or 0.25."))
    sizes = x.shape[2:]
    radii = [min(int(radius), (n - 1) // 2) for n in sizes]
    widths = [2 * r + 1 for r in radii]
    combos = math.prod(widths)
    if combos == 1:
        raise ShapeError(rule_message("patch (D, H, W)", "needs an axis of length >= 3 for a neighbour",
                                      tuple(sizes), "Use larger patches."))
    mask = torch.rand(x.shape, generator=generator, device=x.device) < fraction
    _ensure_one_per_sample(mask, generator)
    idx = mask.nonzero(as_tuple=True)
    # A uniformly drawn non-zero offset: skip the centre of the (2r+1)^3 neighbourhood.
    u = torch.randint(combos - 1, (idx[0].numel(),), generator=generator, device=x.device)
    u = u + (u >= combos // 2).long()
    source = list(idx)
    for axis in (2, 1, 0):  # unravel u over the widths, last axis fastest
        offset = u % widths[axis] - radii[axis]
        u = u // widths[axis]
        p = idx[axis + 2]
        q = p + offset
        outside = (q < 0) | (q >= sizes[axis])
        source[axis + 2] = torch.where(outside, p - offset, q)  # |offset| <= (n-1)//2 keeps p - offset inside
    masked = x.clone()
    masked[idx] = x[tuple(source)]
    if struct_axis is not None:
        _struct_lines(masked, x, idx, struct_axis, struct_span, generator)
    return masked, mask


def _ensure_one_per_sample(mask: torch.Tensor, generator: torch.Generator) -> None:
    flat = mask.view(mask.shape[0], -1)
    pick = torch.randint(flat.shape[1], (flat.shape[0],), generator=generator, device=mask.device)
    empty = ~flat.any(dim=1)
    flat[empty, pick[empty]] = True


def _struct_lines(masked: torch.Tensor, x: torch.Tensor, idx: tuple, axis_name: str, span: int,
                  generator: torch.Generator) -> None:
    if axis_name not in AXES or span < 1:
        raise ConfigError(rule_message("struct_axis/struct_span", "must be one of x, y, z with span >= 1",
                                       (axis_name, span), "Use struct_axis='x', struct_span=2."))
    dim = AXES[axis_name]
    n = x.shape[dim]
    low = x.flatten(1).amin(1)[idx[0]]
    high = x.flatten(1).amax(1)[idx[0]]
    for step in [s for s in range(-span, span + 1) if s != 0]:
        target = list(idx)
        target[dim] = idx[dim] + step
        inside = (target[dim] >= 0) & (target[dim] < n)
        draw = torch.rand(idx[0].shape, generator=generator, device=x.device, dtype=x.dtype)
        values = low + (high - low) * draw
        masked[tuple(t[inside] for t in target)] = values[inside]


def n2s_mask(x: torch.Tensor, *, grid: int = 4, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Noise2Self J-invariant grid masking: one coset of a ``grid``-periodic lattice per sample.

    The lattice runs over H and W, and over D too when D >= ``grid``; its phase is drawn per sample.
    Masked voxels are replaced by the mean of their 8 in-plane neighbours, none of which is masked,
    so the output on the coset J depends only on voxels outside J (J-invariance).

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> masked, mask = n2s_mask(torch.rand(1, 1, 2, 8, 8), grid=4, generator=g)
    >>> int(mask.sum())
    8
    """
    _check_batch(x)
    if int(grid) < 2:
        raise ConfigError(rule_message("grid", "must be >= 2", grid, "Use grid=4."))
    b, _, d, h, w = x.shape
    if min(h, w) < 2:
        raise ShapeError(rule_message("patch (H, W)", "must be >= 2 for Noise2Self", (h, w), "Use larger patches."))
    phases = torch.randint(grid, (b, 3), generator=generator, device=x.device)
    coords = [torch.arange(n, device=x.device) for n in (d, h, w)]
    mask = torch.ones((b, 1, d, h, w), dtype=torch.bool, device=x.device)
    for axis, (n, c) in enumerate(zip((d, h, w), coords)):
        if axis == 0 and n < grid:
            continue
        hit = (c[None, :] - phases[:, axis:axis + 1]) % grid == 0  # (B, n)
        shape = [b, 1, 1, 1, 1]
        shape[axis + 2] = n
        mask = mask & hit.view(shape)
    mask = mask.expand_as(x).clone()
    ring = torch.ones((1, 1, 1, 3, 3), dtype=x.dtype, device=x.device)
    ring[..., 1, 1] = 0
    flat = x.reshape(-1, 1, d, h, w)
    padded = F.pad(flat, (1, 1, 1, 1, 0, 0), mode="reflect")  # reflect: never the voxel itself
    donut = (F.conv3d(padded, ring) / 8.0).reshape(x.shape)
    return torch.where(mask, donut, x), mask
