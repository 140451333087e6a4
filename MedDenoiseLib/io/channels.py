"""Reduce multi-channel images (vector/RGB voxels, 4D series) to one scalar 2D/3D image."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from ..errors import ConfigError, InputError, rule_message

#: ITU-R BT.601 luma weights for R, G, B.
BT601_WEIGHTS = (0.299, 0.587, 0.114)


def channel_count(image: sitk.Image) -> int:
    """Number of channels ``channel=`` can choose from: components, time points of a 4D image, or 1."""
    if image.GetNumberOfComponentsPerPixel() > 1:
        return image.GetNumberOfComponentsPerPixel()
    if image.GetDimension() == 4:
        return image.GetSize()[3]
    return 1


def is_rgb8(image: sitk.Image) -> bool:
    """True for 3-component uint8 voxels (RGB)."""
    return image.GetNumberOfComponentsPerPixel() == 3 and image.GetPixelID() == sitk.sitkVectorUInt8


def rgb_to_gray_image(image: sitk.Image) -> sitk.Image:
    """Convert an RGB uint8 image to uint8 luma, Y = 0.299 R + 0.587 G + 0.114 B.

    Notes
    -----
    The weights are those of ITU-R BT.601 (Rec. 601 luma). Y is computed in float64,
    rounded half to even and stored as uint8; it cannot leave [0, 255] because the
    weights sum to 1.
    """
    rgb = sitk.GetArrayFromImage(image).astype(np.float64)
    luma = rgb @ np.asarray(BT601_WEIGHTS)
    gray = sitk.GetImageFromArray(np.clip(np.rint(luma), 0, 255).astype(np.uint8))
    gray.CopyInformation(image)
    return gray


def select_channel(image: sitk.Image, *, channel: int | None, rgb_to_gray: bool) -> tuple[sitk.Image, int]:
    """Reduce ``image`` to one scalar 2D or 3D image.

    Parameters
    ----------
    image : sitk.Image
        As read from disk.
    channel : int or None
        Component (vector/RGB voxels) or time point (4D image) to keep; ``None`` is
        allowed only when there is a single channel.
    rgb_to_gray : bool
        Convert 3-component uint8 (RGB) voxels to BT.601 luma.

    Returns
    -------
    image : sitk.Image
        Scalar image of dimension 2 or 3.
    block : int
        Index of the 3D block kept, in file order (0 for single-channel images).

    Raises
    ------
    ConfigError
        If ``channel`` is out of range, or ``rgb_to_gray`` is asked for non-RGB voxels or
        together with ``channel``.
    InputError
        If the image has several channels and none is chosen, or its dimension is not
        2, 3 or 4, or it is a 4D image with vector voxels.
    """
    count = channel_count(image)
    vector = image.GetNumberOfComponentsPerPixel() > 1
    if image.GetDimension() not in (2, 3, 4) or (vector and image.GetDimension() == 4):
        raise InputError(
            rule_message("image", "must be 2D or 3D, or 4D with scalar voxels",
                         f"{image.GetDimension()}D with {image.GetNumberOfComponentsPerPixel()} components",
                         "Export a single 3D volume with scalar voxels.")
        )
    if rgb_to_gray:
        if channel is not None:
            raise ConfigError(rule_message("rgb_to_gray", "cannot be combined with channel", channel,
                                           "Pass either rgb_to_gray=True or channel=k, not both."))
        if not is_rgb8(image):
            raise ConfigError(rule_message("rgb_to_gray", "needs 3-component uint8 (RGB) voxels",
                                           image.GetPixelIDTypeAsString(), "Leave rgb_to_gray=False for this image."))
        return rgb_to_gray_image(image), 0
    if channel is None:
        if count == 1:
            return (image[:, :, :, 0] if image.GetDimension() == 4 else image), 0
        kind = "components per voxel" if vector else "time points (4D image)"
        hint = " or rgb_to_gray=True for RGB" if is_rgb8(image) else ""
        raise InputError(
            rule_message("image", "must have one channel unless channel= is given", f"{count} {kind}",
                         f"Choose channel=0..{count - 1}{hint}.")
        )
    if isinstance(channel, bool) or not isinstance(channel, (int, np.integer)) or not 0 <= channel < count:
        raise ConfigError(rule_message("channel", f"must be an integer in [0, {count})", channel,
                                       f"This image has {count} channel(s); choose 0..{count - 1}."))
    channel = int(channel)
    if vector:
        return sitk.VectorIndexSelectionCast(image, channel), channel
    if image.GetDimension() == 4:
        return image[:, :, :, channel], channel
    return image, 0
